//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// schedProc is one packflow scheduler process and its JSON log.
type schedProc struct {
	name   string
	cmd    *exec.Cmd
	log    string
	exited chan struct{}
}

func startSchedulerProc(t *testing.T, bin, redisURL, name string) *schedProc {
	t.Helper()
	p := &schedProc{name: name, log: filepath.Join(t.TempDir(), name+".log"), exited: make(chan struct{})}
	f, err := os.Create(p.log)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(bin, "scheduler")
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PACKFLOW_REDIS_URL=" + redisURL,
		"PACKFLOW_LOG_FORMAT=json", "PACKFLOW_LOG_LEVEL=info", "PACKFLOW_SHUTDOWN_TIMEOUT=5s"}
	p.cmd.Stdout, p.cmd.Stderr = f, f
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		_ = f.Close()
		close(p.exited)
	}()
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.log)
			t.Logf("log of %s:\n%s", p.name, b)
		}
	})
	return p
}

// stop ends the process gracefully, or kills it after a while.
func (p *schedProc) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// fired returns the task IDs this process logged as fired, with the time
// of the last one.
func (p *schedProc) fired(t *testing.T) (ids []string, last time.Time) {
	t.Helper()
	f, err := os.Open(p.log)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var line struct {
			Time   time.Time `json:"time"`
			Msg    string    `json:"msg"`
			TaskID string    `json:"task_id"`
		}
		if json.Unmarshal(sc.Bytes(), &line) != nil || line.Msg != "schedule fired" {
			continue
		}
		ids = append(ids, line.TaskID)
		last = line.Time
	}
	return ids, last
}

// queuedFires returns the fire times, in Unix seconds, of the schedule's
// tasks waiting in the default queue.
func queuedFires(t *testing.T, insp *asynq.Inspector, id string) []int64 {
	t.Helper()
	infos, err := insp.ListPendingTasks(tasks.QueueDefault, asynq.PageSize(1000))
	if errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []int64
	for _, in := range infos {
		key, ok := strings.CutPrefix(in.ID, "sched:"+id+":")
		if !ok {
			t.Errorf("unexpected task %s", in.ID)
			continue
		}
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			t.Errorf("task %s: fire key %q is not a time", in.ID, key)
			continue
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// TestSchedulerReplicas runs three scheduler processes on a schedule that
// fires every second, kills the one that fired last with SIGKILL half
// way, and checks that every fire time was enqueued once, by one process,
// with at most the takeover window (5 s) missing.
func TestSchedulerReplicas(t *testing.T) {
	t.Parallel()
	r := testenv.RealRedis(t)
	bin := buildPackflow(t)
	ctx := context.Background()
	st := store.New(r.Client, store.Options{})
	insp := asynq.NewInspectorFromRedisClient(r.Client)
	start := time.Now().UTC().Truncate(time.Second).Add(2 * time.Second)
	sc, err := st.PutSchedule(ctx, store.Schedule{AccountID: store.RootAccountID, Name: "every-second", Every: time.Second, Anchor: start,
		Enabled: true, Overlap: store.OverlapAllow, Action: store.ScheduleAction{Kind: store.ActionInstallSync}}, start)
	if err != nil {
		t.Fatal(err)
	}
	procs := []*schedProc{
		startSchedulerProc(t, bin, r.URL, "s1"), startSchedulerProc(t, bin, r.URL, "s2"), startSchedulerProc(t, bin, r.URL, "s3"),
	}
	// awaitFires waits until n fires are queued; this waits, it asserts
	// nothing about time.
	awaitFires := func(n int) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for len(queuedFires(t, insp, sc.ID)) < n {
			if time.Now().After(deadline) {
				t.Fatalf("only %d fires queued, waiting for %d", len(queuedFires(t, insp, sc.ID)), n)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	awaitFires(5)
	// Kill the replica that fired last: the one most likely busy firing.
	var victim *schedProc
	var latest time.Time
	for _, p := range procs {
		if _, last := p.fired(t); victim == nil || last.After(latest) {
			victim, latest = p, last
		}
	}
	if err := victim.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	killedAt := len(queuedFires(t, insp, sc.ID))
	awaitFires(killedAt + 5)
	if _, err := st.SetScheduleEnabled(ctx, sc.ID, false, time.Time{}); err != nil {
		t.Fatal(err)
	}
	for _, p := range procs {
		p.stop()
	}

	fires := queuedFires(t, insp, sc.ID)
	first, last := fires[0], fires[len(fires)-1]
	if first != start.Unix() {
		t.Errorf("first fire at %d, want the schedule's first time %d", first, start.Unix())
	}
	// Every fire time once, and no gap over the takeover window.
	seen := map[int64]bool{}
	missing := 0
	for _, f := range fires {
		if seen[f] {
			t.Errorf("fire %d queued twice", f)
		}
		seen[f] = true
	}
	for f := first; f <= last; f++ {
		if !seen[f] {
			missing++
		}
	}
	if missing > 5 {
		t.Errorf("%d fire times between %d and %d missing, want at most the 5 s takeover window", missing, first, last)
	}
	// Each enqueue was done by one process: no task ID logged twice.
	by := map[string][]string{}
	for _, p := range procs {
		ids, _ := p.fired(t)
		for _, id := range ids {
			by[id] = append(by[id], p.name)
		}
	}
	for id, names := range by {
		if len(names) > 1 {
			t.Errorf("%s enqueued by %v", id, names)
		}
		key, _ := strings.CutPrefix(id, "sched:"+sc.ID+":")
		if n, _ := strconv.ParseInt(key, 10, 64); !seen[n] {
			t.Errorf("%s logged as fired but not queued", id)
		}
	}
	// Every queued fire was logged, but for the one the victim may have
	// enqueued just before it died.
	if d := len(fires) - len(by); d < 0 || d > 1 {
		t.Errorf("%d fires queued, %d logged as fired", len(fires), len(by))
	}
	runs, err := st.ScheduleRuns(ctx, sc.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != len(fires) {
		t.Errorf("%d runs recorded for %d fires", len(runs), len(fires))
	}
	t.Logf("%d fires from %d to %d, %d missing, %s killed", len(fires), first, last, missing, victim.name)
}
