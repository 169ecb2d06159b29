package tasks

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/packflow/packflow/store"
)

// Errors that end a server's run from the side.
var (
	// ErrCancelled means the execution was cancelled.
	ErrCancelled = errors.New("tasks: execution cancelled")
	// ErrLeaseLost means another worker took the server's lease (this one
	// stalled beyond the lease's life); the run stops at once.
	ErrLeaseLost = errors.New("tasks: server lease lost")
	// ErrServerBusy means another run held the server for longer than the
	// wait allowed; the task is retried later.
	ErrServerBusy = errors.New("tasks: server busy")
)

// holder keeps a server's lease (and its datacenter slot) while a run
// works, and watches the execution's cancel flag. Its context ends when
// the lease is lost or the execution is cancelled.
type holder struct {
	st     *store.Store
	lease  string
	group  string // datacenter slot group; "" for none
	token  string
	ttl    time.Duration
	execID string
	stop   context.CancelFunc
	done   chan struct{}
}

// leaseParams are the lease settings of a run.
type leaseParams struct {
	ttl, wait time.Duration
	// dcLimit caps the runs at once in the server's datacenter; 0 none.
	dcLimit int
}

// hold takes the lease of server sid, waiting up to p.wait, and returns a
// context that ends with the lease (cause ErrLeaseLost) or a cancel
// (cause ErrCancelled).
func hold(ctx context.Context, st *store.Store, e store.Execution, sv store.Server, token string, p leaseParams) (context.Context, *holder, error) {
	h := &holder{st: st, lease: store.ServerLeaseName(sv.ID), token: token, ttl: p.ttl, execID: e.ID, done: make(chan struct{})}
	if p.dcLimit > 0 {
		h.group = "dc:" + sv.Datacenter
	}
	poll := min(p.ttl/10, 250*time.Millisecond)
	deadline := time.Now().Add(p.wait)
	for {
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
		if c, err := st.Cancelled(ctx, e.ID); err == nil && c {
			return nil, nil, ErrCancelled
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
	go h.keep(stopCtx, cancel)
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

// keep renews the lease and checks the cancel flag every second (or
// every third of the lease's life when shorter), until stopped.
func (h *holder) keep(ctx context.Context, cancel context.CancelCauseFunc) {
	defer close(h.done)
	t := time.NewTicker(max(min(h.ttl/3, time.Second), 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		ok, err := h.st.RenewLease(ctx, h.lease, h.token, h.ttl)
		if err == nil && !ok {
			cancel(ErrLeaseLost)
			return
		}
		if h.group != "" {
			_ = h.st.RenewSlot(ctx, h.group, h.token, h.ttl)
		}
		if c, err := h.st.Cancelled(ctx, h.execID); err == nil && c {
			cancel(ErrCancelled)
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
