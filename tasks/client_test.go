package tasks_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func TestClientEnqueueAndLookup(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	c := tasks.NewClient(rdb, st, nil)

	payload, err := tasks.WithRetry([]byte(`{"server":"s1"}`), tasks.Retry{Max: tasks.Retries(7)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Enqueue(ctx, "acct", asynq.NewTask(tasks.TypeExecuteServer, payload), asynq.Queue(tasks.ExecQueue("eu")))
	if err != nil {
		t.Fatal(err)
	}
	if info.ID == "" || info.MaxRetry != 7 || info.Retention != tasks.DefaultRetention {
		t.Errorf("TaskInfo = %+v; want an id, MaxRetry 7 from the payload and the default retention", info)
	}
	rec, err := st.Task(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rec.AccountID != "acct" || rec.Queue != "exec:eu" || rec.Type != tasks.TypeExecuteServer {
		t.Errorf("record = %+v", rec)
	}
	if ttl := rdb.TTL(ctx, "pf:task:"+info.ID).Val(); ttl < tasks.RecordTTL+tasks.DefaultRetention-time.Minute {
		t.Errorf("record TTL = %v, want at least RecordTTL + retention", ttl)
	}

	s, err := c.Lookup(ctx, info.ID)
	if err != nil {
		t.Fatal(err)
	}
	if s.State != tasks.StatePending || s.AccountID != "acct" || s.Queue != "exec:eu" || s.MaxRetry != 7 || s.CreatedAt.IsZero() {
		t.Errorf("status = %+v", s)
	}

	// Options override defaults; a caller's task ID deduplicates.
	info2, err := c.Enqueue(ctx, "acct", asynq.NewTask("t", nil), asynq.TaskID("fixed"), asynq.MaxRetry(0),
		asynq.Retention(time.Hour), asynq.ProcessIn(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if info2.ID != "fixed" || info2.MaxRetry != 0 || info2.Queue != tasks.QueueDefault {
		t.Errorf("TaskInfo = %+v", info2)
	}
	if s, err := c.Lookup(ctx, "fixed"); err != nil || s.State != tasks.StateScheduled || s.NextProcessAt == nil {
		t.Errorf("scheduled lookup = %+v, %v", s, err)
	}
	if _, err := c.Enqueue(ctx, "acct", asynq.NewTask("t", nil), asynq.TaskID("fixed")); !errors.Is(err, asynq.ErrTaskIDConflict) {
		t.Errorf("same id again: err = %v, want asynq.ErrTaskIDConflict", err)
	}
	if _, err := c.Enqueue(ctx, "intruder", asynq.NewTask("t", nil), asynq.TaskID("fixed")); !errors.Is(err, store.ErrConflict) {
		t.Errorf("same id, other account: err = %v, want store.ErrConflict", err)
	}
	if rec, _ := st.Task(ctx, "fixed"); rec.AccountID != "acct" {
		t.Errorf("record owner changed to %q", rec.AccountID)
	}

	if _, err := c.Lookup(ctx, "missing"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown id: err = %v, want store.ErrNotFound", err)
	}
	if _, err := c.Enqueue(ctx, "acct", nil); err == nil {
		t.Error("nil task: want an error")
	}
}

func TestClientDropsRecordWhenEnqueueFails(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	c := tasks.NewClient(rdb, st, nil)
	// An empty type name is refused by asynq after the record is written.
	if _, err := c.Enqueue(ctx, "acct", asynq.NewTask(" ", nil), asynq.TaskID("bad")); err == nil {
		t.Fatal("blank type: want an error")
	}
	if _, err := st.Task(ctx, "bad"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("record after a failed enqueue: err = %v, want ErrNotFound", err)
	}
}
