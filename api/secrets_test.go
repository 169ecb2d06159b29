package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// Point 16: a kept password stays a password of the same parameter.
func TestBlueprintEditCannotLaunderPassword(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	const pkg = "16000000-0000-4000-8000-000000000016"
	const secret = "Sup3r-Secret!x"
	publishParams(t, b, store.RootAccountID, pkg, "1.0.0", store.VisibilityPrivate,
		manifest.Parameter{Name: "Pass", Type: manifest.TypePassword, Variable: "Pass", Prompt: manifest.PromptBuild})
	publishParams(t, b, store.RootAccountID, pkg, "2.0.0", store.VisibilityPrivate,
		manifest.Parameter{Name: "Pass", Type: manifest.TypeString, Variable: "Pass", Prompt: manifest.PromptBuild})
	step := func(version, pass string) map[string]any {
		return map[string]any{"name": "bp", "steps": []any{map[string]any{"package": pkg, "version": version, "parameters": map[string]string{"Pass": pass}}}}
	}
	var bp blueprintJSON
	b.do(t, http.MethodPost, "/api/v1/blueprints", testAdminToken, step("1.0.0", secret)).mustStatus(t, http.StatusCreated).json(t, &bp)
	if bp.Steps[0].Parameters["Pass"] != remote.MaskText {
		t.Fatalf("answer shows %q", bp.Steps[0].Parameters["Pass"])
	}
	// Saved back unchanged: the password is kept.
	b.do(t, http.MethodPut, "/api/v1/blueprints/"+bp.ID, testAdminToken, step("1.0.0", remote.MaskText)).mustStatus(t, http.StatusOK)
	// Pointed at a version where Pass is a String: refused.
	p := b.do(t, http.MethodPut, "/api/v1/blueprints/"+bp.ID, testAdminToken, step("2.0.0", remote.MaskText)).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if got := sortedPaths(p); !slices.Equal(got, []string{"steps[0].parameters.Pass"}) {
		t.Errorf("paths %v", got)
	}
	a := b.do(t, http.MethodGet, "/api/v1/blueprints/"+bp.ID, testAdminToken, nil).mustStatus(t, http.StatusOK)
	if bytes.Contains(a.body, []byte(secret)) {
		t.Errorf("GET shows the password: %s", a.body)
	}
	if b.redisHolds(t, secret) {
		t.Error("Redis holds the password unsealed")
	}
	stored, err := b.store.Blueprint(context.Background(), bp.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st := stored.Steps[0]; st.Version != "1.0.0" || st.Parameters["Pass"] != secret || !slices.Contains(st.Secrets, "Pass") {
		t.Errorf("stored step %+v, want 1.0.0 with the password kept sealed", st)
	}
	// A new value in clear is accepted for the String parameter.
	b.do(t, http.MethodPut, "/api/v1/blueprints/"+bp.ID, testAdminToken, step("2.0.0", "plain")).mustStatus(t, http.StatusOK)
}

// Point 21: a schedule holding a password is saved back unchanged.
func TestScheduleSavedBackWithMaskedPassword(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	ctx := context.Background()
	publishAgent(t, b)
	cred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "ops", Kind: store.CredentialPassword, Username: "ops"},
		store.Secret{Secret: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateServer(ctx, store.Server{AccountID: store.RootAccountID, Name: "web1", Address: "10.0.0.1", OS: "linux", Transport: "ssh", CredentialID: cred.ID}); err != nil {
		t.Fatal(err)
	}
	const secret = "Sup3r-Secret!y"
	body := map[string]any{"name": "nightly", "cron": "0 3 * * *", "action": map[string]any{"kind": "deploy", "package": schedPkg, "version": "1.0.0",
		"servers": []string{"web1"}, "parameters": map[string]string{"Port": "80", "Pass": secret}}}
	var sc scheduleJSON
	b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, body).mustStatus(t, http.StatusCreated).json(t, &sc)
	var got scheduleJSON
	b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID, testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &got)
	if got.Action.Parameters["Pass"] != remote.MaskText {
		t.Fatalf("GET shows %q", got.Action.Parameters["Pass"])
	}
	put := map[string]any{"name": got.Name, "cron": got.Cron, "timezone": got.Timezone, "enabled": got.Enabled,
		"catch_up": got.CatchUp, "overlap": got.Overlap, "action": got.Action}
	b.do(t, http.MethodPut, "/api/v1/schedules/"+sc.ID, testAdminToken, put).mustStatus(t, http.StatusOK)
	stored, err := b.store.Schedule(ctx, sc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.Action.Parameters["Pass"] != secret || !slices.Contains(stored.Action.Secrets, "Pass") {
		t.Errorf("stored action %+v, want the password kept as a secret", stored.Action)
	}
	if b.redisHolds(t, secret) {
		t.Error("Redis holds the password unsealed")
	}
	// Port is not a password: a masked value there is a value like any.
	got.Action.Parameters["Port"] = remote.MaskText
	p := b.do(t, http.MethodPut, "/api/v1/schedules/"+sc.ID, testAdminToken, put).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if paths := sortedPaths(p); !slices.Equal(paths, []string{"action.parameters.Port"}) {
		t.Errorf("paths %v", paths)
	}
}

// publishParams records version of package id, owned by account, with
// the given parameters, straight in the store.
func publishParams(t *testing.T, b *bundle, account, id, version, visibility string, params ...manifest.Parameter) {
	t.Helper()
	ctx := context.Background()
	m := manifest.Manifest{
		Metadata:   manifest.Metadata{UUID: id, Name: "Pkg " + id, Version: version},
		Parameters: params,
		Execution:  manifest.Execution{Mode: "Ssh", Command: "./install.sh"},
	}
	mj, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	up := "up-" + id + "-" + version
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: up, AccountID: account, BlobKey: "uploads/" + up + ".zip", SHA256: "abc", Size: 3}); err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: visibility}
	u, err := b.store.BeginPublish(ctx, up, opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Publish(ctx, store.PublishRequest{UploadID: up, TaskID: u.TaskID, AccountID: account,
		ID: id, Name: "pkg-" + id, Options: opts, Version: version, Manifest: mj, SHA256: "abc", Size: 3,
		BlobKey: "packages/" + up + ".zip"}); err != nil {
		t.Fatal(err)
	}
}
