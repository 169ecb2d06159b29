package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// testManifest returns a package.manifest for uuid with the given name,
// version ("" for none) and mode.
func testManifest(uuid, name, version, mode string) string {
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
  </Parameters>
  <Execution>
    <Mode>%s</Mode>
    <Command>%s</Command>
  </Execution>
</Manifest>
`, uuid, name, v, mode, cmd)
}

// testZip packs a manifest with the scripts it names.
func testZip(t testing.TB, manifestXML string) []byte {
	t.Helper()
	return pkgtest.Zip(t,
		pkgtest.File{Name: "package.manifest", Body: manifestXML, Mode: 0o644},
		pkgtest.File{Name: "install.sh", Body: "#!/bin/sh\necho ok\n", Mode: 0o755},
		pkgtest.File{Name: "install.cmd", Body: "@echo ok\r\n", Mode: 0o644})
}

type publishBundle struct {
	mr      *miniredis.Miniredis
	store   *store.Store
	blob    *blob.Store
	handler *tasks.PublishHandler
	acme    string
	vendor  string
	n       int
}

func setupPublish(t *testing.T) *publishBundle {
	t.Helper()
	ctx := context.Background()
	mr, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	bs, err := blob.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	h, err := tasks.NewPublishHandler(tasks.PublishOptions{Store: st, Blob: bs, Logger: slog.New(slog.NewTextHandler(tWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		t.Fatal(err)
	}
	acme, err := st.CreateAccount(ctx, store.Account{Name: "acme", Parent: store.RootAccountID})
	if err != nil {
		t.Fatal(err)
	}
	vendor, err := st.CreateAccount(ctx, store.Account{Name: "vendor", Parent: store.RootAccountID, Vendor: true})
	if err != nil {
		t.Fatal(err)
	}
	return &publishBundle{mr: mr, store: st, blob: bs, handler: h, acme: acme.ID, vendor: vendor.ID}
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// upload stores archive as a new upload of account, begins its publish
// with opts and returns the upload and its task.
func (b *publishBundle) upload(t *testing.T, account string, archive []byte, opts store.PublishOptions) (store.Upload, *asynq.Task) {
	t.Helper()
	ctx := context.Background()
	b.n++
	id := fmt.Sprintf("up%d", b.n)
	info, err := b.blob.Put(ctx, blob.UploadKey(id), bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: id, AccountID: account, BlobKey: info.Key, SHA256: info.SHA256, Size: info.Size, CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	u, err := b.store.BeginPublish(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	task, taskOpts, err := tasks.NewPublishTask(u)
	if err != nil {
		t.Fatal(err)
	}
	if len(taskOpts) != 2 {
		t.Errorf("publish task options = %v, want queue and task id", taskOpts)
	}
	return u, task
}

func linuxOpts() store.PublishOptions {
	return store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
}

const (
	uuid1 = "5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b"
	uuid2 = "6a0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b"
)

func TestPublishRecordsVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPublish(t)
	opts := linuxOpts()
	opts.RequestedBy = "bob"
	u, task := b.upload(t, b.acme, testZip(t, testManifest(uuid1, "Agent", "1.2.0", "Ssh")), opts)
	if err := b.handler.ProcessTask(ctx, task); err != nil {
		t.Fatalf("ProcessTask: %v", err)
	}
	got, err := b.store.Upload(ctx, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != store.UploadPublished || got.PackageID != uuid1 || got.Version != "1.2.0" {
		t.Errorf("upload after publish = %+v", got)
	}
	pkg, err := b.store.Package(ctx, uuid1)
	if err != nil {
		t.Fatal(err)
	}
	if pkg.AccountID != b.acme || pkg.Name != "Agent" || pkg.OS != "linux" || pkg.VendorLocked {
		t.Errorf("package = %+v", pkg)
	}
	v, err := b.store.Version(ctx, uuid1, "1.2.0")
	if err != nil {
		t.Fatal(err)
	}
	if v.SHA256 != u.SHA256 || v.BlobKey != blob.PackageKey(uuid1, u.ID) || len(v.Files) != 3 || !bytes.Contains(v.Manifest, []byte(`"Port"`)) || v.PublishedBy != "bob" {
		t.Errorf("version = %+v", v)
	}
	keys, err := b.blob.List(ctx, "")
	if diff := cmp.Diff([]string{blob.PackageKey(uuid1, u.ID)}, keys); err != nil || diff != "" {
		t.Errorf("blobs after publish (-want +got):\n%s", diff)
	}
	// Running the task again (a retry after a crash) changes nothing.
	if err := b.handler.ProcessTask(ctx, task); err != nil {
		t.Errorf("second run: %v", err)
	}

	// Without <Version>, versions are revision numbers.
	for _, want := range []string{"1", "2"} {
		u, task := b.upload(t, b.acme, testZip(t, testManifest(uuid2, "Tool", "", "Ssh")), linuxOpts())
		if err := b.handler.ProcessTask(ctx, task); err != nil {
			t.Fatalf("ProcessTask: %v", err)
		}
		if got, _ := b.store.Upload(ctx, u.ID); got.Version != want {
			t.Errorf("revision = %q, want %s", got.Version, want)
		}
	}
}

func TestPublishRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPublish(t)
	_, first := b.upload(t, b.vendor, testZip(t, testManifest(uuid1, "Vendor Agent", "1.0.0", "Ssh")), linuxOpts())
	if err := b.handler.ProcessTask(ctx, first); err != nil {
		t.Fatal(err)
	}
	windows := linuxOpts()
	windows.OS = "windows"
	force := linuxOpts()
	force.Force = true
	badManifest := strings.Replace(testManifest(uuid2, "Broken", "", "Ssh"), "<Description>Installs the agent</Description>", "", 1)
	badManifest = strings.Replace(badManifest, `Type="Numeric"`, `Type="Number"`, 1)

	tests := []struct {
		name    string
		account string
		archive []byte
		opts    store.PublishOptions
		rules   []string
	}{
		{"invalid manifest: every problem", b.acme, testZip(t, badManifest), linuxOpts(), []string{"metadata.description.missing", "parameter.type.unknown"}},
		{"os disagrees with mode", b.acme, testZip(t, testManifest(uuid2, "Tool", "", "Ssh")), windows, []string{"publish.os.mode"}},
		{"not a zip", b.acme, []byte("not a zip at all"), linuxOpts(), nil},
		{"uuid of another account", b.acme, testZip(t, testManifest(uuid1, "Other", "2.0.0", "Ssh")), linuxOpts(), []string{"package.uuid.owner"}},
		{"name taken", b.acme, testZip(t, testManifest(uuid2, "vendor agent", "", "Ssh")), linuxOpts(), []string{"package.name.taken"}},
		{"vendor version overwritten with force", b.vendor, testZip(t, testManifest(uuid1, "Vendor Agent", "1.0.0", "Ssh")), force, []string{"package.vendor.locked"}},
		{"existing version", b.vendor, testZip(t, testManifest(uuid1, "Vendor Agent", "1.0.0", "Ssh")), linuxOpts(), []string{"package.version.exists"}},
		{"bad options", b.acme, testZip(t, testManifest(uuid2, "Tool", "", "Ssh")), store.PublishOptions{OS: "linux"}, []string{"required", "required"}},
	}
	for _, tt := range tests {
		u, task := b.upload(t, tt.account, tt.archive, tt.opts)
		// A rejection is the task's outcome, not its failure.
		if err := b.handler.ProcessTask(ctx, task); err != nil {
			t.Errorf("%s: %v, want the task to complete", tt.name, err)
		}
		got, err := b.store.Upload(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != store.UploadRejected || len(got.Errors) == 0 {
			t.Errorf("%s: upload = %+v, want rejected with problems", tt.name, got)
			continue
		}
		if tt.rules == nil {
			continue
		}
		var rules []string
		for _, p := range got.Errors {
			rules = append(rules, p.Rule)
			if p.Message == "" {
				t.Errorf("%s: problem without a message: %+v", tt.name, p)
			}
		}
		for _, r := range tt.rules {
			if !strings.Contains(strings.Join(rules, " "), r) {
				t.Errorf("%s: rules %v lack %s", tt.name, rules, r)
			}
		}
	}
	// Only the first version's archive remains in the library; refused
	// publishes leave no copy behind.
	keys, err := b.blob.List(ctx, "packages/")
	if err != nil || len(keys) != 1 {
		t.Errorf("package blobs = %v, %v; want one", keys, err)
	}
}

func TestPublishRetriesStorageErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPublish(t)
	_, task := b.upload(t, b.acme, testZip(t, testManifest(uuid1, "Agent", "", "Ssh")), linuxOpts())
	b.mr.SetError("LOADING redis is loading")
	err := b.handler.ProcessTask(ctx, task)
	if err == nil || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("ProcessTask with Redis failing: %v, want a retryable error", err)
	}
	b.mr.SetError("")
	if err := b.handler.ProcessTask(ctx, task); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestPublishStaleTask(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupPublish(t)
	u, task := b.upload(t, b.acme, testZip(t, testManifest(uuid1, "Agent", "", "Ssh")), linuxOpts())
	if err := b.store.AbortPublish(ctx, u.ID, u.TaskID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.BeginPublish(ctx, u.ID, linuxOpts()); err != nil {
		t.Fatal(err)
	}
	if err := b.handler.ProcessTask(ctx, task); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("stale task: %v, want SkipRetry", err)
	}
	if got, _ := b.store.Upload(ctx, u.ID); got.Status != store.UploadPublishing {
		t.Errorf("a stale task changed the upload: %+v", got)
	}
	if err := b.handler.ProcessTask(ctx, asynq.NewTask(tasks.TypePublish, []byte("{"))); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("bad payload: %v, want SkipRetry", err)
	}
}

func TestPublishLastAttemptRejects(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	dir := t.TempDir()
	bs, err := blob.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	// A file where the library's directory should be: every copy into
	// the library fails, as a full or broken disk would.
	if err := os.WriteFile(filepath.Join(dir, "packages"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		t.Fatal(err)
	}
	h, err := tasks.NewPublishHandler(tasks.PublishOptions{Store: st, Blob: bs})
	if err != nil {
		t.Fatal(err)
	}
	b := &publishBundle{store: st, blob: bs, handler: h}
	u, task := b.upload(t, store.RootAccountID, testZip(t, testManifest(uuid1, "Agent", "", "Ssh")), linuxOpts())

	srv := asynq.NewServerFromRedisClient(rdb, asynq.Config{
		Concurrency: 1, Queues: map[string]int{tasks.QueuePublish: 1},
		TaskCheckInterval: 10 * time.Millisecond, LogLevel: asynq.FatalLevel,
	})
	if err := srv.Start(h); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown()
	client := asynq.NewClientFromRedisClient(rdb)
	if _, err := client.Enqueue(task, asynq.Queue(tasks.QueuePublish), asynq.TaskID(u.TaskID), asynq.MaxRetry(0)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, err := st.Upload(ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status == store.UploadRejected {
			if len(got.Errors) != 1 || got.Errors[0].Rule != "publish.failed" {
				t.Errorf("problems = %+v, want publish.failed", got.Errors)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("upload still %s after the only attempt failed", got.Status)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The owner can publish it again.
	if _, err := st.BeginPublish(ctx, u.ID, linuxOpts()); err != nil {
		t.Errorf("publish again: %v", err)
	}
}
