package tasks_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// execBundle is a platform for execution tests: real Redis, a sealed
// store, a blob store, published packages and workers.
type execBundle struct {
	redis   *testenv.Redis
	blobURL string
	rdb     redis.UniversalClient
	store   *store.Store
	blob    *blob.Store
	client  *tasks.Client
	log     *slog.Logger
	n       int
}

func setupExec(t *testing.T) *execBundle {
	t.Helper()
	ctx := context.Background()
	r := testenv.RealRedis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{0x5a}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(r.Client, store.Options{Secrets: box})
	blobURL := "file://" + filepath.ToSlash(filepath.Join(t.TempDir(), "blobs"))
	bs, err := blob.Open(ctx, blobURL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	return &execBundle{redis: r, blobURL: blobURL, rdb: r.Client, store: st, blob: bs, client: tasks.NewClient(r.Client, st, log), log: log}
}

// file is one file of a test package.
type file struct {
	name, body string
	mode       fs.FileMode
}

// publish packs files with manifestXML and publishes the archive through
// the publish handler, returning the version.
func (b *execBundle) publish(t *testing.T, manifestXML string, files ...file) store.Version {
	t.Helper()
	ctx := context.Background()
	entries := []pkgtest.File{{Name: "package.manifest", Body: manifestXML, Mode: 0o644}}
	for _, f := range files {
		entries = append(entries, pkgtest.File{Name: f.name, Body: f.body, Mode: f.mode})
	}
	archive := pkgtest.Zip(t, entries...)
	b.n++
	id := fmt.Sprintf("up%d", b.n)
	info, err := b.blob.Put(ctx, blob.UploadKey(id), bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: id, AccountID: store.RootAccountID, BlobKey: info.Key,
		SHA256: info.SHA256, Size: info.Size, CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
	if bytes.Contains([]byte(manifestXML), []byte("<Mode>PowerShell</Mode>")) || bytes.Contains([]byte(manifestXML), []byte("<Mode>Command</Mode>")) {
		opts.OS, opts.OSVersions = "windows", []string{"2022"}
	}
	u, err := b.store.BeginPublish(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewPublishTask(u)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tasks.NewPublishHandler(tasks.PublishOptions{Store: b.store, Blob: b.blob, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("publish: %v", err)
	}
	u, err = b.store.Upload(ctx, id)
	if err != nil || u.Status != store.UploadPublished {
		t.Fatalf("upload %+v, %v", u, err)
	}
	v, err := b.store.Version(ctx, u.PackageID, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// workerOpts tune a test worker.
type workerOpts struct {
	tuneSSH    func(store.Server, *ssh.Options)
	leaseTTL   time.Duration
	dcLimits   map[string]int
	stageDir   string
	nodeID     string
	allowLocal bool
	// rdb and st, when set, are the worker's own Redis client and store
	// (a client through a proxy, or with hooks); default the bundle's.
	rdb redis.UniversalClient
	st  *store.Store
}

// startWorker starts a worker serving exec:default with the executor.
func (b *execBundle) startWorker(t *testing.T, o workerOpts) *worker.Worker {
	t.Helper()
	if o.rdb == nil {
		o.rdb, o.st = b.rdb, b.store
	}
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: o.st, TuneSSH: o.tuneSSH, AllowLocal: o.allowLocal, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if o.stageDir == "" {
		o.stageDir = t.TempDir()
	}
	ex, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: o.st, Connector: conn,
		Stager: &tasks.BlobStager{Blob: b.blob, Dir: o.stageDir}, LeaseTTL: o.leaseTTL,
		DatacenterLimits: o.dcLimits, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{
		Redis: o.rdb, Store: o.st, NodeID: o.nodeID, Concurrency: 16, Datacenters: []string{"default"},
		Retry:    tasks.Backoff{Base: time.Second, Cap: time.Second},
		Handlers: tasks.Handlers(tasks.Deps{Store: o.st, Logger: b.log, Blob: b.blob, Executor: ex}),
		Logger:   b.log, ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
	})
	return w
}

// waitFinal waits until every run of execution id has ended and returns
// the execution and its runs. It gives up after a minute.
func (b *execBundle) waitFinal(t *testing.T, id string) (store.Execution, []store.ServerRun) {
	t.Helper()
	ctx := context.Background()
	deadline := time.Now().Add(90 * time.Second)
	for {
		e, err := b.store.Execution(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		runs, err := b.store.ServerRuns(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		done := true
		for _, r := range runs {
			if !r.Final() {
				done = false
			}
		}
		if done {
			return e, runs
		}
		if time.Now().After(deadline) {
			t.Fatalf("execution %s did not finish: %+v", id, runs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// credential records an ssh-key credential.
func (b *execBundle) credential(t *testing.T, name, user string, key []byte) store.Credential {
	t.Helper()
	c, err := b.store.CreateCredential(context.Background(), store.Credential{AccountID: store.RootAccountID, Name: name,
		Kind: store.CredentialSSHKey, Username: user}, store.Secret{Secret: string(key)})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// server records a server.
func (b *execBundle) server(t *testing.T, sv store.Server) store.Server {
	t.Helper()
	sv.AccountID = store.RootAccountID
	out, err := b.store.CreateServer(context.Background(), sv)
	if err != nil {
		t.Fatal(err)
	}
	return out
}
