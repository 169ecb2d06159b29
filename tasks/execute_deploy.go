package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// Enqueuer puts a task on a queue on behalf of an account (Client does).
type Enqueuer interface {
	Enqueue(ctx context.Context, accountID string, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// StepRef names a package version to run ("active" for the active
// version) with the values set for it.
type StepRef struct {
	Package    string
	Version    string
	Parameters map[string]string
}

// DeployRequest is one deployment: steps onto servers.
type DeployRequest struct {
	AccountID   string
	AccountName string
	User        string
	BlueprintID string
	Steps       []StepRef
	// Servers are the targets; Visible every server the account sees.
	Servers, Visible []store.Server
	Parameters       map[string]string
	Retry            *Retry
	Timeout          time.Duration
	Retention        time.Duration
	// CanUse reports whether the account may deploy the package.
	CanUse func(ctx context.Context, p store.Package) (bool, error)
	// Networks are every network the account sees.
	Networks []store.Network
}

// ProblemsError lists every reason a deployment cannot start.
type ProblemsError struct{ Problems []Problem }

func (e *ProblemsError) Error() string {
	return fmt.Sprintf("tasks: deployment has %d problem(s)", len(e.Problems))
}

// ResolveSteps finds each step's version and manifest. Problems (unknown
// or invisible packages, no active version) are returned, not errors.
func ResolveSteps(ctx context.Context, st *store.Store, refs []StepRef, canUse func(context.Context, store.Package) (bool, error)) ([]PlanStep, []Problem, error) {
	var problems []Problem
	steps := make([]PlanStep, 0, len(refs))
	if len(refs) == 0 {
		problems = append(problems, Problem{Path: "steps", Rule: manifest.ValueMissing, Message: "at least one step is required"})
	}
	for i, ref := range refs {
		path := fmt.Sprintf("steps[%d]", i)
		pkg, err := st.Package(ctx, ref.Package)
		ok := err == nil
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, nil, err
		}
		if ok && canUse != nil {
			if ok, err = canUse(ctx, pkg); err != nil {
				return nil, nil, err
			}
		}
		if !ok {
			problems = append(problems, Problem{Path: path + ".package", Rule: manifest.ValueInvalid, Message: fmt.Sprintf("no such package: %q", ref.Package)})
			continue
		}
		version := ref.Version
		if version == "" || version == store.ActiveVersion {
			version = pkg.ActiveVersion
			if version == "" {
				problems = append(problems, Problem{Path: path + ".version", Rule: manifest.ValueMissing,
					Message: fmt.Sprintf("package %s has no active version; name a version", pkg.Name)})
				continue
			}
		}
		v, err := st.Version(ctx, pkg.ID, version)
		if errors.Is(err, store.ErrNotFound) {
			problems = append(problems, Problem{Path: path + ".version", Rule: manifest.ValueInvalid,
				Message: fmt.Sprintf("package %s has no version %q", pkg.Name, version)})
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		var m manifest.Manifest
		if err := json.Unmarshal(v.Manifest, &m); err != nil {
			return nil, nil, fmt.Errorf("tasks: manifest of %s@%s: %w", pkg.ID, v.Version, err)
		}
		steps = append(steps, PlanStep{Version: v, Manifest: m, Parameters: ref.Parameters})
	}
	return steps, problems, nil
}

// Deploy checks a deployment, records its execution and enqueues one
// execution:server task per server. A deployment with problems returns a
// *ProblemsError listing all of them and records nothing.
func Deploy(ctx context.Context, st *store.Store, enq Enqueuer, req DeployRequest) (store.Execution, []string, error) {
	steps, problems, err := ResolveSteps(ctx, st, req.Steps, req.CanUse)
	if err != nil {
		return store.Execution{}, nil, err
	}
	if req.Retry != nil {
		if err := req.Retry.Validate(); err != nil {
			problems = append(problems, Problem{Path: "retry", Rule: manifest.ValueInvalid, Message: err.Error()})
		}
	}
	var values []map[string]store.Value
	if len(problems) == 0 {
		values, problems = Plan(PlanRequest{Steps: steps, Parameters: req.Parameters, Servers: req.Servers, Visible: req.Visible, Networks: req.Networks})
	}
	if len(problems) > 0 {
		return store.Execution{}, nil, &ProblemsError{Problems: problems}
	}
	e := store.Execution{
		AccountID: req.AccountID, AccountName: req.AccountName, User: req.User, BlueprintID: req.BlueprintID,
		Timeout: req.Timeout, Retention: req.Retention, Parameters: maskedParameters(req.Parameters, values),
	}
	if req.Retry != nil {
		e.Retry, _ = json.Marshal(req.Retry)
	}
	for _, ps := range steps {
		m := ps.Manifest
		es := store.ExecStep{
			Package: ps.Version.PackageID, Version: ps.Version.Version, Name: m.Metadata.Name, OS: m.OS(),
			Mode: string(m.Execution.Mode), Command: m.Execution.Command, Persistent: m.Execution.Persistent,
			RebootOnSuccess: m.Execution.RebootOnSuccess, Timeout: time.Duration(m.Execution.Timeout),
		}
		for _, p := range m.Parameters {
			if p.System() {
				es.System = append(es.System, p.Variable)
			}
		}
		e.Steps = append(e.Steps, es)
	}
	runs := make([]store.ServerRun, len(req.Servers))
	for i, sv := range req.Servers {
		e.ServerIDs = append(e.ServerIDs, sv.ID)
		runs[i] = store.ServerRun{ServerID: sv.ID, Name: sv.Name, Datacenter: sv.Datacenter, Run: 1,
			Status: store.StatusQueued, Steps: make([]store.StepRun, len(e.Steps))}
		if e.ID == "" {
			e.ID = store.NewExecutionID()
		}
		runs[i].TaskID = ExecuteTaskID(e.ID, sv.ID, 1)
		for j := range runs[i].Steps {
			runs[i].Steps[j].Status = store.StatusPending
		}
	}
	e, err = st.CreateExecution(ctx, e, runs, values)
	if err != nil {
		return store.Execution{}, nil, err
	}
	ids, err := enqueueRuns(ctx, enq, e, runs, req.Retry)
	return e, ids, err
}

// maskedParameters returns the parameters of a deployment as given, for
// its record, with the value of every variable that is a password in some
// step masked.
func maskedParameters(given map[string]string, values []map[string]store.Value) map[string]string {
	if len(given) == 0 {
		return nil
	}
	out := make(map[string]string, len(given))
	for k, v := range given {
		out[k] = v
		for _, step := range values {
			if sv, ok := step[k]; ok && sv.Secret {
				out[k] = remote.MaskText
				break
			}
		}
	}
	return out
}

// enqueueRuns enqueues the task of each run; a task already enqueued (its
// ID taken) counts as enqueued.
func enqueueRuns(ctx context.Context, enq Enqueuer, e store.Execution, runs []store.ServerRun, retry *Retry) ([]string, error) {
	ids := make([]string, 0, len(runs))
	for _, r := range runs {
		t, opts, err := NewExecuteTask(e, r, retry)
		if err != nil {
			return ids, err
		}
		if _, err := enq.Enqueue(ctx, e.AccountID, t, opts...); err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			return ids, fmt.Errorf("tasks: enqueue run of %s: %w", r.Name, err)
		}
		ids = append(ids, ExecuteTaskID(e.ID, r.ServerID, r.Run))
	}
	return ids, nil
}

// Rerun runs the failed and cancelled servers of execution e again from
// their first unfinished step, and returns the new task IDs. It refuses
// with store.ErrConflict, saying why, while any server's run has not
// ended (a cancel still stopping it, say) and when no server failed or
// was cancelled: there is nothing to run again.
func Rerun(ctx context.Context, st *store.Store, enq Enqueuer, e store.Execution) ([]string, error) {
	runs, err := st.ServerRuns(ctx, e)
	if err != nil {
		return nil, err
	}
	rerun := 0
	for _, r := range runs {
		if !r.Final() {
			return nil, fmt.Errorf("%w: server %s is still %s; rerun once every server's run has ended", store.ErrConflict, r.Name, r.Status)
		}
		if r.Status == store.StatusFailed || r.Status == store.StatusCancelled {
			rerun++
		}
	}
	if rerun == 0 {
		return nil, fmt.Errorf("%w: nothing to rerun: no server failed or was cancelled in execution %s", store.ErrConflict, e.ID)
	}
	if e, err = st.SetCancelled(ctx, e.ID, false, ""); err != nil {
		return nil, err
	}
	var again []store.ServerRun
	for _, r := range runs {
		if r.Status != store.StatusFailed && r.Status != store.StatusCancelled {
			continue
		}
		r.Run++
		r.Status, r.Error, r.FinishedAt = store.StatusQueued, "", nil
		r.TaskID = ExecuteTaskID(e.ID, r.ServerID, r.Run)
		for i := range r.Steps {
			s := &r.Steps[i]
			// Steps for another OS are skipped again when the run gets
			// there; a step's phase is kept, so it resumes where it was.
			if s.Status == store.StatusSucceeded {
				continue
			}
			s.Status, s.Error = store.StatusPending, ""
		}
		if err := st.PutServerRun(ctx, e, r, -1); err != nil {
			return nil, err
		}
		again = append(again, r)
	}
	var retry *Retry
	if len(e.Retry) > 0 {
		var r Retry
		if json.Unmarshal(e.Retry, &r) == nil {
			retry = &r
		}
	}
	return enqueueRuns(ctx, enq, e, again, retry)
}

// Cancel flags execution e as cancelled by user by (running steps stop
// within about a second, their remote processes killed; the execution
// records who cancelled and when) and marks the runs that have not
// started cancelled. An execution whose every run has ended cannot be
// cancelled: store.ErrConflict, with the reason. Cancelling twice is
// harmless; the first cancel is the one recorded.
func Cancel(ctx context.Context, st *store.Store, e store.Execution, by string) error {
	runs, err := st.ServerRuns(ctx, e)
	if err != nil {
		return err
	}
	if ended(runs) {
		return fmt.Errorf("%w: execution %s has already ended (%s); there is nothing to cancel", store.ErrConflict, e.ID, store.ExecutionStatus(runs))
	}
	if e, err = st.SetCancelled(ctx, e.ID, true, by); err != nil {
		return err
	}
	if runs, err = st.ServerRuns(ctx, e); err != nil {
		return err
	}
	why := (&CancelledError{By: e.CancelledBy}).Error()
	now := time.Now().UTC()
	for _, r := range runs {
		if r.Status != store.StatusQueued {
			continue
		}
		if err := st.AppendLog(ctx, e, []store.Event{{Kind: store.EventLog, Server: r.Name, Stream: "packflow", Line: why, Time: now}}); err != nil {
			return err
		}
		r.Status, r.Error, r.FinishedAt = store.StatusCancelled, why, &now
		for i := range r.Steps {
			if r.Steps[i].Status == store.StatusPending || r.Steps[i].Status == store.StatusFailed {
				r.Steps[i].Status = store.StatusSkipped
			}
		}
		if err := st.PutServerRun(ctx, e, r, -1); err != nil {
			return err
		}
	}
	return nil
}

// ended reports whether every run has ended.
func ended(runs []store.ServerRun) bool {
	for _, r := range runs {
		if !r.Final() {
			return false
		}
	}
	return true
}
