package api

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Point 11: one request lists every problem of its body, at any depth;
// "Malformed JSON" is only for bodies that are not JSON.
func TestDecodeReportsEveryProblem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := []byte(`{"name": 7, "port": "22", "colour": "red", "address": "10.0.0.1",
		"winrm": {"https": "yes", "bogus": 1}}`)
	p := b.do(t, http.MethodPost, "/api/v1/servers", testAdminToken, body).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	want := []string{"colour", "name", "port", "winrm.bogus", "winrm.https"}
	if got := sortedPaths(p); !slices.Equal(got, want) {
		t.Errorf("paths %v, want %v: %+v", got, want, p.Errors)
	}
	rules := map[string]string{}
	for _, e := range p.Errors {
		rules[e.Path] = e.Rule
	}
	if rules["colour"] != ruleUnknownField || rules["name"] != ruleWrongType || rules["winrm.https"] != ruleWrongType {
		t.Errorf("rules %v", rules)
	}

	// Inside arrays and maps too.
	body = []byte(`{"name": "bp", "steps": [{"package": "x", "version": 1}, {"package": "y", "parameters": {"Port": 80}, "extra": true}]}`)
	p = b.do(t, http.MethodPost, "/api/v1/blueprints", testAdminToken, body).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	want = []string{"steps[0].version", "steps[1].extra", "steps[1].parameters.Port"}
	if got := sortedPaths(p); !slices.Equal(got, want) {
		t.Errorf("paths %v, want %v: %+v", got, want, p.Errors)
	}

	for _, tc := range []struct {
		body   string
		status int
	}{
		{`{"name":`, http.StatusBadRequest},
		{`not json`, http.StatusBadRequest},
		{`{"name":"a"} {"name":"b"}`, http.StatusBadRequest},
		{`[1, 2]`, http.StatusUnprocessableEntity},
		{`"acme"`, http.StatusUnprocessableEntity},
	} {
		p := b.do(t, http.MethodPost, "/api/v1/accounts", testAdminToken, []byte(tc.body)).mustStatus(t, tc.status).problem(t)
		if malformed := p.Title == "Malformed JSON"; malformed != (tc.status == http.StatusBadRequest) {
			t.Errorf("%s: title %q", tc.body, p.Title)
		}
	}
}

// Point 22: a JSON body must be sent as JSON.
func TestJSONBodyMediaType(t *testing.T) {
	t.Parallel()
	b := setup(t)
	send := func(contentType, name string) answer {
		return b.sendRaw(t, http.MethodPost, "/api/v1/accounts", testAdminToken, contentType,
			strings.NewReader(`{"name":"`+name+`"}`), -1)
	}
	for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "", "application/xml"} {
		p := send(ct, "a-"+strings.ReplaceAll(ct, "/", "-")).mustStatus(t, http.StatusUnsupportedMediaType).problem(t)
		if !strings.Contains(p.Detail, "application/json") {
			t.Errorf("%q: detail %q does not say what to send", ct, p.Detail)
		}
	}
	send("application/json; charset=utf-8", "json-one").mustStatus(t, http.StatusCreated)
	send("application/vnd.packflow+json", "json-two").mustStatus(t, http.StatusCreated)
	var list page[accountJSON]
	b.do(t, http.MethodGet, "/api/v1/accounts", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 3 {
		t.Errorf("accounts %+v: only the two JSON bodies may create one", list.Items)
	}
}

func sortedPaths(p Problem) []string {
	out := []string{}
	for _, e := range p.Errors {
		out = append(out, e.Path)
	}
	slices.Sort(out)
	return out
}
