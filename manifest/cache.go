package manifest

import (
	"context"
	"sync"
)

// DefaultCheckCacheSize is how many results a CheckCache keeps by default.
const DefaultCheckCacheSize = 256

// CheckCache keeps the results of checking archives that never change (an
// upload is checked against its sha256), so that an archive is checked
// once however often its preview is asked for, and concurrent requests for
// one archive share one check. It keeps the last Size results.
//
// A check runs detached from any one caller and is cancelled when every
// caller waiting for it has gone, so nobody's departure cuts it short for
// the others, and no work goes on for nobody. Errors (I/O, cancellation)
// are not kept. Results are shared: callers must not change them.
type CheckCache struct {
	size    int
	mu      sync.Mutex
	done    map[string]checked
	order   []string // keys of done, oldest first
	running map[string]*checkFlight
}

type checked struct {
	pkg *Package
	rep Report
}

type checkFlight struct {
	done    chan struct{}
	waiters int
	cancel  context.CancelFunc
	res     checked
	err     error
}

// NewCheckCache returns a cache of size results (DefaultCheckCacheSize
// when size <= 0).
func NewCheckCache(size int) *CheckCache {
	if size <= 0 {
		size = DefaultCheckCacheSize
	}
	return &CheckCache{size: size, done: map[string]checked{}, running: map[string]*checkFlight{}}
}

// Check returns the kept result for key, or runs check to get it (once,
// however many callers ask at the same time). The error is check's, or
// ctx's when the caller gave up waiting.
func (c *CheckCache) Check(ctx context.Context, key string, check func(ctx context.Context) (*Package, Report, error)) (*Package, Report, error) {
	c.mu.Lock()
	if r, ok := c.done[key]; ok {
		c.mu.Unlock()
		return r.pkg, r.rep, nil
	}
	f := c.running[key]
	if f == nil {
		fctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
		f = &checkFlight{done: make(chan struct{}), cancel: cancel}
		c.running[key] = f
		go c.run(fctx, key, f, check)
	}
	f.waiters++
	c.mu.Unlock()

	select {
	case <-f.done:
		return f.res.pkg, f.res.rep, f.err
	case <-ctx.Done():
		c.mu.Lock()
		if f.waiters--; f.waiters == 0 {
			f.cancel()
			if c.running[key] == f {
				delete(c.running, key)
			}
		}
		c.mu.Unlock()
		return nil, Report{}, ctx.Err()
	}
}

func (c *CheckCache) run(ctx context.Context, key string, f *checkFlight, check func(ctx context.Context) (*Package, Report, error)) {
	defer f.cancel()
	pkg, rep, err := check(ctx)
	c.mu.Lock()
	f.res, f.err = checked{pkg, rep}, err
	if c.running[key] == f {
		delete(c.running, key)
	}
	if err == nil {
		if _, ok := c.done[key]; !ok {
			c.order = append(c.order, key)
		}
		c.done[key] = f.res
		for len(c.order) > c.size {
			delete(c.done, c.order[0])
			c.order = c.order[1:]
		}
	}
	c.mu.Unlock()
	close(f.done)
}
