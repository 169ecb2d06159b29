package store_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func scheduleTestStore(t *testing.T) *store.Store {
	t.Helper()
	r := testenv.RealRedis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{9}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return store.New(r.Client, store.Options{Secrets: box})
}

func TestScheduleRecords(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := scheduleTestStore(t)
	next := time.Date(2030, 1, 1, 10, 0, 0, 0, time.UTC)
	sc, err := s.PutSchedule(ctx, store.Schedule{AccountID: "acme", User: "alice", Name: "nightly", Cron: "0 2 * * *", Enabled: true,
		CatchUp: store.CatchUpOnce, Overlap: store.OverlapSkip,
		Action: store.ScheduleAction{Kind: store.ActionDeploy, Blueprint: "bp1", Servers: []string{"web"},
			Parameters: map[string]string{"Port": "80", "Pass": "s3cret"}, Secrets: []string{"Pass"}}}, next)
	if err != nil {
		t.Fatalf("PutSchedule: %v", err)
	}
	got, err := s.Schedule(ctx, sc.ID)
	if err != nil || got.Action.Parameters["Pass"] != "s3cret" || got.Action.Parameters["Port"] != "80" {
		t.Fatalf("Schedule = %+v, %v; want the parameters back, the secret opened", got.Action, err)
	}
	raw, _ := s.Redis().Get(ctx, "pf:{sched}:id:"+sc.ID).Result()
	if bytes.Contains([]byte(raw), []byte("s3cret")) {
		t.Error("the password value is stored in clear")
	}
	if at, _ := s.NextFire(ctx, sc.ID); !at.Equal(next) {
		t.Errorf("NextFire = %v, want %v", at, next)
	}
	if _, err := s.PutSchedule(ctx, store.Schedule{AccountID: "acme", Name: "NIGHTLY", Every: time.Hour}, next); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second schedule of the same name: %v, want ErrConflict", err)
	}
	if _, err := s.PutSchedule(ctx, store.Schedule{AccountID: "other", Name: "nightly", Every: time.Hour}, time.Time{}); err != nil {
		t.Errorf("same name in another account: %v", err)
	}
	paused, err := s.SetScheduleEnabled(ctx, sc.ID, false, next)
	if err != nil || paused.Enabled {
		t.Fatalf("pause: %+v, %v", paused, err)
	}
	if at, _ := s.NextFire(ctx, sc.ID); !at.IsZero() {
		t.Errorf("a paused schedule fires at %v", at)
	}
	uses, err := s.SchedulesUsingVersion(ctx, "pkg", "1.0.0")
	if err != nil || len(uses) != 0 {
		t.Errorf("SchedulesUsingVersion = %v, %v; want none", uses, err)
	}
	if _, err := s.PutSchedule(ctx, store.Schedule{AccountID: "acme", Name: "pinned", Every: time.Hour,
		Action: store.ScheduleAction{Kind: store.ActionDeploy, Package: "pkg", Version: "1.0.0"}}, time.Time{}); err != nil {
		t.Fatal(err)
	}
	if uses, _ := s.SchedulesUsingVersion(ctx, "pkg", "1.0.0"); len(uses) != 1 || uses[0].Name != "pinned" {
		t.Errorf("SchedulesUsingVersion = %+v, want the pinned schedule", uses)
	}
	if err := s.DeleteSchedule(ctx, sc.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedule(ctx, sc.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted schedule: %v", err)
	}
}

// TestClaimFireOnce: of many concurrent claims of one fire, one wins, and
// the fire is pending until enqueued.
func TestClaimFireOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := scheduleTestStore(t)
	at := time.Now().UTC().Truncate(time.Second).Add(-time.Second)
	sc, err := s.PutSchedule(ctx, store.Schedule{AccountID: "acme", Name: "often", Every: time.Second, Enabled: true,
		Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, at)
	if err != nil {
		t.Fatal(err)
	}
	due, err := s.DueFires(ctx, time.Now(), 10)
	if err != nil || len(due) != 1 || due[0].ID != sc.ID || !due[0].At.Equal(at) {
		t.Fatalf("DueFires = %+v, %v", due, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 8 {
		wg.Go(func() {
			run := store.ScheduleRun{Key: store.FireKey(at), ScheduleID: sc.ID, ScheduledAt: at, Status: store.StatusQueued}
			ok, err := s.ClaimFire(ctx, sc.ID, at, at.Add(time.Second), run, true, time.Now())
			if err != nil {
				t.Error(err)
			}
			if ok {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d claims won, want 1", wins)
	}
	if next, _ := s.NextFire(ctx, sc.ID); !next.Equal(at.Add(time.Second)) {
		t.Errorf("next fire %v, want %v", next, at.Add(time.Second))
	}
	stale, err := s.StalePendingFires(ctx, time.Now().Add(time.Second))
	if err != nil || len(stale) != 1 || stale[0] != (store.PendingFire{ID: sc.ID, Key: store.FireKey(at)}) {
		t.Fatalf("StalePendingFires = %+v, %v", stale, err)
	}
	if err := s.FireEnqueued(ctx, stale[0]); err != nil {
		t.Fatal(err)
	}
	if stale, _ := s.StalePendingFires(ctx, time.Now().Add(time.Second)); len(stale) != 0 {
		t.Errorf("still pending after FireEnqueued: %+v", stale)
	}
	runs, err := s.ScheduleRuns(ctx, sc.ID, 0)
	if err != nil || len(runs) != 1 || runs[0].Key != store.FireKey(at) {
		t.Errorf("ScheduleRuns = %+v, %v", runs, err)
	}
}

func TestScheduleRunsNewestFirstAndTrimmed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := scheduleTestStore(t)
	t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range store.ScheduleRunsKept + 5 {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := s.PutScheduleRun(ctx, store.ScheduleRun{Key: store.FireKey(at), ScheduleID: "s1", ScheduledAt: at, Status: store.RunSkipped}); err != nil {
			t.Fatal(err)
		}
	}
	runs, err := s.ScheduleRuns(ctx, "s1", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != store.ScheduleRunsKept {
		t.Fatalf("%d runs kept, want %d", len(runs), store.ScheduleRunsKept)
	}
	if want := t0.Add(time.Duration(store.ScheduleRunsKept+4) * time.Minute); !runs[0].ScheduledAt.Equal(want) {
		t.Errorf("newest run at %v, want %v", runs[0].ScheduledAt, want)
	}
}
