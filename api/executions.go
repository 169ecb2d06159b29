package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
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
	// The audit: the parameters as given (passwords masked), who
	// cancelled and when.
	Parameters  map[string]string `json:"parameters"`
	CancelledBy string            `json:"cancelled_by,omitempty"`
	CancelledAt *time.Time        `json:"cancelled_at,omitempty"`
}

func toExecutionJSON(e store.Execution, runs []store.ServerRun) executionJSON {
	if runs == nil {
		runs = []store.ServerRun{}
	}
	runs = publicRuns(runs)
	params := e.Parameters
	if params == nil {
		params = map[string]string{}
	}
	return executionJSON{ID: e.ID, Account: e.AccountID, BlueprintID: e.BlueprintID, User: e.User,
		Status: store.ExecutionStatus(runs), Steps: e.Steps, Servers: runs, Cancelled: e.Cancelled, CreatedAt: e.CreatedAt,
		Parameters: params, CancelledBy: e.CancelledBy, CancelledAt: e.CancelledAt}
}

// createExecutionRequest deploys one package without a blueprint.
type createExecutionRequest struct {
	Package    string            `json:"package"`
	Version    string            `json:"version"`
	Servers    []string          `json:"servers"`
	Parameters map[string]string `json:"parameters"`
	Retry      *tasks.Retry      `json:"retry"`
	Timeout    *tasks.Duration   `json:"timeout"`
	// QueueWithoutWorker: see deployRequest.
	QueueWithoutWorker bool `json:"queue_without_worker"`
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
	return s.deploy(c, "", refs, deployRequest{Servers: req.Servers, Parameters: req.Parameters, Retry: req.Retry, Timeout: req.Timeout,
		QueueWithoutWorker: req.QueueWithoutWorker})
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
		return queryProblem(errs)
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
	var live map[string]bool
	if store.ExecutionStatus(runs) != store.StatusSucceeded {
		if live, err = s.liveDatacenters(c.Request().Context()); err != nil {
			return err
		}
	}
	out := waitingExecutionJSON{executionJSON: toExecutionJSON(e, runs), Servers: []waitingRunJSON{}}
	out.markWaiting(live)
	return c.JSON(http.StatusOK, out)
}

// waitingExecutionJSON is an execution whose queued servers say when no
// live worker serves their datacenter.
type waitingExecutionJSON struct {
	executionJSON
	// Servers shadows executionJSON.Servers.
	Servers []waitingRunJSON `json:"servers"`
	// Waiting names the datacenters the queued servers wait a worker for.
	Waiting string `json:"waiting,omitempty"`
}

type waitingRunJSON struct {
	store.ServerRun
	Waiting string `json:"waiting,omitempty"`
}

func (x *waitingExecutionJSON) markWaiting(live map[string]bool) {
	var dcs []string
	for _, r := range x.executionJSON.Servers {
		w := waitingRunJSON{ServerRun: r}
		dc := r.Datacenter
		if dc == "" {
			dc = store.DefaultDatacenter
		}
		if r.Status == store.StatusQueued && !live[dc] {
			w.Waiting = waitingFor(dc)
			if !slices.Contains(dcs, dc) {
				dcs = append(dcs, dc)
			}
		}
		x.Servers = append(x.Servers, w)
	}
	if len(dcs) > 0 {
		x.Waiting = waitingFor(strings.Join(dcs, ", "))
	}
}

// executionLog answers GET /executions/{id}/log: the log as text, one
// line per output line: time, server, step (numbered from 1, as in the
// events and the record; left out for lines about the server as a
// whole), stream, line. ?server= keeps one server's lines.
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
			step := ""
			if ev.Step > 0 {
				step = " step " + strconv.Itoa(ev.Step)
			}
			if _, err := fmt.Fprintf(w, "%s %s%s %s: %s\n", ev.Time.Format(time.RFC3339Nano), ev.Server, step, ev.Stream, ev.Line); err != nil {
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
//
// Streams share one Redis reader per execution (see eventHub), and a
// token holds at most Options.EventStreamsPerToken of them on this
// process at once: past that the answer is 429 with Retry-After.
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
	last := streamID{}
	if after != "" {
		var ok bool
		if last, ok = parseStreamID(after); !ok {
			return validationProblem([]FieldError{{Path: "Last-Event-ID", Rule: ruleInvalid, Message: "not an event id of this stream"}})
		}
	}
	key := streamKey(principalFrom(c))
	if !s.streams.acquire(key) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(streamRetryAfter))
		return newProblem(http.StatusTooManyRequests, "Too many event streams",
			fmt.Sprintf("this token already holds %d open event streams (PACKFLOW_EVENT_STREAMS_PER_TOKEN); close one or retry later", s.streams.max))
	}
	defer s.streams.release(key)
	w := c.Response()
	w.Header().Set(echo.HeaderContentType, "text/event-stream")
	w.Header().Set(echo.HeaderCacheControl, "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	w.Flush()
	st := &sseStream{w: w, last: last}
	for {
		err := s.followEvents(ctx, e.ID, st)
		switch {
		case errors.Is(err, errFeedLagged):
			continue // catch up from Redis and subscribe again
		case errors.Is(err, errFeedEnded):
			_ = writeSSE(w, st.last.String(), "end", map[string]string{"execution_id": e.ID})
			w.Flush()
			return nil
		case err != nil && ctx.Err() == nil && !errors.Is(err, errHubClosed) && !errors.Is(err, errClientGone):
			s.log(c).Warn("event stream ended", "execution", e.ID, "err", err)
		}
		return nil
	}
}

// streamRetryAfter is the Retry-After, in seconds, of a 429 for too many
// event streams.
const streamRetryAfter = 5

// errClientGone: writing to the client failed.
var errClientGone = errors.New("api: event stream client went away")

// streamKey names what the stream limit counts: the token.
func streamKey(p Principal) string {
	if p.TokenID != "" {
		return p.TokenID
	}
	return p.AccountID + "\x00" + p.UserID
}

// sseStream is one client's stream: the writer and the ID of the last
// event sent.
type sseStream struct {
	w    *echo.Response
	last streamID
}

// send writes the events after st.last.
func (st *sseStream) send(evs []store.Event) error {
	frames := make([]sseFrame, 0, len(evs))
	for _, ev := range evs {
		fr, err := newSSEFrame(ev)
		if err != nil {
			return err
		}
		frames = append(frames, fr)
	}
	return st.sendFrames(frames)
}

// sendFrames writes the frames after st.last.
func (st *sseStream) sendFrames(frames []sseFrame) error {
	for _, fr := range frames {
		if !fr.id.after(st.last) {
			continue
		}
		if _, err := st.w.Write(fr.b); err != nil {
			return errClientGone
		}
		st.last = fr.id
	}
	st.w.Flush()
	return nil
}

// followEvents subscribes st to execution id's feed, sends what lies
// between st.last and the feed's position from Redis, then the feed's
// batches, until the subscription ends (its reason is returned), the
// client goes or ctx ends.
func (s *Server) followEvents(ctx context.Context, id string, st *sseStream) error {
	sub, pos, err := s.events.subscribe(id, st.last.String())
	if err != nil {
		return err
	}
	defer sub.cancel()
	feedPos, _ := parseStreamID(pos)
	for feedPos.after(st.last) {
		evs, err := s.store.Events(ctx, id, st.last.String(), sseBatch, 0)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break // trimmed or expired meanwhile
		}
		if err := st.send(evs); err != nil {
			return err
		}
	}
	keepAlive := time.NewTicker(sseBlock)
	defer keepAlive.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case frames, ok := <-sub.C:
			if !ok {
				return sub.ended()
			}
			if err := st.sendFrames(frames); err != nil {
				return err
			}
			keepAlive.Reset(sseBlock)
		case <-keepAlive.C:
			if _, err := fmt.Fprint(st.w, ": keep-alive\n\n"); err != nil {
				return errClientGone
			}
			st.w.Flush()
		}
	}
}

// ExecutionEnded reports whether every server's run of execution id has
// ended; an execution that no longer exists has ended too.
func (src hubSource) ExecutionEnded(ctx context.Context, id string) (bool, error) {
	e, err := src.Store.Execution(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	runs, err := src.Store.ServerRuns(ctx, e)
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

// hubSource is the store as the event hub reads it.
type hubSource struct{ *store.Store }

// cancelExecution answers POST /executions/{id}/cancel: running steps
// stop (their remote processes are killed) and the rest are skipped; the
// execution records who cancelled. An execution that has ended: 409.
func (s *Server) cancelExecution(c echo.Context) error {
	e, err := s.findExecution(c)
	if err != nil {
		return err
	}
	if err := tasks.Cancel(c.Request().Context(), s.store, e, principalFrom(c).UserID); err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]string{"execution_id": e.ID, "status": "cancelling"})
}

// rerunExecution answers POST /executions/{id}/rerun: failed and
// cancelled servers run again from their first unfinished step. 409 while
// a server still runs, or when none failed or was cancelled.
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
