package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/scheduler/spec"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// Defaults of Options.
const (
	DefaultPollInterval = 250 * time.Millisecond
	DefaultGrace        = 5 * time.Second
	DefaultPendingAfter = 2 * time.Second
)

// dueBatch is how many due fires one query returns, and maxBatches how
// many queries one tick makes at most.
const (
	dueBatch   = 100
	maxBatches = 10
)

// Enqueuer puts a task on a queue on behalf of an account (tasks.Client
// does).
type Enqueuer interface {
	Enqueue(ctx context.Context, accountID string, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// TaskLookup tells a task's state (tasks.Client does).
type TaskLookup interface {
	Lookup(ctx context.Context, id string) (tasks.Status, error)
}

// Options configures a Scheduler. Store, Enqueuer and Tasks are
// required.
type Options struct {
	Store    *store.Store
	Enqueuer Enqueuer
	Tasks    TaskLookup
	// Logger receives the scheduler's logs; nil discards.
	Logger *slog.Logger
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// PollInterval is the longest wait between two looks at the due
	// fires: how soon a change to a schedule takes effect. Default
	// DefaultPollInterval.
	PollInterval time.Duration
	// Grace is how late a fire may be handled and still count as on
	// time; later ones are missed (see the package comment). Default
	// DefaultGrace.
	Grace time.Duration
	// PendingAfter is how long a claimed fire may wait for its enqueue
	// before another replica enqueues it. Default DefaultPendingAfter.
	PendingAfter time.Duration
}

func (o *Options) setDefaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PollInterval <= 0 {
		o.PollInterval = DefaultPollInterval
	}
	if o.Grace <= 0 {
		o.Grace = DefaultGrace
	}
	if o.PendingAfter <= 0 {
		o.PendingAfter = DefaultPendingAfter
	}
}

// Scheduler is one replica of the scheduler process.
type Scheduler struct {
	o Options

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a Scheduler; Start runs it.
func New(o Options) (*Scheduler, error) {
	if o.Store == nil || o.Enqueuer == nil || o.Tasks == nil {
		return nil, errors.New("scheduler: a store, an enqueuer and a task lookup are required")
	}
	o.setDefaults()
	return &Scheduler{o: o}, nil
}

// Start starts firing schedules until Shutdown. The loop does not take
// ctx's cancellation; Shutdown stops it.
func (s *Scheduler) Start(ctx context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.done != nil {
		return errors.New("scheduler: already started")
	}
	if err := s.o.Store.Ping(ctx); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	lctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	s.cancel, s.done = cancel, make(chan struct{})
	go s.loop(lctx, s.done)
	s.o.Logger.InfoContext(ctx, "scheduler started", "poll_interval", s.o.PollInterval, "grace", s.o.Grace)
	return nil
}

// Shutdown stops the loop, waiting for the fire in hand to be enqueued
// or for ctx to end.
func (s *Scheduler) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.mu.Unlock()
	if done == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("scheduler: shutdown: %w", ctx.Err())
	}
}

func (s *Scheduler) loop(ctx context.Context, done chan struct{}) {
	defer close(done)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		if err := s.Tick(ctx); err != nil && ctx.Err() == nil {
			s.o.Logger.WarnContext(ctx, "scheduler tick", "error", err)
		}
		timer.Reset(s.wait(ctx))
	}
}

// wait returns how long to sleep: until the earliest fire when it is
// nearer than the poll interval.
func (s *Scheduler) wait(ctx context.Context) time.Duration {
	wait := s.o.PollInterval
	at, err := s.o.Store.EarliestFire(ctx)
	if err != nil || at.IsZero() {
		return wait
	}
	if d := at.Sub(s.o.Now()); d < wait {
		wait = max(d, 5*time.Millisecond)
	}
	return wait
}

// Tick does what is due now: it enqueues the fires other replicas
// claimed and left pending too long, then claims and fires every due
// schedule.
func (s *Scheduler) Tick(ctx context.Context) error {
	now := s.o.Now()
	var errs []error
	pending, err := s.o.Store.StalePendingFires(ctx, now.Add(-s.o.PendingAfter))
	if err != nil {
		errs = append(errs, err)
	}
	for _, p := range pending {
		if err := s.enqueue(ctx, p, "", "sweep"); err != nil {
			errs = append(errs, err)
		}
	}
	// A bounded number of batches: fires that keep failing stay due for
	// the next tick instead of holding this one.
	for range maxBatches {
		due, err := s.o.Store.DueFires(ctx, now, dueBatch)
		if err != nil {
			return errors.Join(append(errs, err)...)
		}
		for _, d := range due {
			if err := s.fire(ctx, d, now); err != nil {
				errs = append(errs, fmt.Errorf("schedule %s: %w", d.ID, err))
			}
		}
		if len(due) < dueBatch || ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// fire claims and handles the fire d of a schedule at now.
func (s *Scheduler) fire(ctx context.Context, d store.DueFire, now time.Time) error {
	sc, err := s.o.Store.ScheduleSealed(ctx, d.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil // deleted since; its due entry went with it
	}
	if err != nil {
		return err
	}
	sp, err := spec.Parse(spec.Spec{Cron: sc.Cron, Every: sc.Every, Timezone: sc.Timezone, Anchor: sc.Anchor})
	if err != nil {
		// Checked when written; a zone database without the zone lands
		// here. Stop firing it and say why.
		run := store.ScheduleRun{Key: store.FireKey(d.At), ScheduleID: sc.ID, Trigger: store.TriggerSchedule,
			ScheduledAt: d.At, FiredAt: now, Status: store.StatusFailed, Error: err.Error(), FinishedAt: &now}
		_, cerr := s.o.Store.ClaimFire(ctx, sc.ID, d.At, time.Time{}, run, false, now)
		return errors.Join(err, cerr)
	}
	run := store.ScheduleRun{Key: store.FireKey(d.At), ScheduleID: sc.ID, Trigger: store.TriggerSchedule,
		ScheduledAt: d.At, FiredAt: now, Status: store.StatusQueued}
	next := sp.Next(d.At)
	if late := now.Sub(d.At); late > s.o.Grace {
		// Every scheduler was down over this fire: fold every fire
		// missed into one run.
		last, n := sp.Last(d.At.Add(-time.Second), now.Add(-s.o.Grace))
		run.Key, run.ScheduledAt, run.Missed, run.Trigger = store.FireKey(last), last, n, store.TriggerCatchUp
		next = sp.Next(last)
		if sc.CatchUp == store.CatchUpNone {
			run.Status, run.FinishedAt, run.Trigger = store.RunMissed, &now, store.TriggerSchedule
		}
	}
	if run.Status == store.StatusQueued && sc.Overlap != store.OverlapAllow {
		going, err := s.going(ctx, sc.ID)
		if err != nil {
			return err
		}
		if going {
			run.Status, run.FinishedAt, run.Error = store.RunSkipped, &now, "the previous run is still going"
		}
	}
	enqueue := run.Status == store.StatusQueued
	if enqueue {
		run.TaskID = store.ScheduleTaskID(sc.ID, run.Key)
	}
	won, err := s.o.Store.ClaimFire(ctx, sc.ID, d.At, next, run, enqueue, now)
	if err != nil || !won {
		return err
	}
	if !enqueue {
		s.o.Logger.InfoContext(ctx, "schedule fire "+run.Status, "schedule", sc.ID, "at", run.ScheduledAt, "missed", run.Missed)
		return nil
	}
	return s.enqueue(ctx, store.PendingFire{ID: sc.ID, Key: run.Key}, sc.AccountID, "claim")
}

// enqueue enqueues the task of a claimed fire and clears its pending
// mark. A task already there (another replica enqueued it) counts as
// enqueued; a failure leaves the mark for a sweep to try again.
func (s *Scheduler) enqueue(ctx context.Context, p store.PendingFire, account, via string) error {
	if account == "" {
		sc, err := s.o.Store.ScheduleSealed(ctx, p.ID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return s.o.Store.FireEnqueued(ctx, p)
		case err != nil:
			return err
		}
		account = sc.AccountID
	}
	task, opts, err := tasks.NewScheduleRunTask(p.ID, p.Key)
	if err != nil {
		return err
	}
	taskID := store.ScheduleTaskID(p.ID, p.Key)
	_, err = s.o.Enqueuer.Enqueue(ctx, account, task, opts...)
	switch {
	case err == nil:
		s.o.Logger.InfoContext(ctx, "schedule fired", "schedule", p.ID, "task_id", taskID, "via", via)
	case errors.Is(err, asynq.ErrTaskIDConflict):
		s.o.Logger.DebugContext(ctx, "schedule fire already enqueued", "schedule", p.ID, "task_id", taskID)
	default:
		return fmt.Errorf("enqueue %s: %w", taskID, err)
	}
	return s.o.Store.FireEnqueued(ctx, p)
}

// going reports whether a recent run of schedule id is still going: its
// task waits or runs, or the execution it made has not finished.
func (s *Scheduler) going(ctx context.Context, id string) (bool, error) {
	runs, err := s.o.Store.ScheduleRuns(ctx, id, 10)
	if err != nil {
		return false, err
	}
	for _, run := range runs {
		if run.FinishedAt != nil || (run.Status != store.StatusQueued && run.Status != store.StatusRunning) {
			continue
		}
		if run.ExecutionID != "" {
			r, err := tasks.RefreshScheduleRun(ctx, s.o.Store, run)
			if err != nil {
				return false, err
			}
			if r.FinishedAt == nil {
				return true, nil
			}
			continue
		}
		if run.TaskID == "" {
			continue
		}
		st, err := s.o.Tasks.Lookup(ctx, run.TaskID)
		if errors.Is(err, store.ErrNotFound) {
			continue // gone: not going
		}
		if err != nil {
			return false, err
		}
		switch st.State {
		case tasks.StatePending, tasks.StateActive, tasks.StateScheduled, tasks.StateRetry:
			return true, nil
		}
	}
	return false, nil
}
