package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

const (
	instApp  = "1a000000-0000-4000-8000-00000000001a"
	instLib  = "1b000000-0000-4000-8000-00000000001b"
	instLoop = "1c000000-0000-4000-8000-00000000001c"
)

type installBundle struct {
	*bundle
	client *tasks.Client
	n      int
}

func setupInstalls(t *testing.T) *installBundle {
	t.Helper()
	var client *tasks.Client
	b := setup(t, func(o *Options) {
		client = tasks.NewClient(o.Store.Redis(), o.Store, testLogger(t))
		o.Enqueuer, o.Tasks = client, client
	})
	return &installBundle{bundle: b, client: client}
}

// publish records uuid@version for account root with requirements given
// as "uuid constraint".
func (b *installBundle) publish(t *testing.T, uuid, version string, requires ...string) {
	t.Helper()
	ctx := context.Background()
	b.n++
	id := fmt.Sprintf("up-%d", b.n)
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: id, AccountID: store.RootAccountID, BlobKey: "uploads/" + id + ".zip", SHA256: "abc", Size: 3}); err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
	u, err := b.store.BeginPublish(ctx, id, opts)
	if err != nil {
		t.Fatal(err)
	}
	var reqs []store.Requirement
	for _, r := range requires {
		dep, c, _ := strings.Cut(r, " ")
		reqs = append(reqs, store.Requirement{UUID: dep, Version: c})
	}
	if _, err := b.store.Publish(ctx, store.PublishRequest{UploadID: id, TaskID: u.TaskID, AccountID: store.RootAccountID,
		ID: uuid, Name: "p-" + uuid[:2], Options: opts, Version: version, Manifest: []byte(`{}`), Requires: reqs,
		SHA256: "abc", Size: 3, BlobKey: "packages/" + id + ".zip"}); err != nil {
		t.Fatal(err)
	}
}

func TestActivateInstallAccepted(t *testing.T) {
	t.Parallel()
	b := setupInstalls(t)
	b.publish(t, instLib, "1.0.0")
	b.publish(t, instApp, "1.0.0", instLib+" ^1")
	publisher := b.mintToken(t, store.RootAccountID, "pat", store.RolePublisher).Token
	viewer := b.mintToken(t, store.RootAccountID, "vic", store.RoleViewer).Token

	path := "/api/v1/packages/" + strings.ToUpper(instApp) + "/versions/v1.0.0/activate-install"
	b.do(t, http.MethodPost, path, viewer, map[string]any{}).mustStatus(t, http.StatusForbidden)
	var acc activationAccepted
	a := b.do(t, http.MethodPost, path, publisher, nil).mustStatus(t, http.StatusAccepted)
	a.json(t, &acc)
	if acc.TaskID == "" || acc.PackageID != instApp || acc.Version != "1.0.0" || a.header.Get("Location") != "/api/v1/tasks/"+acc.TaskID {
		t.Errorf("accepted: %+v, Location %q", acc, a.header.Get("Location"))
	}
	if got := tasks.FormatChain(acc.Closure); got != instLib+"@1.0.0 → "+instApp+"@1.0.0" {
		t.Errorf("closure %s", got)
	}
	st, err := b.client.Lookup(context.Background(), acc.TaskID)
	if err != nil || st.Type != tasks.TypeActivateInstall || st.AccountID != store.RootAccountID {
		t.Fatalf("queued task: %+v, %v", st, err)
	}
	info, err := asynq.NewInspectorFromRedisClient(b.rdb).GetTaskInfo(st.Queue, acc.TaskID)
	if err != nil {
		t.Fatal(err)
	}
	var p tasks.ActivatePayload
	if err := json.Unmarshal(info.Payload, &p); err != nil || p.Force || p.RequestedBy != "pat" || p.InstallRetry != nil {
		t.Errorf("payload %s: %v", info.Payload, err)
	}

	// force and a retry policy travel to the installs.
	b.do(t, http.MethodPost, path, publisher, map[string]any{"force": true, "retry": map[string]any{"max": 5, "backoff": "1s"}}).
		mustStatus(t, http.StatusAccepted).json(t, &acc)
	info, _ = asynq.NewInspectorFromRedisClient(b.rdb).GetTaskInfo(st.Queue, acc.TaskID)
	if err := json.Unmarshal(info.Payload, &p); err != nil || !p.Force || p.InstallRetry == nil || p.InstallRetry.MaxRetry() != 5 {
		t.Errorf("forced payload %s: %v", info.Payload, err)
	}

	// The active version changes through its own route.
	b.publish(t, instApp, "2.0.0")
	b.do(t, http.MethodPost, "/api/v1/packages/"+instApp+"/active-version", publisher, map[string]any{"version": "2.0.0"}).
		mustStatus(t, http.StatusAccepted).json(t, &acc)
	if acc.Version != "2.0.0" || len(acc.Closure) != 1 {
		t.Errorf("active-version accepted: %+v", acc)
	}
}

func TestActivateInstallReportsEveryProblem(t *testing.T) {
	t.Parallel()
	b := setupInstalls(t)
	b.publish(t, instLoop, "1.0.0", instApp+" ^1")
	b.publish(t, instApp, "1.0.0", instLoop+" ^1")
	b.publish(t, instLib, "1.0.0", "1d000000-0000-4000-8000-00000000001d")

	rules := func(a answer) []string {
		t.Helper()
		var p Problem
		a.mustStatus(t, http.StatusUnprocessableEntity).json(t, &p)
		var out []string
		for _, e := range p.Errors {
			out = append(out, e.Path+":"+e.Rule)
		}
		return out
	}
	cycle := b.do(t, http.MethodPost, "/api/v1/packages/"+instApp+"/versions/1.0.0/activate-install", testAdminToken, nil)
	var p Problem
	cycle.json(t, &p)
	if got := rules(cycle); len(got) != 1 || got[0] != "requires:dependency.cycle" ||
		!strings.Contains(p.Errors[0].Message, instApp+"@1.0.0 → "+instLoop+"@1.0.0 → "+instApp) {
		t.Errorf("cycle: %+v", p)
	}
	missing := b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/versions/1.0.0/activate-install", testAdminToken, nil)
	if got := rules(missing); len(got) != 1 || got[0] != "requires:dependency.missing" {
		t.Errorf("missing dependency: %v", got)
	}
	bad := b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/versions/1.0.0/activate-install", testAdminToken,
		map[string]any{"retry": map[string]any{"max": 99, "backoff": "10s", "backoff_max": "1s"}})
	if got := strings.Join(rules(bad), " "); got != "retry.max:range retry.backoff_max:range" {
		t.Errorf("bad retry: %s", got)
	}
	none := b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/active-version", testAdminToken, map[string]any{"retry": map[string]any{"max": -1}})
	if got := strings.Join(rules(none), " "); got != "retry.max:range version:required" {
		t.Errorf("no version: %s", got)
	}
	unknown := b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/active-version", testAdminToken, map[string]any{"version": "7.0.0"})
	if got := rules(unknown); len(got) != 1 || got[0] != "version:exists" {
		t.Errorf("unknown version: %v", got)
	}
	b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/versions/9.0.0/activate-install", testAdminToken, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodPost, "/api/v1/packages/"+instLib+"/versions/1.0.0/activate-install", testAdminToken, []byte(`{"forse":true}`)).
		mustStatus(t, http.StatusUnprocessableEntity)
	if pkg, _ := b.store.Package(context.Background(), instApp); pkg.ActiveVersion != "" {
		t.Errorf("a refused activation made %s active", pkg.ActiveVersion)
	}
}

func TestInstallsListEveryLiveNode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupInstalls(t)
	b.publish(t, instApp, "1.0.0")
	var list installsJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+instApp+"/installs", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 0 || list.ActiveVersion != "" {
		t.Errorf("installs without an active version: %+v", list)
	}

	for _, n := range []store.Node{
		{ID: "n1", HeartbeatInterval: time.Minute},
		{ID: "n2", HeartbeatInterval: time.Minute},
		{ID: "n3", HeartbeatInterval: time.Second, LastSeen: time.Now().Add(-time.Minute)}, // silent: stale
	} {
		if err := b.store.Heartbeat(ctx, n, time.Hour); err != nil {
			t.Fatal(err)
		}
	}
	act := store.Activation{PackageID: instApp, Version: "1.0.0", ID: "act-1", RequestedAt: time.Now(),
		Closure: []store.ClosureVersion{{UUID: instApp, Version: "1.0.0", SHA256: "abc", Size: 3}}}
	if _, err := b.store.Activate(ctx, act, []string{"n1", "n2", "n3"}); err != nil {
		t.Fatal(err)
	}
	for _, r := range []store.NodeInstall{
		{Node: "n1", State: store.InstallInstalled, Attempts: 1},
		{Node: "n2", State: store.InstallFailed, Attempts: 4, Error: "sha256 mismatch"},
	} {
		r.PackageID, r.Version, r.Activation = instApp, "1.0.0", "act-1"
		if err := b.store.RecordNodeInstall(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	viewer := b.mintToken(t, store.RootAccountID, "vic", store.RoleViewer).Token
	b.do(t, http.MethodGet, "/api/v1/packages/"+instApp+"/installs", viewer, nil).mustStatus(t, http.StatusOK).json(t, &list)
	var got []string
	for _, it := range list.Items {
		got = append(got, fmt.Sprintf("%s:%s:%d:%v:%s", it.Node, it.State, it.Attempts, it.Stale, it.Error))
	}
	want := "n1:installed:1:false: n2:failed:4:false:sha256 mismatch n3:pending:0:true:"
	if strings.Join(got, " ") != want {
		t.Errorf("items %v, want %s", got, want)
	}
	if list.Summary != "active on 1 of 3 nodes, failed on 1" || list.Installed != 1 || list.Pending != 1 || list.Failed != 1 || len(list.Closure) != 1 {
		t.Errorf("sums: %+v", list.fleetJSON)
	}
	var page installsJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+instApp+"/installs?limit=2", viewer, nil).mustStatus(t, http.StatusOK).json(t, &page)
	if len(page.Items) != 2 || page.NextCursor == "" {
		t.Errorf("first page: %+v", page)
	}
	var pkg packageJSON
	b.do(t, http.MethodGet, "/api/v1/packages/"+instApp, viewer, nil).mustStatus(t, http.StatusOK).json(t, &pkg)
	if pkg.Fleet == nil || pkg.Fleet.Summary != list.Summary || pkg.ActiveVersion != "1.0.0" {
		t.Errorf("package fleet: %+v", pkg.Fleet)
	}
	b.do(t, http.MethodGet, "/api/v1/packages/"+instLoop+"/installs", viewer, nil).mustStatus(t, http.StatusNotFound)
}

// TestDeleteVersionInUse: a version that is active, that an active
// closure holds, or that a schedule deploys is not deleted.
func TestDeleteVersionInUse(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupInstalls(t)
	b.publish(t, instLib, "1.0.0")
	b.publish(t, instApp, "1.0.0", instLib+" ^1")
	b.publish(t, instApp, "2.0.0")
	b.publish(t, instLoop, "1.0.0")
	act := store.Activation{PackageID: instApp, Version: "1.0.0", ID: "act-1", RequestedAt: time.Now(), Closure: []store.ClosureVersion{
		{UUID: instLib, Version: "1.0.0"}, {UUID: instApp, Version: "1.0.0"}}}
	if _, err := b.store.Activate(ctx, act, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.PutSchedule(ctx, store.Schedule{AccountID: store.RootAccountID, User: "u", Name: "nightly", Every: time.Hour,
		Action: store.ScheduleAction{Kind: store.ActionDeploy, Package: instLoop, Version: "1.0.0", Servers: []string{"web1"}}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ path, want string }{
		{instApp + "/versions/1.0.0", "active version"},
		{instLib + "/versions/1.0.0", "installed with the active version 1.0.0 of " + instApp},
		{instLoop + "/versions/1.0.0", `schedule "nightly"`},
	} {
		var p Problem
		b.do(t, http.MethodDelete, "/api/v1/packages/"+tc.path, testAdminToken, nil).mustStatus(t, http.StatusConflict).json(t, &p)
		if !strings.Contains(p.Detail, tc.want) {
			t.Errorf("delete %s: %q, want it to say %q", tc.path, p.Detail, tc.want)
		}
	}
	b.do(t, http.MethodDelete, "/api/v1/packages/"+instApp+"/versions/2.0.0", testAdminToken, nil).mustStatus(t, http.StatusNoContent)
}
