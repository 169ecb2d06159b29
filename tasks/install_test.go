package tasks_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker/cache"
)

const (
	pkgApp  = "0a000000-0000-4000-8000-00000000000a"
	pkgLib  = "0b000000-0000-4000-8000-00000000000b"
	pkgBase = "0c000000-0000-4000-8000-00000000000c"
)

// fleetBundle is a library in miniredis with archives in memory, and the
// task client that queues installs.
type fleetBundle struct {
	rdb    *redis.Client
	store  *store.Store
	blob   *blob.Store
	client *tasks.Client
	log    *slog.Logger
	n      int
}

func setupFleet(t *testing.T) *fleetBundle {
	t.Helper()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	bs, err := blob.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, nil))
	return &fleetBundle{rdb: rdb, store: st, blob: bs, client: tasks.NewClient(rdb, st, log), log: log}
}

// publish records uuid@version in the library with its archive; each
// requirement is "uuid constraint".
func (b *fleetBundle) publish(t *testing.T, uuid, version string, requires ...string) store.Version {
	t.Helper()
	ctx := context.Background()
	b.n++
	upload := fmt.Sprintf("up%d", b.n)
	archive := testZip(t, testManifest(uuid, "pkg-"+uuid[:2], version, "Ssh"))
	info, err := b.blob.Put(ctx, blob.PackageKey(uuid, upload), bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: upload, AccountID: "acme", BlobKey: blob.UploadKey(upload), SHA256: info.SHA256, Size: info.Size}); err != nil {
		t.Fatal(err)
	}
	u, err := b.store.BeginPublish(ctx, upload, linuxOpts())
	if err != nil {
		t.Fatal(err)
	}
	var reqs []store.Requirement
	for _, r := range requires {
		id, c, _ := strings.Cut(r, " ")
		reqs = append(reqs, store.Requirement{UUID: id, Version: c})
	}
	res, err := b.store.Publish(ctx, store.PublishRequest{UploadID: upload, TaskID: u.TaskID, AccountID: "acme",
		ID: uuid, Name: "pkg-" + uuid[:2], Options: linuxOpts(), Version: version, Manifest: []byte(`{}`),
		Requires: reqs, SHA256: info.SHA256, Size: info.Size, BlobKey: info.Key})
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

// nodes writes live heartbeat records for ids.
func (b *fleetBundle) nodes(t *testing.T, ids ...string) {
	t.Helper()
	for _, id := range ids {
		if err := b.store.Heartbeat(context.Background(), store.Node{ID: id, HeartbeatInterval: time.Minute}, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
}

// activate runs package:activate-install for uuid@version.
func (b *fleetBundle) activate(t *testing.T, uuid, version string, force bool) (tasks.ActivatePayload, error) {
	t.Helper()
	h, err := tasks.NewActivateHandler(tasks.ActivateOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	task, p, _, err := tasks.NewActivateTask(tasks.ActivateRequest{PackageID: uuid, Version: version, Force: force, AccountID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	return p, h.ProcessTask(context.Background(), task)
}

// installer returns an installer for node with a cache of its own whose
// clock ticks once per install, so that install order shows.
func (b *fleetBundle) installer(t *testing.T, node string) (*tasks.Installer, *cache.Cache) {
	t.Helper()
	var mu sync.Mutex
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, err := cache.Open(filepath.Join(t.TempDir(), "cache"), cache.Options{Logger: b.log, Keep: 1, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	in, err := tasks.NewInstaller(tasks.InstallerOptions{Store: b.store, Blob: b.blob, Cache: c, NodeID: node, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	return in, c
}

// queued returns the install task waiting in node's queue.
func (b *fleetBundle) queued(t *testing.T, node string) *asynq.Task {
	t.Helper()
	ins := asynq.NewInspectorFromRedisClient(b.rdb)
	infos, err := ins.ListPendingTasks(tasks.NodeQueue(node))
	if err != nil || len(infos) == 0 {
		t.Fatalf("no install queued for %s: %v", node, err)
	}
	last := infos[len(infos)-1]
	return asynq.NewTask(last.Type, last.Payload)
}

func refs(es []cache.Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.UUID[:2] + "@" + e.Version
	}
	return out
}

func TestActivateInstallsTheClosureDependenciesFirst(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	b.publish(t, pkgBase, "1.0.0")
	b.publish(t, pkgLib, "1.0.0", pkgBase+" ^1.0")
	b.publish(t, pkgApp, "1.0.0", pkgLib+" >=1.0.0")
	b.nodes(t, "n1", "n2")

	p, err := b.activate(t, pkgApp, "1.0.0", false)
	if err != nil {
		t.Fatalf("activate: %v", err)
	}
	if pkg, _ := b.store.Package(ctx, pkgApp); pkg.ActiveVersion != "1.0.0" {
		t.Errorf("active version %q", pkg.ActiveVersion)
	}
	act, err := b.store.Activation(ctx, pkgApp)
	if err != nil || act.ID != p.ID {
		t.Fatalf("activation: %+v, %v", act, err)
	}
	var closure []string
	for _, cv := range act.Closure {
		closure = append(closure, cv.UUID[:2]+"@"+cv.Version)
	}
	if diff := cmp.Diff([]string{"0c@1.0.0", "0b@1.0.0", "0a@1.0.0"}, closure); diff != "" {
		t.Errorf("closure (-want +got):\n%s", diff)
	}
	ins, _ := b.store.NodeInstalls(ctx, pkgApp)
	if ins["n1"].State != store.InstallPending || ins["n2"].State != store.InstallPending {
		t.Errorf("installs after activation: %+v", ins)
	}

	in, c := b.installer(t, "n1")
	task := b.queued(t, "n1")
	if err := in.ProcessTask(ctx, task); err != nil {
		t.Fatalf("install: %v", err)
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	byTime := map[string]time.Time{}
	for _, e := range list {
		byTime[e.UUID[:2]] = e.InstalledAt
	}
	if len(list) != 3 || !byTime["0c"].Before(byTime["0b"]) || !byTime["0b"].Before(byTime["0a"]) {
		t.Errorf("installed %v; want base, then lib, then app", list)
	}
	ins, _ = b.store.NodeInstalls(ctx, pkgApp)
	if got := ins["n1"]; got.State != store.InstallInstalled || got.Attempts != 1 || got.Error != "" || got.Version != "1.0.0" {
		t.Errorf("n1 after install: %+v", got)
	}
	if ins["n2"].State != store.InstallPending {
		t.Errorf("n2 before its install: %+v", ins["n2"])
	}

	// A second run of the same task finds everything installed.
	if err := in.ProcessTask(ctx, task); err != nil {
		t.Fatalf("install again: %v", err)
	}
	// Activating again queues the installs again, under new task IDs.
	if _, err := b.activate(t, pkgApp, "1.0.0", true); err != nil {
		t.Fatal(err)
	}
	forced := b.queued(t, "n1")
	var fp tasks.InstallPayload
	if err := json.Unmarshal(forced.Payload(), &fp); err != nil || !fp.Force || fp.Activation == p.ID {
		t.Fatalf("forced install payload %s: %v", forced.Payload(), err)
	}
	before, _ := c.Lookup(pkgApp, "1.0.0")
	if err := in.ProcessTask(ctx, forced); err != nil {
		t.Fatalf("forced install: %v", err)
	}
	after, _ := c.Lookup(pkgApp, "1.0.0")
	if !after.InstalledAt.After(before.InstalledAt) {
		t.Errorf("force did not re-install: %v then %v", before.InstalledAt, after.InstalledAt)
	}
	if dep, _ := c.Lookup(pkgBase, "1.0.0"); !dep.InstalledAt.Before(before.InstalledAt) {
		t.Errorf("force re-installed a dependency: %+v", dep)
	}
}

// TestActivateIsIdempotent runs one activate-install task twice: the
// activation is recorded once and each node gets one install.
func TestActivateIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	b.publish(t, pkgApp, "1.0.0")
	b.nodes(t, "n1", "n2")
	h, err := tasks.NewActivateHandler(tasks.ActivateOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	task, p, _, err := tasks.NewActivateTask(tasks.ActivateRequest{PackageID: pkgApp, Version: "1.0.0", AccountID: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("run %d: %v", i+1, err)
		}
	}
	act, err := b.store.Activation(ctx, pkgApp)
	if err != nil || act.ID != p.ID {
		t.Fatalf("activation %+v, %v", act, err)
	}
	ins := asynq.NewInspectorFromRedisClient(b.rdb)
	for _, node := range []string{"n1", "n2"} {
		infos, err := ins.ListPendingTasks(tasks.NodeQueue(node))
		if err != nil || len(infos) != 1 || infos[0].ID != tasks.InstallTaskID(p.ID, node) {
			t.Errorf("%s queue: %d tasks, %v", node, len(infos), err)
		}
	}
}

func TestClosureStaysFrozenUntilReinstalled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	b.publish(t, pkgBase, "1.0.0")
	b.publish(t, pkgApp, "1.0.0", pkgBase+" >=1.0.0")
	b.nodes(t, "n1")
	if _, err := b.activate(t, pkgBase, "1.0.0", false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.activate(t, pkgApp, "1.0.0", false); err != nil {
		t.Fatal(err)
	}
	// The dependency gets a new active version.
	b.publish(t, pkgBase, "2.0.0")
	if _, err := b.activate(t, pkgBase, "2.0.0", false); err != nil {
		t.Fatal(err)
	}
	act, _ := b.store.Activation(ctx, pkgApp)
	if got := act.Closure[0].Version; got != "1.0.0" {
		t.Errorf("app's closure moved to base %s with base's active version", got)
	}
	// A node that lacks the app installs the frozen closure on demand.
	in, c := b.installer(t, "late")
	env, err := in.Ensure(ctx, tasks.VersionRef{UUID: pkgApp, Version: "1.0.0"})
	if err != nil {
		t.Fatalf("Ensure: %v", err)
	}
	if diff := cmp.Diff([]string{"0c@1.0.0", "0a@1.0.0"}, refs(env)); diff != "" {
		t.Errorf("environment (-want +got):\n%s", diff)
	}
	if _, ok := c.Path(pkgApp, "1.0.0"); !ok {
		t.Error("Ensure did not install the package")
	}
	if ins, _ := b.store.NodeInstalls(ctx, pkgApp); ins["late"].State != store.InstallInstalled {
		t.Errorf("the on-demand install of the active version is not recorded: %+v", ins["late"])
	}
	// Re-installing the app takes base's new active version.
	if _, err := b.activate(t, pkgApp, "1.0.0", false); err != nil {
		t.Fatal(err)
	}
	act, _ = b.store.Activation(ctx, pkgApp)
	if got := act.Closure[0].Version; got != "2.0.0" {
		t.Errorf("re-installed app has base %s, want 2.0.0", got)
	}
	// Sync brings the node to every active closure and prunes the rest
	// beyond Keep (1): base 1.0.0 stays as the one kept inactive version.
	rep, err := in.Sync(ctx)
	if err != nil || len(rep.Failed) > 0 || len(rep.Installed) != 2 {
		t.Fatalf("Sync: %+v, %v", rep, err)
	}
	list, _ := c.List()
	if diff := cmp.Diff([]string{"0a@1.0.0", "0c@1.0.0", "0c@2.0.0"}, refs(list)); diff != "" {
		t.Errorf("cache after sync (-want +got):\n%s", diff)
	}
}

func TestActivateRefusesDependencyProblems(t *testing.T) {
	t.Parallel()
	b := setupFleet(t)
	b.publish(t, pkgApp, "1.0.0", pkgLib+" ^1")
	b.publish(t, pkgLib, "1.0.0", pkgApp+" ^1")
	b.publish(t, pkgBase, "1.0.0", "0d000000-0000-4000-8000-00000000000d ^1")
	b.nodes(t, "n1")
	for _, tc := range []struct {
		uuid, want string
	}{
		{pkgApp, pkgApp + "@1.0.0 → " + pkgLib + "@1.0.0 → " + pkgApp},
		{pkgBase, pkgBase + "@1.0.0 → 0d000000-0000-4000-8000-00000000000d"},
	} {
		_, err := b.activate(t, tc.uuid, "1.0.0", false)
		if !errors.Is(err, asynq.SkipRetry) || !errors.Is(err, tasks.ErrDependency) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("activate %s: %v; want a dependency error naming %s", tc.uuid, err, tc.want)
		}
		if pkg, _ := b.store.Package(context.Background(), tc.uuid); pkg.ActiveVersion != "" {
			t.Errorf("%s became active: %q", tc.uuid, pkg.ActiveVersion)
		}
	}
}

func TestInstallOfACorruptArchiveLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	v := b.publish(t, pkgApp, "1.0.0")
	b.nodes(t, "n1")
	if _, err := b.activate(t, pkgApp, "1.0.0", false); err != nil {
		t.Fatal(err)
	}
	// The stored archive changes under the library.
	if _, err := b.blob.Put(ctx, v.BlobKey, strings.NewReader("not the archive")); err != nil {
		t.Fatal(err)
	}
	in, c := b.installer(t, "n1")
	err := in.ProcessTask(ctx, b.queued(t, "n1"))
	if !errors.Is(err, cache.ErrChecksum) || errors.Is(err, asynq.SkipRetry) {
		t.Fatalf("install of a corrupt archive: %v; want a checksum error that is retried", err)
	}
	ins, _ := b.store.NodeInstalls(ctx, pkgApp)
	if got := ins["n1"]; got.State != store.InstallPending || !strings.Contains(got.Error, "sha256") || got.Attempts != 1 {
		t.Errorf("record after a failed attempt: %+v", got)
	}
	var left []string
	_ = filepath.WalkDir(c.Dir(), func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, path)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("a failed install left files: %v", left)
	}
}

func TestInstallOfASupersededActivationDoesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	b.publish(t, pkgApp, "1.0.0")
	b.publish(t, pkgApp, "2.0.0")
	b.nodes(t, "n1")
	if _, err := b.activate(t, pkgApp, "1.0.0", false); err != nil {
		t.Fatal(err)
	}
	old := b.queued(t, "n1")
	if _, err := b.activate(t, pkgApp, "2.0.0", false); err != nil {
		t.Fatal(err)
	}
	in, c := b.installer(t, "n1")
	if err := in.ProcessTask(ctx, old); err != nil {
		t.Fatalf("superseded install: %v", err)
	}
	if list, _ := c.List(); len(list) != 0 {
		t.Errorf("a superseded install installed %v", list)
	}
	ins, _ := b.store.NodeInstalls(ctx, pkgApp)
	if got := ins["n1"]; got.Version != "2.0.0" || got.State != store.InstallPending {
		t.Errorf("record after a superseded install: %+v", got)
	}
}

// TestInstallRetryDelaysSpreadAndGrow checks the delays the worker's retry
// policy gives one install task: drawn at random (jitter), within a
// ceiling that doubles with each attempt, so that nodes failing together
// retry apart and a failing install backs off.
func TestInstallRetryDelaysSpreadAndGrow(t *testing.T) {
	t.Parallel()
	a := store.Activation{ID: "act", PackageID: pkgApp, Version: "1.0.0", Closure: []store.ClosureVersion{{UUID: pkgApp, Version: "1.0.0"}}}
	task, _, err := tasks.NewInstallTask(a, "n1", nil)
	if err != nil {
		t.Fatal(err)
	}
	policy := tasks.Backoff{Base: time.Second, Cap: time.Hour, Jitter: true}
	delay := tasks.RetryDelayFunc(policy, rand.NewPCG(1, 2))
	prevMean := time.Duration(0)
	for attempt := range 4 {
		const n = 400
		seen := map[time.Duration]bool{}
		var sum time.Duration
		for range n {
			d := delay(attempt, errors.New("boom"), task)
			if d < 0 || d > policy.Ceiling(attempt) {
				t.Fatalf("attempt %d: delay %v outside [0, %v]", attempt, d, policy.Ceiling(attempt))
			}
			seen[d] = true
			sum += d
		}
		if len(seen) < n/2 {
			t.Errorf("attempt %d: only %d distinct delays in %d; jitter missing", attempt, len(seen), n)
		}
		mean := sum / n
		if mean <= prevMean {
			t.Errorf("attempt %d: mean delay %v does not grow (previous %v)", attempt, mean, prevMean)
		}
		prevMean = mean
	}
}

// TestPruneTaskRemovesWhatNoActiveClosureHolds: package:prune on a node
// removes the inactive versions beyond the cache's Keep (1), keeps what an
// active closure holds, and runs whether or not the node missed anything.
func TestPruneTaskRemovesWhatNoActiveClosureHolds(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupFleet(t)
	b.nodes(t, "n1")
	in, c := b.installer(t, "n1")
	// On-demand installs do not prune: the cache holds all three.
	for _, v := range []string{"1.0.0", "2.0.0", "3.0.0"} {
		b.publish(t, pkgBase, v)
		if _, err := b.activate(t, pkgBase, v, false); err != nil {
			t.Fatal(err)
		}
		if _, err := in.Ensure(ctx, tasks.VersionRef{UUID: pkgBase, Version: v}); err != nil {
			t.Fatalf("install %s: %v", v, err)
		}
	}
	list, _ := c.List()
	if diff := cmp.Diff([]string{"0c@1.0.0", "0c@2.0.0", "0c@3.0.0"}, refs(list)); diff != "" {
		t.Fatalf("cache before (-want +got):\n%s", diff)
	}
	h := tasks.Handlers(tasks.Deps{Store: b.store, Installer: in, Logger: b.log})[tasks.TypePrune]
	task, opts, err := tasks.NewPruneTask("n1", "prune-1")
	if err != nil || len(opts) != 2 {
		t.Fatalf("NewPruneTask: %v, %v", opts, err)
	}
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("prune: %v", err)
	}
	// 3.0.0 is active; 2.0.0 is the one inactive version Keep allows.
	list, _ = c.List()
	if diff := cmp.Diff([]string{"0c@2.0.0", "0c@3.0.0"}, refs(list)); diff != "" {
		t.Errorf("cache after prune (-want +got):\n%s", diff)
	}
	// A prune meant for another node is refused without retry.
	other, _, _ := tasks.NewPruneTask("n2", "prune-2")
	if err := h.ProcessTask(ctx, other); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("prune for another node: %v, want a SkipRetry error", err)
	}
}
