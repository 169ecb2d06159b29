package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// TypeScheduleRun is the task of one fire of a schedule.
const TypeScheduleRun = "schedule:run"

// scheduleRunMaxRetry bounds the retries of a schedule:run task: its
// failures are storage failures; problems of the action are final.
const scheduleRunMaxRetry = 3

// ScheduleRunPayload is the payload of schedule:run.
type ScheduleRunPayload struct {
	ScheduleID string `json:"schedule_id"`
	// Key is the run's key (store.ScheduleRun.Key).
	Key string `json:"key"`
}

// NewScheduleRunTask returns the schedule:run task of run key of schedule
// id and the options to enqueue it with: the default queue and the task
// ID store.ScheduleTaskID, the same for every scheduler that fires it.
func NewScheduleRunTask(id, key string) (*asynq.Task, []asynq.Option, error) {
	if id == "" || key == "" {
		return nil, nil, errors.New("tasks: a schedule run needs a schedule and a key")
	}
	b, err := json.Marshal(ScheduleRunPayload{ScheduleID: id, Key: key})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode schedule run payload: %w", err)
	}
	opts := []asynq.Option{asynq.Queue(QueueDefault), asynq.TaskID(store.ScheduleTaskID(id, key)), asynq.MaxRetry(scheduleRunMaxRetry)}
	return asynq.NewTask(TypeScheduleRun, b), opts, nil
}

// ScheduleRunnerOptions configures a ScheduleRunner.
type ScheduleRunnerOptions struct {
	// Store holds the schedules. Required.
	Store *store.Store
	// Enqueuer queues the tasks an action makes. Required.
	Enqueuer Enqueuer
	// ExecutionRetention is how long a scheduled deployment's execution
	// is kept. Default store.DefaultExecutionRetention.
	ExecutionRetention time.Duration
	// Logger is the fallback logger; nil discards.
	Logger *slog.Logger
}

// ScheduleRunner runs schedule:run: it does the schedule's action as the
// schedule's owner and records the outcome in the run.
//
//   - deploy resolves the blueprint (or package) and the servers by ID or
//     name among those the owner sees, and deploys (Deploy); the run
//     holds the execution and follows its status (RefreshScheduleRun).
//   - install-sync queues a package:install on every live node that lacks
//     an active version, and a package:prune on every live node, which
//     removes the versions no active closure holds beyond the cache's Keep.
//
// A retried task does not act twice: a run that holds its execution or
// its tasks is done, and install tasks have IDs derived from the run.
type ScheduleRunner struct {
	o ScheduleRunnerOptions
}

// NewScheduleRunner returns the schedule:run handler.
func NewScheduleRunner(o ScheduleRunnerOptions) (*ScheduleRunner, error) {
	if o.Store == nil || o.Enqueuer == nil {
		return nil, errors.New("tasks: a schedule runner needs a store and an enqueuer")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &ScheduleRunner{o: o}, nil
}

// ProcessTask implements asynq.Handler.
func (r *ScheduleRunner) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ScheduleRunPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ScheduleID == "" || p.Key == "" {
		return fmt.Errorf("tasks: schedule run: bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	st := r.o.Store
	run, err := st.ScheduleRun(ctx, p.ScheduleID, p.Key)
	if errors.Is(err, store.ErrNotFound) {
		now := time.Now().UTC()
		run = store.ScheduleRun{Key: p.Key, ScheduleID: p.ScheduleID, Trigger: store.TriggerManual, ScheduledAt: now}
	} else if err != nil {
		return err
	}
	if run.ExecutionID != "" || len(run.TaskIDs) > 0 || run.FinishedAt != nil {
		return nil // done by an earlier attempt
	}
	sc, err := st.Schedule(ctx, p.ScheduleID)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted with its history since the fire: nothing to record.
		return fmt.Errorf("tasks: schedule %s was deleted: %w", p.ScheduleID, asynq.SkipRetry)
	}
	if err != nil {
		return r.retryOrFail(ctx, t, run, err)
	}
	run.TaskID = store.ScheduleTaskID(p.ScheduleID, p.Key)
	if run.FiredAt.IsZero() {
		run.FiredAt = time.Now().UTC()
	}
	log := LoggerFrom(ctx).With("schedule", sc.ID, "run", run.Key, "action", sc.Action.Kind)
	switch sc.Action.Kind {
	case store.ActionDeploy:
		err = r.deploy(ctx, sc, &run)
	case store.ActionInstallSync:
		err = r.installSync(ctx, sc, &run)
	default:
		return r.finish(ctx, run, store.StatusFailed, "unknown action "+sc.Action.Kind, asynq.SkipRetry)
	}
	var pe *ProblemsError
	switch {
	case errors.As(err, &pe):
		msgs := make([]string, len(pe.Problems))
		for i, pr := range pe.Problems {
			msgs[i] = pr.Path + ": " + pr.Message
		}
		log.WarnContext(ctx, "scheduled action refused", "problems", len(msgs))
		return r.finish(ctx, run, store.StatusFailed, strings.Join(msgs, "; "), asynq.SkipRetry)
	case err != nil:
		if run.ExecutionID != "" {
			if perr := st.PutScheduleRun(ctx, run); perr != nil {
				err = errors.Join(err, perr)
			}
		}
		return r.retryOrFail(ctx, t, run, err)
	}
	if err := st.PutScheduleRun(ctx, run); err != nil {
		return err
	}
	log.InfoContext(ctx, "scheduled action started", "execution", run.ExecutionID, "tasks", len(run.TaskIDs))
	return nil
}

// finish records run as ended with status and why, and returns an error
// wrapping cause (nil for none).
func (r *ScheduleRunner) finish(ctx context.Context, run store.ScheduleRun, status, why string, cause error) error {
	now := time.Now().UTC()
	run.Status, run.Error, run.FinishedAt = status, why, &now
	if err := r.o.Store.PutScheduleRun(ctx, run); err != nil {
		return err
	}
	if cause == nil {
		return nil
	}
	return fmt.Errorf("tasks: schedule %s run %s: %s: %w", run.ScheduleID, run.Key, why, cause)
}

// retryOrFail returns err for a retry, recording the run as failed when
// no retry is left.
func (r *ScheduleRunner) retryOrFail(ctx context.Context, t *asynq.Task, run store.ScheduleRun, err error) error {
	n, _ := asynq.GetRetryCount(ctx)
	maxRetry, ok := asynq.GetMaxRetry(ctx)
	if ok && n >= maxRetry {
		return errors.Join(err, r.finish(ctx, run, store.StatusFailed, err.Error(), nil))
	}
	return fmt.Errorf("tasks: %s: %w", t.Type(), err)
}

// canSee reports whether account may see a record of owner: its own,
// its sub-accounts', everything for the root account.
func canSee(ctx context.Context, st *store.Store, account, owner string) (bool, error) {
	if account == store.RootAccountID || account == owner {
		return true, nil
	}
	ok, err := st.IsWithin(ctx, owner, account)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return ok, err
}

// packageUse returns whether account may deploy a package: public ones,
// its own, and those shared by its ancestors.
func packageUse(ctx context.Context, st *store.Store, account string) (func(context.Context, store.Package) (bool, error), error) {
	above := map[string]bool{}
	if account != store.RootAccountID {
		anc, err := st.Ancestors(ctx, account)
		if err != nil {
			return nil, err
		}
		for _, a := range anc {
			above[a] = true
		}
	}
	return func(_ context.Context, p store.Package) (bool, error) {
		switch {
		case account == store.RootAccountID, p.Visibility == store.VisibilityPublic, p.AccountID == account:
			return true, nil
		case p.Visibility == store.VisibilityShared:
			return above[p.AccountID], nil
		}
		return false, nil
	}, nil
}

// ScheduleDeployRequest builds the deployment of sc's deploy action as
// its owner: the blueprint's steps (or the one package), the servers by
// ID or name among those the owner sees. Unknown references are problems.
func ScheduleDeployRequest(ctx context.Context, st *store.Store, sc store.Schedule) (DeployRequest, []Problem, error) {
	a := sc.Action
	req := DeployRequest{AccountID: sc.AccountID, User: sc.User, Parameters: a.Parameters}
	var problems []Problem
	acct, err := st.Account(ctx, sc.AccountID)
	if err != nil {
		return req, nil, err
	}
	req.AccountName = acct.Name
	switch {
	case a.Blueprint != "":
		bp, err := st.Blueprint(ctx, a.Blueprint)
		ok := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return req, nil, err
		}
		if ok {
			if ok, err = canSee(ctx, st, sc.AccountID, bp.AccountID); err != nil {
				return req, nil, err
			}
		}
		if !ok {
			problems = append(problems, Problem{Path: "action.blueprint", Rule: manifest.ValueInvalid, Message: "no such blueprint: " + a.Blueprint})
			break
		}
		req.BlueprintID = bp.ID
		for _, s := range bp.Steps {
			req.Steps = append(req.Steps, StepRef{Package: s.Package, Version: s.Version, Parameters: s.Parameters})
		}
	case a.Package != "":
		req.Steps = []StepRef{{Package: a.Package, Version: a.Version}}
	default:
		problems = append(problems, Problem{Path: "action.blueprint", Rule: manifest.ValueMissing, Message: "a deploy names a blueprint"})
	}
	all, err := st.Servers(ctx)
	if err != nil {
		return req, nil, err
	}
	for _, sv := range all {
		ok, err := canSee(ctx, st, sc.AccountID, sv.AccountID)
		if err != nil {
			return req, nil, err
		}
		if ok {
			req.Visible = append(req.Visible, sv)
		}
	}
	seen := map[string]bool{}
	for i, ref := range a.Servers {
		sv := serverRef(req.Visible, ref)
		path := fmt.Sprintf("action.servers[%d]", i)
		switch {
		case sv == nil:
			problems = append(problems, Problem{Path: path, Rule: manifest.ValueInvalid, Message: "no such server: " + ref})
		case seen[sv.ID]:
			problems = append(problems, Problem{Path: path, Rule: manifest.ValueInvalid, Message: "server listed twice: " + ref})
		default:
			seen[sv.ID] = true
			req.Servers = append(req.Servers, *sv)
		}
	}
	if len(a.Retry) > 0 {
		var rt Retry
		if err := json.Unmarshal(a.Retry, &rt); err != nil {
			problems = append(problems, Problem{Path: "action.retry", Rule: manifest.ValueInvalid, Message: err.Error()})
		} else {
			req.Retry = &rt
		}
	}
	if req.Networks, err = visibleNetworks(ctx, st, sc.AccountID); err != nil {
		return req, nil, err
	}
	if req.CanUse, err = packageUse(ctx, st, sc.AccountID); err != nil {
		return req, nil, err
	}
	return req, problems, nil
}

func serverRef(vis []store.Server, ref string) *store.Server {
	for i := range vis {
		if vis[i].ID == ref {
			return &vis[i]
		}
	}
	for i := range vis {
		if vis[i].Name == ref {
			return &vis[i]
		}
	}
	return nil
}

func (r *ScheduleRunner) deploy(ctx context.Context, sc store.Schedule, run *store.ScheduleRun) error {
	req, problems, err := ScheduleDeployRequest(ctx, r.o.Store, sc)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return &ProblemsError{Problems: problems}
	}
	req.Retention = r.o.ExecutionRetention
	e, ids, err := Deploy(ctx, r.o.Store, r.o.Enqueuer, req)
	if e.ID != "" {
		// Recorded even when some task failed to queue, so that a retry
		// does not deploy twice.
		run.ExecutionID, run.TaskIDs, run.Status = e.ID, ids, store.StatusRunning
	}
	return err
}

func (r *ScheduleRunner) installSync(ctx context.Context, sc store.Schedule, run *store.ScheduleRun) error {
	st := r.o.Store
	acts, err := st.Activations(ctx)
	if err != nil {
		return err
	}
	nodes, err := st.Nodes(ctx)
	if err != nil {
		return err
	}
	queued := []string{}
	var errs []error
	for _, a := range acts {
		installs, err := st.NodeInstalls(ctx, a.PackageID)
		if err != nil {
			return err
		}
		a.Force = false // a sync installs what is missing, never again
		for _, n := range nodes {
			if n.Draining {
				continue
			}
			if ni, ok := installs[n.ID]; ok && ni.Version == a.Version && ni.State == store.InstallInstalled {
				continue
			}
			task, opts, err := NewInstallTask(a, n.ID, nil)
			if err != nil {
				return err
			}
			id := run.TaskID + ":" + a.PackageID + ":" + n.ID
			opts = append(opts[:1], asynq.TaskID(id))
			if _, err := r.o.Enqueuer.Enqueue(ctx, sc.AccountID, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
				errs = append(errs, fmt.Errorf("node %s: %w", n.ID, err))
				continue
			}
			queued = append(queued, id)
		}
	}
	// Every live node also prunes the versions no active closure holds,
	// whether or not it missed anything.
	for _, n := range nodes {
		if n.Draining {
			continue
		}
		id := run.TaskID + ":prune:" + n.ID
		task, opts, err := NewPruneTask(n.ID, id)
		if err != nil {
			return err
		}
		if _, err := r.o.Enqueuer.Enqueue(ctx, sc.AccountID, task, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			errs = append(errs, fmt.Errorf("node %s: %w", n.ID, err))
			continue
		}
		queued = append(queued, id)
	}
	if err := errors.Join(errs...); err != nil {
		return err // retried: tasks already queued keep their IDs
	}
	now := time.Now().UTC()
	run.TaskIDs, run.Status, run.FinishedAt = queued, store.StatusSucceeded, &now
	return nil
}

// RefreshScheduleRun brings a deploy run's status up to date with its
// execution, recording it once the execution has ended.
func RefreshScheduleRun(ctx context.Context, st *store.Store, run store.ScheduleRun) (store.ScheduleRun, error) {
	if run.ExecutionID == "" || run.FinishedAt != nil {
		return run, nil
	}
	e, err := st.Execution(ctx, run.ExecutionID)
	if errors.Is(err, store.ErrNotFound) {
		return run, nil // expired
	}
	if err != nil {
		return run, err
	}
	runs, err := st.ServerRuns(ctx, e)
	if err != nil {
		return run, err
	}
	status := store.ExecutionStatus(runs)
	run.Status = status
	switch status {
	case store.StatusSucceeded, store.StatusFailed, store.StatusCancelled:
		now := time.Now().UTC()
		run.FinishedAt = &now
		if err := st.PutScheduleRun(ctx, run); err != nil {
			return run, err
		}
	}
	return run, nil
}

// scheduleHandler builds the schedule:run handler from the worker's
// dependencies; without an enqueuer its tasks fail and retry with an
// error saying so.
func scheduleHandler(d Deps) asynq.Handler {
	var enq Enqueuer
	if d.Enqueuer != nil {
		enq = d.Enqueuer
	}
	h, err := NewScheduleRunner(ScheduleRunnerOptions{Store: d.Store, Enqueuer: enq, Logger: d.Logger})
	if err != nil {
		return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return err })
	}
	return h
}
