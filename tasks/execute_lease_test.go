package tasks

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/packflow/packflow/store"
)

// fakeLeases is a lease store whose renewals can fail (Redis refuses
// connections), hang (Redis stopped: no answer until the caller gives
// up) or report the lease taken.
type fakeLeases struct {
	mu       sync.Mutex
	mode     string // "", "refuse", "hang" or "taken"
	renewals int    // renewals that succeeded
}

func (f *fakeLeases) set(mode string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.mode = mode
}

func (f *fakeLeases) AcquireLease(context.Context, string, string, time.Duration) (bool, error) {
	return true, nil
}

func (f *fakeLeases) RenewLease(ctx context.Context, _, _ string, _ time.Duration) (bool, error) {
	f.mu.Lock()
	mode := f.mode
	if mode == "" {
		f.renewals++
	}
	f.mu.Unlock()
	switch mode {
	case "refuse":
		return false, errors.New("dial tcp 127.0.0.1:6379: connect: connection refused")
	case "hang":
		<-ctx.Done()
		return false, ctx.Err()
	case "taken":
		return false, nil
	}
	return true, nil
}

func (f *fakeLeases) ReleaseLease(context.Context, string, string) error { return nil }
func (f *fakeLeases) AcquireSlot(context.Context, string, string, int, time.Duration) (bool, error) {
	return true, nil
}
func (f *fakeLeases) RenewSlot(context.Context, string, string, time.Duration) error { return nil }
func (f *fakeLeases) ReleaseSlot(context.Context, string, string) error              { return nil }
func (f *fakeLeases) Execution(_ context.Context, id string) (store.Execution, error) {
	return store.Execution{ID: id}, nil
}

// TestHolderGivesUpBeforeTheLeaseCanExpire: when renewals fail (or hang)
// for longer than the lease's life, the run's context ends with
// ErrLeaseLost before another worker could take the lease: within the
// lease's life of the last renewal that succeeded. A shorter outage is
// survived.
func TestHolderGivesUpBeforeTheLeaseCanExpire(t *testing.T) {
	const ttl = 30 * time.Second
	every := renewEvery(ttl)
	for _, mode := range []string{"refuse", "hang"} {
		t.Run(mode, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := &fakeLeases{}
				start := time.Now()
				ctx, h, err := hold(t.Context(), f, store.Execution{ID: "x1"}, store.Server{ID: "s1", Name: "web1"}, "tok", leaseParams{ttl: ttl, wait: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				defer h.release(context.Background())
				// Renewals succeed for 4.5 s (at 1, 2, 3 and 4 s), then
				// Redis is out of reach for good.
				time.Sleep(4*every + every/2)
				f.set(mode)
				lastGood := start.Add(4 * every)
				// Up to ttl less a renewal interval after the last good
				// renewal, the run goes on.
				time.Sleep(time.Until(lastGood.Add(ttl - every - time.Millisecond)))
				synctest.Wait()
				if ctx.Err() != nil {
					t.Fatalf("gave up %v after the last good renewal: %v", time.Since(lastGood), context.Cause(ctx))
				}
				// Before the lease can expire (ttl after that renewal was
				// sent), it has stopped.
				time.Sleep(time.Until(lastGood.Add(ttl - time.Millisecond)))
				synctest.Wait()
				if cause := context.Cause(ctx); !errors.Is(cause, ErrLeaseLost) {
					t.Fatalf("%v after the last good renewal: cause %v, want ErrLeaseLost", time.Since(lastGood), cause)
				}
			})
		})
	}
	t.Run("short outage", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeLeases{}
			ctx, h, err := hold(t.Context(), f, store.Execution{ID: "x1"}, store.Server{ID: "s1"}, "tok", leaseParams{ttl: ttl, wait: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer h.release(context.Background())
			for range 3 {
				time.Sleep(ttl / 2)
				f.set("refuse")
				time.Sleep(ttl / 2)
				f.set("")
			}
			synctest.Wait()
			if ctx.Err() != nil {
				t.Fatalf("outages shorter than the lease ended the run: %v", context.Cause(ctx))
			}
			if f.renewals == 0 {
				t.Fatal("no renewal happened")
			}
		})
	})
	t.Run("taken", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := &fakeLeases{}
			ctx, h, err := hold(t.Context(), f, store.Execution{ID: "x1"}, store.Server{ID: "s1"}, "tok", leaseParams{ttl: ttl, wait: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			defer h.release(context.Background())
			time.Sleep(2 * every)
			f.set("taken")
			time.Sleep(every)
			synctest.Wait()
			if cause := context.Cause(ctx); !errors.Is(cause, ErrLeaseLost) {
				t.Fatalf("lease taken by another: cause %v, want ErrLeaseLost at once", cause)
			}
		})
	})
}
