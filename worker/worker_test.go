package worker_test

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

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
