package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func (s *Server) serverRoutes(g *echo.Group) {
	g.POST("/servers", s.createServer, requireRole(store.RoleOperator))
	g.GET("/servers", s.listServers)
	g.GET("/servers/:id", s.getServer)
	g.PATCH("/servers/:id", s.patchServer, requireRole(store.RoleOperator))
	g.DELETE("/servers/:id", s.deleteServer, requireRole(store.RoleOperator))
	g.POST("/servers/:id/check", s.checkServer, requireRole(store.RoleOperator))
}

// serverRequest is the body of POST /servers and PATCH /servers/{id}; in
// a PATCH, absent fields keep their value.
type serverRequest struct {
	Name       *string              `json:"name"`
	Address    *string              `json:"address"`
	Port       *int                 `json:"port"`
	OS         *string              `json:"os"`
	Transport  *string              `json:"transport"`
	Credential *string              `json:"credential"`
	Datacenter *string              `json:"datacenter"`
	HostKey    *string              `json:"host_key"`
	WinRM      *store.WinRMSettings `json:"winrm"`
}

// apply lays the fields present in r over sv.
func (r serverRequest) apply(sv *store.Server) {
	set := func(dst *string, src *string) {
		if src != nil {
			*dst = *src
		}
	}
	set(&sv.Name, r.Name)
	set(&sv.Address, r.Address)
	set(&sv.OS, r.OS)
	set(&sv.Transport, r.Transport)
	set(&sv.Datacenter, r.Datacenter)
	set(&sv.HostKey, r.HostKey)
	if r.Port != nil {
		sv.Port = *r.Port
	}
	if r.WinRM != nil {
		w := *r.WinRM
		sv.WinRM = &w
	}
}

// approveLocal enforces who may create or change a server on the local
// transport (was is its transport before the change, "" for a new one):
// admins of the root account only, whose token then approves it; 403
// for anyone else. A server leaving the local transport loses its
// approval.
func approveLocal(c echo.Context, was string, sv *store.Server) error {
	if sv.Transport != store.TransportLocal && was != store.TransportLocal {
		return nil
	}
	p := principalFrom(c)
	if !store.MayManageLocal(p.AccountID, p.Role) {
		return newProblem(http.StatusForbidden, "", store.ErrLocalForbidden.Error()+"; use ssh to reach this host instead")
	}
	sv.LocalApprovedBy = ""
	if sv.Transport == store.TransportLocal {
		sv.LocalApprovedBy = p.TokenID
	}
	return nil
}

// resolveServer checks sv with every problem reported, resolving the
// credential (an ID or the name of a credential the caller sees).
func (s *Server) resolveServer(c echo.Context, sv *store.Server, credential *string) error {
	var errs []FieldError
	if credential != nil && *credential != "" {
		id, err := s.credentialRef(c, *credential)
		switch {
		case errors.Is(err, store.ErrNotFound):
			errs = append(errs, FieldError{Path: "credential", Rule: ruleInvalid, Message: "no such credential: " + *credential})
		case err != nil:
			return err
		default:
			sv.CredentialID = id
		}
	}
	for _, p := range store.CheckServer(*sv) {
		if p.Path == "credential" && len(errs) > 0 {
			continue
		}
		errs = append(errs, FieldError{Path: p.Path, Rule: p.Rule, Message: p.Message})
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	return nil
}

// credentialRef returns the ID of the credential ref names (an ID, or a
// name in the caller's account or one it sees), or store.ErrNotFound.
func (s *Server) credentialRef(c echo.Context, ref string) (string, error) {
	ctx := c.Request().Context()
	p := principalFrom(c)
	if cred, err := s.store.Credential(ctx, ref); err == nil {
		if ok, err := s.canSee(ctx, p, cred.AccountID); err != nil || ok {
			return cred.ID, err
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return "", err
	}
	all, err := s.store.Credentials(ctx)
	if err != nil {
		return "", err
	}
	for _, x := range all {
		if x.Name != ref {
			continue
		}
		if ok, err := s.canSee(ctx, p, x.AccountID); err != nil || ok {
			return x.ID, err
		}
	}
	return "", store.ErrNotFound
}

func (s *Server) createServer(c echo.Context) error {
	var req serverRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	sv := store.Server{AccountID: principalFrom(c).AccountID, Datacenter: store.DefaultDatacenter}
	req.apply(&sv)
	if err := approveLocal(c, "", &sv); err != nil {
		return err
	}
	if err := s.resolveServer(c, &sv, req.Credential); err != nil {
		return err
	}
	sv, err := s.store.CreateServer(c.Request().Context(), sv)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, sv)
}

func (s *Server) listServers(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := s.store.Servers(ctx)
	if err != nil {
		return err
	}
	vis, err := visible(ctx, s, principalFrom(c), all, func(x store.Server) string { return x.AccountID })
	if err != nil {
		return err
	}
	live, err := s.liveDatacenters(ctx)
	if err != nil {
		return err
	}
	return listPage(c, withLiveness(vis, live), func(x serverJSON) string { return x.ID })
}

// findServer returns the server ref names, an ID or a name resolved as a
// deployment resolves its servers (findServerRef), or 404 when the caller
// sees no such server.
func (s *Server) findServer(c echo.Context, ref string) (store.Server, error) {
	vis, err := s.visibleServers(c)
	if err != nil {
		return store.Server{}, err
	}
	if sv := findServerRef(vis, ref); sv != nil {
		return *sv, nil
	}
	return store.Server{}, notFound("server")
}

func (s *Server) getServer(c echo.Context) error {
	sv, err := s.findServer(c, c.Param("id"))
	if err != nil {
		return err
	}
	live, err := s.liveDatacenters(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, withLiveness([]store.Server{sv}, live)[0])
}

func (s *Server) patchServer(c echo.Context) error {
	sv, err := s.findServer(c, c.Param("id"))
	if err != nil {
		return err
	}
	var req serverRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	was := sv.Transport
	req.apply(&sv)
	if err := approveLocal(c, was, &sv); err != nil {
		return err
	}
	if err := s.resolveServer(c, &sv, req.Credential); err != nil {
		return err
	}
	sv, err = s.store.UpdateServer(c.Request().Context(), sv.ID, func(x *store.Server) error {
		id, acct, created := x.ID, x.AccountID, x.CreatedAt
		*x = sv
		x.ID, x.AccountID, x.CreatedAt = id, acct, created
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, sv)
}

func (s *Server) deleteServer(c echo.Context) error {
	sv, err := s.findServer(c, c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteServer(c.Request().Context(), sv.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// checkServer answers POST /servers/{id}/check with 202 and a task ID: the
// API never connects to servers itself. A worker serving the server's
// datacenter connects, verifies the host's identity, runs a no-op and
// writes {"ok", "latency_ms", "host_key", "error"} as the task's result,
// which GET /tasks/{id} shows. When no live worker serves the datacenter
// the answer is 422, unless the optional body says
// {"queue_without_worker": true}.
func (s *Server) checkServer(c echo.Context) error {
	sv, err := s.findServer(c, c.Param("id"))
	if err != nil {
		return err
	}
	var req struct {
		QueueWithoutWorker bool `json:"queue_without_worker"`
	}
	if c.Request().ContentLength != 0 {
		if err := decodeJSON(c, &req); err != nil {
			return err
		}
	}
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	ctx := c.Request().Context()
	live, err := s.liveDatacenters(ctx)
	if err != nil {
		return err
	}
	dc := datacenterOf(sv)
	if !live[dc] && !req.QueueWithoutWorker {
		return validationProblem(unservedProblems([]store.Server{sv}, []string{"datacenter"}, live))
	}
	task, opts, err := tasks.NewServerCheckTask(sv)
	if err != nil {
		return err
	}
	info, err := s.opts.Enqueuer.Enqueue(ctx, principalFrom(c).AccountID, task, opts...)
	if err != nil {
		return err
	}
	out := map[string]string{"task_id": info.ID, "server_id": sv.ID}
	if !live[dc] {
		out["waiting"] = waitingFor(dc)
	}
	return c.JSON(http.StatusAccepted, out)
}

// serverJSON is a server with whether a live worker serves its
// datacenter.
type serverJSON struct {
	store.Server
	DatacenterServed bool `json:"datacenter_served"`
}

func withLiveness(svs []store.Server, live map[string]bool) []serverJSON {
	out := make([]serverJSON, len(svs))
	for i, sv := range svs {
		out[i] = serverJSON{Server: sv, DatacenterServed: live[datacenterOf(sv)]}
	}
	return out
}
