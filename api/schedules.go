package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/scheduler/spec"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// nextRunsShown is how many fire times a schedule's answer lists.
const nextRunsShown = 5

func (s *Server) scheduleRoutes(g *echo.Group) {
	op := requireRole(store.RoleOperator)
	g.POST("/schedules", s.createSchedule, op)
	g.GET("/schedules", s.listSchedules)
	g.GET("/schedules/:id", s.getSchedule)
	g.PUT("/schedules/:id", s.putSchedule, op)
	g.DELETE("/schedules/:id", s.deleteSchedule, op)
	g.POST("/schedules/:id/pause", s.pauseSchedule, op)
	g.POST("/schedules/:id/resume", s.resumeSchedule, op)
	g.POST("/schedules/:id/run-now", s.runScheduleNow, op)
	g.GET("/schedules/:id/runs", s.listScheduleRuns)
}

type scheduleActionJSON struct {
	Kind       string            `json:"kind"`
	Blueprint  string            `json:"blueprint,omitempty"`
	Package    string            `json:"package,omitempty"`
	Version    string            `json:"version,omitempty"`
	Servers    []string          `json:"servers,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Retry      *tasks.Retry      `json:"retry,omitempty"`
}

// scheduleRequest is the body of POST /schedules and PUT /schedules/{id}.
type scheduleRequest struct {
	Name     string              `json:"name"`
	Cron     string              `json:"cron"`
	Every    string              `json:"every"`
	Timezone string              `json:"timezone"`
	Enabled  *bool               `json:"enabled"`
	CatchUp  string              `json:"catch_up"`
	Overlap  string              `json:"overlap"`
	Action   *scheduleActionJSON `json:"action"`
}

// scheduleJSON is a schedule as the API shows it: password values
// masked, with its next fire times.
type scheduleJSON struct {
	ID        string             `json:"id"`
	Account   string             `json:"account"`
	User      string             `json:"user"`
	Name      string             `json:"name"`
	Cron      string             `json:"cron,omitempty"`
	Every     string             `json:"every,omitempty"`
	Timezone  string             `json:"timezone"`
	Enabled   bool               `json:"enabled"`
	CatchUp   string             `json:"catch_up"`
	Overlap   string             `json:"overlap"`
	Action    scheduleActionJSON `json:"action"`
	Origin    string             `json:"origin,omitempty"`
	NextRuns  []time.Time        `json:"next_runs"`
	CreatedAt time.Time          `json:"created_at"`
	UpdatedAt time.Time          `json:"updated_at"`
}

// scheduleRunJSON is one fire of a schedule.
type scheduleRunJSON struct {
	Key         string     `json:"key"`
	Trigger     string     `json:"trigger"`
	Time        time.Time  `json:"time"`
	FiredAt     time.Time  `json:"fired_at"`
	Outcome     string     `json:"outcome"`
	TaskID      string     `json:"task_id,omitempty"`
	ExecutionID string     `json:"execution_id,omitempty"`
	TaskIDs     []string   `json:"task_ids,omitempty"`
	Missed      int        `json:"missed,omitempty"`
	Error       string     `json:"error,omitempty"`
	FinishedAt  *time.Time `json:"finished_at,omitempty"`
}

func (s *Server) toScheduleJSON(ctx context.Context, sc store.Schedule) (scheduleJSON, error) {
	out := scheduleJSON{ID: sc.ID, Account: sc.AccountID, User: sc.User, Name: sc.Name, Cron: sc.Cron, Timezone: sc.Timezone,
		Enabled: sc.Enabled, CatchUp: sc.CatchUp, Overlap: sc.Overlap, Origin: sc.Origin,
		CreatedAt: sc.CreatedAt, UpdatedAt: sc.UpdatedAt, NextRuns: []time.Time{}}
	if out.Timezone == "" {
		out.Timezone = "UTC"
	}
	if sc.Every > 0 {
		out.Every = sc.Every.String()
	}
	a := sc.Action
	out.Action = scheduleActionJSON{Kind: a.Kind, Blueprint: a.Blueprint, Package: a.Package, Version: a.Version, Servers: a.Servers}
	if len(a.Parameters) > 0 {
		out.Action.Parameters = make(map[string]string, len(a.Parameters))
		for k, v := range a.Parameters {
			out.Action.Parameters[k] = v
		}
		for _, k := range a.Secrets {
			if _, ok := out.Action.Parameters[k]; ok {
				out.Action.Parameters[k] = remote.MaskText
			}
		}
	}
	if len(a.Retry) > 0 {
		var r tasks.Retry
		if err := json.Unmarshal(a.Retry, &r); err == nil {
			out.Action.Retry = &r
		}
	}
	next, err := s.store.NextFire(ctx, sc.ID)
	if err != nil || next.IsZero() {
		return out, err
	}
	sp, err := spec.Parse(specOf(sc))
	if err != nil {
		return out, nil // refused by the scheduler at its next fire
	}
	out.NextRuns = append([]time.Time{next}, sp.NextN(next, nextRunsShown-1)...)
	return out, nil
}

func specOf(sc store.Schedule) spec.Spec {
	return spec.Spec{Cron: sc.Cron, Every: sc.Every, Timezone: sc.Timezone, Anchor: sc.Anchor}
}

func toScheduleRunJSON(r store.ScheduleRun) scheduleRunJSON {
	return scheduleRunJSON{Key: r.Key, Trigger: r.Trigger, Time: r.ScheduledAt, FiredAt: r.FiredAt, Outcome: r.Status,
		TaskID: r.TaskID, ExecutionID: r.ExecutionID, TaskIDs: r.TaskIDs, Missed: r.Missed, Error: publicText(r.Error), FinishedAt: r.FinishedAt}
}

// checkSchedule validates req into sc (the caller's account and user are
// set already; old is the schedule replaced, if any) and returns the
// schedule's next fire time, or a 422 with every problem. kept names the
// action parameters whose stored password an edit keeps (keepMasked).
func (s *Server) checkSchedule(c echo.Context, req scheduleRequest, sc *store.Schedule, old *store.Schedule, kept []string) (time.Time, error) {
	ctx := c.Request().Context()
	var errs []FieldError
	add := func(path, rule, msg string) { errs = append(errs, FieldError{Path: path, Rule: rule, Message: msg}) }
	if msg := store.CheckName(req.Name); msg != "" {
		add("name", ruleOf(req.Name == ""), msg)
	}
	sc.Name, sc.Cron, sc.Timezone = req.Name, strings.TrimSpace(req.Cron), strings.TrimSpace(req.Timezone)
	sc.Every = 0
	switch {
	case sc.Cron == "" && req.Every == "":
		add("cron", manifest.ValueMissing, `give cron (e.g. "*/15 * * * *") or every (e.g. "10m")`)
	case sc.Cron != "" && req.Every != "":
		add("every", manifest.ValueInvalid, "give cron or every, not both")
	case sc.Cron != "":
		if err := spec.CheckCron(sc.Cron); err != nil {
			add("cron", manifest.ValueInvalid, err.Error()+`; use five fields (minute hour day-of-month month day-of-week), an optional leading seconds field, or @hourly, @daily, @weekly, @monthly, @yearly`)
		}
	default:
		d, err := time.ParseDuration(strings.TrimSpace(req.Every))
		if err != nil {
			add("every", manifest.ValueInvalid, fmt.Sprintf("every %q is not a duration; write e.g. \"30s\", \"10m\" or \"6h\"", req.Every))
		} else if err := spec.CheckEvery(d); err != nil {
			add("every", manifest.ValueInvalid, err.Error())
		}
		sc.Every = d
	}
	if sc.Timezone == "UTC" {
		sc.Timezone = ""
	}
	if _, err := spec.LoadLocation(sc.Timezone); err != nil {
		add("timezone", manifest.ValueInvalid, err.Error())
	}
	sc.Enabled = req.Enabled == nil || *req.Enabled
	sc.CatchUp, sc.Overlap = req.CatchUp, req.Overlap
	switch sc.CatchUp {
	case "":
		sc.CatchUp = store.CatchUpOnce
	case store.CatchUpOnce, store.CatchUpNone:
	default:
		add("catch_up", "enum", fmt.Sprintf("catch_up %q is not once or none", req.CatchUp))
	}
	switch sc.Overlap {
	case "":
		sc.Overlap = store.OverlapSkip
	case store.OverlapSkip, store.OverlapAllow:
	default:
		add("overlap", "enum", fmt.Sprintf("overlap %q is not skip or allow", req.Overlap))
	}
	actionErrs, err := s.checkAction(ctx, req.Action, sc, kept)
	if err != nil {
		return time.Time{}, err
	}
	errs = append(errs, actionErrs...)
	if len(errs) > 0 {
		return time.Time{}, validationProblem(errs)
	}
	now := time.Now().UTC()
	sc.Anchor = now.Truncate(time.Second)
	if old != nil && old.Every == sc.Every && !old.Anchor.IsZero() {
		sc.Anchor = old.Anchor // keep an interval's phase across edits
	}
	sp, err := spec.Parse(specOf(*sc))
	if err != nil {
		return time.Time{}, validationProblem([]FieldError{{Path: "cron", Rule: manifest.ValueInvalid, Message: err.Error()}})
	}
	return sp.Next(now), nil
}

// checkAction validates the action into sc.Action and returns the
// problems found, paths under "action". Each kept parameter must be a
// password of the action's packages.
func (s *Server) checkAction(ctx context.Context, a *scheduleActionJSON, sc *store.Schedule, kept []string) ([]FieldError, error) {
	if a == nil {
		return []FieldError{{Path: "action", Rule: manifest.ValueMissing, Message: `an action is required: {"kind":"deploy", "blueprint", "servers"} or {"kind":"install-sync"}`}}, nil
	}
	var errs []FieldError
	add := func(path, rule, msg string) { errs = append(errs, FieldError{Path: path, Rule: rule, Message: msg}) }
	sc.Action = store.ScheduleAction{Kind: a.Kind, Blueprint: a.Blueprint, Package: a.Package, Version: a.Version,
		Servers: a.Servers, Parameters: a.Parameters}
	if a.Retry != nil {
		if err := a.Retry.Validate(); err != nil {
			add("action.retry", manifest.ValueInvalid, err.Error())
		}
		b, err := json.Marshal(a.Retry)
		if err != nil {
			return nil, err
		}
		sc.Action.Retry = b
	}
	switch a.Kind {
	case store.ActionInstallSync:
		if a.Blueprint != "" || a.Package != "" || a.Version != "" || len(a.Servers) > 0 || len(a.Parameters) > 0 || a.Retry != nil {
			add("action", manifest.ValueInvalid, "install-sync takes no blueprint, package, servers, parameters or retry: it installs the active versions on every live node that misses them")
		}
		return errs, nil
	case store.ActionDeploy:
	case "":
		add("action.kind", manifest.ValueMissing, "kind is deploy or install-sync")
		return errs, nil
	default:
		add("action.kind", "enum", fmt.Sprintf("kind %q is not deploy or install-sync", a.Kind))
		return errs, nil
	}
	switch {
	case a.Blueprint != "" && a.Package != "":
		add("action.package", manifest.ValueInvalid, "name a blueprint or a package, not both")
	case a.Blueprint == "" && a.Package == "":
		add("action.blueprint", manifest.ValueMissing, "a deploy names the blueprint it runs")
	case a.Package != "" && sc.Action.Version == "":
		sc.Action.Version = store.ActiveVersion
	}
	if len(a.Servers) == 0 && sc.Enabled {
		add("action.servers", manifest.ValueMissing, "a deploy needs at least one server (a disabled schedule may have none yet)")
	}
	if len(errs) > 0 {
		return errs, nil
	}
	req, problems, err := tasks.ScheduleDeployRequest(ctx, s.store, *sc)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		add(p.Path, p.Rule, p.Message)
	}
	if len(req.Steps) == 0 {
		return errs, nil
	}
	steps, problems, err := tasks.ResolveSteps(ctx, s.store, req.Steps, req.CanUse)
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		add("action."+p.Path, p.Rule, p.Message)
	}
	if len(errs) > 0 {
		return errs, nil
	}
	// A dry run of the deployment's parameters, as a fire would check
	// them; without servers yet, Server values are checked at the fire.
	_, problems = tasks.Plan(tasks.PlanRequest{Steps: steps, Parameters: a.Parameters, Servers: req.Servers, Visible: req.Visible, Networks: req.Networks})
	for _, p := range problems {
		if p.Path == "servers" && len(req.Servers) == 0 {
			continue
		}
		add("action."+p.Path, p.Rule, p.Message)
	}
	sc.Action.Secrets = nil
	for _, st := range steps {
		for _, p := range st.Manifest.Parameters {
			if _, given := a.Parameters[p.Variable]; given && p.Secret() && !containsString(sc.Action.Secrets, p.Variable) {
				sc.Action.Secrets = append(sc.Action.Secrets, p.Variable)
			}
		}
	}
	errs = append(errs, keptNotSecret("action.parameters", kept, sc.Action.Secrets)...)
	return errs, nil
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

func ruleOf(missing bool) string {
	if missing {
		return manifest.ValueMissing
	}
	return manifest.ValueInvalid
}

// writeScheduleErr maps store errors of a schedule write to answers.
func writeScheduleErr(err error) error {
	if errors.Is(err, store.ErrNoSecretKey) {
		return newProblem(http.StatusServiceUnavailable, "", "no secret key is configured (PACKFLOW_SECRET_KEY); password values cannot be stored")
	}
	return err
}

func (s *Server) createSchedule(c echo.Context) error {
	var req scheduleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalFrom(c)
	sc := store.Schedule{AccountID: p.AccountID, User: p.UserID}
	next, err := s.checkSchedule(c, req, &sc, nil, nil)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	sc, err = s.store.PutSchedule(ctx, sc, next)
	if err != nil {
		return writeScheduleErr(err)
	}
	out, err := s.toScheduleJSON(ctx, sc)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, out)
}

// findSchedule returns the schedule named in the path, 404 unless the
// caller may see it.
func (s *Server) findSchedule(c echo.Context) (store.Schedule, error) {
	sc, err := s.store.Schedule(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return sc, notFound("schedule")
	}
	if err != nil {
		return sc, writeScheduleErr(err)
	}
	if err := s.mustSee(c, sc.AccountID, "schedule"); err != nil {
		return sc, err
	}
	return sc, nil
}

func (s *Server) listSchedules(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := s.store.Schedules(ctx)
	if err != nil {
		return writeScheduleErr(err)
	}
	vis, err := visibleTo(ctx, s, principalFrom(c), all, func(x store.Schedule) string { return x.AccountID })
	if err != nil {
		return err
	}
	out := make([]scheduleJSON, len(vis))
	for i, sc := range vis {
		if out[i], err = s.toScheduleJSON(ctx, sc); err != nil {
			return err
		}
	}
	return listPage(c, out, func(x scheduleJSON) string { return x.ID })
}

// visibleTo keeps the items whose owner p may see.
func visibleTo[T any](ctx context.Context, s *Server, p Principal, items []T, owner func(T) string) ([]T, error) {
	out := make([]T, 0, len(items))
	for _, it := range items {
		ok, err := s.canSee(ctx, p, owner(it))
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, it)
		}
	}
	return out, nil
}

func (s *Server) getSchedule(c echo.Context) error {
	sc, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	out, err := s.toScheduleJSON(c.Request().Context(), sc)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// putSchedule replaces a schedule; the change takes effect at the
// schedulers' next poll. As with blueprints, a password sent back masked
// (as GET shows it) keeps the stored value while the action deploys the
// same blueprint or package and the parameter is still a password.
func (s *Server) putSchedule(c echo.Context) error {
	old, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	var req scheduleRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var kept []string
	if a := req.Action; a != nil && a.Kind == old.Action.Kind && a.Blueprint == old.Action.Blueprint &&
		strings.EqualFold(a.Package, old.Action.Package) {
		kept = keepMasked(a.Parameters, old.Action.Parameters, old.Action.Secrets)
	}
	sc := old
	next, err := s.checkSchedule(c, req, &sc, &old, kept)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	if sc, err = s.store.PutSchedule(ctx, sc, next); err != nil {
		return writeScheduleErr(err)
	}
	out, err := s.toScheduleJSON(ctx, sc)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (s *Server) deleteSchedule(c echo.Context) error {
	sc, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteSchedule(c.Request().Context(), sc.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) pauseSchedule(c echo.Context) error { return s.setEnabled(c, false) }

func (s *Server) resumeSchedule(c echo.Context) error { return s.setEnabled(c, true) }

// setEnabled pauses or resumes a schedule. Resuming fires next at the
// schedule's next time from now: fires while paused are not caught up.
func (s *Server) setEnabled(c echo.Context, enabled bool) error {
	sc, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var next time.Time
	if enabled {
		if sc.Action.Kind == store.ActionDeploy && len(sc.Action.Servers) == 0 {
			return validationProblem([]FieldError{{Path: "action.servers", Rule: manifest.ValueMissing,
				Message: "a deploy needs at least one server: set them with PUT before resuming"}})
		}
		sp, err := spec.Parse(specOf(sc))
		if err != nil {
			return validationProblem([]FieldError{{Path: "cron", Rule: manifest.ValueInvalid, Message: err.Error()}})
		}
		next = sp.Next(time.Now())
	}
	if sc, err = s.store.SetScheduleEnabled(ctx, sc.ID, enabled, next); err != nil {
		return writeScheduleErr(err)
	}
	out, err := s.toScheduleJSON(ctx, sc)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

// runScheduleNow fires a schedule at once, paused or not, besides its
// fires on time: 202 with the run's task.
func (s *Server) runScheduleNow(c echo.Context) error {
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	sc, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	now := time.Now().UTC()
	key := "manual-" + strconv.FormatInt(now.UnixMilli(), 10)
	run := store.ScheduleRun{Key: key, ScheduleID: sc.ID, Trigger: store.TriggerManual, ScheduledAt: now, FiredAt: now,
		Status: store.StatusQueued, TaskID: store.ScheduleTaskID(sc.ID, key)}
	if err := s.store.PutScheduleRun(ctx, run); err != nil {
		return err
	}
	task, opts, err := tasks.NewScheduleRunTask(sc.ID, key)
	if err != nil {
		return err
	}
	if _, err := s.opts.Enqueuer.Enqueue(ctx, sc.AccountID, task, opts...); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"task_id": run.TaskID, "run": key, "schedule_id": sc.ID})
}

// listScheduleRuns answers GET /schedules/{id}/runs: newest first, each
// deploy run's outcome brought up to date with its execution.
func (s *Server) listScheduleRuns(c echo.Context) error {
	sc, err := s.findSchedule(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	runs, err := s.store.ScheduleRuns(ctx, sc.ID, 0)
	if err != nil {
		return err
	}
	out := make([]scheduleRunJSON, len(runs))
	for i, r := range runs {
		if r, err = tasks.RefreshScheduleRun(ctx, s.store, r); err != nil {
			return err
		}
		out[i] = toScheduleRunJSON(r)
	}
	// Newest first, paged by a key that grows as runs get older.
	return listPage(c, out, func(x scheduleRunJSON) string {
		return fmt.Sprintf("%020d:%s", math.MaxInt64-x.Time.UnixMilli(), x.Key)
	})
}
