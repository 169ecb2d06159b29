package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/packflow/packflow/store"
)

// TestLocalServersAreForRootAdmins reproduces the probe: a tenant holding
// publisher and operator rights (here an admin of its own account, which
// has both) must not create a server that runs its scripts on the worker.
func TestLocalServersAreForRootAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tenant := b.createAccount(t, testAdminToken, map[string]any{"name": "tenant"})
	tenantAdmin := b.mintToken(t, tenant.ID, "mallory", store.RoleAdmin).Token
	tenantOperator := b.mintToken(t, tenant.ID, "mallory", store.RoleOperator).Token
	rootOperator := b.mintToken(t, store.RootAccountID, "op", store.RoleOperator).Token
	local := map[string]any{"name": "worker", "address": "localhost", "os": "linux", "transport": "local"}

	for name, tok := range map[string]string{"tenant admin": tenantAdmin, "tenant operator": tenantOperator, "root operator": rootOperator} {
		p := b.do(t, http.MethodPost, "/api/v1/servers", tok, local).mustStatus(t, http.StatusForbidden).problem(t)
		if !strings.Contains(p.Detail, "admins of the root account") {
			t.Errorf("%s: detail %q does not say who may", name, p.Detail)
		}
	}

	// A tenant's local server recorded before the rule cannot be kept up
	// to date either (nor run: see tasks' TestLocalTransportIsForRootAdmins).
	old, err := b.store.CreateServer(t.Context(), store.Server{Name: "old", AccountID: tenant.ID, Address: "localhost",
		OS: "linux", Transport: store.TransportLocal})
	if err != nil {
		t.Fatal(err)
	}
	b.do(t, http.MethodPatch, "/api/v1/servers/"+old.ID, tenantAdmin, map[string]any{"address": "127.0.0.1"}).
		mustStatus(t, http.StatusForbidden)

	// The root admin may, and approves the record with its token.
	var sv store.Server
	b.do(t, http.MethodPost, "/api/v1/servers", testAdminToken, local).mustStatus(t, http.StatusCreated).json(t, &sv)
	if sv.LocalApprovedBy != store.BootstrapTokenID || sv.AccountID != store.RootAccountID {
		t.Errorf("created %+v, want owned by root and approved by the bootstrap token", sv)
	}
	// Changing it stays the root admin's business.
	b.do(t, http.MethodPatch, "/api/v1/servers/"+sv.ID, rootOperator, map[string]any{"address": "127.0.0.1"}).
		mustStatus(t, http.StatusForbidden)
	b.do(t, http.MethodPatch, "/api/v1/servers/"+sv.ID, testAdminToken, map[string]any{"address": "127.0.0.1"}).
		mustStatus(t, http.StatusOK)
}
