package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

// Principal is who makes a request: the token's account, user and role.
type Principal struct {
	AccountID string
	UserID    string
	Role      store.Role
	TokenID   string
}

// capability is one kind of work a role may do. Roles are sets of them,
// not steps on a ladder: publisher and operator are siblings.
type capability uint8

const (
	capRead       capability = 1 << iota // see records
	capPublish                           // upload, publish, activate packages
	capOperate                           // deploy, cancel, manage servers, credentials, schedules
	capAdminister                        // accounts and tokens
)

// capabilities returns what role r may do; an unknown role, nothing.
func capabilities(r store.Role) capability {
	switch r {
	case store.RoleViewer:
		return capRead
	case store.RolePublisher:
		return capRead | capPublish
	case store.RoleOperator:
		return capRead | capOperate
	case store.RoleAdmin:
		return capRead | capPublish | capOperate | capAdminister
	}
	return 0
}

// Can reports whether p's role includes everything role may do.
func (p Principal) Can(role store.Role) bool {
	need := capabilities(role)
	return need != 0 && capabilities(p.Role)&need == need
}

// authenticate resolves "Authorization: Bearer <token>" into the request's
// Principal; a missing or unknown token gives 401.
func (s *Server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, secret, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		secret = strings.TrimSpace(secret)
		if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
			return newProblem(http.StatusUnauthorized, "", "send a token: Authorization: Bearer <token>")
		}
		t, err := s.store.ResolveToken(c.Request().Context(), secret)
		if errors.Is(err, store.ErrNotFound) {
			return newProblem(http.StatusUnauthorized, "", "the token is unknown or revoked")
		}
		if err != nil {
			return newProblem(http.StatusServiceUnavailable, "", "cannot check the token now; try again").withCause(err)
		}
		p := Principal{AccountID: t.AccountID, UserID: t.User, Role: t.Role, TokenID: t.ID}
		c.Set(ctxPrincipal, p)
		c.Set(ctxLogger, s.log(c).With(slog.String("account", p.AccountID), slog.String("user", p.UserID)))
		return next(c)
	}
}

// principalFrom returns the authenticated caller; the zero Principal (no
// rights at all) on a route without authentication.
func principalFrom(c echo.Context) Principal {
	p, _ := c.Get(ctxPrincipal).(Principal)
	return p
}

// requireRole lets a request through only when the caller's role includes
// everything role may do; otherwise 403.
func requireRole(role store.Role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if !principalFrom(c).Can(role) {
				return newProblem(http.StatusForbidden, "",
					"this needs the "+string(role)+" role (or one that includes it)")
			}
			return next(c)
		}
	}
}

// canSee reports whether p may see a record owned by ownerAccount: the
// owner is p's account or one of its sub-accounts. The root account's
// tokens see everything. An unknown owner is not visible.
func (s *Server) canSee(ctx context.Context, p Principal, ownerAccount string) (bool, error) {
	if p.AccountID == "" || ownerAccount == "" {
		return false, nil
	}
	if p.AccountID == store.RootAccountID || p.AccountID == ownerAccount {
		return true, nil
	}
	ok, err := s.store.IsWithin(ctx, ownerAccount, p.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return ok, err
}

// mustSee answers 404 (what not found) unless the caller may see a record
// owned by ownerAccount: objects of other accounts are never revealed.
func (s *Server) mustSee(c echo.Context, ownerAccount, what string) error {
	ok, err := s.canSee(c.Request().Context(), principalFrom(c), ownerAccount)
	if err != nil {
		return err
	}
	if !ok {
		return notFound(what)
	}
	return nil
}
