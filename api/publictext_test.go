package api

import (
	"bytes"
	"context"
	"net/http"
	"testing"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// fakeLookup answers GET /tasks/{id} with one status.
type fakeLookup struct{ st tasks.Status }

func (f fakeLookup) Lookup(context.Context, string) (tasks.Status, error) { return f.st, nil }

// internalMarks are the prefixes of internal errors no answer may show.
var internalMarks = []string{"store:", "tasks:", "skip retry", "api:", "asynq:"}

func mustBePlain(t *testing.T, what string, body []byte) {
	t.Helper()
	for _, m := range internalMarks {
		if bytes.Contains(body, []byte(m)) {
			t.Errorf("%s shows an internal error (%q): %s", what, m, body)
		}
	}
}

// Point 12: no internal error prefix reaches an answer.
func TestNoInternalErrorTextInAnswers(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	ctx := context.Background()
	b.srv.opts.Tasks = fakeLookup{tasks.Status{ID: "t1", AccountID: store.RootAccountID, State: tasks.StateArchived,
		LastError: "tasks: publish: upload u1 is gone: skip retry for the task"}}
	b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	publishAgent(t, b)
	type call struct {
		method, path string
		body         any
		status       int
	}
	calls := []call{
		{http.MethodPost, "/api/v1/accounts", map[string]any{"name": "ACME"}, http.StatusConflict},
		{http.MethodPost, "/api/v1/accounts", map[string]any{"name": " x"}, http.StatusUnprocessableEntity},
		{http.MethodGet, "/api/v1/accounts/nope", nil, http.StatusNotFound},
		{http.MethodPost, "/api/v1/tokens", map[string]any{"user": "u", "role": "king"}, http.StatusUnprocessableEntity},
		{http.MethodPost, "/api/v1/credentials", map[string]any{"name": "c1", "kind": "password", "username": "u", "secret": "s"}, http.StatusCreated},
		{http.MethodPost, "/api/v1/credentials", map[string]any{"name": "c1", "kind": "password", "username": "u", "secret": "s"}, http.StatusConflict},
		{http.MethodPost, "/api/v1/servers", map[string]any{"name": "s1", "address": "10.0.0.1", "os": "linux", "transport": "ssh", "credential": "c1"}, http.StatusCreated},
		{http.MethodPost, "/api/v1/servers", map[string]any{"name": "s1", "address": "10.0.0.1", "os": "linux", "transport": "ssh", "credential": "c1"}, http.StatusConflict},
		{http.MethodPost, "/api/v1/blueprints", map[string]any{"name": "bp", "steps": []any{map[string]any{"package": schedPkg, "version": "1.0.0"}}}, http.StatusCreated},
		{http.MethodPost, "/api/v1/blueprints", map[string]any{"name": "bp", "steps": []any{map[string]any{"package": schedPkg, "version": "1.0.0"}}}, http.StatusConflict},
		{http.MethodPost, "/api/v1/blueprints", map[string]any{"name": "bp2", "steps": []any{map[string]any{"package": "nope", "version": "9"}}}, http.StatusUnprocessableEntity},
		{http.MethodGet, "/api/v1/blueprints/nope", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/executions/nope", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/schedules/nope", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/uploads/nope", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/packages/nope", nil, http.StatusNotFound},
		{http.MethodDelete, "/api/v1/tokens/nope", nil, http.StatusNotFound},
		{http.MethodGet, "/api/v1/tasks/t1", nil, http.StatusOK},
	}
	for _, c := range calls {
		a := b.do(t, c.method, c.path, testAdminToken, c.body).mustStatus(t, c.status)
		mustBePlain(t, c.method+" "+c.path, a.body)
	}
	var st tasks.Status
	b.do(t, http.MethodGet, "/api/v1/tasks/t1", testAdminToken, nil).json(t, &st)
	if st.LastError != "publish: upload u1 is gone" {
		t.Errorf("last_error %q", st.LastError)
	}

	// An upload rejected with an internal error's text shows it plainly.
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: "u-rej", AccountID: store.RootAccountID, BlobKey: "uploads/u-rej.zip", SHA256: "abc", Size: 3}); err != nil {
		t.Fatal(err)
	}
	u, err := b.store.BeginPublish(ctx, "u-rej", store.PublishOptions{Category: "script", OS: "linux", Visibility: store.VisibilityPrivate})
	if err != nil {
		t.Fatal(err)
	}
	msg := "publishing failed after every retry (tasks: publish: store: get upload: i/o timeout: skip retry for the task); publish again"
	if _, err := b.store.RejectUpload(ctx, u.ID, u.TaskID, []store.Problem{{Rule: "publish.failed", Message: msg}}, nil); err != nil {
		t.Fatal(err)
	}
	a := b.do(t, http.MethodGet, "/api/v1/uploads/u-rej", testAdminToken, nil).mustStatus(t, http.StatusOK)
	mustBePlain(t, "GET /uploads/u-rej", a.body)
	var uj uploadJSON
	a.json(t, &uj)
	if len(uj.Errors) != 1 || uj.Errors[0].Message != "publishing failed after every retry (publish: get upload: i/o timeout); publish again" {
		t.Errorf("errors %+v", uj.Errors)
	}
}

func TestPublicText(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`store: conflict: account name "acme" is taken`:                   `account name "acme" is taken`,
		`store: invalid record: a name is required`:                       `a name is required`,
		`account "x": store: not found`:                                   `account "x": not found`,
		`tasks: install a@1: fetch: i/o timeout: skip retry for the task`: `install a@1: fetch: i/o timeout`,
		`no such server: web1`:                                            `no such server: web1`,
		`the datastore: full`:                                             `the datastore: full`,
	} {
		if got := publicText(in); got != want {
			t.Errorf("publicText(%q) = %q, want %q", in, got, want)
		}
	}
}
