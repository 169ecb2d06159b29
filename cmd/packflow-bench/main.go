// Command packflow-bench runs packflow's benchmark suites against their
// baselines in one run, on a redis-server it starts on loopback for the
// run, prints a table and writes the results as JSON.
//
//	packflow-bench [-only asynq,ssh] [-quick] [-out bench-results.json]
//
// A suite that fails prints its error; the others still run, and the
// command exits non-zero at the end.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/bench"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "packflow-bench:", err)
		os.Exit(1)
	}
}

// suites lists every suite in the order they run.
func suites() []bench.Suite {
	return []bench.Suite{
		bench.AsynqSuite(),
		bench.ValidateSuite(),
		bench.InstallSuite(),
		bench.FleetSuite(),
		bench.SSHSuite(),
		bench.WinRMSuite(),
		bench.DeploySuite(),
		bench.StreamsSuite(),
		bench.DevIdleSuite(),
	}
}

func run() error {
	only := flag.String("only", "", "comma-separated suite names to run (default: all)")
	quick := flag.Bool("quick", false, "small workloads, for a smoke run")
	out := flag.String("out", "bench-results.json", "where to write the JSON results")
	verbose := flag.Bool("v", false, "log suite progress to stderr")
	flag.Parse()

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	selected, err := selectSuites(suites(), *only)
	if err != nil {
		return err
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "packflow-bench-")
	if err != nil {
		return fmt.Errorf("scratch dir: %w", err)
	}
	defer func() {
		if err := os.RemoveAll(dir); err != nil {
			log.Warn("remove scratch dir", "dir", dir, "error", err)
		}
	}()

	rs, err := startRedis(ctx, filepath.Join(dir, "redis"), log)
	if err != nil {
		return err
	}
	defer rs.stop()

	env := &bench.Env{RedisAddr: rs.addr, Dir: dir, Quick: *quick, Log: log}
	var results []bench.Result
	var failed []string
	for _, s := range selected {
		fmt.Fprintf(os.Stderr, "== %s\n", s.Name)
		start := time.Now()
		rows, err := s.Run(ctx, env)
		results = append(results, rows...)
		if err != nil {
			fmt.Fprintf(os.Stderr, "suite %s failed: %v\n", s.Name, err)
			failed = append(failed, s.Name)
			if ctx.Err() != nil {
				break
			}
			continue
		}
		fmt.Fprintf(os.Stderr, "   %s done in %s\n", s.Name, time.Since(start).Round(time.Millisecond))
	}

	if err := bench.PrintTable(os.Stdout, results); err != nil {
		return err
	}
	if err := bench.WriteJSON(*out, results); err != nil {
		return err
	}
	if len(failed) > 0 {
		return fmt.Errorf("suites failed: %s", strings.Join(failed, ", "))
	}
	return nil
}

// selectSuites keeps the suites named in only (all when empty), in the
// order of all.
func selectSuites(all []bench.Suite, only string) ([]bench.Suite, error) {
	if strings.TrimSpace(only) == "" {
		return all, nil
	}
	var names []string
	for _, s := range all {
		names = append(names, s.Name)
	}
	want := map[string]bool{}
	for n := range strings.SplitSeq(only, ",") {
		n = strings.TrimSpace(n)
		if n == "" {
			continue
		}
		if !slices.Contains(names, n) {
			return nil, fmt.Errorf("-only: no suite %q (have %s)", n, strings.Join(names, ", "))
		}
		want[n] = true
	}
	var out []bench.Suite
	for _, s := range all {
		if want[s.Name] {
			out = append(out, s)
		}
	}
	return out, nil
}

// redisServer is a redis-server started for the run.
type redisServer struct {
	addr string
	cmd  *exec.Cmd
	log  *slog.Logger
}

// startRedis starts redis-server on a free loopback port with its files in
// dir, without persistence, and waits until it answers.
func startRedis(ctx context.Context, dir string, log *slog.Logger) (*redisServer, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server not found: install redis-server (apt-get install -y redis-server)")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("redis dir: %w", err)
	}
	port, err := freePort(ctx)
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	logFile := filepath.Join(dir, "redis.log")
	// The server lives until stop, not until ctx ends: suites that fail on
	// an interrupt still get to report.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), bin,
		"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
		"--save", "", "--appendonly", "no", "--databases", "64", "--logfile", logFile)
	cmd.Stdout, cmd.Stderr = io.Discard, io.Discard
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start redis-server: %w", err)
	}
	rs := &redisServer{addr: addr, cmd: cmd, log: log}
	c := redis.NewClient(&redis.Options{Addr: addr, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if err := c.Ping(ctx).Err(); err == nil {
			return rs, nil
		} else if time.Now().After(deadline) || ctx.Err() != nil {
			rs.stop()
			b, _ := os.ReadFile(logFile)
			return nil, fmt.Errorf("redis-server on %s did not answer: %w\n%s", addr, err, b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends the redis-server this run started (by its PID) and waits for
// it.
func (r *redisServer) stop() {
	if r.cmd.Process == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		_ = r.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		r.log.Warn("redis-server did not stop on SIGTERM; killing it", "pid", r.cmd.Process.Pid)
		_ = r.cmd.Process.Kill()
		<-done
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort(ctx context.Context) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
