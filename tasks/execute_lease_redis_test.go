package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// stallProxy forwards TCP connections to a target. Paused, it still
// accepts connections and reads what clients send but forwards nothing
// either way, as a stopped (SIGSTOP) Redis would look; resumed, it drops
// the connections of the pause (their clients gave up on them) and
// forwards again.
type stallProxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	gate   chan struct{} // closed while forwarding
	conns  map[net.Conn]bool
	closed bool
	wg     sync.WaitGroup
}

func startStallProxy(t *testing.T, target string) *stallProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &stallProxy{ln: ln, target: target, gate: make(chan struct{}), conns: map[net.Conn]bool{}}
	close(p.gate)
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *stallProxy) addr() string { return p.ln.Addr().String() }

func (p *stallProxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		u, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		if !p.track(c, u) {
			return
		}
		p.wg.Add(2)
		go p.pump(u, c)
		go p.pump(c, u)
	}
}

func (p *stallProxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	for _, c := range cs {
		p.conns[c] = true
	}
	return true
}

// pump copies src to dst, each chunk only while the gate is open.
func (p *stallProxy) pump(dst, src net.Conn) {
	defer p.wg.Done()
	defer func() { _ = dst.Close(); _ = src.Close() }()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.mu.Lock()
			gate := p.gate
			p.mu.Unlock()
			<-gate
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *stallProxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gate = make(chan struct{})
}

// resume closes every connection of the pause (a command held since then
// never reaches Redis late) and forwards again.
func (p *stallProxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		_ = c.Close()
	}
	clear(p.conns)
	close(p.gate)
}

func (p *stallProxy) close() {
	p.mu.Lock()
	p.closed = true
	select {
	case <-p.gate:
	default:
		close(p.gate)
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	_ = p.ln.Close()
	p.wg.Wait()
}

// leaseScript records its pid while it runs and notes an overlap when it
// finds another command of the test alive on the server (a pid file of a
// process that is not a zombie). The first run of all hangs until killed.
func leaseScript(markers string) string {
	return `#!/bin/sh
d='` + markers + `'
for f in "$d"/*.pid; do
  [ -e "$f" ] || continue
  p=$(cat "$f")
  s=$(cut -d' ' -f3 "/proc/$p/stat" 2>/dev/null)
  if [ -n "$s" ] && [ "$s" != Z ]; then echo "$1 started while $f ($p, state $s) ran" >> "$d/overlap"; fi
done
echo $$ > "$d/$1.$$.pid"
echo run >> "$d/$1.count"
if mkdir "$d/hang" 2>/dev/null; then echo hanging; exec sleep 300; fi
sleep 0.3
rm -f "$d/$1.$$.pid"
`
}

// TestLeaseLostWhenRedisStalls: a worker cut off from Redis (a stalled
// proxy) for longer than the server's lease kills its command before the
// lease can expire; a second worker waiting for the server runs its
// command only then; the first worker's run is retried once Redis is
// back. The pid files prove the commands never overlap.
func TestLeaseLostWhenRedisStalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.91"})
	v := b.publish(t, simpleManifest("0b8f5e0e-1313-4c2a-9a55-0c1d2e3f4a13", "Leased", "./l.sh ${T3.Server.Name}", false),
		file{"l.sh", leaseScript(f.markers), 0o755})

	// Worker 1 reaches Redis through the proxy.
	proxy := startStallProxy(t, b.redis.Addr)
	rdb1 := redis.NewClient(&redis.Options{Addr: proxy.addr(), DB: b.redis.DB, DisableIdentity: true,
		DialTimeout: time.Second, ReadTimeout: time.Second, WriteTimeout: time.Second})
	t.Cleanup(func() { _ = rdb1.Close() })
	box, _ := secretbox.New(bytes.Repeat([]byte{0x5a}, 32))
	const ttl = 2 * time.Second
	b.startWorker(t, workerOpts{tuneSSH: f.tune, leaseTTL: ttl, nodeID: "w1", rdb: rdb1, st: store.New(rdb1, store.Options{Secrets: box})})

	deploy := func(name string) store.Execution {
		t.Helper()
		e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: name,
			Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: f.servers, Visible: f.servers,
			Retry: &tasks.Retry{Max: tasks.Retries(5), Backoff: tasks.Duration(time.Second)}})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	first := deploy("first")
	waitFor(t, "the first command to hang", func() bool {
		_, err := os.Stat(filepath.Join(f.markers, "hang"))
		return err == nil
	})
	proxy.pause()
	second := deploy("second")
	b.startWorker(t, workerOpts{tuneSSH: f.tune, leaseTTL: ttl, nodeID: "w2"})
	_, runs := b.waitFinal(t, second.ID)
	if r := runs[0]; r.Status != store.StatusSucceeded {
		t.Fatalf("second execution: %+v", r)
	}
	proxy.resume()
	_, runs = b.waitFinal(t, first.ID)
	if r := runs[0]; r.Status != store.StatusSucceeded || r.Steps[0].Attempts < 2 {
		t.Errorf("first execution: %+v; want it retried once Redis was back, and succeeded", r)
	}
	if out, err := os.ReadFile(filepath.Join(f.markers, "overlap")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("commands overlapped on the server: %s %v", out, err)
	}
	if n := strings.Count(readFile(t, filepath.Join(f.markers, "h1.count")), "run"); n != 3 {
		t.Errorf("%d commands ran, want 3 (the first, killed; the second; the first again)", n)
	}
}
