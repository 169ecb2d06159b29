package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
)

func (s *Server) credentialRoutes(g *echo.Group) {
	g.POST("/credentials", s.createCredential, requireRole(store.RoleOperator))
	g.GET("/credentials", s.listCredentials)
	g.GET("/credentials/:id", s.getCredential)
	g.DELETE("/credentials/:id", s.deleteCredential, requireRole(store.RoleOperator))
}

// credentialJSON is a credential as the API shows it: never its secret.
type credentialJSON struct {
	ID            string               `json:"id"`
	Account       string               `json:"account"`
	Name          string               `json:"name"`
	Kind          store.CredentialKind `json:"kind"`
	Username      string               `json:"username"`
	HasPassphrase bool                 `json:"has_passphrase"`
	CreatedAt     time.Time            `json:"created_at"`
}

func toCredentialJSON(c store.Credential) credentialJSON {
	return credentialJSON{ID: c.ID, Account: c.AccountID, Name: c.Name, Kind: c.Kind, Username: c.Username,
		HasPassphrase: c.HasPassphrase, CreatedAt: c.CreatedAt}
}

type createCredentialRequest struct {
	Name       string               `json:"name"`
	Kind       store.CredentialKind `json:"kind"`
	Username   string               `json:"username"`
	Secret     string               `json:"secret"`
	Passphrase string               `json:"passphrase"`
}

// createCredential answers POST /credentials (operator). The secret is
// sealed before it is stored and is never shown again.
func (s *Server) createCredential(c echo.Context) error {
	var req createCredentialRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	var errs []FieldError
	if msg := store.CheckName(req.Name); msg != "" {
		errs = append(errs, FieldError{Path: "name", Rule: ruleFor(req.Name == ""), Message: msg})
	}
	switch {
	case req.Kind == "":
		errs = append(errs, FieldError{Path: "kind", Rule: ruleMissing, Message: "kind is ssh-key or password"})
	case !req.Kind.Valid():
		errs = append(errs, FieldError{Path: "kind", Rule: ruleInvalid, Message: "kind is ssh-key or password"})
	}
	if strings.TrimSpace(req.Username) == "" {
		errs = append(errs, FieldError{Path: "username", Rule: ruleMissing, Message: "username is required"})
	} else if len(req.Username) > 200 || strings.ContainsAny(req.Username, "\x00\r\n") {
		errs = append(errs, FieldError{Path: "username", Rule: ruleInvalid, Message: "username has at most 200 characters and no line breaks"})
	}
	switch {
	case req.Secret == "":
		errs = append(errs, FieldError{Path: "secret", Rule: ruleMissing, Message: "secret is required"})
	case req.Kind == store.CredentialSSHKey && !strings.Contains(req.Secret, "-----BEGIN "):
		errs = append(errs, FieldError{Path: "secret", Rule: ruleInvalid, Message: "an ssh-key secret is a PEM private key"})
	}
	if req.Passphrase != "" && req.Kind == store.CredentialPassword {
		errs = append(errs, FieldError{Path: "passphrase", Rule: ruleInvalid, Message: "a passphrase goes with an ssh-key only"})
	}
	if len(errs) > 0 {
		return validationProblem(errs)
	}
	p := principalFrom(c)
	cred, err := s.store.CreateCredential(c.Request().Context(),
		store.Credential{AccountID: p.AccountID, Name: req.Name, Kind: req.Kind, Username: req.Username},
		store.Secret{Secret: req.Secret, Passphrase: req.Passphrase})
	if errors.Is(err, store.ErrNoSecretKey) {
		return newProblem(http.StatusServiceUnavailable, "", "no secret key is configured (PACKFLOW_SECRET_KEY); secrets cannot be stored")
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toCredentialJSON(cred))
}

// visible keeps the items whose owner the caller may see.
func visible[T any](ctx context.Context, s *Server, p Principal, items []T, owner func(T) string) ([]T, error) {
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

func (s *Server) listCredentials(c echo.Context) error {
	ctx := c.Request().Context()
	all, err := s.store.Credentials(ctx)
	if err != nil {
		return err
	}
	vis, err := visible(ctx, s, principalFrom(c), all, func(x store.Credential) string { return x.AccountID })
	if err != nil {
		return err
	}
	out := make([]credentialJSON, len(vis))
	for i, x := range vis {
		out[i] = toCredentialJSON(x)
	}
	return listPage(c, out, func(x credentialJSON) string { return x.ID })
}

// findCredential returns the credential with id, or 404 when it does not
// exist or the caller may not see it.
func (s *Server) findCredential(c echo.Context, id string) (store.Credential, error) {
	cred, err := s.store.Credential(c.Request().Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		return cred, notFound("credential")
	}
	if err != nil {
		return cred, err
	}
	return cred, s.mustSee(c, cred.AccountID, "credential")
}

func (s *Server) getCredential(c echo.Context) error {
	cred, err := s.findCredential(c, c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toCredentialJSON(cred))
}

func (s *Server) deleteCredential(c echo.Context) error {
	cred, err := s.findCredential(c, c.Param("id"))
	if err != nil {
		return err
	}
	if err := s.store.DeleteCredential(c.Request().Context(), cred.ID); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// Rules of validation problems, named after the original platform's
// errors.
const (
	ruleMissing   = "missing"
	ruleInvalid   = "invalid value"
	ruleWrongType = "wrong type"
)

func ruleFor(missing bool) string {
	if missing {
		return ruleMissing
	}
	return ruleInvalid
}
