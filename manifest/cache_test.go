package manifest

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
)

// TestCheckCacheChecksOnce: concurrent requests for one archive share one
// check, and later requests get the kept result.
func TestCheckCacheChecksOnce(t *testing.T) {
	t.Parallel()
	c := NewCheckCache(4)
	var runs atomic.Int32
	release := make(chan struct{})
	check := func(ctx context.Context) (*Package, Report, error) {
		runs.Add(1)
		<-release
		return &Package{Size: 7}, Report{}, nil
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			pkg, _, err := c.Check(context.Background(), "up1:sha", check)
			if err != nil || pkg.Size != 7 {
				t.Errorf("Check = %v, %v", pkg, err)
			}
		})
	}
	// Let every caller join the flight before it ends: each one is either
	// waiting or has its result, so closing late loses nothing.
	for {
		c.mu.Lock()
		f := c.running["up1:sha"]
		n := 0
		if f != nil {
			n = f.waiters
		}
		c.mu.Unlock()
		if n == 8 {
			break
		}
		runtime.Gosched()
	}
	close(release)
	wg.Wait()
	if _, _, err := c.Check(context.Background(), "up1:sha", check); err != nil {
		t.Fatal(err)
	}
	if n := runs.Load(); n != 1 {
		t.Errorf("%d checks for one archive, want 1", n)
	}
	for i := range 5 {
		if _, _, err := c.Check(context.Background(), fmt.Sprint("other", i), func(context.Context) (*Package, Report, error) {
			return &Package{}, Report{}, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.done) != 4 || len(c.order) != 4 {
		t.Errorf("%d results kept, want the last 4", len(c.done))
	}
}

// TestCheckCacheStopsWhenNobodyWaits: when its only caller leaves, the
// check's context ends and nothing is kept.
func TestCheckCacheStopsWhenNobodyWaits(t *testing.T) {
	t.Parallel()
	c := NewCheckCache(0)
	stopped := make(chan error, 1)
	started := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	check := func(cctx context.Context) (*Package, Report, error) {
		close(started)
		<-cctx.Done()
		stopped <- cctx.Err()
		return nil, Report{}, cctx.Err()
	}
	go func() { <-started; cancel() }()
	if _, _, err := c.Check(ctx, "k", check); !errors.Is(err, context.Canceled) {
		t.Errorf("Check = %v, want context.Canceled", err)
	}
	if err := <-stopped; !errors.Is(err, context.Canceled) {
		t.Errorf("the check went on: %v", err)
	}
	var runs atomic.Int32
	if _, _, err := c.Check(context.Background(), "k", func(context.Context) (*Package, Report, error) {
		runs.Add(1)
		return &Package{}, Report{}, nil
	}); err != nil || runs.Load() != 1 {
		t.Errorf("after a cancelled check: err %v, %d runs; want a new check", err, runs.Load())
	}
}
