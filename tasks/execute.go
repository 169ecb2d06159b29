package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/store"
)

// Defaults of ExecuteOptions.
const (
	DefaultLeaseTTL      = 30 * time.Second
	DefaultLeaseWait     = 10 * time.Minute
	DefaultStepTimeout   = time.Hour
	DefaultRebootTimeout = 15 * time.Minute
	// DefaultRunTimeout bounds a whole server run (the asynq task) when
	// the execution sets no timeout.
	DefaultRunTimeout = 24 * time.Hour
)

// ExecutePayload is the payload of execution:server. Parameter values are
// not in it: they stay sealed in the execution record.
type ExecutePayload struct {
	ExecutionID string `json:"execution_id"`
	ServerID    string `json:"server_id"`
	// Run is the run of the server this task is for; a task of an older
	// run (before a rerun) does nothing.
	Run   int    `json:"run"`
	Retry *Retry `json:"retry,omitempty"`
}

// ExecuteTaskID is the task ID of run n of server sid in execution id, so
// that enqueueing it twice is refused.
func ExecuteTaskID(id, sid string, run int) string {
	return "exec:" + id + ":" + sid + ":" + strconv.Itoa(run)
}

// NewExecuteTask returns the execution:server task of run r of e, for the
// exec queue of the server's datacenter.
func NewExecuteTask(e store.Execution, r store.ServerRun, retry *Retry) (*asynq.Task, []asynq.Option, error) {
	b, err := json.Marshal(ExecutePayload{ExecutionID: e.ID, ServerID: r.ServerID, Run: r.Run, Retry: retry})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode execute payload: %w", err)
	}
	dc := r.Datacenter
	if dc == "" {
		dc = store.DefaultDatacenter
	}
	timeout := e.Timeout
	if timeout <= 0 {
		timeout = DefaultRunTimeout
	}
	return asynq.NewTask(TypeExecuteServer, b), []asynq.Option{
		asynq.Queue(ExecQueue(dc)), asynq.TaskID(ExecuteTaskID(e.ID, r.ServerID, r.Run)),
		asynq.Timeout(timeout + time.Minute),
	}, nil
}

// ExecuteOptions configures the execution:server handler.
type ExecuteOptions struct {
	Store     *store.Store
	Connector *Connector
	// Stager puts package trees on the worker (InstallerStager or
	// BlobStager). Required.
	Stager Stager
	// LeaseTTL is the life of a server lease; the holder renews it.
	// Default 30s: a dead worker's server is free again within that.
	LeaseTTL time.Duration
	// LeaseWait is how long a run waits for a busy server before it is
	// retried later. Default 10m.
	LeaseWait time.Duration
	// DatacenterLimits caps the servers of a datacenter that run at once
	// across the fleet (0 or absent: no cap).
	DatacenterLimits map[string]int
	// StepTimeout bounds a step whose manifest sets no timeout. Default 1h.
	StepTimeout time.Duration
	// RebootTimeout bounds a reboot. Default 15m.
	RebootTimeout time.Duration
	// Logger is the fallback logger; nil discards.
	Logger *slog.Logger
}

// Executor runs execution:server: the steps of an execution on one
// server, in order, resuming after the last checkpoint.
//
// Per server:
//
//	queued ──▶ wait for the server's lease ──▶ running ──┬──▶ succeeded
//	   ▲                                                 ├──▶ failed     (permanent error or last attempt)
//	   └───────────── retry (backoff) ◀──────────────────┼──  (error retrying may fix)
//	                                                     └──▶ cancelled  (cancel: remote process killed, rest skipped)
//
// Per step (each arrow that ends in a box is a checkpoint in Redis):
//
//	[done]? ─yes─▶ next step
//	  │no
//	  ▼
//	stage tree on the worker (install cache, else blob store)
//	  ▼
//	make dir (staging, or the persistent path) ─▶ [dir]
//	  ▼
//	upload ─▶ render command ─▶ run from the package root (timeout,
//	  │                          output streamed, secrets masked)
//	  │ exit 0                            │ failure: remove dir
//	  ▼                                   ▼
//	[ran] ─▶ RebootOnSuccess? ─▶ reboot, wait for a new boot id ─▶ [rebooted]
//	  ▼
//	remove dir unless Persistent (else record the path) ─▶ [done]
//
// A retry skips the steps done and resumes a step after its last phase:
// a command that succeeded is never run again.
type Executor struct {
	o ExecuteOptions
}

// NewExecutor returns the execution:server handler.
func NewExecutor(o ExecuteOptions) (*Executor, error) {
	if o.Store == nil || o.Connector == nil || o.Stager == nil {
		return nil, errors.New("tasks: executor needs a store, a connector and a stager")
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = DefaultLeaseTTL
	}
	if o.LeaseWait <= 0 {
		o.LeaseWait = DefaultLeaseWait
	}
	if o.StepTimeout <= 0 {
		o.StepTimeout = DefaultStepTimeout
	}
	if o.RebootTimeout <= 0 {
		o.RebootTimeout = DefaultRebootTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Executor{o: o}, nil
}

// ProcessTask runs one server's part of an execution.
func (x *Executor) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ExecutePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil {
		return permanent(fmt.Errorf("tasks: execute payload: %w", err))
	}
	st := x.o.Store
	e, err := st.Execution(ctx, p.ExecutionID)
	if errors.Is(err, store.ErrNotFound) {
		return permanent(fmt.Errorf("tasks: execute: %w", err))
	}
	if err != nil {
		return err
	}
	r, err := st.ServerRun(ctx, e.ID, p.ServerID)
	if err != nil {
		return err
	}
	if r.Run != p.Run || r.Final() {
		return nil // a task of an older run, or a run already over
	}
	log := x.o.Logger
	if l := LoggerFrom(ctx); l != nil {
		log = l
	}
	log = log.With("execution", e.ID, "server", r.Name)
	if e.Cancelled {
		return x.finish(ctx, e, &r, -1, &CancelledError{By: e.CancelledBy}, true)
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	last := ok && retried >= maxRetry
	sv, err := st.Server(ctx, p.ServerID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			err = permanent(err)
		}
		return x.finish(ctx, e, &r, -1, err, last)
	}
	token := ExecuteTaskID(e.ID, sv.ID, r.Run) + ":" + randSuffix()
	hctx, h, err := hold(ctx, st, e, sv, token, leaseParams{
		ttl: x.o.LeaseTTL, wait: x.o.LeaseWait, dcLimit: x.o.DatacenterLimits[sv.Datacenter], log: log,
	})
	if err != nil {
		return x.finish(ctx, e, &r, -1, err, last)
	}
	defer h.release(ctx)
	if e.Timeout > 0 {
		var cancel context.CancelFunc
		hctx, cancel = context.WithTimeout(hctx, e.Timeout)
		defer cancel()
	}
	now := time.Now().UTC()
	r.Status, r.Error = store.StatusRunning, ""
	r.Attempts++
	if r.StartedAt == nil {
		r.StartedAt = &now
	}
	if err := st.PutServerRun(ctx, e, r, -1); err != nil {
		return err
	}
	sink := newLogSink(ctx, st, e, r.Name, log)
	// Closed on every path, a panic too: the lines it holds are written
	// and its goroutine ends. The close below comes first on the others,
	// so that the lines precede the final state change.
	defer sink.close()
	run := &serverRun{x: x, e: e, sv: sv, r: &r, sink: sink, log: log, last: last}
	err = run.steps(hctx)
	if cause := context.Cause(hctx); err != nil && (errors.Is(cause, ErrCancelled) || errors.Is(cause, ErrLeaseLost)) {
		// The cause says why the step stopped; what the step saw of
		// it (a "context canceled") says nothing more.
		err = cause
	}
	sink.close()
	return x.finish(ctx, e, &r, run.current, err, last)
}

// finish records how a run ended and returns what asynq should see: nil
// for success and cancel, the error otherwise (SkipRetry when final).
func (x *Executor) finish(ctx context.Context, e store.Execution, r *store.ServerRun, step int, err error, last bool) error {
	now := time.Now().UTC()
	wctx := context.WithoutCancel(ctx)
	cancelled := errors.Is(err, ErrCancelled)
	switch {
	case err == nil:
		r.Status, r.Error = store.StatusSucceeded, ""
	case cancelled:
		r.Status, r.Error = store.StatusCancelled, reason(err)
	case errors.Is(err, asynq.SkipRetry) || last:
		r.Status, r.Error = store.StatusFailed, reason(err)
	default:
		r.Status, r.Error = store.StatusQueued, reason(err)+" (will retry)"
	}
	if r.Final() {
		r.FinishedAt = &now
		for i := range r.Steps {
			s := &r.Steps[i]
			switch {
			case s.Status == store.StatusPending:
				s.Status = store.StatusSkipped
			case s.Status == store.StatusRunning && cancelled:
				s.Status = store.StatusCancelled
			case s.Status == store.StatusRunning:
				s.Status = store.StatusFailed
			}
			if i == step && cancelled && s.Status == store.StatusFailed {
				s.Status = store.StatusCancelled
			}
		}
	}
	if perr := x.o.Store.PutServerRun(wctx, e, *r, -1); perr != nil {
		return errors.Join(err, perr)
	}
	if err == nil || cancelled {
		return nil
	}
	if r.Final() && !errors.Is(err, asynq.SkipRetry) {
		return permanent(err)
	}
	return err
}

// systemValue returns the value of system variable v for a server, and
// whether it is secret.
func systemValue(v string, e store.Execution, sv store.Server, password string) (string, bool) {
	switch strings.ToLower(v) {
	case "t3.server.name":
		return sv.Name, false
	case "t3.server.ipaddress":
		return sv.Address, false
	case "t3.server.password":
		return password, true
	case "t3.identity.user":
		return e.User, false
	case "t3.identity.account":
		return e.AccountName, false
	case "t3.datacenter":
		return sv.Datacenter, false
	}
	return "", false
}
