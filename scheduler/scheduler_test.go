package scheduler

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

type bundle struct {
	rdb    *testenv.Redis
	store  *store.Store
	client *tasks.Client
	log    *slog.Logger
	clock  *clock
}

func setup(t *testing.T) *bundle {
	t.Helper()
	r := testenv.RealRedis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(r.Client, store.Options{Secrets: box})
	if _, err := st.EnsureRootAccount(context.Background()); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return &bundle{rdb: r, store: st, client: tasks.NewClient(r.Client, st, log), log: log, clock: &clock{}}
}

func (b *bundle) scheduler(t *testing.T) *Scheduler {
	t.Helper()
	s, err := New(Options{Store: b.store, Enqueuer: b.client, Tasks: b.client, Logger: b.log, Now: b.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// schedule records sc, enabled, with its first fire at first.
func (b *bundle) schedule(t *testing.T, sc store.Schedule, first time.Time) store.Schedule {
	t.Helper()
	if sc.AccountID == "" {
		sc.AccountID = store.RootAccountID
	}
	if sc.Name == "" {
		sc.Name = "sched"
	}
	sc.Enabled = true
	out, err := b.store.PutSchedule(context.Background(), sc, first)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// queued returns the IDs of the tasks waiting in the default queue.
func (b *bundle) queued(t *testing.T) []string {
	t.Helper()
	insp := asynq.NewInspectorFromRedisClient(b.rdb.Client)
	infos, err := insp.ListPendingTasks(tasks.QueueDefault, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(infos))
	for i, in := range infos {
		ids[i] = in.ID
	}
	slices.Sort(ids)
	return ids
}

func (b *bundle) runs(t *testing.T, id string) []store.ScheduleRun {
	t.Helper()
	runs, err := b.store.ScheduleRuns(context.Background(), id, 0)
	if err != nil {
		t.Fatal(err)
	}
	return runs
}

var t0 = time.Date(2030, 5, 1, 12, 0, 0, 0, time.UTC)

// TestReplicasFireEachTimeOnce: three replicas tick together at every
// second of a one-second schedule; each fire is enqueued once.
func TestReplicasFireEachTimeOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sc := b.schedule(t, store.Schedule{Every: time.Second, Anchor: t0, Overlap: store.OverlapAllow,
		Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, t0.Add(time.Second))
	replicas := []*Scheduler{b.scheduler(t), b.scheduler(t), b.scheduler(t)}
	var want []string
	for i := 1; i <= 10; i++ {
		at := t0.Add(time.Duration(i) * time.Second)
		b.clock.Set(at.Add(100 * time.Millisecond))
		var wg sync.WaitGroup
		for _, r := range replicas {
			wg.Go(func() {
				if err := r.Tick(ctx); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		want = append(want, store.ScheduleTaskID(sc.ID, store.FireKey(at)))
	}
	slices.Sort(want)
	if got := b.queued(t); !slices.Equal(got, want) {
		t.Errorf("queued tasks\n got %v\nwant %v", got, want)
	}
	if runs := b.runs(t, sc.ID); len(runs) != 10 {
		t.Errorf("%d runs recorded, want 10", len(runs))
	}
}

// TestPendingFireIsSwept: a replica that claimed a fire and died before
// enqueueing it leaves it pending; another enqueues it.
func TestPendingFireIsSwept(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	at := t0.Add(time.Minute)
	sc := b.schedule(t, store.Schedule{Every: time.Minute, Anchor: t0, Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, at)
	run := store.ScheduleRun{Key: store.FireKey(at), ScheduleID: sc.ID, ScheduledAt: at, Status: store.StatusQueued}
	if ok, err := b.store.ClaimFire(ctx, sc.ID, at, at.Add(time.Minute), run, true, at); err != nil || !ok {
		t.Fatalf("claim: %v, %v", ok, err)
	}
	s := b.scheduler(t)
	b.clock.Set(at.Add(time.Second))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.queued(t); len(got) != 0 {
		t.Fatalf("swept a fire claimed a second ago: %v", got)
	}
	b.clock.Set(at.Add(DefaultPendingAfter + time.Second))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := b.queued(t), []string{store.ScheduleTaskID(sc.ID, store.FireKey(at))}; !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
}

// TestCatchUp: every scheduler was down for ten fires of a one-minute
// schedule; on return it fires once (once) or not at all (none).
func TestCatchUp(t *testing.T) {
	t.Parallel()
	tests := []struct {
		catchUp    string
		wantQueued int
		wantStatus string
	}{
		{store.CatchUpOnce, 1, store.StatusQueued},
		{"", 1, store.StatusQueued}, // the default
		{store.CatchUpNone, 0, store.RunMissed},
	}
	for _, tc := range tests {
		t.Run("catch_up="+tc.catchUp, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			sc := b.schedule(t, store.Schedule{Every: time.Minute, Anchor: t0, CatchUp: tc.catchUp, Overlap: store.OverlapAllow,
				Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, t0.Add(time.Minute))
			// Back at 12:10:30: the fires of 12:01 … 12:10 were missed.
			b.clock.Set(t0.Add(10*time.Minute + 30*time.Second))
			s := b.scheduler(t)
			for range 3 {
				if err := s.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if got := b.queued(t); len(got) != tc.wantQueued {
				t.Errorf("queued %v, want %d task(s)", got, tc.wantQueued)
			}
			runs := b.runs(t, sc.ID)
			if len(runs) != 1 {
				t.Fatalf("runs %+v, want one", runs)
			}
			r := runs[0]
			if r.Status != tc.wantStatus || r.Missed != 10 || !r.ScheduledAt.Equal(t0.Add(10*time.Minute)) {
				t.Errorf("run %+v, want status %s for 12:10 standing for 10 fires", r, tc.wantStatus)
			}
			if next, _ := b.store.NextFire(ctx, sc.ID); !next.Equal(t0.Add(11 * time.Minute)) {
				t.Errorf("next fire %v, want 12:11", next)
			}
			// On time again: the next fire is an ordinary one.
			b.clock.Set(t0.Add(11*time.Minute + time.Second))
			if err := s.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if got := b.queued(t); len(got) != tc.wantQueued+1 {
				t.Errorf("queued %v after the next fire", got)
			}
		})
	}
}

// TestOverlap: while a run's task waits, a skip schedule records the next
// fire as skipped; an allow schedule fires it.
func TestOverlap(t *testing.T) {
	t.Parallel()
	for _, overlap := range []string{store.OverlapSkip, store.OverlapAllow} {
		t.Run(overlap, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			ctx := context.Background()
			sc := b.schedule(t, store.Schedule{Every: time.Minute, Anchor: t0, Overlap: overlap,
				Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, t0.Add(time.Minute))
			s := b.scheduler(t)
			for i := 1; i <= 2; i++ {
				b.clock.Set(t0.Add(time.Duration(i) * time.Minute))
				if err := s.Tick(ctx); err != nil {
					t.Fatal(err)
				}
			}
			runs := b.runs(t, sc.ID)
			if len(runs) != 2 {
				t.Fatalf("runs %+v, want 2", runs)
			}
			want := store.StatusQueued
			if overlap == store.OverlapSkip {
				want = store.RunSkipped
			}
			if runs[0].Status != want || runs[1].Status != store.StatusQueued {
				t.Errorf("statuses %s, %s; want %s after queued", runs[0].Status, runs[1].Status, want)
			}
		})
	}
}

const manifestXML = `<?xml version="1.0" encoding="utf-8"?>
<Manifest>
  <Metadata>
    <UUID>3f1c9b2e-7a4d-4e8f-9b1a-2c3d4e5f6a7b</UUID>
    <Name>Hello</Name>
    <Description>Says hello</Description>
    <Version>1.0.0</Version>
  </Metadata>
  <Parameters>
    <Parameter Name="Greeting" Type="String" Variable="Greeting" Hint="Text" Default="Hello" Prompt="Build" />
  </Parameters>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>install.sh "${Greeting}"</Command>
    <Persistent>false</Persistent>
    <RebootOnSuccess>false</RebootOnSuccess>
  </Execution>
</Manifest>`

// publish publishes the hello package as the root account.
func (b *bundle) publish(t *testing.T) store.Version {
	t.Helper()
	ctx := context.Background()
	bs, err := blob.Open(ctx, "mem://")
	if err != nil {
		t.Fatal(err)
	}
	archive := pkgtest.Zip(t,
		pkgtest.File{Name: "package.manifest", Body: manifestXML, Mode: 0o644},
		pkgtest.File{Name: "install.sh", Body: "#!/bin/sh\necho \"$1\"\n", Mode: 0o755})
	info, err := bs.Put(ctx, blob.UploadKey("up1"), bytes.NewReader(archive))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: "up1", AccountID: store.RootAccountID, BlobKey: info.Key,
		SHA256: info.SHA256, Size: info.Size, CreatedBy: "alice"}); err != nil {
		t.Fatal(err)
	}
	u, err := b.store.BeginPublish(ctx, "up1", store.PublishOptions{Category: "script", OS: "linux",
		OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate})
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewPublishTask(u)
	if err != nil {
		t.Fatal(err)
	}
	h, err := tasks.NewPublishHandler(tasks.PublishOptions{Store: b.store, Blob: bs, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.ProcessTask(ctx, task); err != nil {
		t.Fatalf("publish: %v", err)
	}
	u, err = b.store.Upload(ctx, "up1")
	if err != nil {
		t.Fatal(err)
	}
	v, err := b.store.Version(ctx, u.PackageID, u.Version)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestDeployScheduleMakesExecutions: a deploy schedule's fire, run by
// the worker's handler, makes an execution of the blueprint that the run
// history names; while it has not finished, the next fire is skipped.
func TestDeployScheduleMakesExecutions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	v := b.publish(t)
	cred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "ops", Kind: store.CredentialPassword, Username: "ops"},
		store.Secret{Secret: "pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateServer(ctx, store.Server{AccountID: store.RootAccountID, Name: "web1", Address: "127.0.0.1",
		OS: "linux", Transport: "ssh", CredentialID: cred.ID}); err != nil {
		t.Fatal(err)
	}
	bp, err := b.store.PutBlueprint(ctx, store.Blueprint{AccountID: store.RootAccountID, Name: "hello",
		Steps: []store.BlueprintStep{{Package: v.PackageID, Version: v.Version}}})
	if err != nil {
		t.Fatal(err)
	}
	sc := b.schedule(t, store.Schedule{User: "alice", Cron: "*/5 * * * *", Action: store.ScheduleAction{Kind: store.ActionDeploy,
		Blueprint: bp.ID, Servers: []string{"web1"}, Parameters: map[string]string{"Greeting": "Hi"}}}, t0.Add(5*time.Minute))
	s := b.scheduler(t)
	runner, err := tasks.NewScheduleRunner(tasks.ScheduleRunnerOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}

	b.clock.Set(t0.Add(5 * time.Minute))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	key := store.FireKey(t0.Add(5 * time.Minute))
	task, _, err := tasks.NewScheduleRunTask(sc.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if err := runner.ProcessTask(ctx, task); err != nil {
		t.Fatalf("run: %v", err)
	}
	// A retried task does not deploy again.
	if err := runner.ProcessTask(ctx, task); err != nil {
		t.Fatalf("run again: %v", err)
	}
	run, err := b.store.ScheduleRun(ctx, sc.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if run.ExecutionID == "" || len(run.TaskIDs) != 1 {
		t.Fatalf("run %+v, want an execution with one task", run)
	}
	e, err := b.store.Execution(ctx, run.ExecutionID)
	if err != nil || e.BlueprintID != bp.ID || e.User != "alice" || len(e.ServerIDs) != 1 {
		t.Fatalf("execution %+v, %v", e, err)
	}
	all, err := b.store.Executions(ctx)
	if err != nil || len(all) != 1 {
		t.Errorf("%d executions, want 1 (%v)", len(all), err)
	}

	b.clock.Set(t0.Add(10 * time.Minute))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	runs := b.runs(t, sc.ID)
	if len(runs) != 2 || runs[0].Status != store.RunSkipped || runs[1].ExecutionID != e.ID {
		t.Errorf("runs %+v; want the second skipped while the first's execution is queued", runs)
	}
}

// TestDeployProblemsFailTheRun: a server that is gone fails the run with
// the problem, without retries.
func TestDeployProblemsFailTheRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sc := b.schedule(t, store.Schedule{Every: time.Hour, Anchor: t0, Action: store.ScheduleAction{Kind: store.ActionDeploy,
		Blueprint: "nope", Servers: []string{"gone"}}}, t0.Add(time.Hour))
	key := store.FireKey(t0.Add(time.Hour))
	if err := b.store.PutScheduleRun(ctx, store.ScheduleRun{Key: key, ScheduleID: sc.ID, ScheduledAt: t0.Add(time.Hour), Status: store.StatusQueued}); err != nil {
		t.Fatal(err)
	}
	runner, err := tasks.NewScheduleRunner(tasks.ScheduleRunnerOptions{Store: b.store, Enqueuer: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	task, _, _ := tasks.NewScheduleRunTask(sc.ID, key)
	if err := runner.ProcessTask(ctx, task); err == nil {
		t.Fatal("a deploy of nothing onto nothing succeeded")
	}
	run, err := b.store.ScheduleRun(ctx, sc.ID, key)
	if err != nil {
		t.Fatal(err)
	}
	if run.Status != store.StatusFailed || run.FinishedAt == nil ||
		!bytes.Contains([]byte(run.Error), []byte("no such blueprint")) || !bytes.Contains([]byte(run.Error), []byte("no such server: gone")) {
		t.Errorf("run %+v, want failed naming both problems", run)
	}
}

// TestStartShutdown: the loop fires a due schedule on its own and stops.
func TestStartShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Second)
	sc := b.schedule(t, store.Schedule{Every: time.Hour, Anchor: now, Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, now)
	s, err := New(Options{Store: b.store, Enqueuer: b.client, Tasks: b.client, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err == nil {
		t.Error("a second Start succeeded")
	}
	want := store.ScheduleTaskID(sc.ID, store.FireKey(now))
	deadline := time.Now().Add(20 * time.Second)
	for !slices.Contains(b.queued(t), want) {
		if time.Now().After(deadline) {
			t.Fatalf("the due schedule was not fired; queued %v", b.queued(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
}

// TestChangesTakeEffectAtOnce: a paused schedule does not fire; a changed
// one fires at its new time; replicas keep no copy of either.
func TestChangesTakeEffectAtOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	sc := b.schedule(t, store.Schedule{Every: time.Minute, Anchor: t0, Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, t0.Add(time.Minute))
	s := b.scheduler(t)
	b.clock.Set(t0.Add(30 * time.Second))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.SetScheduleEnabled(ctx, sc.ID, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(t0.Add(time.Minute))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.queued(t); len(got) != 0 {
		t.Fatalf("a paused schedule fired: %v", got)
	}
	sc.Every, sc.Enabled = time.Hour, true
	if _, err := b.store.PutSchedule(ctx, sc, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	b.clock.Set(t0.Add(2 * time.Minute))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.queued(t); len(got) != 0 {
		t.Fatalf("fired on the old interval: %v", got)
	}
	b.clock.Set(t0.Add(time.Hour))
	if err := s.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := b.queued(t), []string{store.ScheduleTaskID(sc.ID, store.FireKey(t0.Add(time.Hour)))}; !slices.Equal(got, want) {
		t.Errorf("queued %v, want %v", got, want)
	}
}
