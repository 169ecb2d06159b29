package api

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

const schedPkg = "5c000000-0000-4000-8000-00000000005c"

// setupSchedules is a server with a secret key and a task client.
func setupSchedules(t *testing.T) *bundle {
	t.Helper()
	box, err := secretbox.New(bytes.Repeat([]byte{0x11}, 32))
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, func(o *Options) {
		o.Store = store.New(o.Store.Redis(), store.Options{Secrets: box})
		client := tasks.NewClient(o.Store.Redis(), o.Store, testLogger(t))
		o.Enqueuer, o.Tasks = client, client
	})
	b.store = b.srv.opts.Store
	return b
}

// publishAgent records a version of a package with a numeric and a
// password parameter for the root account.
func publishAgent(t *testing.T, b *bundle) {
	t.Helper()
	ctx := context.Background()
	m := manifest.Manifest{
		Metadata: manifest.Metadata{UUID: schedPkg, Name: "Agent", Version: "1.0.0"},
		Parameters: []manifest.Parameter{
			{Name: "Port", Type: manifest.TypeNumeric, Variable: "Port", Default: "8080", Prompt: manifest.PromptBuild},
			{Name: "Pass", Type: manifest.TypePassword, Variable: "Pass", Prompt: manifest.PromptBuild},
		},
		Execution: manifest.Execution{Mode: "Ssh", Command: "./install.sh ${Port}"},
	}
	mj, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: "up-s", AccountID: store.RootAccountID, BlobKey: "uploads/up-s.zip", SHA256: "abc", Size: 3}); err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
	u, err := b.store.BeginPublish(ctx, "up-s", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Publish(ctx, store.PublishRequest{UploadID: "up-s", TaskID: u.TaskID, AccountID: store.RootAccountID,
		ID: schedPkg, Name: "agent", Options: opts, Version: "1.0.0", Manifest: mj, SHA256: "abc", Size: 3, BlobKey: "packages/up-s.zip"}); err != nil {
		t.Fatal(err)
	}
}

func fieldPaths(p Problem) []string {
	var out []string
	for _, e := range p.Errors {
		out = append(out, e.Path)
	}
	slices.Sort(out)
	return out
}

func TestScheduleLifecycle(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	var sc scheduleJSON
	b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, map[string]any{
		"name": "sync", "every": "10m", "action": map[string]any{"kind": "install-sync"},
	}).mustStatus(t, http.StatusCreated).json(t, &sc)
	if !sc.Enabled || sc.CatchUp != "once" || sc.Overlap != "skip" || sc.Timezone != "UTC" || sc.Every != "10m0s" {
		t.Errorf("defaults: %+v", sc)
	}
	if len(sc.NextRuns) != 5 || sc.NextRuns[1].Sub(sc.NextRuns[0]) != 10*time.Minute || !sc.NextRuns[0].After(time.Now().Add(9*time.Minute)) {
		t.Errorf("next_runs %v, want five, ten minutes apart, the first in about ten minutes", sc.NextRuns)
	}

	// A change is answered with the new fire times, read on Berlin's clock.
	var put scheduleJSON
	b.do(t, http.MethodPut, "/api/v1/schedules/"+sc.ID, testAdminToken, map[string]any{
		"name": "sync", "cron": "0 2 * * *", "timezone": "Europe/Berlin", "overlap": "allow", "action": map[string]any{"kind": "install-sync"},
	}).mustStatus(t, http.StatusOK).json(t, &put)
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, at := range put.NextRuns {
		if l := at.In(berlin); l.Hour() != 2 || l.Minute() != 0 {
			t.Errorf("next run %v is %v in Berlin, want 02:00", at, l)
		}
	}
	if len(put.NextRuns) != 5 || put.Overlap != "allow" {
		t.Errorf("after PUT: %+v", put)
	}

	var paused scheduleJSON
	b.do(t, http.MethodPost, "/api/v1/schedules/"+sc.ID+"/pause", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &paused)
	if paused.Enabled || len(paused.NextRuns) != 0 {
		t.Errorf("paused: enabled %v, next_runs %v", paused.Enabled, paused.NextRuns)
	}
	var resumed scheduleJSON
	b.do(t, http.MethodPost, "/api/v1/schedules/"+sc.ID+"/resume", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &resumed)
	if !resumed.Enabled || len(resumed.NextRuns) != 5 {
		t.Errorf("resumed: enabled %v, next_runs %v", resumed.Enabled, resumed.NextRuns)
	}

	var acc struct {
		TaskID string `json:"task_id"`
		Run    string `json:"run"`
	}
	b.do(t, http.MethodPost, "/api/v1/schedules/"+sc.ID+"/run-now", testAdminToken, nil).mustStatus(t, http.StatusAccepted).json(t, &acc)
	if !strings.HasPrefix(acc.TaskID, "sched:"+sc.ID+":manual-") {
		t.Errorf("run-now task %q", acc.TaskID)
	}
	var runs page[scheduleRunJSON]
	b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID+"/runs", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &runs)
	if len(runs.Items) != 1 || runs.Items[0].TaskID != acc.TaskID || runs.Items[0].Trigger != "manual" || runs.Items[0].Outcome != "queued" {
		t.Errorf("runs %+v", runs.Items)
	}
	var task map[string]any
	b.do(t, http.MethodGet, "/api/v1/tasks/"+acc.TaskID, testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &task)
	if task["type"] != tasks.TypeScheduleRun {
		t.Errorf("task %v", task)
	}

	var list page[scheduleJSON]
	b.do(t, http.MethodGet, "/api/v1/schedules", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != sc.ID {
		t.Errorf("list %+v", list.Items)
	}
	b.do(t, http.MethodDelete, "/api/v1/schedules/"+sc.ID, testAdminToken, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID, testAdminToken, nil).mustStatus(t, http.StatusNotFound)
}

func TestScheduleReportsEveryProblem(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	tests := []struct {
		name string
		body map[string]any
		want []string
	}{
		{"empty", map[string]any{}, []string{"action", "cron", "name"}},
		{"both cron and every", map[string]any{"name": "x", "cron": "* * * * *", "every": "1m", "action": map[string]any{"kind": "install-sync"}}, []string{"every"}},
		{"bad everything", map[string]any{"name": " x", "cron": "61 * * * *", "timezone": "Mars/Base", "catch_up": "twice", "overlap": "queue",
			"action": map[string]any{"kind": "reboot"}}, []string{"action.kind", "catch_up", "cron", "name", "overlap", "timezone"}},
		{"short every", map[string]any{"name": "x", "every": "100ms", "action": map[string]any{"kind": "install-sync"}}, []string{"every"}},
		{"not a duration", map[string]any{"name": "x", "every": "daily", "action": map[string]any{"kind": "install-sync"}}, []string{"every"}},
		{"sync with servers", map[string]any{"name": "x", "every": "1h", "action": map[string]any{"kind": "install-sync", "servers": []string{"a"}}}, []string{"action"}},
		{"deploy of nothing", map[string]any{"name": "x", "every": "1h", "action": map[string]any{"kind": "deploy"}}, []string{"action.blueprint", "action.servers"}},
		{"deploy of unknowns", map[string]any{"name": "x", "every": "1h", "action": map[string]any{"kind": "deploy", "blueprint": "nope", "servers": []string{"ghost"}}},
			[]string{"action.blueprint", "action.servers[0]"}},
		{"bad retry", map[string]any{"name": "x", "every": "1h", "action": map[string]any{"kind": "deploy", "blueprint": "nope", "servers": []string{"a"}, "retry": map[string]any{"max": -1}}},
			[]string{"action.retry"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, tc.body).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
			if got := fieldPaths(p); !slices.Equal(got, tc.want) {
				t.Errorf("paths %v, want %v (%+v)", got, tc.want, p.Errors)
			}
		})
	}
}

func TestScheduleDeployAction(t *testing.T) {
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
	bp, err := b.store.PutBlueprint(ctx, store.Blueprint{AccountID: store.RootAccountID, Name: "agent",
		Steps: []store.BlueprintStep{{Package: schedPkg, Version: "1.0.0"}}})
	if err != nil {
		t.Fatal(err)
	}
	body := func(port string) map[string]any {
		return map[string]any{"name": "nightly", "cron": "0 3 * * *", "action": map[string]any{"kind": "deploy", "blueprint": bp.ID,
			"servers": []string{"web1"}, "parameters": map[string]string{"Port": port, "Pass": "Sup3r-Secret"}}}
	}
	p := b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, body("eighty")).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if got := fieldPaths(p); !slices.Equal(got, []string{"action.parameters.Port"}) {
		t.Errorf("paths %v (%+v)", got, p.Errors)
	}
	var sc scheduleJSON
	a := b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, body("80")).mustStatus(t, http.StatusCreated)
	a.json(t, &sc)
	if bytes.Contains(a.body, []byte("Sup3r-Secret")) || sc.Action.Parameters["Pass"] == "Sup3r-Secret" || sc.Action.Parameters["Port"] != "80" {
		t.Errorf("answer %s: the password must be masked, the port shown", a.body)
	}
	b.do(t, http.MethodPost, "/api/v1/schedules", testAdminToken, body("80")).mustStatus(t, http.StatusConflict)

	// A fire, run as a worker would, shows its execution in the history.
	var acc struct {
		Run string `json:"run"`
	}
	b.do(t, http.MethodPost, "/api/v1/schedules/"+sc.ID+"/run-now", testAdminToken, nil).mustStatus(t, http.StatusAccepted).json(t, &acc)
	runner, err := tasks.NewScheduleRunner(tasks.ScheduleRunnerOptions{Store: b.store, Enqueuer: b.srv.opts.Enqueuer, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewScheduleRunTask(sc.ID, acc.Run)
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.ProcessTask(ctx, task); err != nil {
		t.Fatalf("run: %v", err)
	}
	var runs page[scheduleRunJSON]
	b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID+"/runs", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &runs)
	if len(runs.Items) != 1 || runs.Items[0].ExecutionID == "" || runs.Items[0].Outcome != store.StatusQueued {
		t.Fatalf("runs %+v, want the execution, queued", runs.Items)
	}
	var exec map[string]any
	b.do(t, http.MethodGet, "/api/v1/executions/"+runs.Items[0].ExecutionID, testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &exec)
	if exec["blueprint_id"] != bp.ID {
		t.Errorf("execution %v, want one of blueprint %s", exec, bp.ID)
	}
	uses, err := b.store.SchedulesUsingVersion(ctx, schedPkg, "1.0.0")
	if err != nil || len(uses) != 1 || uses[0].ID != sc.ID {
		t.Errorf("SchedulesUsingVersion = %+v, %v", uses, err)
	}
}

func TestSchedulesBelongToAccounts(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	other := b.createAccount(t, testAdminToken, map[string]any{"name": "other"})
	op := b.mintToken(t, acme.ID, "olga", store.RoleOperator).Token
	viewer := b.mintToken(t, acme.ID, "vic", store.RoleViewer).Token
	stranger := b.mintToken(t, other.ID, "sam", store.RoleOperator).Token
	body := map[string]any{"name": "sync", "every": "1h", "action": map[string]any{"kind": "install-sync"}}
	b.do(t, http.MethodPost, "/api/v1/schedules", viewer, body).mustStatus(t, http.StatusForbidden)
	var sc scheduleJSON
	b.do(t, http.MethodPost, "/api/v1/schedules", op, body).mustStatus(t, http.StatusCreated).json(t, &sc)
	if sc.Account != acme.ID || sc.User != "olga" {
		t.Errorf("owner %s/%s", sc.Account, sc.User)
	}
	b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID, viewer, nil).mustStatus(t, http.StatusOK)
	for _, path := range []string{"", "/runs"} {
		b.do(t, http.MethodGet, "/api/v1/schedules/"+sc.ID+path, stranger, nil).mustStatus(t, http.StatusNotFound)
	}
	b.do(t, http.MethodPost, "/api/v1/schedules/"+sc.ID+"/pause", stranger, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodDelete, "/api/v1/schedules/"+sc.ID, stranger, nil).mustStatus(t, http.StatusNotFound)
	var list page[scheduleJSON]
	b.do(t, http.MethodGet, "/api/v1/schedules", stranger, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("a stranger lists %+v", list.Items)
	}
}
