package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// SSE tuning: how long one read of the event stream blocks, and how many
// events it takes at most.
const (
	sseBlock = 2 * time.Second
	sseBatch = 500
)

func (s *Server) executionRoutes(g *echo.Group) {
	g.POST("/executions", s.createExecution, requireRole(store.RoleOperator))
	g.POST("/executions/plan", s.createExecution, requireRole(store.RoleOperator))
	g.GET("/executions", s.listExecutions)
	g.GET("/executions/:id", s.getExecution)
	g.GET("/executions/:id/log", s.executionLog)
	g.GET("/executions/:id/events", s.executionEvents)
	g.POST("/executions/:id/cancel", s.cancelExecution, requireRole(store.RoleOperator))
	g.POST("/executions/:id/rerun", s.rerunExecution, requireRole(store.RoleOperator))
}

// executionJSON is an execution with its derived status and every
// server's run.
type executionJSON struct {
	ID          string            `json:"id"`
	Account     string            `json:"account"`
	BlueprintID string            `json:"blueprint_id,omitempty"`
	User        string            `json:"user"`
	Status      string            `json:"status"`
	Steps       []store.ExecStep  `json:"steps"`
	Servers     []store.ServerRun `json:"servers"`
	Cancelled   bool              `json:"cancelled"`
	CreatedAt   time.Time         `json:"created_at"`
}

func toExecutionJSON(e store.Execution, runs []store.ServerRun) executionJSON {
	if runs == nil {
		runs = []store.ServerRun{}
	}
	return executionJSON{ID: e.ID, Account: e.AccountID, BlueprintID: e.BlueprintID, User: e.User,
		Status: store.ExecutionStatus(runs), Steps: e.Steps, Servers: runs, Cancelled: e.Cancelled, CreatedAt: e.CreatedAt}
}

// createExecutionRequest deploys one package without a blueprint.
type createExecutionRequest struct {
	Package    string            `json:"package"`
	Version    string            `json:"version"`
	Servers    []string          `json:"servers"`
	Parameters map[string]string `json:"parameters"`
	Retry      *tasks.Retry      `json:"retry"`
	Timeout    *tasks.Duration   `json:"timeout"`
}

func (s *Server) createExecution(c echo.Context) error {
	var req createExecutionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	if req.Package == "" {
		return validationProblem([]FieldError{{Path: "package", Rule: ruleMissing, Message: "package is required"}})
	}
	version := strings.TrimPrefix(req.Version, "v")
	if version == "" {
		version = store.ActiveVersion
	}
	refs := []tasks.StepRef{{Package: strings.ToLower(req.Package), Version: version}}
	return s.deploy(c, "", refs, deployRequest{Servers: req.Servers, Parameters: req.Parameters, Retry: req.Retry, Timeout: req.Timeout})
}

// findExecution returns the execution in the path, or 404.
func (s *Server) findExecution(c echo.Context) (store.Execution, error) {
	e, err := s.store.Execution(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return e, notFound("execution")
	}
	if err != nil {
		return e, err
	}
	return e, s.mustSee(c, e.AccountID, "execution")
}

// listExecutions answers GET /executions, newest first, filtered by
// ?status=, ?blueprint=, ?server= (ID or name) and ?since= (RFC 3339).
func (s *Server) listExecutions(c echo.Context) error {
	ctx := c.Request().Context()
	status, bp, server := c.QueryParam("status"), c.QueryParam("blueprint"), c.QueryParam("server")
	var since time.Time
	var errs []FieldError
	if v := c.QueryParam("since"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			errs = append(errs, FieldError{Path: "since", Rule: ruleWrongType, Message: "since is an RFC 3339 time"})
		}
		since = t
	}
	switch status {
	case "", store.StatusQueued, store.StatusRunning, store.StatusSucceeded, store.StatusFailed, store.StatusCancelled:
	default:
		errs = append(errs, FieldError{Path: "status", Rule: ruleInvalid, Message: "status is queued, running, succeeded, failed or cancelled"})
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	all, err := s.store.Executions(ctx)
	if err != nil {
		return err
	}
	vis, err := visible(ctx, s, principalFrom(c), all, func(x store.Execution) string { return x.AccountID })
	if err != nil {
		return err
	}
	out := []executionJSON{}
	for _, e := range vis {
		if (bp != "" && e.BlueprintID != bp) || (!since.IsZero() && e.CreatedAt.Before(since)) {
			continue
		}
		runs, err := s.store.ServerRuns(ctx, e)
		if err != nil {
			return err
		}
		ej := toExecutionJSON(e, runs)
		if status != "" && ej.Status != status {
			continue
		}
		if server != "" && !hasServer(runs, server) {
			continue
		}
		out = append(out, ej)
	}
	// Newest first: the cursor key sorts descending by creation time.
	return listPage(c, out, func(x executionJSON) string {
		return fmt.Sprintf("%020d", (1<<62)-x.CreatedAt.UnixNano()) + x.ID
	})
}

func hasServer(runs []store.ServerRun, ref string) bool {
	for _, r := range runs {
		if r.ServerID == ref || r.Name == ref {
			return true
		}
	}
	return false
}

func (s *Server) getExecution(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	runs, err := s.store.ServerRuns(c.Request().Context(), e)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toExecutionJSON(e, runs))
}

// executionLog answers GET /executions/{id}/log: the log as text, one
// line per output line: time, server, step, stream, line. ?server= keeps
// one server's lines.
func (s *Server) executionLog(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	server := c.QueryParam("server")
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	after := ""
	for {
		evs, err := s.store.Events(ctx, e.ID, after, sseBatch, 0)
		if err != nil {
			return err
		}
		for _, ev := range evs {
			after = ev.ID
			if ev.Kind != store.EventLog || (server != "" && ev.Server != server) {
				continue
			}
			if _, err := fmt.Fprintf(w, "%s %s step %d %s: %s\n", ev.Time.Format(time.RFC3339Nano), ev.Server, ev.Step+1, ev.Stream, ev.Line); err != nil {
				return nil // the client went away
			}
		}
		if len(evs) < sseBatch {
			return nil
		}
	}
}

// executionEvents answers GET /executions/{id}/events as Server-Sent
// Events: "log" events (a line of output) and "state" events (a server or
// step changed), each with the stream ID as its id, so that a client
// reconnecting with Last-Event-ID resumes after it. The stream ends with
// an "end" event once every server's run has ended.
func (s *Server) executionEvents(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	after := c.Request().Header.Get("Last-Event-ID")
	if after == "" {
		after = c.QueryParam("last_event_id")
	}
	if after != "" && !validStreamID(after) {
		return validationProblem([]FieldError{{Path: "Last-Event-ID", Rule: ruleInvalid, Message: "not an event id of this stream"}})
	}
	if after == "" {
		after = "0"
	}
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	for {
		evs, err := s.store.Events(ctx, e.ID, after, sseBatch, sseBlock)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		for _, ev := range evs {
			after = ev.ID
			if err := writeSSE(w, ev.ID, ev.Kind, ev); err != nil {
				return nil
			}
		}
		w.Flush()
		if len(evs) == 0 {
			done, err := s.executionDone(c, e.ID)
			if err != nil {
				return err
			}
			if done {
				_ = writeSSE(w, after, "end", map[string]string{"execution_id": e.ID})
				w.Flush()
				return nil
			}
			if _, err := fmt.Fprint(w, ": keep-alive\n\n"); err != nil {
				return nil
			}
			w.Flush()
		}
	}
}

func (s *Server) executionDone(c echo.Context, id string) (bool, error) {
	e, err := s.store.Execution(c.Request().Context(), id)
	if err != nil {
		return false, err
	}
	runs, err := s.store.ServerRuns(c.Request().Context(), e)
	if err != nil {
		return false, err
	}
	for _, r := range runs {
		if !r.Final() {
			return false, nil
		}
	}
	return true, nil
}

func validStreamID(id string) bool {
	ms, seq, ok := strings.Cut(id, "-")
	if !ok {
		seq = "0"
	}
	_, err1 := strconv.ParseUint(ms, 10, 64)
	_, err2 := strconv.ParseUint(seq, 10, 64)
	return err1 == nil && err2 == nil
}

// cancelExecution answers POST /executions/{id}/cancel: running steps
// stop (their remote processes are killed) and the rest are skipped.
func (s *Server) cancelExecution(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	if err := tasks.Cancel(c.Request().Context(), s.store, e); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"execution_id": e.ID, "status": "cancelling"})
}

// rerunExecution answers POST /executions/{id}/rerun: failed and
// cancelled servers run again from their first unfinished step.
func (s *Server) rerunExecution(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	ids, err := tasks.Rerun(c.Request().Context(), s.store, s.opts.Enqueuer, e)
	if err != nil {
		return err
	}
	if ids == nil {
		ids = []string{}
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": e.ID, "task_ids": ids})
}

// writeSSE writes one Server-Sent Event with id, event name and v as JSON
// data (JSON never holds a raw newline, so it is one data line).
func writeSSE(w io.Writer, id, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", id, event, b)
	return err
}
