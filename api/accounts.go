package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

func (s *Server) accountRoutes(g *echo.Group) {
	g.POST("/accounts", s.createAccount, requireRole(store.RoleAdmin))
	g.GET("/accounts", s.listAccounts)
	g.GET("/accounts/:id", s.getAccount)
}

// accountJSON is an account as the API shows it.
type accountJSON struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Parent    string    `json:"parent,omitempty"`
	Vendor    bool      `json:"vendor"`
	CreatedAt time.Time `json:"created_at"`
}

func toAccountJSON(a store.Account) accountJSON {
	return accountJSON{ID: a.ID, Name: a.Name, Parent: a.Parent, Vendor: a.Vendor, CreatedAt: a.CreatedAt.UTC()}
}

type createAccountRequest struct {
	Name   string `json:"name"`
	Parent string `json:"parent"`
	Vendor bool   `json:"vendor"`
}

// createAccount answers POST /accounts. The parent defaults to the
// caller's account and must be visible to the caller; only root admins
// create vendor accounts.
func (s *Server) createAccount(c echo.Context) error {
	var req createAccountRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	p := principalFrom(c)
	ctx := c.Request().Context()
	var errs []FieldError
	if req.Name == "" {
		errs = append(errs, FieldError{Path: "name", Rule: "required", Message: "name is required"})
	} else if msg := store.CheckAccountName(req.Name); msg != "" {
		errs = append(errs, FieldError{Path: "name", Rule: "format", Message: msg})
	}
	if req.Vendor && p.AccountID != store.RootAccountID {
		errs = append(errs, FieldError{Path: "vendor", Rule: "root-only",
			Message: "only an admin of the root account can create vendor accounts"})
	}
	parent := p.AccountID
	if req.Parent != "" {
		a, err := s.findAccount(c, req.Parent)
		var prob *Problem
		switch {
		case errors.As(err, &prob) && prob.Status == http.StatusNotFound:
			errs = append(errs, FieldError{Path: "parent", Rule: "exists", Message: "no such account: " + req.Parent})
		case err != nil:
			return err
		default:
			parent = a.ID
		}
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	a, err := s.store.CreateAccount(ctx, store.Account{Name: req.Name, Parent: parent, Vendor: req.Vendor})
	switch {
	case errors.Is(err, store.ErrConflict):
		return newProblem(http.StatusConflict, "", "an account named "+req.Name+" exists already").withCause(err)
	case errors.Is(err, store.ErrInvalid):
		return validationProblem([]FieldError{{Path: "name", Rule: "format", Message: publicText(err.Error())}})
	case err != nil:
		return err
	}
	s.log(c).Info("account created", "new_account", a.ID, "name", a.Name, "parent", a.Parent)
	return c.JSON(http.StatusCreated, toAccountJSON(a))
}

// findAccount returns the account named by ref (an ID or a name) when the
// caller may see it, else a 404 problem.
func (s *Server) findAccount(c echo.Context, ref string) (store.Account, error) {
	ctx := c.Request().Context()
	a, err := s.store.Account(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		a, err = s.store.AccountByName(ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.Account{}, notFound("account")
	}
	if err != nil {
		return store.Account{}, err
	}
	if err := s.mustSee(c, a.ID, "account"); err != nil {
		return store.Account{}, err
	}
	return a, nil
}

// listAccounts answers GET /accounts: the caller's account and its
// sub-accounts (for the root account, all of them).
func (s *Server) listAccounts(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalFrom(c)
	var (
		accts []store.Account
		err   error
	)
	if p.AccountID == store.RootAccountID {
		accts, err = s.store.Accounts(ctx)
	} else {
		accts, err = s.store.AccountTree(ctx, p.AccountID)
	}
	if err != nil {
		return err
	}
	out := make([]accountJSON, len(accts))
	for i, a := range accts {
		out[i] = toAccountJSON(a)
	}
	return listPage(c, out, func(a accountJSON) string { return a.ID })
}

// getAccount answers GET /accounts/{id}; {id} may also be a name.
func (s *Server) getAccount(c echo.Context) error {
	a, err := s.findAccount(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAccountJSON(a))
}
