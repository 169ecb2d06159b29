package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisServerDir is where dev's redis-server keeps its append-only file,
// inside the data dir.
const redisServerDir = "redis"

// redisServer is a redis-server that packflow dev starts when one is on
// PATH, so that records and queues survive a restart: it keeps an
// append-only file in <data dir>/redis, written on every command and
// fsynced every second, so that even a SIGKILL of the whole process
// loses at most the last second. It listens on loopback only and requires
// dev's generated password (set in a 0600 config file, never on the
// command line where ps would show it).
type redisServer struct {
	cmd      *exec.Cmd
	addr     string
	password string
	exited   chan struct{}
}

// startRedisServer starts bin with its data in dir and waits until it
// answers.
func startRedisServer(ctx context.Context, bin, dir, password string) (*redisServer, error) {
	if password == "" {
		return nil, errors.New("redis-server: a password is required")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("redis-server dir: %w", err)
	}
	port, err := freeLoopbackPort(ctx)
	if err != nil {
		return nil, err
	}
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + strconv.Itoa(port),
		"protected-mode yes",
		"requirepass " + strconv.Quote(password),
		"dir " + strconv.Quote(dir),
		"appendonly yes",
		"appendfsync everysec",
		`save ""`,
		"daemonize no",
		"logfile " + strconv.Quote(filepath.Join(dir, "redis.log")),
	}, "\n") + "\n"
	confPath := filepath.Join(dir, "redis.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return nil, fmt.Errorf("redis-server config: %w", err)
	}
	if err := os.Chmod(confPath, 0o600); err != nil {
		return nil, fmt.Errorf("redis-server config: %w", err)
	}
	// Not CommandContext: the server must outlive a cancelled start-up
	// context until close stops it gracefully.
	cmd := exec.Command(bin, confPath) //nolint:noctx // stopped by close, with SIGTERM then SIGKILL
	setParentDeathSignal(cmd)
	r := &redisServer{cmd: cmd, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), password: password, exited: make(chan struct{})}
	// The parent death signal fires when the thread that started the
	// child exits, not the process: start and wait on a thread kept for
	// the child's whole life.
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		err := cmd.Start()
		started <- err
		if err == nil {
			_ = cmd.Wait()
			close(r.exited)
		}
	}()
	if err := <-started; err != nil {
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	if err := r.waitReady(ctx, 15*time.Second); err != nil {
		r.close()
		log, _ := os.ReadFile(filepath.Join(dir, "redis.log"))
		return nil, fmt.Errorf("redis-server: %w\n%s", err, tail(string(log), 800))
	}
	return r, nil
}

func (r *redisServer) waitReady(ctx context.Context, limit time.Duration) error {
	c := redis.NewClient(&redis.Options{Addr: r.addr, Password: r.password, DisableIdentity: true, MaxRetries: -1})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(limit)
	for {
		err := c.Ping(ctx).Err()
		if err == nil {
			return nil
		}
		select {
		case <-r.exited:
			return errors.New("exited at start")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not answering after %v: %w", limit, err)
		}
	}
}

// url is the server's address with its password, for the in-process
// api, worker and scheduler.
func (r *redisServer) url() string {
	u := url.URL{Scheme: "redis", User: url.UserPassword("", r.password), Host: r.addr, Path: "/0"}
	return u.String()
}

// close stops the server gracefully (it flushes its append-only file),
// killing it when it does not stop within ten seconds.
func (r *redisServer) close() {
	_ = r.cmd.Process.Signal(sigterm)
	select {
	case <-r.exited:
	case <-time.After(10 * time.Second):
		_ = r.cmd.Process.Kill()
		<-r.exited
	}
}

func freeLoopbackPort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	if err := ln.Close(); err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	return port, nil
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
