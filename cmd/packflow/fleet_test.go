//go:build unix

package main

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/worker/cache"
)

// fleet is a real Redis, a shared blob directory, an API served in the
// test process and worker processes of the packflow binary.
type fleet struct {
	t       *testing.T
	bin     string
	redis   *testenv.Redis
	store   *store.Store
	blob    *blob.Store
	blobDir string
	api     string
	token   string
	// dataDirs keeps each node's data dir across restarts.
	dataDirs map[string]string
	uploads  int
}

// fleetNode is one worker process and its node's data dir.
type fleetNode struct {
	id      string
	dataDir string
	ops     string
	cmd     *exec.Cmd
	exited  chan struct{}
	log     *os.File
}

func buildPackflow(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "packflow")
	out, err := exec.CommandContext(t.Context(), "go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func startFleet(t *testing.T) *fleet {
	t.Helper()
	r := testenv.RealRedis(t)
	f := &fleet{t: t, bin: buildPackflow(t), redis: r, store: store.New(r.Client, store.Options{}),
		blobDir: filepath.Join(t.TempDir(), "blobs"), token: "fleet-test-admin-token", dataDirs: map[string]string{}}
	var err error
	if f.blob, err = blob.Open(context.Background(), "file://"+f.blobDir); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	stop := runInBackground(t, map[string]string{
		"PACKFLOW_REDIS_URL": r.URL, "PACKFLOW_ADMIN_TOKEN": f.token, "PACKFLOW_DATA_DIR": t.TempDir(),
		"PACKFLOW_BLOB_URL": "file://" + f.blobDir, "PACKFLOW_LISTEN": addr, "PACKFLOW_LOG_LEVEL": "warn",
	}, "api")
	t.Cleanup(func() { stop() })
	f.api = "http://" + addr
	waitUp(t, f.api+"/readyz")
	return f
}

// start runs worker id (again, with the same data dir when it ran
// before) reading archives from blobDir, and waits until it is ready.
func (f *fleet) start(id, blobDir string) *fleetNode {
	t := f.t
	t.Helper()
	if f.dataDirs[id] == "" {
		f.dataDirs[id] = t.TempDir()
	}
	n := &fleetNode{id: id, dataDir: f.dataDirs[id], ops: freeAddr(t)}
	var err error
	if n.log, err = os.OpenFile(filepath.Join(n.dataDir, "worker.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(f.bin, "worker")
	n.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"PACKFLOW_REDIS_URL=" + f.redis.URL,
		"PACKFLOW_NODE_ID=" + id,
		"PACKFLOW_DATA_DIR=" + n.dataDir,
		"PACKFLOW_BLOB_URL=file://" + blobDir,
		"PACKFLOW_METRICS_LISTEN=" + n.ops,
		"PACKFLOW_CONCURRENCY=4",
		// Short retry delays; asynq counts them in whole seconds.
		"PACKFLOW_RETRY_BACKOFF=1s",
		"PACKFLOW_RETRY_BACKOFF_MAX=2s",
		"PACKFLOW_SHUTDOWN_TIMEOUT=5s",
	}
	n.cmd.Stdout, n.cmd.Stderr = n.log, n.log
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	n.exited = make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() { f.stop(n) })
	waitUp(t, "http://"+n.ops+"/readyz")
	return n
}

// stop ends a worker gracefully (SIGTERM); it does nothing to one that
// exited. Its log goes to the test's log when the test failed.
func (f *fleet) stop(n *fleetNode) {
	select {
	case <-n.exited:
	default:
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(20 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	_ = n.log.Close()
	if f.t.Failed() {
		b, _ := os.ReadFile(n.log.Name())
		f.t.Logf("log of %s:\n%s", n.id, b)
	}
}

// kill ends a worker with SIGKILL: nothing of it runs after.
func (f *fleet) kill(n *fleetNode) {
	if err := n.cmd.Process.Kill(); err != nil {
		f.t.Fatal(err)
	}
	<-n.exited
}

// publish records uuid@version in the library with an archive of files
// files; requirements are "uuid constraint".
func (f *fleet) publish(uuid, version string, files int, requires ...string) store.Version {
	t := f.t
	t.Helper()
	ctx := context.Background()
	f.uploads++
	upload := fmt.Sprintf("up-%d", f.uploads)
	info, err := f.blob.Put(ctx, blob.PackageKey(uuid, upload), bytes.NewReader(fleetArchive(t, uuid, version, files)))
	if err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "software", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
	if _, err := f.store.CreateUpload(ctx, store.Upload{ID: upload, AccountID: store.RootAccountID, BlobKey: blob.UploadKey(upload), SHA256: info.SHA256, Size: info.Size}); err != nil {
		t.Fatal(err)
	}
	u, err := f.store.BeginPublish(ctx, upload, opts)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []store.Requirement
	for _, r := range requires {
		dep, c, _ := strings.Cut(r, " ")
		reqs = append(reqs, store.Requirement{UUID: dep, Version: c})
	}
	res, err := f.store.Publish(ctx, store.PublishRequest{UploadID: upload, TaskID: u.TaskID, AccountID: store.RootAccountID,
		ID: uuid, Name: "fleet-" + uuid[len(uuid)-4:], Options: opts, Version: version, Manifest: []byte(`{}`), Requires: reqs,
		SHA256: info.SHA256, Size: info.Size, BlobKey: info.Key})
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

// fleetArchive is a package of files small files and a manifest.
func fleetArchive(t *testing.T, uuid, version string, files int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	add := func(name, body string) {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	add("package.manifest", fmt.Sprintf("<Manifest><Metadata><UUID>%s</UUID><Name>fleet-%s</Name><Version>%s</Version></Metadata>"+
		"<Execution><Mode>Ssh</Mode><Command>./run.sh</Command></Execution></Manifest>\n", uuid, uuid[len(uuid)-4:], version))
	add("run.sh", "#!/bin/sh\necho "+version+"\n")
	for i := range files {
		add(fmt.Sprintf("lib/f%03d.txt", i), strings.Repeat(version+" ", 200))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// post sends a JSON body to the API and returns the status and answer.
func (f *fleet) post(path string, body any) (int, map[string]any) {
	f.t.Helper()
	b, _ := json.Marshal(body)
	var out map[string]any
	code := call(f.t, http.MethodPost, f.api+path, f.token, "application/json", b, &out)
	return code, out
}

// activate asks for uuid@version to be activated and installed.
func (f *fleet) activate(uuid, version string, body map[string]any) {
	f.t.Helper()
	if code, out := f.post("/api/v1/packages/"+uuid+"/versions/"+version+"/activate-install", body); code != http.StatusAccepted {
		f.t.Fatalf("activate %s@%s: %d %v", uuid, version, code, out)
	}
}

// fleetInstalls is GET /packages/{uuid}/installs.
type fleetInstalls struct {
	ActiveVersion string                 `json:"active_version"`
	ActivationID  string                 `json:"activation_id"`
	Summary       string                 `json:"summary"`
	Closure       []store.ClosureVersion `json:"closure"`
	Items         []struct {
		Node     string `json:"node"`
		State    string `json:"state"`
		Version  string `json:"version"`
		Error    string `json:"error"`
		Attempts int    `json:"attempts"`
		Stale    bool   `json:"stale"`
	} `json:"items"`
}

func (f *fleet) installs(uuid string) fleetInstalls {
	f.t.Helper()
	var out fleetInstalls
	if code := call(f.t, http.MethodGet, f.api+"/api/v1/packages/"+uuid+"/installs", f.token, "", nil, &out); code != http.StatusOK {
		f.t.Fatalf("installs of %s: %d", uuid, code)
	}
	return out
}

// await polls the installs of uuid until cond holds. The deadline only
// stops a broken test from hanging; nothing is asserted about time.
func (f *fleet) await(what, uuid string, cond func(fleetInstalls) bool) fleetInstalls {
	f.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		in := f.installs(uuid)
		if cond(in) {
			return in
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("%s: still %+v", what, in)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// allInstalled holds when every node in nodes installed version under
// the current activation.
func allInstalled(version string, nodes ...string) func(fleetInstalls) bool {
	return func(in fleetInstalls) bool {
		got := map[string]bool{}
		for _, it := range in.Items {
			if it.State == store.InstallInstalled && it.Version == version {
				got[it.Node] = true
			}
		}
		for _, n := range nodes {
			if !got[n] {
				return false
			}
		}
		return true
	}
}

// marker reads the completion marker of uuid@version in node's cache.
func (n *fleetNode) marker(t *testing.T, uuid, version string) (installedAt time.Time, ok bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(n.dataDir, "cache", uuid, version, cache.MarkerName))
	if err != nil {
		return time.Time{}, false
	}
	var m struct {
		InstalledAt time.Time `json:"installed_at"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("marker of %s@%s on %s: %v", uuid, version, n.id, err)
	}
	return m.InstalledAt, true
}

const (
	fleetApp  = "f0000000-0000-4000-8000-0000000000a1"
	fleetTop  = "f0000000-0000-4000-8000-0000000000b1"
	fleetMid  = "f0000000-0000-4000-8000-0000000000b2"
	fleetBase = "f0000000-0000-4000-8000-0000000000b3"
	fleetBad  = "f0000000-0000-4000-8000-0000000000c1"
)

// TestFleetActivateInstall runs the activate-install flow across three
// worker processes on a real Redis: a node killed during its install,
// force, a change of active version, a dependency chain with its frozen
// closure, a cycle, and an archive that does not match its sha256.
func TestFleetActivateInstall(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs three worker processes")
	}
	f := startFleet(t)
	f.publish(fleetApp, "1.0.0", 40)

	// w3 reads its archives from a directory where the app's archive is a
	// FIFO nobody writes: its install hangs in the open, deterministically.
	stuckDir := filepath.Join(t.TempDir(), "stuck-blobs")
	v, _ := f.store.Version(context.Background(), fleetApp, "1.0.0")
	if err := os.MkdirAll(filepath.Dir(filepath.Join(stuckDir, v.BlobKey)), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(stuckDir, v.BlobKey), 0o600); err != nil {
		t.Fatal(err)
	}
	w1, w2 := f.start("w1", f.blobDir), f.start("w2", f.blobDir)
	w3 := f.start("w3", stuckDir)

	f.activate(fleetApp, "1.0.0", nil)
	f.await("w3 starts its install", fleetApp, func(in fleetInstalls) bool {
		for _, it := range in.Items {
			if it.Node == "w3" && it.Attempts == 1 {
				return true
			}
		}
		return false
	})
	f.kill(w3)
	in := f.await("w1 and w2 install; w3 goes stale", fleetApp, func(in fleetInstalls) bool {
		stale := false
		for _, it := range in.Items {
			stale = stale || (it.Node == "w3" && it.Stale && it.State == store.InstallPending)
		}
		return stale && allInstalled("1.0.0", "w1", "w2")(in)
	})
	if in.Summary != "active on 2 of 3 nodes" {
		t.Errorf("summary %q", in.Summary)
	}
	if _, ok := w3.marker(t, fleetApp, "1.0.0"); ok {
		t.Error("the killed node has the package installed")
	}
	// Back with a working blob store, w3 catches up while it joins.
	w3 = f.start("w3", f.blobDir)
	in = f.await("w3 catches up", fleetApp, allInstalled("1.0.0", "w1", "w2", "w3"))
	if in.Summary != "active on 3 of 3 nodes" {
		t.Errorf("summary %q", in.Summary)
	}

	// force re-installs where installed.
	before, _ := w1.marker(t, fleetApp, "1.0.0")
	old := in.ActivationID
	f.activate(fleetApp, "1.0.0", map[string]any{"force": true})
	f.await("forced re-install", fleetApp, func(in fleetInstalls) bool {
		return in.ActivationID != old && allInstalled("1.0.0", "w1", "w2", "w3")(in)
	})
	if after, _ := w1.marker(t, fleetApp, "1.0.0"); !after.After(before) {
		t.Errorf("force did not re-install on w1: installed at %v, then %v", before, after)
	}

	// A change of active version installs the new one everywhere.
	f.publish(fleetApp, "2.0.0", 40)
	if code, out := f.post("/api/v1/packages/"+fleetApp+"/active-version", map[string]any{"version": "2.0.0"}); code != http.StatusAccepted {
		t.Fatalf("change active version: %d %v", code, out)
	}
	f.await("2.0.0 everywhere", fleetApp, allInstalled("2.0.0", "w1", "w2", "w3"))
	if pkg, _ := f.store.Package(context.Background(), fleetApp); pkg.ActiveVersion != "2.0.0" {
		t.Errorf("active version %q", pkg.ActiveVersion)
	}

	// A chain of three: top requires mid, which requires base.
	f.publish(fleetBase, "1.0.0", 5)
	f.publish(fleetMid, "1.0.0", 5, fleetBase+" ^1.0")
	f.publish(fleetTop, "1.0.0", 5, fleetMid+" >=1.0.0")
	f.activate(fleetTop, "1.0.0", nil)
	in = f.await("the chain everywhere", fleetTop, allInstalled("1.0.0", "w1", "w2", "w3"))
	if len(in.Closure) != 3 || in.Closure[0].UUID != fleetBase || in.Closure[1].UUID != fleetMid {
		t.Errorf("closure %+v", in.Closure)
	}
	for _, n := range []*fleetNode{w1, w2, w3} {
		b, okB := n.marker(t, fleetBase, "1.0.0")
		m, okM := n.marker(t, fleetMid, "1.0.0")
		tp, okT := n.marker(t, fleetTop, "1.0.0")
		if !okB || !okM || !okT || b.After(m) || m.After(tp) {
			t.Errorf("%s: base %v, mid %v, top %v; want all three, dependencies first", n.id, b, m, tp)
		}
	}
	// base gets a new active version: top's environment stays frozen.
	f.publish(fleetBase, "2.0.0", 5)
	f.activate(fleetBase, "2.0.0", nil)
	f.await("base 2.0.0 everywhere", fleetBase, allInstalled("2.0.0", "w1", "w2", "w3"))
	if in := f.installs(fleetTop); in.Closure[0].Version != "1.0.0" {
		t.Errorf("top's closure moved to base %s", in.Closure[0].Version)
	}
	if _, ok := w2.marker(t, fleetBase, "1.0.0"); !ok {
		t.Error("base 1.0.0, in top's frozen closure, was pruned")
	}
	if code := call(t, http.MethodDelete, f.api+"/api/v1/packages/"+fleetBase+"/versions/1.0.0", f.token, "", nil, nil); code != http.StatusConflict {
		t.Errorf("delete a version of an active closure: %d, want 409", code)
	}

	// A cycle is refused before anything is queued.
	f.publish(fleetBad, "0.1.0", 1, fleetTop+" ^1")
	f.publish(fleetTop, "1.1.0", 1, fleetBad+" ^0.1")
	if code, out := f.post("/api/v1/packages/"+fleetTop+"/versions/1.1.0/activate-install", nil); code != http.StatusUnprocessableEntity ||
		!strings.Contains(fmt.Sprint(out["errors"]), "dependency.cycle") {
		t.Errorf("cycle: %d %v", code, out)
	}

	// An archive whose bytes no longer match its sha256 fails on every
	// node after its retries, leaving nothing installed.
	bad := f.publish(fleetBad, "1.0.0", 3)
	if _, err := f.blob.Put(context.Background(), bad.BlobKey, bytes.NewReader(fleetArchive(t, fleetBad, "6.6.6", 3))); err != nil {
		t.Fatal(err)
	}
	f.activate(fleetBad, "1.0.0", nil)
	in = f.await("the corrupt archive fails everywhere", fleetBad, func(in fleetInstalls) bool {
		failed := 0
		for _, it := range in.Items {
			if it.State == store.InstallFailed {
				failed++
			}
		}
		return failed == 3
	})
	for _, it := range in.Items {
		// retry_max 3: the first attempt and three retries.
		if it.Attempts != 4 || !strings.Contains(it.Error, "sha256") {
			t.Errorf("%s: %d attempts, error %q; want 4 attempts and a sha256 error", it.Node, it.Attempts, it.Error)
		}
	}
	for _, n := range []*fleetNode{w1, w2, w3} {
		if _, err := os.Stat(filepath.Join(n.dataDir, "cache", fleetBad, "1.0.0")); !os.IsNotExist(err) {
			t.Errorf("%s has a tree of the corrupt archive: %v", n.id, err)
		}
		left, _ := filepath.Glob(filepath.Join(n.dataDir, "cache", ".tmp", "*", "in-*"))
		if len(left) > 0 {
			t.Errorf("%s: install work space left: %v", n.id, left)
		}
	}
}
