package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/testenv"
)

func redisServerBin(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Require(t, "needs redis-server on PATH")
	}
	return bin
}

// TestDevKeepsDataAcrossRestarts restarts packflow dev on the same data
// dir: the account and the token created before still work after.
func TestDevKeepsDataAcrossRestarts(t *testing.T) {
	t.Parallel()
	redisServerBin(t)
	env := map[string]string{"PACKFLOW_DATA_DIR": t.TempDir(), "PACKFLOW_LOG_LEVEL": "warn"}
	url, _, admin, stop := startDev(t, env, "-listen", "127.0.0.1:0")
	pf := cliRun{t: t, env: map[string]string{"PACKFLOW_API_URL": url, "PACKFLOW_TOKEN": admin, "PACKFLOW_DATA_DIR": t.TempDir()}}
	pf.ok("accounts", "create", "acme")
	var tok struct{ Token string }
	pf.json(&tok, "tokens", "create", "-account", "acme", "-user", "ci", "-role", "viewer")
	if code := stop(); code != exitOK {
		t.Fatalf("dev: exit %d", code)
	}

	url, _, admin2, stop := startDev(t, env, "-listen", "127.0.0.1:0")
	defer stop()
	if admin2 != admin {
		t.Errorf("the admin token changed across a restart")
	}
	pf.env["PACKFLOW_API_URL"], pf.env["PACKFLOW_TOKEN"] = url, tok.Token
	var accounts []struct{ Name string }
	pf.json(&accounts, "accounts")
	if len(accounts) != 1 || accounts[0].Name != "acme" {
		t.Errorf("after a restart the viewer token sees %+v, want acme", accounts)
	}
}

// TestDevRedisServerSurvivesSIGKILL kills dev's redis-server with SIGKILL
// right after a write: the append-only file has it on the next start. The
// server requires its password and listens on loopback only; its config,
// holding the password, is 0600.
func TestDevRedisServerSurvivesSIGKILL(t *testing.T) {
	t.Parallel()
	bin := redisServerBin(t)
	dir := filepath.Join(t.TempDir(), "redis")
	ctx := context.Background()
	r, err := startRedisServer(ctx, bin, dir, "pw-for-test-1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(r.addr, "127.0.0.1:") {
		t.Errorf("listens on %s, want loopback", r.addr)
	}
	if st, err := os.Stat(filepath.Join(dir, "redis.conf")); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("redis.conf: %v %v, want mode 0600", st, err)
	}
	anon := redis.NewClient(&redis.Options{Addr: r.addr, DisableIdentity: true})
	defer func() { _ = anon.Close() }()
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SET without the password: %v, want NOAUTH", err)
	}
	c := redis.NewClient(&redis.Options{Addr: r.addr, Password: "pw-for-test-1", DisableIdentity: true})
	if err := c.Set(ctx, "kept", "yes", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if err := r.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-r.exited

	r, err = startRedisServer(ctx, bin, dir, "pw-for-test-1")
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	c = redis.NewClient(&redis.Options{Addr: r.addr, Password: "pw-for-test-1", DisableIdentity: true})
	defer func() { _ = c.Close() }()
	if v, err := c.Get(ctx, "kept").Result(); err != nil || v != "yes" {
		t.Errorf("after SIGKILL and a restart: %q %v, want yes", v, err)
	}
}

// TestDevIdlePollInterval: dev polls its queues every 200 ms by default
// (idle cost), and PACKFLOW_TASK_CHECK_INTERVAL still wins.
func TestDevIdlePollInterval(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		env  map[string]string
		want time.Duration
	}{
		{nil, 200 * time.Millisecond},
		{map[string]string{"PACKFLOW_TASK_CHECK_INTERVAL": "10ms"}, 10 * time.Millisecond},
	} {
		e := env{getenv: mapEnv(tc.env), stdout: os.Stdout, stderr: os.Stderr}
		cfg, err := parseProcessFlags(e, "dev", "", devSettings(), devDefaults(), nil)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.TaskCheckInterval != tc.want {
			t.Errorf("env %v: task check interval %v, want %v", tc.env, cfg.TaskCheckInterval, tc.want)
		}
	}
}
