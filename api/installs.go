package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// maxInstallRetries bounds the retry_max an activation may ask for.
const maxInstallRetries = 25

// installRoutes registers activation and the fleet's install status.
func (s *Server) installRoutes(g *echo.Group) {
	publisher := requireRole(store.RolePublisher)
	g.POST("/packages/:uuid/versions/:version/activate-install", s.activateInstall, publisher)
	g.POST("/packages/:uuid/active-version", s.changeActiveVersion, publisher)
	g.GET("/packages/:uuid/installs", s.listInstalls)
}

// activateRequest is the body of POST .../activate-install (all optional).
type activateRequest struct {
	// Force re-installs the version on nodes that have it.
	Force bool `json:"force"`
	// Retry is the install tasks' retry policy; the workers' defaults
	// (retry_max 3, jittered backoff) apply to what it leaves out.
	Retry *tasks.Retry `json:"retry"`
}

// activeVersionRequest is the body of POST /packages/{uuid}/active-version.
type activeVersionRequest struct {
	Version string       `json:"version"`
	Force   bool         `json:"force"`
	Retry   *tasks.Retry `json:"retry"`
}

// activationAccepted is the 202 answer of both activation routes.
type activationAccepted struct {
	TaskID    string `json:"task_id"`
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// Closure is the closure as resolved when the request was accepted;
	// the task resolves it again and records it.
	Closure []tasks.VersionRef `json:"closure"`
}

// activateInstall answers POST /packages/{uuid}/versions/{version}/activate-install.
func (s *Server) activateInstall(c echo.Context) error {
	var req activateRequest
	if err := decodeOptionalJSON(c, &req); err != nil {
		return err
	}
	errs := checkRetry(req.Retry, "retry")
	p, v, err := s.version(c)
	if err != nil {
		return err
	}
	return s.activate(c, p, v.Version, req.Force, req.Retry, errs)
}

// changeActiveVersion answers POST /packages/{uuid}/active-version: the
// same as activate-install of the version named in the body.
func (s *Server) changeActiveVersion(c echo.Context) error {
	var req activeVersionRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	errs := checkRetry(req.Retry, "retry")
	p, err := s.pkg(c)
	if err != nil {
		return err
	}
	version := canonicalVersion(strings.TrimSpace(req.Version))
	if version == "" {
		errs = append(errs, FieldError{Path: "version", Rule: "required", Message: "name the version to make active"})
	} else if _, err := s.store.Version(c.Request().Context(), p.ID, version); errors.Is(err, store.ErrNotFound) {
		errs = append(errs, FieldError{Path: "version", Rule: "exists",
			Message: fmt.Sprintf("version %s of %s is not published; see GET /api/v1/packages/%s", version, p.ID, p.ID)})
	} else if err != nil {
		return err
	}
	return s.activate(c, p, version, req.Force, req.Retry, errs)
}

// activate checks that the caller manages the package and that the
// version's dependencies resolve, then enqueues package:activate-install.
// errs are problems of the request found so far.
func (s *Server) activate(c echo.Context, p store.Package, version string, force bool, retry *tasks.Retry, errs []FieldError) error {
	ctx := c.Request().Context()
	caller := principalFrom(c)
	ok, err := s.canSee(ctx, caller, p.AccountID)
	if err != nil {
		return err
	}
	if !ok {
		return newProblem(http.StatusForbidden, "", "only the account that owns a package (or one above it) activates its versions")
	}
	var closure tasks.Closure
	if version != "" && len(errs) == 0 {
		closure, err = tasks.Resolve(ctx, tasks.StoreCatalog{Store: s.store}, tasks.VersionRef{UUID: p.ID, Version: version})
		var re *tasks.ResolveError
		switch {
		case errors.As(err, &re):
			errs = append(errs, FieldError{Path: "requires", Rule: "dependency." + string(re.Kind),
				Message: fmt.Sprintf("%s: %s", tasks.FormatChain(re.Chain), re.Detail)})
		case err != nil:
			return err
		}
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	task, payload, opts, err := tasks.NewActivateTask(tasks.ActivateRequest{PackageID: p.ID, Version: version, Force: force,
		AccountID: caller.AccountID, RequestedBy: caller.UserID, InstallRetry: retry})
	if err != nil {
		return err
	}
	if _, err := s.opts.Enqueuer.Enqueue(ctx, caller.AccountID, task, opts...); err != nil {
		return newProblem(http.StatusServiceUnavailable, "", "cannot queue the activation now; try again").withCause(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tasks/"+payload.ID)
	return c.JSON(http.StatusAccepted, activationAccepted{TaskID: payload.ID, PackageID: p.ID, Version: version, Closure: closure.Refs()})
}

// checkRetry reports every bad field of an install retry policy.
func checkRetry(r *tasks.Retry, path string) []FieldError {
	if r == nil {
		return nil
	}
	var errs []FieldError
	if r.Max != nil && (*r.Max < 0 || *r.Max > maxInstallRetries) {
		errs = append(errs, FieldError{Path: path + ".max", Rule: "range",
			Message: fmt.Sprintf("max is a number of retries from 0 (none) to %d; leave it out for the default, %d", maxInstallRetries, tasks.DefaultRetryMax)})
	}
	if r.Backoff < 0 {
		errs = append(errs, FieldError{Path: path + ".backoff", Rule: "range", Message: "backoff must not be negative"})
	}
	if r.BackoffMax < 0 {
		errs = append(errs, FieldError{Path: path + ".backoff_max", Rule: "range", Message: "backoff_max must not be negative"})
	}
	if r.Backoff > 0 && r.BackoffMax > 0 && r.BackoffMax < r.Backoff {
		errs = append(errs, FieldError{Path: path + ".backoff_max", Rule: "range",
			Message: fmt.Sprintf("backoff_max %v is below backoff %v", time.Duration(r.BackoffMax), time.Duration(r.Backoff))})
	}
	return errs
}

// decodeOptionalJSON decodes the body into v like decodeJSON, except that
// an empty body leaves v as it is.
func decodeOptionalJSON(c echo.Context, v any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return err // over the limit: 413
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	c.Request().Body = io.NopCloser(bytes.NewReader(body))
	return decodeJSON(c, v)
}

// nodeInstallJSON is one live node's install of the active version.
type nodeInstallJSON struct {
	Node string `json:"node"`
	// State is installed, pending or failed.
	State    string `json:"state"`
	Version  string `json:"version"`
	Error    string `json:"error,omitempty"`
	Attempts int    `json:"attempts"`
	// UpdatedAt is when the node last reported (absent before it did).
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
	TaskID    string     `json:"task_id,omitempty"`
	// Stale, Joining and Draining come from the node's heartbeat: a
	// stale node's pending install waits for it to come back.
	Stale    bool `json:"stale"`
	Joining  bool `json:"joining,omitempty"`
	Draining bool `json:"draining,omitempty"`
}

// fleetJSON sums up where a package's active version is installed.
type fleetJSON struct {
	ActiveVersion string `json:"active_version"`
	Nodes         int    `json:"nodes"`
	Installed     int    `json:"installed"`
	Pending       int    `json:"pending"`
	Failed        int    `json:"failed"`
	// Summary says it in words: "active on 2 of 3 nodes".
	Summary string `json:"summary"`
}

// installsJSON is the answer of GET /packages/{uuid}/installs.
type installsJSON struct {
	PackageID string `json:"package_id"`
	fleetJSON
	// Closure is the environment installed with the active version,
	// dependencies first, as frozen at activation.
	Closure      []store.ClosureVersion `json:"closure"`
	ActivationID string                 `json:"activation_id,omitempty"`
	ActivatedAt  *time.Time             `json:"activated_at,omitempty"`
	Items        []nodeInstallJSON      `json:"items"`
	NextCursor   string                 `json:"next_cursor"`
}

// fleetInstalls returns every live node's install of p's active version,
// by node ID, and the sums. Without an active version the list is empty.
func (s *Server) fleetInstalls(ctx context.Context, p store.Package) ([]nodeInstallJSON, fleetJSON, store.Activation, error) {
	fleet := fleetJSON{ActiveVersion: p.ActiveVersion}
	nodes, err := s.store.Nodes(ctx)
	if err != nil {
		return nil, fleetJSON{}, store.Activation{}, err
	}
	fleet.Nodes = len(nodes)
	act, err := s.store.Activation(ctx, p.ID)
	if errors.Is(err, store.ErrNotFound) {
		fleet.Summary = fmt.Sprintf("no active version (%d nodes)", len(nodes))
		return []nodeInstallJSON{}, fleet, store.Activation{}, nil
	}
	if err != nil {
		return nil, fleetJSON{}, store.Activation{}, err
	}
	fleet.ActiveVersion = act.Version
	recs, err := s.store.NodeInstalls(ctx, p.ID)
	if err != nil {
		return nil, fleetJSON{}, store.Activation{}, err
	}
	items := make([]nodeInstallJSON, 0, len(nodes))
	for _, n := range nodes { // sorted by ID
		it := nodeInstallJSON{Node: n.ID, State: store.InstallPending, Version: act.Version,
			Stale: n.Stale, Joining: n.Joining, Draining: n.Draining}
		if r, ok := recs[n.ID]; ok && r.Activation == act.ID {
			at := r.UpdatedAt.UTC()
			it.State, it.Error, it.Attempts, it.UpdatedAt, it.TaskID = r.State, publicText(r.Error), r.Attempts, &at, r.TaskID
		}
		switch it.State {
		case store.InstallInstalled:
			fleet.Installed++
		case store.InstallFailed:
			fleet.Failed++
		default:
			fleet.Pending++
		}
		items = append(items, it)
	}
	fleet.Summary = fmt.Sprintf("active on %d of %d nodes", fleet.Installed, fleet.Nodes)
	if fleet.Failed > 0 {
		fleet.Summary += fmt.Sprintf(", failed on %d", fleet.Failed)
	}
	return items, fleet, act, nil
}

// listInstalls answers GET /packages/{uuid}/installs: every live node
// with the state of its install of the active version.
func (s *Server) listInstalls(c echo.Context) error {
	req, err := parsePage(c)
	if err != nil {
		return err
	}
	p, err := s.pkg(c)
	if err != nil {
		return err
	}
	items, fleet, act, err := s.fleetInstalls(c.Request().Context(), p)
	if err != nil {
		return err
	}
	pg := paginate(items, req, func(n nodeInstallJSON) string { return n.Node })
	out := installsJSON{PackageID: p.ID, fleetJSON: fleet, Closure: nonNil(act.Closure), ActivationID: act.ID,
		Items: pg.Items, NextCursor: pg.NextCursor}
	if !act.ActivatedAt.IsZero() {
		at := act.ActivatedAt.UTC()
		out.ActivatedAt = &at
	}
	return c.JSON(http.StatusOK, out)
}

// fleetSummary is the "active on N of M nodes" of a package, for
// GET /packages/{uuid}; nil when it has no active version.
func (s *Server) fleetSummary(ctx context.Context, p store.Package) (*fleetJSON, error) {
	if p.ActiveVersion == "" {
		return nil, nil
	}
	_, fleet, _, err := s.fleetInstalls(ctx, p)
	if err != nil {
		return nil, err
	}
	return &fleet, nil
}
