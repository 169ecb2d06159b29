package tasks_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

const scheduledManifest = `<?xml version="1.0" encoding="utf-8"?>
<Manifest>
  <Metadata>
    <UUID>7e000000-0000-4000-8000-00000000007e</UUID>
    <Name>Sync Pack</Name>
    <Description>Syncs things</Description>
    <Version>1.0.0</Version>
    <Schedules>
      <Schedule Name="nightly" Cron="0 2 * * *"/>
      <Schedule Name="often" Every="6h"/>
    </Schedules>
  </Metadata>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>sync.sh</Command>
  </Execution>
</Manifest>`

// TestActivationCreatesDefaultSchedules: activating a version whose
// manifest declares schedules creates them, disabled, for the package's
// owner, once.
func TestActivationCreatesDefaultSchedules(t *testing.T) {
	t.Parallel()
	b := setupExec(t)
	ctx := context.Background()
	v := b.publish(t, scheduledManifest, file{"sync.sh", "#!/bin/sh\n", 0o755})
	h, err := tasks.NewActivateHandler(tasks.ActivateOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		task, _, _, err := tasks.NewActivateTask(tasks.ActivateRequest{PackageID: v.PackageID, Version: v.Version,
			AccountID: store.RootAccountID, RequestedBy: "alice"})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.ProcessTask(ctx, task); err != nil {
			t.Fatalf("activate: %v", err)
		}
	}
	all, err := b.store.Schedules(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range all {
		names = append(names, sc.Name)
		if sc.Enabled || sc.AccountID != store.RootAccountID || sc.User != "alice" || sc.Origin != v.PackageID+"@1.0.0" {
			t.Errorf("schedule %+v: want disabled, the owner's, from the version", sc)
		}
		if a := sc.Action; a.Kind != store.ActionDeploy || a.Package != v.PackageID || a.Version != store.ActiveVersion || len(a.Servers) != 0 {
			t.Errorf("action %+v: want a deploy of the active version onto no server yet", a)
		}
		if next, _ := b.store.NextFire(ctx, sc.ID); !next.IsZero() {
			t.Errorf("%s fires at %v while disabled", sc.Name, next)
		}
		switch sc.Name {
		case "Sync Pack / nightly":
			if sc.Cron != "0 2 * * *" || sc.Every != 0 {
				t.Errorf("nightly: %+v", sc)
			}
		case "Sync Pack / often":
			if sc.Every != 6*time.Hour || sc.Cron != "" {
				t.Errorf("often: %+v", sc)
			}
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, []string{"Sync Pack / nightly", "Sync Pack / often"}) {
		t.Errorf("schedules %v, want the two declared, once each", names)
	}
}

// TestInstallSyncQueuesWhatNodesMiss: an install-sync run queues an
// install of the active version on each live node that lacks it, and
// none on a node that has it.
func TestInstallSyncQueuesWhatNodesMiss(t *testing.T) {
	t.Parallel()
	b := setupExec(t)
	ctx := context.Background()
	v := b.publish(t, scheduledManifest, file{"sync.sh", "#!/bin/sh\n", 0o755})
	a, err := b.store.Activate(ctx, store.Activation{ID: "act-1", PackageID: v.PackageID, Version: v.Version,
		Closure: []store.ClosureVersion{{UUID: v.PackageID, Version: v.Version, SHA256: v.SHA256, Size: v.Size}}, RequestedAt: time.Now()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"n1", "n2"} {
		if err := b.store.Heartbeat(ctx, store.Node{ID: n, HeartbeatInterval: time.Minute}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.store.RecordNodeInstall(ctx, store.NodeInstall{Node: "n1", PackageID: v.PackageID, Version: v.Version,
		State: store.InstallInstalled, Activation: a.ID}); err != nil {
		t.Fatal(err)
	}
	sc, err := b.store.PutSchedule(ctx, store.Schedule{AccountID: store.RootAccountID, Name: "sync", Every: time.Hour,
		Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	runner, err := tasks.NewScheduleRunner(tasks.ScheduleRunnerOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewScheduleRunTask(sc.ID, "manual-1")
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // a retried run queues nothing twice
		if err := runner.ProcessTask(ctx, task); err != nil {
			t.Fatal(err)
		}
	}
	run, err := b.store.ScheduleRun(ctx, sc.ID, "manual-1")
	if err != nil {
		t.Fatal(err)
	}
	base := store.ScheduleTaskID(sc.ID, "manual-1")
	want := []string{base + ":" + v.PackageID + ":n2", base + ":prune:n1", base + ":prune:n2"}
	if run.Status != store.StatusSucceeded || !slices.Equal(run.TaskIDs, want) {
		t.Errorf("run %+v, want succeeded with %v", run, want)
	}
	st, err := b.client.Lookup(ctx, want[0])
	if err != nil || st.Type != tasks.TypeInstall || st.Queue != tasks.NodeQueue("n2") {
		t.Errorf("install task %+v, %v", st, err)
	}
	for i, node := range []string{"n1", "n2"} {
		st, err := b.client.Lookup(ctx, want[1+i])
		if err != nil || st.Type != tasks.TypePrune || st.Queue != tasks.NodeQueue(node) {
			t.Errorf("prune task of %s: %+v, %v", node, st, err)
		}
	}
}

// TestScheduleRunOfDeletedSchedule: a fire whose schedule was deleted
// since fails without retry and leaves no history behind.
func TestScheduleRunOfDeletedSchedule(t *testing.T) {
	t.Parallel()
	b := setupExec(t)
	ctx := context.Background()
	runner, err := tasks.NewScheduleRunner(tasks.ScheduleRunnerOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewScheduleRunTask("gone", "1800000000")
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.ProcessTask(ctx, task); !errors.Is(err, asynq.SkipRetry) {
		t.Errorf("run of a deleted schedule: %v, want SkipRetry", err)
	}
	if runs, err := b.store.ScheduleRuns(ctx, "gone", 0); err != nil || len(runs) != 0 {
		t.Errorf("runs %+v, %v; want none", runs, err)
	}
}

// TestDefaultSchedulesTheSchedulerRefusesAreNotStored: a version
// recorded before the manifest used the scheduler's cron checker may
// declare "0 0 * * 7"; activating it must not store a schedule that the
// scheduler can never fire.
func TestDefaultSchedulesTheSchedulerRefusesAreNotStored(t *testing.T) {
	t.Parallel()
	b := setupExec(t)
	ctx := context.Background()
	v := b.publish(t, scheduledManifest, file{"sync.sh", "#!/bin/sh\n", 0o755})
	// Rewrite the stored manifest as an older packflow recorded it.
	keys, err := b.rdb.Keys(ctx, "*version:"+v.PackageID+":"+v.Version).Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("version key: %v %v", keys, err)
	}
	raw, err := b.rdb.Get(ctx, keys[0]).Bytes()
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]json.RawMessage
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	var m manifest.Manifest
	if err := json.Unmarshal(rec["manifest"], &m); err != nil {
		t.Fatal(err)
	}
	m.Metadata.Schedules = []manifest.Schedule{{Name: "sunday", Cron: "0 0 * * 7"}, {Name: "never", Cron: "0 0 31 2 *"}, {Name: "nightly", Cron: "0 2 * * *"}}
	if rec["manifest"], err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if raw, err = json.Marshal(rec); err != nil {
		t.Fatal(err)
	}
	if err := b.rdb.Set(ctx, keys[0], raw, 0).Err(); err != nil {
		t.Fatal(err)
	}
	created, err := tasks.CreateDefaultSchedules(ctx, b.store, v.PackageID, v.Version, "alice")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, sc := range created {
		names = append(names, sc.Name)
	}
	if !slices.Equal(names, []string{"Sync Pack / nightly"}) {
		t.Errorf("created %v, want only the schedule the scheduler accepts", names)
	}
}
