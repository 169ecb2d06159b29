package worker_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// bundle is what one worker test works with.
type bundle struct {
	rdb    redis.UniversalClient
	store  *store.Store
	client *tasks.Client
	reg    *prometheus.Registry
}

func setup(t *testing.T, rdb redis.UniversalClient) *bundle {
	t.Helper()
	st := store.New(rdb, store.Options{})
	return &bundle{rdb: rdb, store: st, client: tasks.NewClient(rdb, st, testLogger(t)), reg: prometheus.NewRegistry()}
}

// start builds and starts a worker with fast test settings; it is shut
// down when the test ends.
func (b *bundle) start(t *testing.T, handlers map[string]asynq.Handler, tweak func(*worker.Options)) *worker.Worker {
	t.Helper()
	opts := worker.Options{
		Redis:                    b.rdb,
		Store:                    b.store,
		NodeID:                   "n1",
		Concurrency:              4,
		Handlers:                 handlers,
		Logger:                   testLogger(t),
		Metrics:                  b.reg,
		HeartbeatInterval:        100 * time.Millisecond,
		ShutdownTimeout:          5 * time.Second,
		DelayedTaskCheckInterval: 100 * time.Millisecond,
		Retry:                    tasks.Backoff{Base: time.Millisecond, Cap: time.Millisecond},
	}
	if tweak != nil {
		tweak(&opts)
	}
	w, err := worker.New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := w.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return w
}

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it holds or the test's patience (10s) runs out.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestEnqueueRunsOnWorker(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	got := make(chan string, 1)
	b.start(t, map[string]asynq.Handler{
		"test:echo": asynq.HandlerFunc(func(ctx context.Context, task *asynq.Task) error {
			tasks.LoggerFrom(ctx).Info("running")
			if _, err := task.ResultWriter().Write([]byte(`{"echo":` + string(task.Payload()) + `}`)); err != nil {
				return err
			}
			got <- string(task.Payload())
			return nil
		}),
	}, nil)
	info, err := b.client.Enqueue(context.Background(), "acct1", asynq.NewTask("test:echo", []byte(`"hi"`)))
	if err != nil {
		t.Fatal(err)
	}
	if p := <-got; p != `"hi"` {
		t.Errorf("payload = %s", p)
	}
	var st tasks.Status
	waitFor(t, "completed state", func() bool {
		st, err = b.client.Lookup(context.Background(), info.ID)
		return err == nil && st.State == tasks.StateCompleted
	})
	if string(st.Result) != `{"echo":"hi"}` || st.AccountID != "acct1" || st.Queue != tasks.QueueDefault || st.CompletedAt == nil {
		t.Errorf("status = %+v", st)
	}
	if n := processed(t, b.reg, "test:echo", "ok"); n != 1 {
		t.Errorf("ok counter = %v, want 1", n)
	}
}

// processed reads packflow_tasks_processed_total{type, outcome}.
func processed(t *testing.T, reg *prometheus.Registry, typ, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "packflow_tasks_processed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["type"] == typ && labels["outcome"] == outcome {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

func TestNodeQueueTaskRuns(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ran := make(chan string, 1)
	w := b.start(t, map[string]asynq.Handler{
		tasks.TypeInstall: asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
			q, _ := asynq.GetQueueName(ctx)
			ran <- q
			return nil
		}),
	}, func(o *worker.Options) { o.NodeID = "node-7"; o.Datacenters = []string{"eu"} })
	if _, ok := w.Queues()[tasks.ExecQueue("eu")]; !ok {
		t.Errorf("queues %v lack the exec queue", w.Queues())
	}
	if _, err := b.client.Enqueue(context.Background(), "a", asynq.NewTask(tasks.TypeInstall, nil), asynq.Queue(tasks.NodeQueue(w.NodeID()))); err != nil {
		t.Fatal(err)
	}
	if q := <-ran; q != "node:node-7" {
		t.Errorf("ran on queue %q, want node:node-7", q)
	}
}

func TestFailingTaskRetries(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	var calls atomic.Int32
	attempts := make(chan int, 3)
	b.start(t, map[string]asynq.Handler{
		"test:flaky": asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
			n, _ := asynq.GetRetryCount(ctx)
			attempts <- n
			if calls.Add(1) == 1 {
				return errors.New("first run fails")
			}
			return nil
		}),
	}, nil)
	info, err := b.client.Enqueue(context.Background(), "a", asynq.NewTask("test:flaky", nil))
	if err != nil {
		t.Fatal(err)
	}
	if first, second := <-attempts, <-attempts; first != 0 || second != 1 {
		t.Errorf("retry counts seen = %d, %d; want 0, 1", first, second)
	}
	var st tasks.Status
	waitFor(t, "completion after retry", func() bool {
		st, err = b.client.Lookup(context.Background(), info.ID)
		return err == nil && st.State == tasks.StateCompleted
	})
	if st.Retried != 1 || st.MaxRetry != tasks.DefaultRetryMax || st.LastError != "first run fails" {
		t.Errorf("status = %+v; want retried 1 of %d with the first error", st, tasks.DefaultRetryMax)
	}
	if n := processed(t, b.reg, "test:flaky", "error"); n != 1 {
		t.Errorf("error counter = %v, want 1", n)
	}
}

func TestPanicAndUnknownTypeFail(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	b.start(t, map[string]asynq.Handler{
		"test:panic": asynq.HandlerFunc(func(context.Context, *asynq.Task) error { panic("boom") }),
	}, nil)
	ctx := context.Background()
	p, err := b.client.Enqueue(ctx, "a", asynq.NewTask("test:panic", nil), asynq.MaxRetry(0))
	if err != nil {
		t.Fatal(err)
	}
	u, err := b.client.Enqueue(ctx, "a", asynq.NewTask("test:nobody", nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{p.ID, u.ID} {
		var st tasks.Status
		waitFor(t, "archived "+id, func() bool {
			st, err = b.client.Lookup(ctx, id)
			return err == nil && st.State == tasks.StateArchived
		})
		if st.Retried != 0 || st.LastError == "" {
			t.Errorf("%s: status = %+v; want archived at once with an error", st.Type, st)
		}
	}
	if n := processed(t, b.reg, "test:panic", "panic"); n != 1 {
		t.Errorf("panic counter = %v, want 1", n)
	}
	if n := processed(t, b.reg, "unknown", "error"); n != 1 {
		t.Errorf("unknown-type counter = %v, want 1", n)
	}
}

func TestLookupStates(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ctx := context.Background()
	info, err := b.client.Enqueue(ctx, "acct", asynq.NewTask("test:result", nil), asynq.Queue(tasks.QueuePublish))
	if err != nil {
		t.Fatal(err)
	}
	st, err := b.client.Lookup(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != tasks.StatePending || st.Queue != tasks.QueuePublish || st.AccountID != "acct" || st.Result != nil {
		t.Errorf("before any worker: status = %+v, want pending on publish", st)
	}
	if _, err := b.client.Lookup(ctx, "no-such-task"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want store.ErrNotFound", err)
	}

	b.start(t, map[string]asynq.Handler{
		"test:result": asynq.HandlerFunc(func(_ context.Context, task *asynq.Task) error {
			_, err := task.ResultWriter().Write([]byte(`{"version":"1.2.0"}`))
			return err
		}),
	}, nil)
	waitFor(t, "completed", func() bool {
		st, err = b.client.Lookup(ctx, info.ID)
		return err == nil && st.State == tasks.StateCompleted
	})
	if string(st.Result) != `{"version":"1.2.0"}` || st.CompletedAt == nil {
		t.Errorf("completed status = %+v", st)
	}
}

func TestHeartbeatAppearsAndGoes(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ctx := context.Background()
	w, err := worker.New(worker.Options{
		Redis: b.rdb, NodeID: "hb1", Handlers: map[string]asynq.Handler{}, Concurrency: 3,
		HeartbeatInterval: 20 * time.Millisecond, Version: "v-test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.store.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1 {
		t.Fatalf("Nodes = %+v, want one", nodes)
	}
	n := nodes[0]
	if n.ID != "hb1" || n.Stale || n.Concurrency != 3 || n.Version != "v-test" || n.Queues["node:hb1"] != worker.DefaultNodeQueueWeight {
		t.Errorf("node = %+v", n)
	}
	first := n.LastSeen
	waitFor(t, "a second heartbeat", func() bool {
		n, err := b.store.Node(ctx, "hb1")
		return err == nil && n.LastSeen.After(first)
	})
	if err := w.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if nodes, err := b.store.Nodes(ctx); err != nil || len(nodes) != 0 {
		t.Errorf("after Shutdown: Nodes = %+v, %v; want none", nodes, err)
	}
	if err := w.Shutdown(ctx); err != nil {
		t.Errorf("second Shutdown: %v", err)
	}
	if err := w.Start(ctx); err == nil {
		t.Error("Start after Shutdown: want an error")
	}
}

func TestShutdownLetsRunningTaskFinish(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ctx := context.Background()
	started, release := make(chan struct{}), make(chan struct{})
	w := b.start(t, map[string]asynq.Handler{
		"test:slow": asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
			close(started)
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
	}, nil)
	info, err := b.client.Enqueue(ctx, "a", asynq.NewTask("test:slow", nil))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	shut := make(chan error, 1)
	go func() { shut <- w.Shutdown(ctx) }()
	waitFor(t, "the node marked draining", func() bool {
		n, err := b.store.Node(ctx, w.NodeID())
		return err == nil && n.Draining
	})
	select {
	case err := <-shut:
		t.Fatalf("Shutdown returned (%v) while a task was running", err)
	default:
	}
	close(release)
	if err := <-shut; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	st, err := b.client.Lookup(ctx, info.ID)
	if err != nil || st.State != tasks.StateCompleted {
		t.Errorf("after graceful shutdown: %+v, %v; want completed", st, err)
	}
}

func TestShutdownDeadlineHandsTaskBack(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ctx := context.Background()
	started := make(chan struct{})
	w := b.start(t, map[string]asynq.Handler{
		"test:stuck": asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
			close(started)
			<-ctx.Done()
			return ctx.Err()
		}),
	}, nil)
	info, err := b.client.Enqueue(ctx, "a", asynq.NewTask("test:stuck", nil))
	if err != nil {
		t.Fatal(err)
	}
	<-started
	sctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := w.Shutdown(sctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Shutdown with an ended ctx: err = %v, want context.Canceled", err)
	}
	st, err := b.client.Lookup(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != tasks.StateRetry && st.State != tasks.StatePending {
		t.Errorf("state after cancelled shutdown = %s, want back in line", st.State)
	}
	if st.Retried != 0 {
		t.Errorf("retried = %d, want 0: a shutdown is not the task's failure", st.Retried)
	}
}

func TestWorkerOnMiniredis(t *testing.T) {
	_, rdb := testenv.Miniredis(t)
	b := setup(t, rdb)
	done := make(chan struct{})
	b.start(t, map[string]asynq.Handler{
		"test:mini": asynq.HandlerFunc(func(context.Context, *asynq.Task) error { close(done); return nil }),
	}, nil)
	info, err := b.client.Enqueue(context.Background(), "a", asynq.NewTask("test:mini", nil))
	if err != nil {
		t.Fatal(err)
	}
	<-done
	waitFor(t, "completed", func() bool {
		st, err := b.client.Lookup(context.Background(), info.ID)
		return err == nil && st.State == tasks.StateCompleted
	})
	nodes, err := b.store.Nodes(context.Background())
	if err != nil || len(nodes) != 1 || nodes[0].ID != "n1" {
		t.Errorf("Nodes = %+v, %v", nodes, err)
	}
}

func TestRunStopsWhenContextEnds(t *testing.T) {
	_, rdb := testenv.Miniredis(t)
	b := setup(t, rdb)
	w, err := worker.New(worker.Options{Redis: rdb, NodeID: "run1", Handlers: map[string]asynq.Handler{}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- w.Run(ctx) }()
	waitFor(t, "node record", func() bool {
		_, err := b.store.Node(context.Background(), "run1")
		return err == nil
	})
	cancel()
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if _, err := b.store.Node(context.Background(), "run1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("node record after Run returned: err = %v, want ErrNotFound", err)
	}
}

func TestStartFailsWithoutRedis(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DisableIdentity: true, MaxRetries: -1})
	defer func() { _ = rdb.Close() }()
	w, err := worker.New(worker.Options{Redis: rdb, NodeID: "x", Handlers: map[string]asynq.Handler{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(context.Background()); err == nil {
		t.Fatal("Start with Redis down: want an error")
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after failed Start: %v", err)
	}
}
