package api

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/store"
)

// pkgManifest returns a package.manifest for uuid with the given name,
// version ("" for none) and mode.
func pkgManifest(uuid, name, version, mode string) string {
	v := ""
	if version != "" {
		v = "<Version>" + version + "</Version>"
	}
	cmd := "./install.sh ${Port}"
	if mode != "Ssh" {
		cmd = "install.cmd ${Port}"
	}
	return fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata>
    <UUID>%s</UUID>
    <Name>%s</Name>
    <Description>Installs the agent</Description>
    %s
  </Metadata>
  <Parameters>
    <Parameter Name="Port" Type="Numeric" Variable="Port" Default="8080" Hint="TCP port"/>
    <Parameter Name="Server" Type="String" Variable="T3.Server.Name" Prompt="None"/>
  </Parameters>
  <Execution>
    <Mode>%s</Mode>
    <Command>%s</Command>
  </Execution>
</Manifest>
`, uuid, name, v, mode, cmd)
}

// pkgZip packs a manifest with the scripts it may name.
func pkgZip(t testing.TB, manifestXML string) []byte {
	t.Helper()
	return pkgtest.Zip(t,
		pkgtest.File{Name: "package.manifest", Body: manifestXML, Mode: 0o644},
		pkgtest.File{Name: "install.sh", Body: "#!/bin/sh\necho ok\n", Mode: 0o755},
		pkgtest.File{Name: "install.cmd", Body: "@echo ok\r\n", Mode: 0o644})
}

// sendRaw sends body with the given content type (no JSON encoding).
func (b *bundle) sendRaw(t *testing.T, method, path, token, contentType string, body io.Reader, length int64) answer {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, b.http.URL+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = length
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: data}
}

// uploadZip uploads archive as a raw body and returns the upload.
func (b *bundle) uploadZip(t *testing.T, token string, archive []byte) uploadJSON {
	t.Helper()
	var u uploadJSON
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads?filename=agent.zip", token, "application/zip", bytes.NewReader(archive), int64(len(archive))).
		mustStatus(t, http.StatusCreated).json(t, &u)
	return u
}

// multipartBody returns a multipart form with archive in field.
func multipartBody(t *testing.T, field string, archive []byte) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if err := mw.WriteField("note", "ignored"); err != nil {
		t.Fatal(err)
	}
	w, err := mw.CreateFormFile(field, `C:\build\agent.zip`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(archive); err != nil {
		t.Fatal(err)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// fakeEnqueuer records the tasks it is given.
type fakeEnqueuer struct {
	mu    sync.Mutex
	tasks []*asynq.Task
	ids   []string
	err   error
}

func (f *fakeEnqueuer) Enqueue(_ context.Context, _ string, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return nil, f.err
	}
	id := ""
	for _, o := range opts {
		if o.Type() == asynq.TaskIDOpt {
			id, _ = o.Value().(string)
		}
	}
	f.tasks = append(f.tasks, task)
	f.ids = append(f.ids, id)
	return &asynq.TaskInfo{ID: id}, nil
}

// uploadSetup is a server with a memory blob store, a small upload limit
// and a recording enqueuer, plus a publisher token.
type uploadBundle struct {
	*bundle
	blob  *blob.Store
	enq   *fakeEnqueuer
	token string
}

const testUploadLimit = 64 << 10

func uploadSetup(t *testing.T) *uploadBundle {
	t.Helper()
	bs, err := blob.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	enq := &fakeEnqueuer{}
	b := setup(t, func(o *Options) {
		o.Blob, o.Enqueuer, o.UploadLimit = bs, enq, testUploadLimit
	})
	tok := b.mintToken(t, store.RootAccountID, "pat", store.RolePublisher)
	return &uploadBundle{bundle: b, blob: bs, enq: enq, token: tok.Token}
}

func (u *uploadBundle) blobKeys(t *testing.T) []string {
	t.Helper()
	keys, err := u.blob.List(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

const testUUID = "5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b"

func TestUploadRawAndMultipart(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	archive := pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh"))

	raw := b.uploadZip(t, b.token, archive)
	if raw.Status != store.UploadPending || raw.Size != int64(len(archive)) || len(raw.SHA256) != 64 || raw.Filename != "agent.zip" {
		t.Errorf("raw upload = %+v", raw)
	}

	body, ct := multipartBody(t, "package", archive)
	var mp uploadJSON
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads", b.token, ct, body, -1).mustStatus(t, http.StatusCreated).json(t, &mp)
	if mp.SHA256 != raw.SHA256 || mp.Filename != "agent.zip" || mp.ID == raw.ID {
		t.Errorf("multipart upload = %+v, want the same sha256 as %+v", mp, raw)
	}

	var got uploadJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+raw.ID, b.token, nil).mustStatus(t, http.StatusOK).json(t, &got)
	if got.ID != raw.ID || got.Errors == nil || got.Warnings == nil {
		t.Errorf("GET upload = %+v", got)
	}
	var list page[uploadJSON]
	b.do(t, http.MethodGet, "/api/v1/uploads?limit=1", b.token, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 1 || list.NextCursor == "" {
		t.Fatalf("first page = %+v", list)
	}
	var rest page[uploadJSON]
	b.do(t, http.MethodGet, "/api/v1/uploads?limit=1&cursor="+list.NextCursor, b.token, nil).mustStatus(t, http.StatusOK).json(t, &rest)
	if len(rest.Items) != 1 || rest.Items[0].ID == list.Items[0].ID {
		t.Errorf("second page = %+v", rest)
	}
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	big := bytes.Repeat([]byte("z"), testUploadLimit+1)
	viewer := b.mintToken(t, store.RootAccountID, "vic", store.RoleViewer).Token
	formNoPackage, formCT := multipartBody(t, "file", []byte("x"))
	formBig, formBigCT := multipartBody(t, "package", big)

	tests := []struct {
		name   string
		token  string
		ct     string
		body   []byte
		length int64 // -1: unknown (chunked)
		status int
	}{
		{"over the limit, length declared", b.token, "application/zip", big, int64(len(big)), http.StatusRequestEntityTooLarge},
		{"over the limit, chunked", b.token, "application/zip", big, -1, http.StatusRequestEntityTooLarge},
		{"over the limit, multipart", b.token, formBigCT, formBig.Bytes(), -1, http.StatusRequestEntityTooLarge},
		{"empty", b.token, "application/zip", nil, 0, http.StatusUnprocessableEntity},
		{"no package field", b.token, formCT, formNoPackage.Bytes(), -1, http.StatusUnprocessableEntity},
		{"wrong media type", b.token, "text/plain", []byte("zip"), 3, http.StatusUnsupportedMediaType},
		{"multipart without boundary", b.token, "multipart/form-data", []byte("x"), 1, http.StatusBadRequest},
		{"multipart cut short", b.token, formCT, formNoPackage.Bytes()[:formNoPackage.Len()/2], -1, http.StatusBadRequest},
		{"package part cut short", b.token, formBigCT, formBig.Bytes()[:formBig.Len()/2], -1, http.StatusBadRequest},
		{"viewer", viewer, "application/zip", []byte("PK"), 2, http.StatusForbidden},
	}
	for _, tt := range tests {
		a := b.sendRaw(t, http.MethodPost, "/api/v1/uploads", tt.token, tt.ct, bytes.NewReader(tt.body), tt.length)
		if a.status != tt.status {
			t.Errorf("%s: status %d, want %d; %s", tt.name, a.status, tt.status, a.body)
			continue
		}
		a.problem(t)
	}
	if keys := b.blobKeys(t); len(keys) != 0 {
		t.Errorf("refused uploads left blobs: %v", keys)
	}
	ups, _, err := b.store.Uploads(context.Background(), store.UploadQuery{})
	if err != nil || len(ups) != 0 {
		t.Errorf("refused uploads left records: %v, %v", ups, err)
	}
}

func TestUploadPreview(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	good := b.uploadZip(t, b.token, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	var pv previewJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+good.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusOK).json(t, &pv)
	if !pv.Valid || pv.OS != "linux" || pv.Manifest == nil || pv.Manifest.Metadata.UUID != testUUID || len(pv.Errors) != 0 {
		t.Errorf("preview = %+v", pv)
	}
	// The form asks for Port only: the system parameter is filled in.
	if len(pv.Form) != 1 || pv.Form[0].Variable != "Port" || pv.Form[0].Default != "8080" || pv.Form[0].Hint != "TCP port" {
		t.Errorf("form = %+v", pv.Form)
	}

	broken := strings.Replace(pkgManifest(testUUID, "Agent", "", "Ssh"), "<Description>Installs the agent</Description>", "", 1)
	broken = strings.Replace(broken, "<Mode>Ssh</Mode>", "<Mode>Telnet</Mode>", 1)
	bad := b.uploadZip(t, b.token, pkgZip(t, broken))
	b.do(t, http.MethodGet, "/api/v1/uploads/"+bad.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusOK).json(t, &pv)
	if pv.Valid || len(pv.Errors) < 2 {
		t.Errorf("preview of a broken manifest = valid %v, errors %+v; want every problem", pv.Valid, pv.Errors)
	}
	for _, p := range pv.Errors {
		if p.Rule == "" || p.Message == "" || p.Line == 0 {
			t.Errorf("problem without rule, message or line: %+v", p)
		}
	}
	notZip := b.uploadZip(t, b.token, []byte("just text"))
	b.do(t, http.MethodGet, "/api/v1/uploads/"+notZip.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusOK).json(t, &pv)
	if pv.Valid || len(pv.Errors) == 0 || pv.Manifest != nil {
		t.Errorf("preview of a non-zip = %+v", pv)
	}
	b.do(t, http.MethodGet, "/api/v1/uploads/nope/manifest", b.token, nil).mustStatus(t, http.StatusNotFound).problem(t)
}

func TestPublishRequest(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	u := b.uploadZip(t, b.token, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	path := "/api/v1/uploads/" + u.ID + "/publish"

	p := b.do(t, http.MethodPost, path, b.token, map[string]any{"category": "app", "os": "mac", "os_versions": []string{""}}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	want := map[string]bool{"category": true, "os": true, "visibility": true, "os_versions[0]": true}
	for _, e := range p.Errors {
		delete(want, e.Path)
	}
	if len(want) != 0 {
		t.Errorf("422 lacks %v: %+v", want, p.Errors)
	}
	b.do(t, http.MethodPost, path, b.token, map[string]any{"category": "script", "os": "linux", "visibility": "private", "colour": "red"}).
		mustStatus(t, http.StatusBadRequest).problem(t)

	body := map[string]any{"category": "script", "os": "linux", "os_versions": []string{"debian-12"}, "visibility": "shared"}
	viewer := b.mintToken(t, store.RootAccountID, "vic", store.RoleViewer).Token
	b.do(t, http.MethodPost, path, viewer, body).mustStatus(t, http.StatusForbidden)
	b.do(t, http.MethodPost, "/api/v1/uploads/nope/publish", b.token, body).mustStatus(t, http.StatusNotFound)

	b.enq.err = fmt.Errorf("redis down")
	b.do(t, http.MethodPost, path, b.token, body).mustStatus(t, http.StatusServiceUnavailable).problem(t)
	var got uploadJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+u.ID, b.token, nil).mustStatus(t, http.StatusOK).json(t, &got)
	if got.Status != store.UploadPending {
		t.Errorf("after a failed enqueue the upload is %s, want pending", got.Status)
	}
	b.enq.err = nil

	var acc map[string]string
	a := b.do(t, http.MethodPost, path, b.token, body).mustStatus(t, http.StatusAccepted)
	a.json(t, &acc)
	if acc["task_id"] == "" || a.header.Get("Location") != "/api/v1/tasks/"+acc["task_id"] {
		t.Errorf("202 = %v, Location %q", acc, a.header.Get("Location"))
	}
	if len(b.enq.ids) != 1 || b.enq.ids[0] != acc["task_id"] || b.enq.tasks[0].Type() != "package:publish" {
		t.Errorf("enqueued %v", b.enq.ids)
	}
	b.do(t, http.MethodPost, path, b.token, body).mustStatus(t, http.StatusConflict).problem(t)
	b.do(t, http.MethodDelete, "/api/v1/uploads/"+u.ID, b.token, nil).mustStatus(t, http.StatusConflict).problem(t)
}

func TestDeleteUpload(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	u := b.uploadZip(t, b.token, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	b.do(t, http.MethodDelete, "/api/v1/uploads/"+u.ID, b.token, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/uploads/"+u.ID, b.token, nil).mustStatus(t, http.StatusNotFound)
	if keys := b.blobKeys(t); len(keys) != 0 {
		t.Errorf("blobs after delete: %v", keys)
	}
}

func TestUploadsOfOtherAccountsAreHidden(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	other := b.createAccount(t, testAdminToken, map[string]any{"name": "other"})
	acmeTok := b.mintToken(t, acme.ID, "ann", store.RolePublisher).Token
	otherTok := b.mintToken(t, other.ID, "oz", store.RolePublisher).Token
	u := b.uploadZip(t, acmeTok, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	for _, path := range []string{"/api/v1/uploads/" + u.ID, "/api/v1/uploads/" + u.ID + "/manifest"} {
		b.do(t, http.MethodGet, path, otherTok, nil).mustStatus(t, http.StatusNotFound)
		b.do(t, http.MethodGet, path, acmeTok, nil).mustStatus(t, http.StatusOK)
		b.do(t, http.MethodGet, path, b.token, nil).mustStatus(t, http.StatusOK) // root
	}
	b.do(t, http.MethodDelete, "/api/v1/uploads/"+u.ID, otherTok, nil).mustStatus(t, http.StatusNotFound)
	var list page[uploadJSON]
	b.do(t, http.MethodGet, "/api/v1/uploads", otherTok, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("another account lists %+v", list.Items)
	}
	b.do(t, http.MethodGet, "/api/v1/uploads?status=pending,bogus", acmeTok, nil).mustStatus(t, http.StatusUnprocessableEntity)
}

// TestUploadPreviewIsKept: an upload's archive is checked once and the
// result kept, so a later preview does not read the archive again (here:
// it still answers once the archive is gone).
func TestUploadPreviewIsKept(t *testing.T) {
	t.Parallel()
	b := uploadSetup(t)
	u := b.uploadZip(t, b.token, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	var first, again previewJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+u.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusOK).json(t, &first)
	for _, k := range b.blobKeys(t) {
		if err := b.blob.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, http.MethodGet, "/api/v1/uploads/"+u.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusOK).json(t, &again)
	if !again.Valid || again.Manifest == nil || again.Manifest.Metadata.UUID != first.Manifest.Metadata.UUID {
		t.Errorf("second preview = %+v, want the kept result", again)
	}
	other := b.uploadZip(t, b.token, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.1", "Ssh")))
	for _, k := range b.blobKeys(t) {
		if err := b.blob.Delete(context.Background(), k); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, http.MethodGet, "/api/v1/uploads/"+other.ID+"/manifest", b.token, nil).mustStatus(t, http.StatusGone).problem(t)
}
