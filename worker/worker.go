package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// Worker is one packflow worker node: an asynq server serving the node's
// queues with packflow's middleware, and the node's heartbeat record.
type Worker struct {
	opts    Options
	log     *slog.Logger
	store   *store.Store
	srv     *asynq.Server
	handler asynq.Handler

	// baseCtx is the parent of every task's context; Shutdown cancels it
	// when its deadline passes so that running tasks stop.
	baseCtx    context.Context
	cancelBase context.CancelFunc
	stopping   atomic.Bool
	// joining is set while Options.Join runs; ready once tasks are taken.
	joining atomic.Bool
	ready   atomic.Bool

	startedAt time.Time
	active    atomic.Int64
	processed atomic.Int64
	failed    atomic.Int64

	mu       sync.Mutex
	state    int // stateNew, stateRunning, stateStopped
	hbCancel context.CancelFunc
	hbDone   chan struct{}
}

const (
	stateNew = iota
	stateRunning
	stateStopped
)

// New builds a worker from opts (see Options for defaults). It does not
// touch Redis; Start does.
func New(opts Options) (*Worker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	w := &Worker{opts: o, store: o.Store}
	w.log = o.Logger.With("node", o.NodeID)
	w.baseCtx, w.cancelBase = context.WithCancel(context.Background())

	metrics, err := tasks.NewMetrics(o.Metrics)
	if err != nil {
		return nil, fmt.Errorf("worker: %w", err)
	}
	w.handler = tasks.Dispatch(o.Handlers, tasks.DispatchOptions{
		Logger:   w.log,
		Metrics:  metrics,
		OnStart:  w.started,
		OnFinish: w.finished,
	})
	retryDelay := tasks.RetryDelayFunc(o.Retry, nil)
	w.srv = asynq.NewServerFromRedisClient(o.Redis, asynq.Config{
		Concurrency:              o.Concurrency,
		BaseContext:              func() context.Context { return w.baseCtx },
		TaskCheckInterval:        o.TaskCheckInterval,
		DelayedTaskCheckInterval: o.DelayedTaskCheckInterval,
		RetryDelayFunc: func(n int, err error, t *asynq.Task) time.Duration {
			if w.isShutdownCancel(err) {
				return 0 // handed back by shutdown: run again as soon as possible
			}
			return retryDelay(n, err, t)
		},
		IsFailure:      w.isFailure,
		Queues:         o.Queues,
		StrictPriority: o.StrictPriority,
		ErrorHandler:   asynq.ErrorHandlerFunc(w.handleError),
		Logger:         asynqLogger{log: w.log.With("component", "asynq")},
		// asynq's debug lines include one per idle poll (100/s): keep
		// them out even when packflow logs at debug.
		LogLevel:        asynq.InfoLevel,
		ShutdownTimeout: o.ShutdownTimeout,
	})
	return w, nil
}

// NodeID is the ID of this node; its own queue is tasks.NodeQueue(NodeID).
func (w *Worker) NodeID() string { return w.opts.NodeID }

// Queues returns the queues this worker serves with their weights.
func (w *Worker) Queues() map[string]int {
	q := make(map[string]int, len(w.opts.Queues))
	for k, v := range w.opts.Queues {
		q[k] = v
	}
	return q
}

// Start writes the node record and starts processing. ctx bounds only the
// start-up; the worker runs until Shutdown.
func (w *Worker) Start(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateNew {
		return errors.New("worker: already started")
	}
	w.startedAt = time.Now().UTC()
	w.joining.Store(w.opts.Join != nil)
	if err := w.beat(ctx); err != nil {
		return fmt.Errorf("worker: register node %s: %w", w.opts.NodeID, err)
	}
	// The heartbeat outlives ctx (which bounds only the start-up), and
	// runs while the node joins.
	hbCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w.hbCancel, w.hbDone = cancel, make(chan struct{})
	go w.heartbeat(hbCtx, w.hbDone)
	abort := func() {
		cancel()
		<-w.hbDone
		_ = w.store.RemoveNode(context.WithoutCancel(ctx), w.opts.NodeID)
	}
	if err := w.join(ctx); err != nil {
		abort()
		return err
	}
	if err := w.srv.Start(w.handler); err != nil {
		abort()
		return fmt.Errorf("worker: start asynq server: %w", err)
	}
	w.ready.Store(true)
	if w.opts.Join != nil {
		if err := w.beat(ctx); err != nil {
			w.log.Warn("mark node joined", "error", err)
		}
	}
	w.state = stateRunning
	w.log.Info("worker started", "queues", queueNames(w.opts.Queues), "concurrency", w.opts.Concurrency,
		"task_check_interval", w.opts.TaskCheckInterval)
	return nil
}

// Run starts the worker, waits for ctx to end (wire it to SIGTERM and
// SIGINT with signal.NotifyContext) and shuts down gracefully, giving
// running tasks up to ShutdownTimeout.
func (w *Worker) Run(ctx context.Context) error {
	if err := w.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.opts.ShutdownTimeout+5*time.Second)
	defer cancel()
	return w.Shutdown(sctx)
}

// Shutdown stops taking tasks, lets running ones finish, then removes the
// node record. Tasks still running after ShutdownTimeout go back to their
// queue as they were. When ctx ends first, running tasks see their
// context cancelled and are put back to run again at once, without using
// a retry — except a task on its last allowed attempt, which asynq
// archives. Calling Shutdown again, or before Start, does nothing.
func (w *Worker) Shutdown(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != stateRunning {
		w.state = stateStopped
		return nil
	}
	w.state = stateStopped
	w.stopping.Store(true)
	w.ready.Store(false)
	w.log.Info("worker shutting down", "active", w.active.Load())
	// Tell the fleet at once that this node takes no new work.
	bctx, bcancel := context.WithTimeout(ctx, time.Second)
	if err := w.beat(bctx); err != nil {
		w.log.Warn("mark node draining", "error", err)
	}
	bcancel()

	done := make(chan struct{})
	go func() {
		defer close(done)
		w.srv.Shutdown()
	}()
	var ctxErr error
	select {
	case <-done:
	case <-ctx.Done():
		ctxErr = ctx.Err()
		w.log.Warn("shutdown deadline reached: cancelling running tasks", "active", w.active.Load())
		w.cancelBase()
		<-done
	}
	// Tasks asynq gave up on after ShutdownTimeout are back in their queue;
	// stop their handlers too.
	w.cancelBase()

	w.hbCancel()
	<-w.hbDone
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := w.store.RemoveNode(rctx, w.opts.NodeID); err != nil {
		return fmt.Errorf("worker: shutdown: %w", err)
	}
	w.log.Info("worker stopped", "processed", w.processed.Load(), "failed", w.failed.Load())
	if ctxErr != nil {
		return fmt.Errorf("worker: shutdown: %w", ctxErr)
	}
	return nil
}

// started and finished count tasks for the node record.
func (w *Worker) started() { w.active.Add(1) }

func (w *Worker) finished(o tasks.Outcome) {
	w.active.Add(-1)
	w.processed.Add(1)
	if o != tasks.OutcomeOK {
		w.failed.Add(1)
	}
}

// isShutdownCancel tells an error caused by Shutdown cancelling a task.
func (w *Worker) isShutdownCancel(err error) bool {
	return w.stopping.Load() && errors.Is(err, context.Canceled)
}

// isFailure decides whether an error uses up a retry: a task cancelled by
// shutdown did not fail.
func (w *Worker) isFailure(err error) bool {
	return err != nil && !w.isShutdownCancel(err)
}

// handleError logs a failed task run.
func (w *Worker) handleError(ctx context.Context, t *asynq.Task, err error) {
	id, _ := asynq.GetTaskID(ctx)
	queue, _ := asynq.GetQueueName(ctx)
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	attrs := []any{"task_id", id, "task_type", t.Type(), "queue", queue, "attempt", retried + 1, "max_retry", maxRetry, "error", err}
	switch {
	case w.isShutdownCancel(err):
		w.log.InfoContext(ctx, "task interrupted by shutdown; it will run again", attrs...)
	case retried >= maxRetry || errors.Is(err, asynq.SkipRetry):
		w.log.ErrorContext(ctx, "task failed for good", attrs...)
	default:
		w.log.WarnContext(ctx, "task failed; will retry", attrs...)
	}
}
