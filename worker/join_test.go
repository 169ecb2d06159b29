package worker_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// TestJoinRunsBeforeTasks starts a worker whose join waits for the test:
// meanwhile the node says it is joining, is not ready and runs no task;
// once joined it runs the task waiting in its queue.
func TestJoinRunsBeforeTasks(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	release := make(chan struct{})
	joinStarted := make(chan struct{})
	ran := make(chan struct{}, 1)
	w, err := worker.New(worker.Options{
		Redis: b.rdb, Store: b.store, NodeID: "joiner", Concurrency: 2, Logger: testLogger(t),
		HeartbeatInterval: 100 * time.Millisecond, DelayedTaskCheckInterval: 100 * time.Millisecond,
		Handlers: map[string]asynq.Handler{"test:run": asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
			ran <- struct{}{}
			return nil
		})},
		Join: func(ctx context.Context) error {
			close(joinStarted)
			select {
			case <-release:
				return errors.New("one package could not be installed")
			case <-ctx.Done():
				return ctx.Err()
			}
		},
		Installed: func() ([]string, error) { return []string{"pkg@1.0.0"}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan error, 1)
	go func() { started <- w.Start(context.Background()) }()
	<-joinStarted
	if _, err := b.client.Enqueue(context.Background(), "acct", asynq.NewTask("test:run", nil), asynq.Queue(tasks.NodeQueue("joiner"))); err != nil {
		t.Fatal(err)
	}
	n, err := b.store.Node(context.Background(), "joiner")
	if err != nil || !n.Joining || !slices.Equal(n.Installed, []string{"pkg@1.0.0"}) {
		t.Errorf("node record while joining: %+v, %v", n, err)
	}
	if w.Ready() || !w.Joining() {
		t.Error("the worker says it is ready while joining")
	}
	select {
	case <-ran:
		t.Fatal("a task ran before the node joined")
	default:
	}
	close(release)
	if err := <-started; err != nil {
		t.Fatalf("Start after a failed join: %v", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	}()
	<-ran // the worker takes tasks now (the test's deadline bounds the wait)
	if !w.Ready() {
		t.Error("not ready after joining")
	}
	n, err = b.store.Node(context.Background(), "joiner")
	if err != nil || n.Joining {
		t.Errorf("node record after joining: %+v, %v", n, err)
	}
}

// TestJoinInterruptedByShutdownSignal: ctx ending during the join stops
// the start and removes the node record.
func TestJoinInterruptedByShutdownSignal(t *testing.T) {
	r := testenv.RealRedis(t)
	b := setup(t, r.Client)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := worker.New(worker.Options{
		Redis: b.rdb, Store: b.store, NodeID: "quitter", Logger: testLogger(t),
		Handlers: map[string]asynq.Handler{},
		Join: func(ctx context.Context) error {
			cancel()
			<-ctx.Done()
			return ctx.Err()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Start: %v, want it cancelled", err)
	}
	if _, err := b.store.Node(context.Background(), "quitter"); err == nil {
		t.Error("the node record outlives an interrupted start")
	}
	if err := w.Shutdown(context.Background()); err != nil {
		t.Errorf("Shutdown after a failed start: %v", err)
	}
}
