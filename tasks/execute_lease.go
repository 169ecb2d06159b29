package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/packflow/packflow/store"
)

// Errors that end a server's run from the side.
var (
	// ErrCancelled means the execution was cancelled. The cause of a run
	// stopped by a cancel is a *CancelledError, which matches it.
	ErrCancelled = errors.New("tasks: execution cancelled")
	// ErrLeaseLost means this worker may no longer hold the server's lease:
	// another worker took it, or no renewal succeeded for so long that it
	// may have expired (Redis out of reach). The run stops at once, its
	// remote process killed, and is retried later.
	ErrLeaseLost = errors.New("tasks: server lease lost")
	// ErrServerBusy means another run held the server for longer than the
	// wait allowed; the task is retried later.
	ErrServerBusy = errors.New("tasks: server busy")
)

// CancelledError is the cause of a run stopped by a cancel: who cancelled.
// It matches ErrCancelled.
type CancelledError struct {
	// By is the user who cancelled; "" when unknown.
	By string
}

func (e *CancelledError) Error() string {
	if e.By == "" {
		return "cancelled"
	}
	return "cancelled by " + e.By
}

// Is makes a CancelledError match ErrCancelled.
func (e *CancelledError) Is(target error) bool { return target == ErrCancelled }

// leaseStore is what a holder needs of the store.
type leaseStore interface {
	AcquireLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
	RenewLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error)
	ReleaseLease(ctx context.Context, name, token string) error
	AcquireSlot(ctx context.Context, group, token string, limit int, ttl time.Duration) (bool, error)
	RenewSlot(ctx context.Context, group, token string, ttl time.Duration) error
	ReleaseSlot(ctx context.Context, group, token string) error
	Execution(ctx context.Context, id string) (store.Execution, error)
}

// holder keeps a server's lease (and its datacenter slot) while a run
// works, and watches the execution's cancel flag. Its context ends when
// the lease is lost or the execution is cancelled.
//
// The lease in Redis expires ttl after the last renewal Redis applied,
// and every renewal is applied after it was sent. So while the last
// renewal that succeeded was sent less than ttl ago, no other worker can
// hold the server. The holder gives up (cause ErrLeaseLost) once that
// renewal is older than ttl less one renewal interval: the margin leaves
// the time to kill the remote command before the lease can expire. A
// watchdog timer does this, so that a renewal stuck on an unreachable
// Redis cannot delay it.
type holder struct {
	st     leaseStore
	log    *slog.Logger
	lease  string
	group  string // datacenter slot group; "" for none
	token  string
	ttl    time.Duration
	every  time.Duration // renewal interval
	execID string
	stop   context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	lastErr error // the last renewal error, for the lease-lost cause
}

// leaseParams are the lease settings of a run.
type leaseParams struct {
	ttl, wait time.Duration
	// dcLimit caps the runs at once in the server's datacenter; 0 none.
	dcLimit int
	log     *slog.Logger
}

// renewEvery is how often a lease of life ttl is renewed: every second,
// or every third of its life when that is shorter.
func renewEvery(ttl time.Duration) time.Duration {
	return max(min(ttl/3, time.Second), 10*time.Millisecond)
}

// hold takes the lease of server sid, waiting up to p.wait, and returns a
// context that ends with the lease (cause ErrLeaseLost) or a cancel
// (cause *CancelledError).
func hold(ctx context.Context, st leaseStore, e store.Execution, sv store.Server, token string, p leaseParams) (context.Context, *holder, error) {
	h := &holder{st: st, log: p.log, lease: store.ServerLeaseName(sv.ID), token: token, ttl: p.ttl, every: renewEvery(p.ttl),
		execID: e.ID, done: make(chan struct{})}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if p.dcLimit > 0 {
		h.group = "dc:" + sv.Datacenter
	}
	poll := min(p.ttl/10, 250*time.Millisecond)
	deadline := time.Now().Add(p.wait)
	var sent time.Time
	for {
		sent = time.Now()
		ok, err := h.tryAcquire(ctx, p.dcLimit)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			return nil, nil, fmt.Errorf("%w: server %s is held by another run", ErrServerBusy, sv.Name)
		}
		if cur, err := st.Execution(ctx, e.ID); err == nil && cur.Cancelled {
			return nil, nil, &CancelledError{By: cur.CancelledBy}
		}
		select {
		case <-ctx.Done():
			return nil, nil, context.Cause(ctx)
		case <-time.After(poll):
		}
	}
	hctx, cancel := context.WithCancelCause(ctx)
	stopCtx, stop := context.WithCancel(context.Background())
	h.stop = stop
	go h.keep(stopCtx, cancel, sent)
	return hctx, h, nil
}

func (h *holder) tryAcquire(ctx context.Context, dcLimit int) (bool, error) {
	if h.group != "" {
		ok, err := h.st.AcquireSlot(ctx, h.group, h.token, dcLimit, h.ttl)
		if err != nil || !ok {
			return false, err
		}
	}
	ok, err := h.st.AcquireLease(ctx, h.lease, h.token, h.ttl)
	if err != nil || !ok {
		if h.group != "" {
			_ = h.st.ReleaseSlot(context.WithoutCancel(ctx), h.group, h.token)
		}
		return false, err
	}
	return true, nil
}

// safeFor is how long after sending a renewal that succeeded the holder
// may go on working.
func (h *holder) safeFor() time.Duration { return h.ttl - h.every }

// keep renews the lease and checks the cancel flag every renewal
// interval, until stopped; acquired is when the acquisition that
// succeeded was sent.
func (h *holder) keep(ctx context.Context, cancel context.CancelCauseFunc, acquired time.Time) {
	defer close(h.done)
	watchdog := time.AfterFunc(time.Until(acquired.Add(h.safeFor())), func() {
		h.mu.Lock()
		err := h.lastErr
		h.mu.Unlock()
		if err == nil {
			err = errors.New("no renewal answered")
		}
		cancel(fmt.Errorf("%w: no renewal succeeded for %v (%w)", ErrLeaseLost, h.safeFor().Round(time.Millisecond), err))
	})
	defer watchdog.Stop()
	t := time.NewTicker(h.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sent := time.Now()
		ok, err := h.st.RenewLease(ctx, h.lease, h.token, h.ttl)
		switch {
		case err != nil:
			h.mu.Lock()
			h.lastErr = err
			h.mu.Unlock()
			h.log.Warn("server lease not renewed", "lease", h.lease, "err", err)
			continue
		case !ok:
			cancel(fmt.Errorf("%w: another run holds the server now", ErrLeaseLost))
			return
		}
		if !watchdog.Reset(time.Until(sent.Add(h.safeFor()))) {
			return // the watchdog fired meanwhile: the run is over
		}
		if h.group != "" {
			_ = h.st.RenewSlot(ctx, h.group, h.token, h.ttl)
		}
		if e, err := h.st.Execution(ctx, h.execID); err == nil && e.Cancelled {
			cancel(&CancelledError{By: e.CancelledBy})
		}
	}
}

// release stops renewing and gives the lease back, even when ctx (the
// task's) has ended.
func (h *holder) release(ctx context.Context) {
	h.stop()
	<-h.done
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = h.st.ReleaseLease(ctx, h.lease, h.token)
	if h.group != "" {
		_ = h.st.ReleaseSlot(ctx, h.group, h.token)
	}
}
