package api

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

// Networks are an account's networks per datacenter, the choices of
// Network parameters (see tasks' Network values).
func (s *Server) networkRoutes(g *echo.Group) {
	g.POST("/networks", s.createNetwork, requireRole(store.RoleOperator))
	g.GET("/networks", s.listNetworks)
	g.GET("/networks/:id", s.getNetwork)
	g.PATCH("/networks/:id", s.patchNetwork, requireRole(store.RoleOperator))
	g.DELETE("/networks/:id", s.deleteNetwork, requireRole(store.RoleOperator))
}

// networkRequest is the body of POST /networks and PATCH /networks/{id};
// in a PATCH, absent fields keep their value.
type networkRequest struct {
	Name        *string `json:"name"`
	Datacenter  *string `json:"datacenter"`
	CIDR        *string `json:"cidr"`
	Description *string `json:"description"`
}

// apply lays the fields present in r over n.
func (r networkRequest) apply(n *store.Network) {
	for _, f := range []struct{ dst, src *string }{
		{&n.Name, r.Name}, {&n.Datacenter, r.Datacenter}, {&n.CIDR, r.CIDR}, {&n.Description, r.Description},
	} {
		if f.src != nil {
			*f.dst = *f.src
		}
	}
}

// checkNetwork answers 422 with every problem of n.
func checkNetwork(n store.Network) error {
	var errs []FieldError
	for _, p := range store.CheckNetwork(n) {
		errs = append(errs, FieldError{Path: p.Path, Rule: p.Rule, Message: p.Message})
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	return nil
}

func (s *Server) createNetwork(c echo.Context) error {
	var req networkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	n := store.Network{AccountID: principalFrom(c).AccountID, Datacenter: store.DefaultDatacenter}
	req.apply(&n)
	if err := checkNetwork(n); err != nil {
		return err
	}
	n, err := s.store.CreateNetwork(c.Request().Context(), n)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, n)
}

// listNetworks answers GET /networks: the networks the caller sees,
// filtered by ?datacenter= and ?name= when given.
func (s *Server) listNetworks(c echo.Context) error {
	vis, err := s.visibleNetworks(c)
	if err != nil {
		return err
	}
	dc, name := c.QueryParam("datacenter"), c.QueryParam("name")
	out := make([]store.Network, 0, len(vis))
	for _, n := range vis {
		if (dc == "" || n.Datacenter == dc) && (name == "" || n.Name == name) {
			out = append(out, n)
		}
	}
	return listPage(c, out, func(x store.Network) string { return x.ID })
}

// visibleNetworks returns the networks the caller may see.
func (s *Server) visibleNetworks(c echo.Context) ([]store.Network, error) {
	ctx := c.Request().Context()
	all, err := s.store.Networks(ctx)
	if err != nil {
		return nil, err
	}
	return visible(ctx, s, principalFrom(c), all, func(x store.Network) string { return x.AccountID })
}

// findNetwork returns network id, or 404 when it does not exist or the
// caller may not see it.
func (s *Server) findNetwork(c echo.Context) (store.Network, error) {
	n, err := s.store.Network(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return n, notFound("network")
	}
	if err != nil {
		return n, err
	}
	return n, s.mustSee(c, n.AccountID, "network")
}

func (s *Server) getNetwork(c echo.Context) error {
	n, err := s.findNetwork(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, n)
}

func (s *Server) patchNetwork(c echo.Context) error {
	n, err := s.findNetwork(c)
	if err != nil {
		return err
	}
	var req networkRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	req.apply(&n)
	if err := checkNetwork(n); err != nil {
		return err
	}
	n, err = s.store.UpdateNetwork(c.Request().Context(), n.ID, func(x *store.Network) error {
		x.Name, x.Datacenter, x.CIDR, x.Description = n.Name, n.Datacenter, n.CIDR, n.Description
		return nil
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, n)
}

func (s *Server) deleteNetwork(c echo.Context) error {
	n, err := s.findNetwork(c)
	if err != nil {
		return err
	}
	if err := s.store.DeleteNetwork(c.Request().Context(), n.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}
