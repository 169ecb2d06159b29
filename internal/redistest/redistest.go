package redistest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/testenv"
)

// startTimeout bounds the wait for a server to answer PING; it only stops
// a broken set-up from hanging.
const startTimeout = 20 * time.Second

// Process is one redis-server (or sentinel) started by this package.
type Process struct {
	// Addr is its host:port on 127.0.0.1.
	Addr string
	// Port is the port of Addr.
	Port int

	cmd    *exec.Cmd
	exited chan struct{}
	logf   string
}

// Kill ends the process with SIGKILL, as a crash would, and waits for it.
func (p *Process) Kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// stop ends the process with SIGTERM (SIGKILL after 5 s).
func (p *Process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		p.Kill()
	}
}

// Log returns what the process wrote, for failure messages.
func (p *Process) Log() string {
	b, _ := os.ReadFile(p.logf)
	return string(b)
}

// binaries returns the paths of redis-server and redis-cli, or skips (fails
// in CI) when one is missing.
func binaries(t testing.TB) (server, cli string) {
	t.Helper()
	server, err := exec.LookPath("redis-server")
	if err != nil {
		testenv.Require(t, "redis-server is not installed")
	}
	cli, err = exec.LookPath("redis-cli")
	if err != nil {
		testenv.Require(t, "redis-cli is not installed")
	}
	return server, cli
}

// freePort returns a port on 127.0.0.1 that is free, together with
// port+offset when offset > 0 (a cluster node's bus port). It draws below
// 55536 so that the bus port exists.
func freePort(t testing.TB, offset int) int {
	t.Helper()
	for range 200 {
		p := 20000 + rand.IntN(35000)
		if !portFree(p) || (offset > 0 && !portFree(p+offset)) {
			continue
		}
		return p
	}
	t.Fatal("no free loopback port pair found")
	return 0
}

func portFree(p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// start runs bin with args (after the config file conf, when set) in dir
// and waits until it answers PING on port. It retries on a fresh port when
// the port was taken meanwhile: args and conf are built by mk for a port.
func start(t testing.TB, bin, dir, name string, busOffset int, mk func(port int) (args []string, conf string)) *Process {
	t.Helper()
	var lastLog string
	for range 5 {
		port := freePort(t, busOffset)
		args, conf := mk(port)
		if conf != "" {
			cf := filepath.Join(dir, fmt.Sprintf("%s-%d.conf", name, port))
			if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
				t.Fatal(err)
			}
			args = append([]string{cf}, args...)
		}
		p := &Process{Addr: fmt.Sprintf("127.0.0.1:%d", port), Port: port, exited: make(chan struct{}),
			logf: filepath.Join(dir, fmt.Sprintf("%s-%d.log", name, port))}
		lf, err := os.Create(p.logf)
		if err != nil {
			t.Fatal(err)
		}
		p.cmd = exec.Command(bin, args...)
		p.cmd.Dir = dir
		p.cmd.Stdout, p.cmd.Stderr = lf, lf
		if err := p.cmd.Start(); err != nil {
			_ = lf.Close()
			t.Fatalf("start %s: %v", bin, err)
		}
		go func() {
			_ = p.cmd.Wait()
			_ = lf.Close()
			close(p.exited)
		}()
		t.Cleanup(p.stop)
		if err := waitPing(p); err == nil {
			return p
		}
		lastLog = p.Log()
		p.stop()
	}
	t.Fatalf("%s did not start:\n%s", name, lastLog)
	return nil
}

// waitPing waits until p answers PING, or exits.
func waitPing(p *Process) error {
	c := redis.NewClient(&redis.Options{Addr: p.Addr, DisableIdentity: true, MaxRetries: -1})
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			return errors.New("exited")
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err := c.Ping(ctx).Err()
		cancel()
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return errors.New("no answer")
}

// Cluster is a running Redis Cluster of masters without replicas.
type Cluster struct {
	// Nodes are the masters.
	Nodes []*Process
	// URL is a redis+cluster:// URL naming every node.
	URL string
	// Client is a cluster client, flushed on every master at start.
	Client *redis.ClusterClient
}

// StartCluster starts a Redis Cluster of masters (three when masters is
// 0) on loopback ports and waits until every node reports
// cluster_state:ok.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters == 0 {
		masters = 3
	}
	server, cli := binaries(t)
	dir := t.TempDir()
	c := &Cluster{}
	for i := range masters {
		c.Nodes = append(c.Nodes, start(t, server, dir, fmt.Sprintf("node%d", i), 10000, func(port int) ([]string, string) {
			return []string{"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
				"--cluster-config-file", fmt.Sprintf("nodes-%d.conf", port), "--cluster-node-timeout", "5000",
				"--dir", dir, "--save", "", "--appendonly", "no", "--daemonize", "no"}, ""
		}))
	}
	args := []string{"--cluster", "create"}
	addrs := make([]string, 0, masters)
	for _, n := range c.Nodes {
		args = append(args, n.Addr)
		addrs = append(addrs, n.Addr)
	}
	args = append(args, "--cluster-replicas", "0", "--cluster-yes")
	if out, err := exec.Command(cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	ctx := context.Background()
	for _, n := range c.Nodes {
		nc := redis.NewClient(&redis.Options{Addr: n.Addr, DisableIdentity: true})
		deadline := time.Now().Add(startTimeout)
		for {
			info, err := nc.ClusterInfo(ctx).Result()
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(deadline) {
				_ = nc.Close()
				t.Fatalf("cluster node %s never reported cluster_state:ok: %v\n%s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond)
		}
		_ = nc.Close()
	}
	c.URL = "redis+cluster://" + strings.Join(addrs, ",")
	c.Client = redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Client.Close() })
	// Every node must know the whole slot map before the client's first
	// command: wait until a key of each master's slots is writable.
	deadline := time.Now().Add(startTimeout)
	for {
		err := c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return m.Ping(ctx).Err() })
		if err == nil {
			err = c.Client.Set(ctx, "redistest:probe", "1", time.Second).Err()
		}
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster client: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return c
}
