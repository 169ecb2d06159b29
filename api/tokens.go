package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

func (s *Server) tokenRoutes(g *echo.Group) {
	g.POST("/tokens", s.createToken, requireRole(store.RoleAdmin))
	g.GET("/tokens", s.listTokens)
	g.DELETE("/tokens/:id", s.revokeToken)
}

// tokenJSON is a token as the API lists it: never its secret.
type tokenJSON struct {
	ID         string     `json:"id"`
	Account    string     `json:"account"`
	User       string     `json:"user"`
	Role       store.Role `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func toTokenJSON(t store.Token) tokenJSON {
	return tokenJSON{ID: t.ID, Account: t.AccountID, User: t.User, Role: t.Role,
		CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt}
}

type createTokenRequest struct {
	Account string     `json:"account"`
	User    string     `json:"user"`
	Role    store.Role `json:"role"`
}

// createdTokenJSON is the answer to POST /tokens: the only time the
// secret is shown.
type createdTokenJSON struct {
	tokenJSON
	Token string `json:"token"`
}

// createToken answers POST /tokens (admin): a token for a user of a
// visible account, its secret shown once.
func (s *Server) createToken(c echo.Context) error {
	var req createTokenRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs []FieldError
	if req.User == "" {
		errs = append(errs, FieldError{Path: "user", Rule: "required", Message: "user is required"})
	} else if msg := store.CheckUser(req.User); msg != "" {
		errs = append(errs, FieldError{Path: "user", Rule: "format", Message: msg})
	}
	if !req.Role.Valid() {
		errs = append(errs, FieldError{Path: "role", Rule: "enum", Message: "role must be admin, publisher, operator or viewer"})
	}
	account := principalFrom(c).AccountID
	if req.Account != "" {
		a, err := s.findAccount(c, req.Account)
		var prob *Problem
		switch {
		case errors.As(err, &prob) && prob.Status == http.StatusNotFound:
			errs = append(errs, FieldError{Path: "account", Rule: "exists", Message: "no such account: " + req.Account})
		case err != nil:
			return err
		default:
			account = a.ID
		}
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	t, secret, err := s.store.CreateToken(c.Request().Context(), store.Token{AccountID: account, User: req.User, Role: req.Role})
	if err != nil {
		return err
	}
	s.log(c).Info("token created", "token_id", t.ID, "for_account", t.AccountID, "for_user", t.User, "role", t.Role)
	return c.JSON(http.StatusCreated, createdTokenJSON{tokenJSON: toTokenJSON(t), Token: secret})
}

// listTokens answers GET /tokens: an admin sees the tokens of its account
// and sub-accounts; anyone else, only the tokens of their own user.
func (s *Server) listTokens(c echo.Context) error {
	ctx := c.Request().Context()
	p := principalFrom(c)
	all, err := s.store.Tokens(ctx)
	if err != nil {
		return err
	}
	// The accounts whose tokens an admin manages, worked out once.
	var scope map[string]bool
	if p.Can(store.RoleAdmin) && p.AccountID != store.RootAccountID {
		ids, err := s.store.Descendants(ctx, p.AccountID)
		if err != nil {
			return err
		}
		scope = map[string]bool{p.AccountID: true}
		for _, id := range ids {
			scope[id] = true
		}
	}
	out := make([]tokenJSON, 0, len(all))
	for _, t := range all {
		own := t.AccountID == p.AccountID && t.User == p.UserID
		admin := p.Can(store.RoleAdmin) && (p.AccountID == store.RootAccountID || scope[t.AccountID])
		if own || admin {
			out = append(out, toTokenJSON(t))
		}
	}
	return listPage(c, out, func(t tokenJSON) string { return t.ID })
}

// mayManageToken reports whether p may see and revoke t: its own user's
// tokens, or as an admin any token of a visible account.
func (s *Server) mayManageToken(c echo.Context, p Principal, t store.Token) (bool, error) {
	if t.AccountID == p.AccountID && t.User == p.UserID {
		return true, nil
	}
	if !p.Can(store.RoleAdmin) {
		return false, nil
	}
	return s.canSee(c.Request().Context(), p, t.AccountID)
}

// revokeToken answers DELETE /tokens/{id}.
func (s *Server) revokeToken(c echo.Context) error {
	ctx := c.Request().Context()
	t, err := s.store.Token(ctx, c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("token")
	}
	if err != nil {
		return err
	}
	ok, err := s.mayManageToken(c, principalFrom(c), t)
	if err != nil {
		return err
	}
	if !ok {
		return notFound("token")
	}
	if err := s.store.RevokeToken(ctx, t.ID); errors.Is(err, store.ErrNotFound) {
		return notFound("token")
	} else if err != nil {
		return err
	}
	s.log(c).Info("token revoked", "token_id", t.ID, "for_account", t.AccountID, "for_user", t.User)
	return c.NoContent(http.StatusNoContent)
}
