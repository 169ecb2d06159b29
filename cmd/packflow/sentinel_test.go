//go:build unix

package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/redistest"
)

// writeProbe creates an account through the API every few milliseconds
// and records when writes failed, to measure the write outage of a
// failover as the API's clients see it.
type writeProbe struct {
	mu        sync.Mutex
	failed    int
	firstFail time.Time // when the first failed call started
	lastFail  time.Time
	okAfter   time.Time // when the first call after the last failure succeeded
	lastErr   string
}

func (w *writeProbe) run(ctx context.Context, p *platform) {
	for i := 0; ctx.Err() == nil; i++ {
		start := time.Now()
		code, msg := probeWrite(ctx, p, fmt.Sprintf(`{"name":"probe-%d"}`, i))
		now := time.Now()
		w.mu.Lock()
		if code == http.StatusCreated {
			if !w.lastFail.IsZero() && w.okAfter.Before(w.lastFail) {
				w.okAfter = now
			}
		} else {
			w.failed++
			if w.firstFail.IsZero() {
				w.firstFail = start // the write was lost from here on
			}
			w.lastFail = now
			w.lastErr = msg
		}
		w.mu.Unlock()
		time.Sleep(10 * time.Millisecond)
	}
}

// probeWrite creates an account and returns the status, or 0 and the
// error when the API did not answer.
func probeWrite(ctx context.Context, p *platform, body string) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.api+"/api/v1/accounts", strings.NewReader(body))
	if err != nil {
		return 0, err.Error()
	}
	req.Header.Set("Authorization", "Bearer "+p.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1024))
	return res.StatusCode, string(b)
}

// TestSentinelFailover runs every process on a Sentinel group
// (redis+sentinel:// URL with three sentinels), kills the master with
// SIGKILL, and checks that the processes carry on with the promoted
// replica by themselves: no restart, and the whole flow (publish →
// install on two nodes → deploy) works after the failover. The write
// outage seen through the API is logged, not asserted (machines are
// noisy): down-after-milliseconds (1 s here) plus the election.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Sentinel group and every process")
	}
	s := redistest.StartSentinel(t, 2, time.Second)
	p := startPlatform(t, s.URL)
	p.publishInstall(topologyPkg, "1.0.0")
	p.addLocalServer("here")
	p.deploy(topologyPkg, "1.0.0", "here", "before the failover")

	ctx, stopProbe := context.WithCancel(context.Background())
	probe := &writeProbe{}
	probed := make(chan struct{})
	go func() { defer close(probed); probe.run(ctx, p) }()

	// Replication is asynchronous: let the replicas catch up first, so
	// that the records written so far survive (see Sentinel.Sync).
	if err := s.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	old := s.Master.Addr
	killed := time.Now()
	s.Master.Kill()
	p.poll("a new master", func() (bool, string) {
		m, err := s.CurrentMaster(context.Background())
		return err == nil && m != old, fmt.Sprintf("%s %v", m, err)
	})
	promoted := time.Now()
	// Writes through the API succeed again without any restart.
	p.poll("a write after the failover", func() (bool, string) {
		probe.mu.Lock()
		defer probe.mu.Unlock()
		return !probe.okAfter.IsZero() || (probe.failed == 0 && time.Since(promoted) > time.Second), fmt.Sprintf("%d failed writes, last: %s", probe.failed, probe.lastErr)
	})
	stopProbe()
	<-probed
	probe.mu.Lock()
	if probe.failed > 0 {
		t.Logf("failover: master killed → promoted in %v; API writes failed for %v (%d failed calls)",
			promoted.Sub(killed).Round(time.Millisecond), probe.okAfter.Sub(probe.firstFail).Round(time.Millisecond), probe.failed)
	} else {
		t.Logf("failover: master killed → promoted in %v; no API write failed", promoted.Sub(killed).Round(time.Millisecond))
	}
	probe.mu.Unlock()

	// Queues and records on the new master: the workers take tasks and
	// the API reads what they write.
	p.publishInstall(topologyPkg, "1.1.0")
	p.deploy(topologyPkg, "1.1.0", "here", "after the failover")
}
