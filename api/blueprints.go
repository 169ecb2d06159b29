package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func (s *Server) blueprintRoutes(g *echo.Group) {
	g.POST("/blueprints", s.createBlueprint, requireRole(store.RoleOperator))
	g.GET("/blueprints", s.listBlueprints)
	g.GET("/blueprints/:id", s.getBlueprint)
	g.PUT("/blueprints/:id", s.putBlueprint, requireRole(store.RoleOperator))
	g.DELETE("/blueprints/:id", s.deleteBlueprint, requireRole(store.RoleOperator))
	g.GET("/blueprints/:id/form", s.blueprintForm)
	g.POST("/blueprints/:id/deploy", s.deployBlueprint, requireRole(store.RoleOperator))
	g.POST("/blueprints/:id/deploy/plan", s.deployBlueprint, requireRole(store.RoleOperator))
}

type blueprintStepJSON struct {
	Package    string            `json:"package"`
	Version    string            `json:"version"`
	Parameters map[string]string `json:"parameters"`
}

type blueprintRequest struct {
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Steps       []blueprintStepJSON `json:"steps"`
}

// blueprintJSON is a blueprint as the API shows it: password values
// masked.
type blueprintJSON struct {
	ID          string              `json:"id"`
	Account     string              `json:"account"`
	Name        string              `json:"name"`
	Description string              `json:"description"`
	Steps       []blueprintStepJSON `json:"steps"`
	CreatedAt   time.Time           `json:"created_at"`
	UpdatedAt   time.Time           `json:"updated_at"`
}

func toBlueprintJSON(b store.Blueprint) blueprintJSON {
	out := blueprintJSON{ID: b.ID, Account: b.AccountID, Name: b.Name, Description: b.Description,
		CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt, Steps: make([]blueprintStepJSON, len(b.Steps))}
	for i, st := range b.Steps {
		params := make(map[string]string, len(st.Parameters))
		for k, v := range st.Parameters {
			params[k] = v
		}
		for _, k := range st.Secrets {
			if _, ok := params[k]; ok {
				params[k] = remote.MaskText
			}
		}
		out.Steps[i] = blueprintStepJSON{Package: st.Package, Version: st.Version, Parameters: params}
	}
	return out
}

// packageUse returns the check of whether the caller may deploy a package.
func (s *Server) packageUse(c echo.Context) (func(context.Context, store.Package) (bool, error), error) {
	view, err := s.libraryView(c.Request().Context(), principalFrom(c))
	if err != nil {
		return nil, err
	}
	return func(_ context.Context, p store.Package) (bool, error) { return view.sees(p), nil }, nil
}

// visibleServers returns the servers the caller may see.
func (s *Server) visibleServers(c echo.Context) ([]store.Server, error) {
	ctx := c.Request().Context()
	all, err := s.store.Servers(ctx)
	if err != nil {
		return nil, err
	}
	return visible(ctx, s, principalFrom(c), all, func(x store.Server) string { return x.AccountID })
}

func toFieldErrors(ps []tasks.Problem) []FieldError {
	out := make([]FieldError, len(ps))
	for i, p := range ps {
		out[i] = FieldError{Path: p.Path, Rule: p.Rule, Message: p.Message}
	}
	return out
}

// checkBlueprint validates req and returns its steps for the store, with
// password parameters marked secret, or a 422 with every problem. kept[i]
// names the parameters of step i whose stored password an edit keeps
// (keepMasked); each must still be a password.
func (s *Server) checkBlueprint(c echo.Context, req blueprintRequest, kept [][]string) ([]store.BlueprintStep, error) {
	var errs []FieldError
	if msg := store.CheckName(req.Name); msg != "" {
		errs = append(errs, FieldError{Path: "name", Rule: ruleFor(req.Name == ""), Message: msg})
	}
	if len(req.Description) > 4000 {
		errs = append(errs, FieldError{Path: "description", Rule: ruleInvalid, Message: "a description has at most 4000 characters"})
	}
	if len(req.Steps) > store.MaxBlueprintSteps {
		// The steps are not resolved one by one: that is the cost the
		// bound avoids.
		errs = append(errs, FieldError{Path: "steps", Rule: ruleInvalid, Message: fmt.Sprintf(
			"a blueprint has at most %d steps, not %d; split it into several blueprints", store.MaxBlueprintSteps, len(req.Steps))})
		return nil, validationProblem(errs)
	}
	canUse, err := s.packageUse(c)
	if err != nil {
		return nil, err
	}
	refs := make([]tasks.StepRef, len(req.Steps))
	for i, st := range req.Steps {
		refs[i] = tasks.StepRef{Package: strings.ToLower(st.Package), Version: strings.TrimPrefix(st.Version, "v"), Parameters: st.Parameters}
		if st.Version == "" {
			refs[i].Version = store.ActiveVersion
		}
	}
	steps, problems, err := tasks.ResolveSteps(c.Request().Context(), s.store, refs, canUse)
	if err != nil {
		return nil, err
	}
	errs = append(errs, toFieldErrors(problems)...)
	visibleServers, err := s.visibleServers(c)
	if err != nil {
		return nil, err
	}
	nets, err := s.visibleNetworks(c)
	if err != nil {
		return nil, err
	}
	out := make([]store.BlueprintStep, len(refs))
	for i, ref := range refs {
		out[i] = store.BlueprintStep{Package: ref.Package, Version: ref.Version, Parameters: ref.Parameters}
	}
	if len(problems) > 0 {
		return nil, validationProblem(errs)
	}
	for i, ps := range steps {
		for k, v := range ps.Parameters {
			path := fmt.Sprintf("steps[%d].parameters.%s", i, k)
			p, ok := ps.Manifest.Parameter(k)
			switch {
			case !ok:
				errs = append(errs, FieldError{Path: path, Rule: ruleInvalid, Message: fmt.Sprintf("package %s declares no parameter %q", ps.Manifest.Metadata.Name, k)})
				continue
			case p.System():
				errs = append(errs, FieldError{Path: path, Rule: ruleInvalid, Message: "system parameters are filled in per server"})
				continue
			case p.Secret():
				out[i].Secrets = append(out[i].Secrets, k)
			}
			if v == "" {
				continue // asked at deployment
			}
			if err := tasks.CheckDesignParameter(p, v, visibleServers, nets); err != nil {
				var ve *manifest.ValueError
				if errors.As(err, &ve) {
					errs = append(errs, FieldError{Path: path, Rule: ve.Rule, Message: ve.Message})
				}
			}
		}
	}
	reported := map[string]bool{}
	for _, e := range errs {
		reported[e.Path] = true
	}
	for i := range kept {
		if i >= len(out) {
			continue
		}
		for _, e := range keptNotSecret(fmt.Sprintf("steps[%d].parameters", i), kept[i], out[i].Secrets) {
			if !reported[e.Path] {
				errs = append(errs, e)
			}
		}
	}
	if len(errs) > 0 {
		return nil, validationProblem(errs)
	}
	return out, nil
}

func (s *Server) createBlueprint(c echo.Context) error {
	var req blueprintRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	steps, err := s.checkBlueprint(c, req, nil)
	if err != nil {
		return err
	}
	b, err := s.store.PutBlueprint(c.Request().Context(), store.Blueprint{AccountID: principalFrom(c).AccountID,
		Name: req.Name, Description: req.Description, Steps: steps})
	if errors.Is(err, store.ErrNoSecretKey) {
		return newProblem(http.StatusServiceUnavailable, "", "no secret key is configured (PACKFLOW_SECRET_KEY); password values cannot be stored")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toBlueprintJSON(b))
}

// findBlueprint returns blueprint id, or 404 when the caller may not see
// it.
func (s *Server) findBlueprint(c echo.Context) (store.Blueprint, error) {
	b, err := s.store.Blueprint(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return b, notFound("blueprint")
	}
	if err != nil {
		return b, err
	}
	return b, s.mustSee(c, b.AccountID, "blueprint")
}

func (s *Server) listBlueprints(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := s.store.Blueprints(ctx)
	if err != nil {
		return err
	}
	vis, err := visible(ctx, s, principalFrom(c), all, func(x store.Blueprint) string { return x.AccountID })
	if err != nil {
		return err
	}
	out := make([]blueprintJSON, len(vis))
	for i, b := range vis {
		out[i] = toBlueprintJSON(b)
	}
	return listPage(c, out, func(x blueprintJSON) string { return x.ID })
}

func (s *Server) getBlueprint(c echo.Context) error {
	b, err := s.findBlueprint(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toBlueprintJSON(b))
}

// putBlueprint replaces a blueprint. A password value sent back masked
// (as GET shows it) keeps the stored value, in the same step of the same
// package, only while the parameter is still a password (else 422).
func (s *Server) putBlueprint(c echo.Context) error {
	old, err := s.findBlueprint(c)
	if err != nil {
		return err
	}
	var req blueprintRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	kept := make([][]string, len(req.Steps))
	for i := range req.Steps {
		if i >= len(old.Steps) || old.Steps[i].Package != strings.ToLower(req.Steps[i].Package) {
			continue
		}
		kept[i] = keepMasked(req.Steps[i].Parameters, old.Steps[i].Parameters, old.Steps[i].Secrets)
	}
	steps, err := s.checkBlueprint(c, req, kept)
	if err != nil {
		return err
	}
	b, err := s.store.PutBlueprint(c.Request().Context(), store.Blueprint{ID: old.ID, Name: req.Name,
		Description: req.Description, Steps: steps})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toBlueprintJSON(b))
}

func (s *Server) deleteBlueprint(c echo.Context) error {
	b, err := s.findBlueprint(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteBlueprint(c.Request().Context(), b.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// blueprintForm answers GET /blueprints/{id}/form: the merged parameter
// form of its steps.
func (s *Server) blueprintForm(c echo.Context) error {
	b, err := s.findBlueprint(c)
	if err != nil {
		return err
	}
	canUse, err := s.packageUse(c)
	if err != nil {
		return err
	}
	steps, problems, err := tasks.ResolveSteps(c.Request().Context(), s.store, blueprintRefs(b), canUse)
	if err != nil {
		return err
	}
	if len(problems) > 0 {
		return validationProblem(toFieldErrors(problems))
	}
	type stepInfo struct {
		Package string `json:"package"`
		Version string `json:"version"`
		Name    string `json:"name"`
		OS      string `json:"os"`
	}
	info := make([]stepInfo, len(steps))
	for i, st := range steps {
		info[i] = stepInfo{Package: st.Version.PackageID, Version: st.Version.Version, Name: st.Manifest.Metadata.Name, OS: st.Manifest.OS()}
	}
	nets, err := s.visibleNetworks(c)
	if err != nil {
		return err
	}
	fields := tasks.OfferNetworks(tasks.MergeForm(steps), nets)
	return c.JSON(http.StatusOK, map[string]any{"blueprint_id": b.ID, "steps": info, "fields": fields})
}

func blueprintRefs(b store.Blueprint) []tasks.StepRef {
	refs := make([]tasks.StepRef, len(b.Steps))
	for i, st := range b.Steps {
		refs[i] = tasks.StepRef{Package: st.Package, Version: st.Version, Parameters: st.Parameters}
	}
	return refs
}

// deployRequest is the body of POST /blueprints/{id}/deploy.
type deployRequest struct {
	Servers    []string          `json:"servers"`
	Parameters map[string]string `json:"parameters"`
	Retry      *tasks.Retry      `json:"retry"`
	Timeout    *tasks.Duration   `json:"timeout"`
	// QueueWithoutWorker queues the runs even when no live worker serves
	// a server's datacenter (see datacenters.go).
	QueueWithoutWorker bool `json:"queue_without_worker"`
}

func (s *Server) deployBlueprint(c echo.Context) error {
	b, err := s.findBlueprint(c)
	if err != nil {
		return err
	}
	var req deployRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	return s.deploy(c, b.ID, blueprintRefs(b), req)
}

// deploy checks and starts a deployment: 202 with the execution and its
// task IDs, or 422 with every problem.
func (s *Server) deploy(c echo.Context, blueprintID string, refs []tasks.StepRef, req deployRequest) error {
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	ctx := c.Request().Context()
	p := principalFrom(c)
	vis, err := s.visibleServers(c)
	if err != nil {
		return err
	}
	var errs []FieldError
	var targets []store.Server
	var paths []string
	seen := map[string]bool{}
	for i, ref := range req.Servers {
		sv := findServerRef(vis, ref)
		switch {
		case sv == nil:
			errs = append(errs, FieldError{Path: fmt.Sprintf("servers[%d]", i), Rule: ruleInvalid, Message: "no such server: " + ref})
		case seen[sv.ID]:
			errs = append(errs, FieldError{Path: fmt.Sprintf("servers[%d]", i), Rule: ruleInvalid, Message: "server listed twice: " + ref})
		default:
			seen[sv.ID] = true
			targets = append(targets, *sv)
			paths = append(paths, fmt.Sprintf("servers[%d]", i))
		}
	}
	if len(targets) > 0 && !req.QueueWithoutWorker {
		live, err := s.liveDatacenters(ctx)
		if err != nil {
			return err
		}
		errs = append(errs, unservedProblems(targets, paths, live)...)
	}
	var timeout time.Duration
	if req.Timeout != nil {
		timeout = time.Duration(*req.Timeout)
		if timeout < 0 {
			errs = append(errs, FieldError{Path: "timeout", Rule: ruleInvalid, Message: "timeout must not be negative"})
		}
	}
	canUse, err := s.packageUse(c)
	if err != nil {
		return err
	}
	acct, err := s.store.Account(ctx, p.AccountID)
	if err != nil {
		return err
	}
	dreq := tasks.DeployRequest{AccountID: p.AccountID, AccountName: acct.Name, User: p.UserID, BlueprintID: blueprintID,
		Steps: refs, Servers: targets, Visible: vis, Parameters: req.Parameters, Retry: req.Retry, Timeout: timeout,
		Retention: s.opts.ExecutionRetention, CanUse: canUse}
	if dreq.Networks, err = s.visibleNetworks(c); err != nil {
		return err
	}
	if len(errs) > 0 {
		// Report the parameter problems too, checked without targets.
		dreq.Servers = nil
	}
	if isPlan(c) {
		return s.answerPlan(c, dreq, errs)
	}
	e, ids, err := tasks.Deploy(ctx, s.store, s.opts.Enqueuer, dreq)
	var pe *tasks.ProblemsError
	if errors.As(err, &pe) {
		for _, pr := range pe.Problems {
			if len(errs) > 0 && pr.Path == "servers" {
				continue
			}
			errs = append(errs, FieldError{Path: pr.Path, Rule: pr.Rule, Message: pr.Message})
		}
		return validationProblem(errs)
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	if errors.Is(err, store.ErrNoSecretKey) {
		return newProblem(http.StatusServiceUnavailable, "", "no secret key is configured (PACKFLOW_SECRET_KEY); password values cannot be stored")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"execution_id": e.ID, "task_ids": ids})
}

// findServerRef finds a server by ID or name.
func findServerRef(vis []store.Server, ref string) *store.Server {
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
