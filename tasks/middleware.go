package tasks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"time"

	"github.com/hibiken/asynq"
)

// ErrUnknownType is returned (wrapped with asynq.SkipRetry) for a task
// whose type has no handler.
var ErrUnknownType = errors.New("tasks: no handler for task type")

// ErrPanic marks the error a handler's panic was turned into.
var ErrPanic = errors.New("tasks: handler panicked")

// DispatchOptions configures Dispatch.
type DispatchOptions struct {
	// Logger is the parent of every task's logger. Default: discard.
	Logger *slog.Logger
	// Metrics records outcomes and durations. Nil records nothing.
	Metrics *Metrics
	// OnStart and OnFinish, when set, are called before and after every
	// task (OnFinish with its outcome). They run on the task's goroutine
	// and must be cheap.
	OnStart  func()
	OnFinish func(Outcome)
}

// Outcome is how a task run ended.
type Outcome int

// Outcomes of a task run.
const (
	OutcomeOK Outcome = iota
	OutcomeError
	OutcomePanic
)

// String is the outcome's metric label: ok, error or panic.
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomePanic:
		return "panic"
	default:
		return "error"
	}
}

// route is one task type's handler with everything the middleware needs
// prepared ahead, so that running a task allocates next to nothing.
type route struct {
	typ     string
	handler asynq.Handler
	log     *slog.Logger
	m       typeMetrics
}

// dispatcher is the handler the worker hands to asynq.
type dispatcher struct {
	routes   map[string]*route
	unknown  *route
	onStart  func()
	onFinish func(Outcome)
}

// Dispatch returns one asynq.Handler that runs handlers[task.Type()] (an
// exact match) inside packflow's middleware: a task logger in ctx (see
// LoggerFrom), metrics by type and outcome, and a panic turned into an
// error wrapping ErrPanic with its stack logged. A task of an unknown type
// fails without retry.
func Dispatch(handlers map[string]asynq.Handler, opts DispatchOptions) asynq.Handler {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	d := &dispatcher{routes: make(map[string]*route, len(handlers)), onStart: opts.OnStart, onFinish: opts.OnFinish}
	for typ, h := range handlers {
		d.routes[typ] = &route{typ: typ, handler: h, log: logger, m: opts.Metrics.forType(typ)}
	}
	d.unknown = &route{typ: "unknown", log: logger, m: opts.Metrics.forType("unknown")}
	return d
}

// ProcessTask implements asynq.Handler.
func (d *dispatcher) ProcessTask(ctx context.Context, t *asynq.Task) (err error) {
	r, ok := d.routes[t.Type()]
	if !ok {
		r = d.unknown
	}
	if d.onStart != nil {
		d.onStart()
	}
	start := time.Now()
	r.m.inFlight.Inc()
	defer func() {
		outcome := OutcomeOK
		if p := recover(); p != nil {
			outcome = OutcomePanic
			err = fmt.Errorf("%w: %s: %v", ErrPanic, t.Type(), p)
			taskLogger(ctx, r.log, t.Type()).ErrorContext(ctx, "task panicked", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
		} else if err != nil {
			outcome = OutcomeError
		}
		r.m.inFlight.Dec()
		r.m.observe(outcome, time.Since(start))
		if d.onFinish != nil {
			d.onFinish(outcome)
		}
	}()
	if !ok {
		return fmt.Errorf("%w %q: %w", ErrUnknownType, t.Type(), asynq.SkipRetry)
	}
	return r.handler.ProcessTask(context.WithValue(ctx, routeKey{}, r), t)
}

type routeKey struct{}

// LoggerFrom returns the logger of the task running in ctx, with task_id,
// task_type, queue and attempt (1 for the first run) attached. Outside a
// task it returns a logger that discards.
func LoggerFrom(ctx context.Context) *slog.Logger {
	r, ok := ctx.Value(routeKey{}).(*route)
	if !ok {
		return slog.New(slog.DiscardHandler)
	}
	return taskLogger(ctx, r.log, r.typ)
}

// taskLogger builds the task's child logger on demand, so tasks that never
// log pay nothing for it.
func taskLogger(ctx context.Context, base *slog.Logger, typ string) *slog.Logger {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	return base.With("task_id", id, "task_type", typ, "queue", queue, "attempt", retried+1)
}
