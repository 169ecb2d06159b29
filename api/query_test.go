package api

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/packflow/packflow/store"
)

// Point 10: bad cursors and limits are 400, as is any query parameter a
// route does not take.
func TestQueryStringRules(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	for _, path := range []string{
		"/api/v1/accounts?cursor=!!!", "/api/v1/servers?cursor=%25", "/api/v1/uploads?cursor=@@",
		"/api/v1/schedules?limit=0", "/api/v1/tokens?limit=501", "/api/v1/nodes?limit=ten",
		"/api/v1/servers?colour=red", "/api/v1/servers/nope?verbose=1", "/api/v1/tokens?limit=5&sort=name",
		"/api/v1/packages?os=linux&OS=linux", "/api/v1/executions?state=failed",
	} {
		p := b.do(t, http.MethodGet, path, testAdminToken, nil).mustStatus(t, http.StatusBadRequest).problem(t)
		if len(p.Errors) != 1 || p.Type != problemTypeValidation {
			t.Errorf("%s: want one problem listed, got %+v", path, p)
		}
	}
	// Every problem of a query string at once.
	p := b.do(t, http.MethodGet, "/api/v1/packages?limit=0&cursor=!&colour=red", testAdminToken, nil).
		mustStatus(t, http.StatusBadRequest).problem(t)
	if got := sortedPaths(p); !slices.Equal(got, []string{"colour", "cursor", "limit"}) {
		t.Errorf("paths %v", got)
	}
	p = b.do(t, http.MethodGet, "/api/v1/packages?limit=0&os=mac&category=x", testAdminToken, nil).
		mustStatus(t, http.StatusBadRequest).problem(t)
	if got := sortedPaths(p); !slices.Equal(got, []string{"category", "limit", "os"}) {
		t.Errorf("paths %v", got)
	}
	for _, path := range []string{
		"/api/v1/accounts?limit=1", "/api/v1/tokens?limit=500&cursor=", "/api/v1/packages?os=linux&q=x",
		"/api/v1/executions?status=failed&since=2020-01-01T00:00:00Z", "/api/v1/uploads?status=pending",
	} {
		b.do(t, http.MethodGet, path, testAdminToken, nil).mustStatus(t, http.StatusOK)
	}
	// The SSE stream takes its resume position in the query too (for
	// EventSource, which cannot set headers).
	if !slices.Contains(b.srv.query["GET /api/v1/executions/:id/events"], "last_event_id") {
		t.Errorf("events route takes %v", b.srv.query["GET /api/v1/executions/:id/events"])
	}
}

// Point 10: a server is named by ID or by name, as deployments name it.
func TestServerByIDOrName(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	ctx := context.Background()
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	other := b.createAccount(t, testAdminToken, map[string]any{"name": "other"})
	acmeOp := b.mintToken(t, acme.ID, "op", store.RoleOperator).Token
	otherOp := b.mintToken(t, other.ID, "op", store.RoleOperator).Token
	cred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: acme.ID, Name: "ops", Kind: store.CredentialPassword, Username: "ops"},
		store.Secret{Secret: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := b.store.CreateServer(ctx, store.Server{AccountID: acme.ID, Name: "web1", Address: "10.0.0.1", OS: "linux", Transport: "ssh", CredentialID: cred.ID})
	if err != nil {
		t.Fatal(err)
	}
	for _, ref := range []string{sv.ID, "web1"} {
		var got store.Server
		b.do(t, http.MethodGet, "/api/v1/servers/"+ref, acmeOp, nil).mustStatus(t, http.StatusOK).json(t, &got)
		if got.ID != sv.ID {
			t.Errorf("GET /servers/%s = %s, want %s", ref, got.ID, sv.ID)
		}
		b.do(t, http.MethodGet, "/api/v1/servers/"+ref, otherOp, nil).mustStatus(t, http.StatusNotFound)
	}
	b.do(t, http.MethodPatch, "/api/v1/servers/web1", acmeOp, map[string]any{"address": "10.0.0.2"}).mustStatus(t, http.StatusOK)
	if got, _ := b.store.Server(ctx, sv.ID); got.Address != "10.0.0.2" {
		t.Errorf("PATCH by name left address %q", got.Address)
	}
	b.do(t, http.MethodDelete, "/api/v1/servers/web1", otherOp, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodDelete, "/api/v1/servers/web1", acmeOp, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/servers/"+sv.ID, acmeOp, nil).mustStatus(t, http.StatusNotFound)
}
