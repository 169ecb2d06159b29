package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/packflow/packflow/store"
)

// mintToken creates a token through the API with the admin token.
func (b *bundle) mintToken(t *testing.T, account, user string, role store.Role) createdTokenJSON {
	t.Helper()
	var out createdTokenJSON
	b.do(t, http.MethodPost, "/api/v1/tokens", testAdminToken,
		map[string]any{"account": account, "user": user, "role": role}).
		mustStatus(t, http.StatusCreated).json(t, &out)
	return out
}

// createAccount creates an account through the API as token.
func (b *bundle) createAccount(t *testing.T, token string, body map[string]any) accountJSON {
	t.Helper()
	var out accountJSON
	b.do(t, http.MethodPost, "/api/v1/accounts", token, body).mustStatus(t, http.StatusCreated).json(t, &out)
	return out
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"no header", "", http.StatusUnauthorized},
		{"not bearer", "Basic YWRtaW46YWRtaW4=", http.StatusUnauthorized},
		{"empty bearer", "Bearer ", http.StatusUnauthorized},
		{"unknown token", "Bearer pf_nosuchtoken_AAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusUnauthorized},
		{"admin token", "Bearer " + testAdminToken, http.StatusOK},
		{"scheme in lower case", "bearer " + testAdminToken, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/api/v1/accounts", nil)
			if tc.header != "" {
				req.Header.Set("Authorization", tc.header)
			}
			res, err := b.http.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = res.Body.Close()
			if res.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", res.StatusCode, tc.want)
			}
			if tc.want == http.StatusUnauthorized && !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("401 without a Bearer challenge: %q", res.Header.Get("WWW-Authenticate"))
			}
		})
	}
	// The public routes need no token.
	for _, path := range []string{"/api/v1/openapi.json", "/api/v1/schema/package.manifest.xsd", "/healthz", "/readyz", "/metrics"} {
		b.do(t, http.MethodGet, path, "", nil).mustStatus(t, http.StatusOK)
	}
	// A 401 is a problem.
	if p := b.do(t, http.MethodGet, "/api/v1/tokens", "", nil).mustStatus(t, http.StatusUnauthorized).problem(t); p.Title != "Unauthorized" {
		t.Errorf("title %q", p.Title)
	}
}

func TestRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tokens := map[store.Role]string{}
	for _, r := range []store.Role{store.RoleViewer, store.RoleOperator, store.RolePublisher, store.RoleAdmin} {
		tokens[r] = b.mintToken(t, store.RootAccountID, "u-"+string(r), r).Token
	}
	for role, token := range tokens {
		a := b.do(t, http.MethodPost, "/api/v1/accounts", token, map[string]any{"name": "by-" + string(role)})
		want := http.StatusForbidden
		if role == store.RoleAdmin {
			want = http.StatusCreated
		}
		a.mustStatus(t, want)
		if want == http.StatusForbidden {
			a.problem(t)
		}
		b.do(t, http.MethodPost, "/api/v1/tokens", token, map[string]any{"user": "x", "role": "viewer"}).
			mustStatus(t, map[bool]int{true: http.StatusCreated, false: http.StatusForbidden}[role == store.RoleAdmin])
		// Everyone reads.
		b.do(t, http.MethodGet, "/api/v1/accounts", token, nil).mustStatus(t, http.StatusOK)
	}
}

func TestCapabilities(t *testing.T) {
	t.Parallel()
	roles := []store.Role{store.RoleViewer, store.RoleOperator, store.RolePublisher, store.RoleAdmin}
	// can[caller][needed]
	can := map[store.Role][]store.Role{
		store.RoleViewer:    {store.RoleViewer},
		store.RoleOperator:  {store.RoleViewer, store.RoleOperator},
		store.RolePublisher: {store.RoleViewer, store.RolePublisher},
		store.RoleAdmin:     roles,
		"":                  nil,
		"root":              nil,
	}
	for caller, allowed := range can {
		for _, need := range roles {
			want := false
			for _, a := range allowed {
				want = want || a == need
			}
			if got := (Principal{Role: caller}).Can(need); got != want {
				t.Errorf("%q.Can(%q) = %v, want %v", caller, need, got, want)
			}
		}
	}
}

func TestAccountScoping(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	acmeEU := b.createAccount(t, testAdminToken, map[string]any{"name": "acme-eu", "parent": acme.ID})
	globex := b.createAccount(t, testAdminToken, map[string]any{"name": "globex"})

	acmeAdmin := b.mintToken(t, "acme", "alice", store.RoleAdmin) // by name
	acmeViewer := b.mintToken(t, acme.ID, "victor", store.RoleViewer)
	globexAdmin := b.mintToken(t, globex.ID, "gina", store.RoleAdmin)

	// An account admin creates sub-accounts under its own account by default.
	acmeUS := b.createAccount(t, acmeAdmin.Token, map[string]any{"name": "acme-us"})
	if acmeUS.Parent != acme.ID {
		t.Fatalf("parent %q, want %q", acmeUS.Parent, acme.ID)
	}

	names := func(token string) []string {
		var pg page[accountJSON]
		b.do(t, http.MethodGet, "/api/v1/accounts", token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
		var out []string
		for _, a := range pg.Items {
			out = append(out, a.Name)
		}
		return out
	}
	if got := strings.Join(slices.Sorted(slices.Values(names(acmeViewer.Token))), ","); got != "acme,acme-eu,acme-us" {
		t.Errorf("acme viewer lists %s", got)
	}
	if got := strings.Join(slices.Sorted(slices.Values(names(testAdminToken))), ","); got != "acme,acme-eu,acme-us,globex,root" {
		t.Errorf("root admin lists %s", got)
	}

	// Another account's objects are 404, never 403.
	b.do(t, http.MethodGet, "/api/v1/accounts/"+acmeEU.ID, globexAdmin.Token, nil).mustStatus(t, http.StatusNotFound).problem(t)
	b.do(t, http.MethodGet, "/api/v1/accounts/"+acmeEU.ID, acmeViewer.Token, nil).mustStatus(t, http.StatusOK)
	b.do(t, http.MethodGet, "/api/v1/accounts/"+acme.ID, globexAdmin.Token, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodGet, "/api/v1/accounts/root", acmeAdmin.Token, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodDelete, "/api/v1/tokens/"+acmeViewer.ID, globexAdmin.Token, nil).mustStatus(t, http.StatusNotFound)

	// An admin cannot reach outside its tree, neither as parent nor as token account.
	p := b.do(t, http.MethodPost, "/api/v1/accounts", globexAdmin.Token, map[string]any{"name": "x", "parent": acme.ID}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if len(p.Errors) != 1 || p.Errors[0].Path != "parent" {
		t.Errorf("errors %+v", p.Errors)
	}
	b.do(t, http.MethodPost, "/api/v1/tokens", globexAdmin.Token, map[string]any{"account": acme.ID, "user": "mallory", "role": "admin"}).
		mustStatus(t, http.StatusUnprocessableEntity)
	// ... nor create vendor accounts, which is for root admins.
	b.do(t, http.MethodPost, "/api/v1/accounts", acmeAdmin.Token, map[string]any{"name": "v", "vendor": true}).
		mustStatus(t, http.StatusUnprocessableEntity)

	// Token lists are scoped too.
	var pg page[tokenJSON]
	b.do(t, http.MethodGet, "/api/v1/tokens", globexAdmin.Token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
	for _, tok := range pg.Items {
		if tok.Account != globex.ID {
			t.Errorf("globex admin sees token %s of account %s", tok.ID, tok.Account)
		}
	}
	b.do(t, http.MethodGet, "/api/v1/tokens", acmeViewer.Token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].ID != acmeViewer.ID {
		t.Errorf("a viewer lists %+v, want only its own token", pg.Items)
	}
}

func TestAccountValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.createAccount(t, testAdminToken, map[string]any{"name": "Taken"})
	tests := []struct {
		name  string
		body  any
		want  int
		paths []string
	}{
		{"empty name", map[string]any{"name": ""}, http.StatusUnprocessableEntity, []string{"name"}},
		{"every problem at once", map[string]any{"parent": "nope"}, http.StatusUnprocessableEntity, []string{"name", "parent"}},
		{"unknown field", map[string]any{"name": "a", "colour": "red"}, http.StatusUnprocessableEntity, []string{"colour"}},
		{"wrong type", map[string]any{"name": 7}, http.StatusUnprocessableEntity, []string{"name"}},
		{"name taken, any case", map[string]any{"name": "taken"}, http.StatusConflict, nil},
		{"malformed", []byte(`{"name":`), http.StatusBadRequest, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := b.do(t, http.MethodPost, "/api/v1/accounts", testAdminToken, tc.body).mustStatus(t, tc.want).problem(t)
			var paths []string
			for _, e := range p.Errors {
				paths = append(paths, e.Path)
			}
			if strings.Join(paths, ",") != strings.Join(tc.paths, ",") {
				t.Errorf("error paths %v, want %v", paths, tc.paths)
			}
		})
	}
}
