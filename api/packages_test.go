package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// e2eBundle is a server and a worker on a real Redis, with archives in a
// directory the test can list.
type e2eBundle struct {
	*bundle
	blobDir string
	tasks   *tasks.Client
}

// e2eSetup starts the API and a worker running the real task handlers
// over the real Redis of PACKFLOW_TEST_REDIS_URL.
func e2eSetup(t *testing.T, uploadLimit int64) *e2eBundle {
	t.Helper()
	ctx := context.Background()
	r := testenv.RealRedis(t)
	st := store.New(r.Client, store.Options{})
	dir := filepath.Join(t.TempDir(), "blobs")
	bs, err := blob.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	client := tasks.NewClient(r.Client, st, log)
	srv, err := New(Options{Store: st, Blob: bs, Enqueuer: client, Logger: log, AdminToken: testAdminToken, UploadLimit: uploadLimit})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{
		Redis: r.Client, Store: st, NodeID: "e2e", Concurrency: 4, Logger: log,
		Handlers: tasks.Handlers(tasks.Deps{Store: st, Blob: bs, Logger: log,
			ArchiveLimits: manifest.Limits{MaxArchiveSize: uploadLimit}}),
		Retry:           tasks.Backoff{Base: time.Millisecond, Cap: time.Millisecond},
		ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("worker shutdown: %v", err)
		}
	})
	return &e2eBundle{bundle: &bundle{srv: srv, store: st, rdb: r.Client, http: hs}, blobDir: dir, tasks: client}
}

// files lists the files under the blob directory, relative to it.
func (b *e2eBundle) files(t *testing.T) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(b.blobDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(b.blobDir, p)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

// publish asks for the publish of upload id and returns the task ID.
func (b *e2eBundle) publish(t *testing.T, token, id string, body map[string]any) string {
	t.Helper()
	var acc map[string]string
	b.do(t, http.MethodPost, "/api/v1/uploads/"+id+"/publish", token, body).mustStatus(t, http.StatusAccepted).json(t, &acc)
	return acc["task_id"]
}

// settled waits until upload id is published or rejected. The bound only
// stops a broken test from hanging; nothing is asserted about time.
func (b *e2eBundle) settled(t *testing.T, token, id string) uploadJSON {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var u uploadJSON
		b.do(t, http.MethodGet, "/api/v1/uploads/"+id, token, nil).mustStatus(t, http.StatusOK).json(t, &u)
		if u.Status == store.UploadPublished || u.Status == store.UploadRejected {
			return u
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload %s still %s", id, u.Status)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func publishBody(visibility string) map[string]any {
	return map[string]any{"category": "software", "os": "linux", "os_versions": []string{"debian-12", "ubuntu-24.04"}, "visibility": visibility}
}

func TestE2EUploadPreviewPublishLibraryDownload(t *testing.T) {
	b := e2eSetup(t, manifest.DefaultMaxArchiveSize)
	ctx := context.Background()
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	tok := b.mintToken(t, acme.ID, "ann", store.RolePublisher).Token
	archive := pkgZip(t, pkgManifest(testUUID, "Agent", "1.2.0", "Ssh"))
	sum := sha256.Sum256(archive)

	body, ct := multipartBody(t, "package", archive)
	var up uploadJSON
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads", tok, ct, body, int64(body.Len())).mustStatus(t, http.StatusCreated).json(t, &up)
	if up.SHA256 != hex.EncodeToString(sum[:]) || up.Size != int64(len(archive)) {
		t.Fatalf("upload = %+v", up)
	}
	var pending page[uploadJSON]
	b.do(t, http.MethodGet, "/api/v1/uploads", tok, nil).mustStatus(t, http.StatusOK).json(t, &pending)
	if len(pending.Items) != 1 || pending.Items[0].ID != up.ID {
		t.Errorf("pending list = %+v", pending.Items)
	}
	var pv previewJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+up.ID+"/manifest", tok, nil).mustStatus(t, http.StatusOK).json(t, &pv)
	if !pv.Valid || len(pv.Form) != 1 || pv.Form[0].Variable != "Port" {
		t.Fatalf("preview = %+v", pv)
	}

	taskID := b.publish(t, tok, up.ID, publishBody("private"))
	done := b.settled(t, tok, up.ID)
	if done.Status != store.UploadPublished || done.PackageID != testUUID || done.Version != "1.2.0" {
		t.Fatalf("after publish: %+v", done)
	}
	st, err := b.tasks.Lookup(ctx, taskID)
	if err != nil || st.State != tasks.StateCompleted || !bytes.Contains(st.Result, []byte(`"version":"1.2.0"`)) {
		t.Errorf("task = %+v, %v; want completed with the version as result", st, err)
	}
	b.do(t, http.MethodGet, "/api/v1/uploads", tok, nil).mustStatus(t, http.StatusOK).json(t, &pending)
	if len(pending.Items) != 0 {
		t.Errorf("pending list after publish = %+v", pending.Items)
	}

	var lib page[packageJSON]
	b.do(t, http.MethodGet, "/api/v1/packages?os=linux&category=software&q=agent", tok, nil).mustStatus(t, http.StatusOK).json(t, &lib)
	if len(lib.Items) != 1 || lib.Items[0].ID != testUUID || lib.Items[0].AccountID != acme.ID || lib.Items[0].LatestVersion != "1.2.0" {
		t.Fatalf("library = %+v", lib.Items)
	}
	b.do(t, http.MethodGet, "/api/v1/packages?os=windows", tok, nil).mustStatus(t, http.StatusOK).json(t, &lib)
	if len(lib.Items) != 0 {
		t.Errorf("windows library = %+v", lib.Items)
	}
	var pkg packageJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID, tok, nil).mustStatus(t, http.StatusOK).json(t, &pkg)
	if pkg.Name != "Agent" || pkg.Visibility != "private" || pkg.VendorLocked || len(pkg.Versions) != 1 || pkg.ActiveVersion != "" {
		t.Errorf("package = %+v", pkg)
	}
	var ver versionJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID+"/versions/1.2.0", tok, nil).mustStatus(t, http.StatusOK).json(t, &ver)
	if ver.SHA256 != up.SHA256 || len(ver.Parameters) != 1 || len(ver.Files) != 3 || ver.PublishedBy != "ann" {
		t.Errorf("version = %+v", ver)
	}
	a := b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID+"/versions/1.2.0/archive", tok, nil).mustStatus(t, http.StatusOK)
	if !bytes.Equal(a.body, archive) || a.header.Get("Content-Type") != "application/zip" || !strings.Contains(a.header.Get("Content-Disposition"), "Agent-1.2.0.zip") {
		t.Errorf("download: %d bytes, headers %v", len(a.body), a.header)
	}
	b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID+"/versions/9.9.9", tok, nil).mustStatus(t, http.StatusNotFound).problem(t)
	b.do(t, http.MethodGet, "/api/v1/packages/"+strings.ToUpper(testUUID)+"/versions/v1.2.0", tok, nil).mustStatus(t, http.StatusOK)
	// The upload's own copy is gone: the library holds the archive.
	if diff := b.files(t); len(diff) != 1 || !strings.HasPrefix(diff[0], "packages/"+testUUID+"/") {
		t.Errorf("blob files = %v, want the published archive only", diff)
	}

	// Publishing the same version again is refused at the request; the
	// upload stays pending.
	again := b.uploadZip(t, tok, archive)
	rej := b.do(t, http.MethodPost, "/api/v1/uploads/"+again.ID+"/publish", tok, publishBody("private")).mustStatus(t, http.StatusConflict).problem(t)
	if len(rej.Errors) != 1 || rej.Errors[0].Rule != "package.version.exists" {
		t.Errorf("republish = %+v", rej)
	}
	// With force it replaces the version.
	force := publishBody("private")
	force["force"] = true
	b.publish(t, tok, again.ID, force)
	if got := b.settled(t, tok, again.ID); got.Status != store.UploadPublished {
		t.Errorf("forced republish = %+v", got)
	}
	if files := b.files(t); len(files) != 1 || !strings.Contains(files[0], again.ID) {
		t.Errorf("blob files after a forced publish = %v, want the new archive only", files)
	}

	// An invalid package is rejected with every problem.
	broken := strings.Replace(pkgManifest(testUUID, "Agent", "2.0.0", "Ssh"), `Type="Numeric"`, `Type="Number"`, 1)
	broken = strings.Replace(broken, "<Description>Installs the agent</Description>", "", 1)
	bad := b.uploadZip(t, tok, pkgZip(t, broken))
	b.publish(t, tok, bad.ID, publishBody("private"))
	if got := b.settled(t, tok, bad.ID); got.Status != store.UploadRejected || len(got.Errors) < 2 {
		t.Errorf("invalid package = %+v, want rejected with every problem", got)
	}

	// Versions go; the last one takes the package with it.
	b.do(t, http.MethodDelete, "/api/v1/packages/"+testUUID+"/versions/1.2.0", tok, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID, tok, nil).mustStatus(t, http.StatusNotFound)
	if files := b.files(t); len(files) != 1 || !strings.HasPrefix(files[0], "uploads/") {
		t.Errorf("blob files after delete = %v, want only the rejected upload", files)
	}
}

func TestE2EOversizeStoresNothing(t *testing.T) {
	const limit = 32 << 10
	b := e2eSetup(t, limit)
	tok := b.mintToken(t, store.RootAccountID, "pat", store.RolePublisher).Token
	big := bytes.Repeat([]byte("0123456789abcdef"), limit/16+1)
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads", tok, "application/zip", bytes.NewReader(big), int64(len(big))).
		mustStatus(t, http.StatusRequestEntityTooLarge).problem(t)
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads", tok, "application/zip", bytes.NewReader(big), -1).
		mustStatus(t, http.StatusRequestEntityTooLarge).problem(t)
	form, ct := multipartBody(t, "package", big)
	b.sendRaw(t, http.MethodPost, "/api/v1/uploads", tok, ct, form, -1).
		mustStatus(t, http.StatusRequestEntityTooLarge).problem(t)

	if files := b.files(t); len(files) != 0 {
		t.Errorf("blob files after refused uploads: %v", files)
	}
	keys, err := b.rdb.Keys(context.Background(), "pf:{pkg}:*").Result()
	if err != nil || len(keys) != 0 {
		t.Errorf("Redis keys after refused uploads: %v, %v", keys, err)
	}
}

func TestE2EConcurrentPublishOneWins(t *testing.T) {
	b := e2eSetup(t, manifest.DefaultMaxArchiveSize)
	tok := b.mintToken(t, store.RootAccountID, "pat", store.RolePublisher).Token
	// Two different archives claiming the same UUID and version.
	first := b.uploadZip(t, tok, pkgZip(t, pkgManifest(testUUID, "Agent", "1.0.0", "Ssh")))
	second := b.uploadZip(t, tok, pkgZip(t, strings.Replace(pkgManifest(testUUID, "Agent", "1.0.0", "Ssh"), "TCP port", "the TCP port", 1)))
	if first.SHA256 == second.SHA256 {
		t.Fatal("the two archives should differ")
	}
	var wg sync.WaitGroup
	for _, id := range []string{first.ID, second.ID} {
		wg.Go(func() {
			res, err := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/api/v1/uploads/"+id+"/publish",
				strings.NewReader(`{"category":"script","os":"linux","visibility":"private"}`))
			if err != nil {
				t.Error(err)
				return
			}
			res.Header.Set("Authorization", "Bearer "+tok)
			res.Header.Set("Content-Type", "application/json")
			ans, err := b.http.Client().Do(res)
			if err != nil {
				t.Error(err)
				return
			}
			_ = ans.Body.Close()
			if ans.StatusCode != http.StatusAccepted {
				t.Errorf("publish %s: %d", id, ans.StatusCode)
			}
		})
	}
	wg.Wait()
	results := map[store.UploadStatus][]uploadJSON{}
	for _, id := range []string{first.ID, second.ID} {
		u := b.settled(t, tok, id)
		results[u.Status] = append(results[u.Status], u)
	}
	if len(results[store.UploadPublished]) != 1 || len(results[store.UploadRejected]) != 1 {
		t.Fatalf("outcomes = %+v, want one published and one rejected", results)
	}
	winner, loser := results[store.UploadPublished][0], results[store.UploadRejected][0]
	if len(loser.Errors) != 1 || loser.Errors[0].Rule != "package.version.exists" {
		t.Errorf("loser's problems = %+v, want one version conflict", loser.Errors)
	}
	var ver versionJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID+"/versions/1.0.0", tok, nil).mustStatus(t, http.StatusOK).json(t, &ver)
	if ver.UploadID != winner.ID || ver.SHA256 != winner.SHA256 {
		t.Errorf("recorded version = %+v, want the winner %s", ver, winner.ID)
	}
	a := b.do(t, http.MethodGet, "/api/v1/packages/"+testUUID+"/versions/1.0.0/archive", tok, nil).mustStatus(t, http.StatusOK)
	if sum := sha256.Sum256(a.body); hex.EncodeToString(sum[:]) != winner.SHA256 {
		t.Errorf("download is not the winner's archive")
	}
	want := []string{blob.PackageKey(testUUID, winner.ID), blob.UploadKey(loser.ID)}
	slices.Sort(want)
	if got := b.files(t); !slices.Equal(got, want) {
		t.Errorf("blob files = %v, want %v", got, want)
	}
}

func TestE2EVisibility(t *testing.T) {
	b := e2eSetup(t, manifest.DefaultMaxArchiveSize)
	parent := b.createAccount(t, testAdminToken, map[string]any{"name": "parent"})
	child := b.createAccount(t, testAdminToken, map[string]any{"name": "child", "parent": parent.ID})
	stranger := b.createAccount(t, testAdminToken, map[string]any{"name": "stranger"})
	vendor := b.createAccount(t, testAdminToken, map[string]any{"name": "vendor", "vendor": true})
	tok := map[string]string{
		"parent":   b.mintToken(t, parent.ID, "pam", store.RolePublisher).Token,
		"child":    b.mintToken(t, child.ID, "cid", store.RoleViewer).Token,
		"stranger": b.mintToken(t, stranger.ID, "sam", store.RolePublisher).Token,
		"vendor":   b.mintToken(t, vendor.ID, "val", store.RolePublisher).Token,
		"root":     testAdminToken,
	}
	path := "/api/v1/packages/" + testUUID
	sees := func(who string) bool {
		t.Helper()
		a := b.do(t, http.MethodGet, path, tok[who], nil)
		var lib page[packageJSON]
		b.do(t, http.MethodGet, "/api/v1/packages", tok[who], nil).mustStatus(t, http.StatusOK).json(t, &lib)
		listed := slices.ContainsFunc(lib.Items, func(p packageJSON) bool { return p.ID == testUUID })
		if (a.status == http.StatusOK) != listed {
			t.Errorf("%s: GET says %d but the list says %v", who, a.status, listed)
		}
		if a.status != http.StatusOK && a.status != http.StatusNotFound {
			t.Errorf("%s: status %d", who, a.status)
		}
		return a.status == http.StatusOK
	}
	for i, vis := range []string{"private", "shared", "public"} {
		version := []string{"1.0.0", "1.1.0", "1.2.0"}[i]
		u := b.uploadZip(t, tok["parent"], pkgZip(t, pkgManifest(testUUID, "Agent", version, "Ssh")))
		b.publish(t, tok["parent"], u.ID, publishBody(vis))
		if got := b.settled(t, tok["parent"], u.ID); got.Status != store.UploadPublished {
			t.Fatalf("publish %s: %+v", vis, got)
		}
		want := map[string]bool{
			"parent": true, "root": true,
			"child":    vis != "private",
			"stranger": vis == "public",
			"vendor":   vis == "public",
		}
		for who, w := range want {
			if got := sees(who); got != w {
				t.Errorf("%s package: %s sees it = %v, want %v", vis, who, got, w)
			}
		}
		if vis == "private" {
			for _, p := range []string{path + "/versions/1.0.0", path + "/versions/1.0.0/archive"} {
				b.do(t, http.MethodGet, p, tok["stranger"], nil).mustStatus(t, http.StatusNotFound).problem(t)
			}
			b.do(t, http.MethodDelete, path+"/versions/1.0.0", tok["stranger"], nil).mustStatus(t, http.StatusNotFound)
		}
	}
	// Public does not mean writable: a stranger cannot delete, nor reuse
	// the UUID.
	b.do(t, http.MethodDelete, path+"/versions/1.0.0", tok["stranger"], nil).mustStatus(t, http.StatusForbidden).problem(t)
	steal := b.uploadZip(t, tok["stranger"], pkgZip(t, pkgManifest(testUUID, "Agent", "9.0.0", "Ssh")))
	p := b.do(t, http.MethodPost, "/api/v1/uploads/"+steal.ID+"/publish", tok["stranger"], publishBody("public")).mustStatus(t, http.StatusConflict).problem(t)
	if len(p.Errors) == 0 || p.Errors[0].Rule != "package.uuid.owner" {
		t.Errorf("stranger reusing the UUID = %+v", p)
	}

	// A vendor's package: nobody else deletes it, not even root.
	const vendorUUID = "7b0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b"
	vu := b.uploadZip(t, tok["vendor"], pkgZip(t, pkgManifest(vendorUUID, "Vendor Pack", "1.0.0", "Ssh")))
	b.publish(t, tok["vendor"], vu.ID, publishBody("public"))
	if got := b.settled(t, tok["vendor"], vu.ID); got.Status != store.UploadPublished {
		t.Fatalf("vendor publish = %+v", got)
	}
	var vp packageJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+vendorUUID, tok["stranger"], nil).mustStatus(t, http.StatusOK).json(t, &vp)
	if !vp.VendorLocked {
		t.Errorf("vendor package = %+v, want vendor_locked", vp)
	}
	b.do(t, http.MethodDelete, "/api/v1/packages/"+vendorUUID+"/versions/1.0.0", testAdminToken, nil).mustStatus(t, http.StatusForbidden).problem(t)
	b.do(t, http.MethodDelete, "/api/v1/packages/"+vendorUUID+"/versions/1.0.0", tok["vendor"], nil).mustStatus(t, http.StatusNoContent)
}
