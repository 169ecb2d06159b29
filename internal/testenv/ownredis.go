package testenv

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// The redis-server a test binary starts for itself when no
// PACKFLOW_TEST_REDIS_URL is given: one per binary, shared by its tests
// through database leases, and killed by the kernel when the binary exits.
var own struct {
	once sync.Once
	url  string
	err  error
}

// ownRedis returns the URL of this binary's own redis-server, starting it
// on first use.
func ownRedis() (string, error) {
	own.once.Do(func() { own.url, own.err = startOwnRedis() })
	return own.url, own.err
}

func startOwnRedis() (string, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", errors.New("redis-server is not on PATH")
	}
	// Nothing is written to dir: no snapshots, no AOF, logs to the void.
	dir := os.TempDir()
	port, err := freePort()
	if err != nil {
		return "", err
	}
	args := []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--databases", "256", "--save", "", "--appendonly", "no",
		"--dir", dir, "--daemonize", "no", "--loglevel", "warning",
	}
	started := make(chan error, 1)
	// The server must die with the test binary, which has no hook at exit.
	// Pdeathsig fires when the thread that started the child exits, so that
	// thread is locked and kept parked for the binary's whole life.
	go func() {
		runtime.LockOSThread()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		select {} // keep the locked thread until the binary exits
	}()
	if err := <-started; err != nil {
		return "", fmt.Errorf("start redis-server: %w", err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return "redis://" + addr + "/0", nil
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("redis-server on %s did not accept within 10s: %w", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freePort asks the kernel for a free loopback TCP port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}
