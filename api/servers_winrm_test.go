package api

import (
	"net/http"
	"strings"
	"testing"
)

// TestWinRMPlainHTTPRefused checks that "https": false is answered with
// 422 and the reason, and that leaving https out is no problem.
func TestWinRMPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := func(winrm map[string]any) map[string]any {
		return map[string]any{"name": "w", "address": "10.0.0.9", "os": "windows", "transport": "winrm",
			"credential": "none", "winrm": winrm}
	}
	p := b.do(t, http.MethodPost, "/api/v1/servers", testAdminToken, body(map[string]any{"https": false})).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	found := false
	for _, e := range p.Errors {
		if e.Path == "winrm.https" {
			found = strings.Contains(e.Message, "plain HTTP is refused")
		}
	}
	if !found {
		t.Errorf("problems %+v lack winrm.https saying plain HTTP is refused", p.Errors)
	}
	p = b.do(t, http.MethodPost, "/api/v1/servers", testAdminToken, body(map[string]any{"insecure": true})).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if _, ok := errorPaths(p)["winrm.https"]; ok {
		t.Errorf("https left out was taken for false: %+v", p.Errors)
	}
}
