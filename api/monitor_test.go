package api

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/packflow/packflow/store"
)

// get sends GET path with an Authorization header (none when empty) and
// returns the status, the headers and the body.
func (b *bundle) get(t *testing.T, path, authorization string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	client := b.http.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, res.Header, string(body)
}

func TestMonitorIsForRootAdmins(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	acmeAdmin := b.mintToken(t, acme.ID, "ann", store.RoleAdmin).Token
	rootViewer := b.mintToken(t, store.RootAccountID, "vic", store.RoleViewer).Token

	// No credentials: 401, and a browser is asked for Basic credentials.
	status, hdr, _ := b.get(t, "/monitor/", "")
	if status != http.StatusUnauthorized || !strings.HasPrefix(hdr.Get("WWW-Authenticate"), "Basic ") {
		t.Errorf("no token: status %d, WWW-Authenticate %q; want 401 asking for Basic", status, hdr.Get("WWW-Authenticate"))
	}
	if status, _, _ := b.get(t, "/monitor/", "Bearer not-a-token"); status != http.StatusUnauthorized {
		t.Errorf("unknown token: status %d, want 401", status)
	}
	// An admin of a sub-account would see other accounts' tasks: 403, as
	// for a root viewer.
	for name, tok := range map[string]string{"sub-account admin": acmeAdmin, "root viewer": rootViewer} {
		if status, _, _ := b.get(t, "/monitor/api/queues", "Bearer "+tok); status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", name, status)
		}
	}

	// The root admin gets the page, by Bearer or as a Basic password.
	status, _, page := b.get(t, "/monitor/", "Bearer "+testAdminToken)
	if status != http.StatusOK || !strings.Contains(page, "<html") {
		t.Errorf("admin page: status %d, body %.80q", status, page)
	}
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth("anyone", testAdminToken)
	status, _, body := b.get(t, "/monitor/api/queues", req.Header.Get("Authorization"))
	if status != http.StatusOK {
		t.Fatalf("queues by Basic: status %d, body %s", status, body)
	}
	var queues struct {
		Queues []json.RawMessage `json:"queues"`
	}
	if err := json.Unmarshal([]byte(body), &queues); err != nil {
		t.Errorf("queues answer is not the monitor's JSON: %v: %s", err, body)
	}
	if status, hdr, _ := b.get(t, "/monitor", ""); status != http.StatusMovedPermanently || hdr.Get("Location") != "/monitor/" {
		t.Errorf("/monitor: status %d, Location %q; want a redirect to /monitor/", status, hdr.Get("Location"))
	}
}
