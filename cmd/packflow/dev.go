package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
)

// Files dev keeps in its data dir when it generates them.
const (
	adminTokenFile    = "admin.token"
	secretKeyFile     = "secret.key"
	redisPasswordFile = "redis.password"
)

// embeddedRedis is a miniredis on loopback whose clock advances every
// second, so that keys with a TTL expire as in Redis. It requires a
// password: any local user can reach a loopback port, and the records it
// holds are every account's.
type embeddedRedis struct {
	mr       *miniredis.Miniredis
	password string
	stop     chan struct{}
	wg       sync.WaitGroup
}

// startEmbeddedRedis starts the embedded Redis on a free loopback port,
// refusing every command until a client authenticates with password.
func startEmbeddedRedis(password string) (*embeddedRedis, error) {
	if password == "" {
		return nil, errors.New("embedded redis: a password is required")
	}
	mr := miniredis.NewMiniRedis()
	mr.RequireAuth(password)
	if err := mr.StartAddr("127.0.0.1:0"); err != nil {
		return nil, fmt.Errorf("embedded redis: %w", err)
	}
	r := &embeddedRedis{mr: mr, password: password, stop: make(chan struct{})}
	r.wg.Go(func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-r.stop:
				return
			case <-tick.C:
				mr.FastForward(time.Second)
			}
		}
	})
	return r, nil
}

// url is the address of the embedded Redis with its password, for the
// in-process api, worker and scheduler.
func (r *embeddedRedis) url() string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", r.password), Host: r.mr.Addr(), Path: "/0"}
	return u.String()
}

func (r *embeddedRedis) close() {
	close(r.stop)
	r.wg.Wait()
	r.mr.Close()
}

// persistedSecret returns the secret kept in path, or makes one with gen
// and keeps it there (mode 0600), so that a restart reuses it. generated
// tells which happened.
func persistedSecret(path string, gen func() (string, error)) (secret string, generated bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		if s := strings.TrimSpace(string(data)); s != "" {
			return s, false, nil
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", false, err
	}
	s, err := gen()
	if err != nil {
		return "", false, err
	}
	if err := os.WriteFile(path, []byte(s+"\n"), 0o600); err != nil {
		return "", false, err
	}
	return s, true, nil
}

func newAdminToken() (string, error) { return "pf_admin_" + rand.Text() + rand.Text(), nil }

func newRedisPassword() (string, error) { return rand.Text() + rand.Text(), nil }

func newSecretKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// devTaskCheckInterval is dev's idle poll of its queues: at the worker's
// default (10 ms) an idle dev burns a fifth of a core polling the
// in-process Redis; at 200 ms it uses under 5 %, and a task queued on an
// idle dev starts within 300 ms (asynq sleeps ½ to 1½ intervals).
const devTaskCheckInterval = "200ms"

// devDefaults are dev's defaults where they differ from the processes'.
func devDefaults() map[string]string {
	return map[string]string{"allow-local": "true", "task-check-interval": devTaskCheckInterval}
}

func runDevCommand(ctx context.Context, e env, args []string) error {
	cfg, err := parseProcessFlags(e, "dev", "Usage: packflow dev [flags]\n\n"+
		"Runs the api, a worker and a scheduler in one process. Without PACKFLOW_REDIS_URL it starts the\n"+
		"redis-server on PATH with an append-only file in <data dir>/redis (records and queues survive a\n"+
		"restart), or else an embedded Redis in memory; either listens on loopback only and requires a\n"+
		"password kept in <data dir>/redis.password. Without PACKFLOW_ADMIN_TOKEN it\n"+
		"generates an admin token, prints it and keeps it in <data dir>/admin.token.",
		devSettings(), devDefaults(), args)
	if err != nil {
		return err
	}
	log := newLogger(cfg, e.stderr)
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	tokenPath := filepath.Join(cfg.DataDir, adminTokenFile)
	tokenNote := "admin token from PACKFLOW_ADMIN_TOKEN"
	if cfg.AdminToken == "" {
		if cfg.AdminToken, _, err = persistedSecret(tokenPath, newAdminToken); err != nil {
			return fmt.Errorf("admin token: %w", err)
		}
		tokenNote = "admin token in " + tokenPath + ": " + cfg.AdminToken
	}
	if cfg.SecretKey == nil {
		key, _, err := persistedSecret(filepath.Join(cfg.DataDir, secretKeyFile), newSecretKey)
		if err != nil {
			return fmt.Errorf("secret key: %w", err)
		}
		if cfg.SecretKey, err = parseSecretKey(key); err != nil {
			return fmt.Errorf("secret key in %s: %w", secretKeyFile, err)
		}
	}

	if cfg.RedisURL == "" {
		pwPath := filepath.Join(cfg.DataDir, redisPasswordFile)
		password, _, err := persistedSecret(pwPath, newRedisPassword)
		if err != nil {
			return fmt.Errorf("embedded redis password: %w", err)
		}
		if bin, err := exec.LookPath("redis-server"); err == nil {
			dir := filepath.Join(cfg.DataDir, redisServerDir)
			r, err := startRedisServer(ctx, bin, dir, password)
			if err != nil {
				return err
			}
			defer r.close()
			cfg.RedisURL = r.url()
			log.Info("redis-server started: records and queues persist in "+dir+" (password in "+pwPath+")", "addr", r.addr)
		} else {
			r, err := startEmbeddedRedis(password)
			if err != nil {
				return err
			}
			defer r.close()
			cfg.RedisURL = r.url()
			log.Warn("no redis-server on PATH: embedded redis in memory, records last as long as the process (install redis-server to keep them)",
				"addr", r.mr.Addr(), "password_file", pwPath)
		}
	}

	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(d, log)
	srv, err := newAPI(cfg, d, log)
	if err != nil {
		return err
	}
	w, err := newWorker(cfg, d, log)
	if err != nil {
		return err
	}
	sched, err := newScheduler(cfg, d, log)
	if err != nil {
		return err
	}
	started := func() {
		// Client commands find this dev through the "dev" context, recorded
		// before the banner so that whoever waits for it can use it.
		if path, err := recordDevContext(e.getenv, dialURL(srv.Addr().String()), cfg.AdminToken); err != nil {
			log.Warn("client context not recorded: client commands need PACKFLOW_API_URL and PACKFLOW_TOKEN", "err", err)
		} else {
			log.Info("client context recorded", "context", devContext, "file", path)
		}
		printf(e.stdout, "packflow dev: API at http://%s, %s\n", srv.Addr(), tokenNote)
		log.Info("dev ready", "api", "http://"+srv.Addr().String(), "node", w.NodeID(), "allow_local", cfg.AllowLocal)
	}
	return serve(ctx, log, cfg.ShutdownTimeout+5*time.Second, started, named{"worker", w}, named{"api", srv}, named{"scheduler", sched})
}
