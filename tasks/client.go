package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
)

// DefaultRetention is how long a completed task stays inspectable unless
// the enqueuer passes its own asynq.Retention.
const DefaultRetention = 24 * time.Hour

// RecordTTL is how long packflow keeps its own record of a task (queue and
// account) beyond the task's own life (its wait when scheduled, plus its
// retention), so that the record never expires before asynq's.
const RecordTTL = 7 * 24 * time.Hour

// Task states reported by Lookup.
const (
	StatePending   = "pending"
	StateActive    = "active"
	StateScheduled = "scheduled"
	StateRetry     = "retry"
	StateCompleted = "completed"
	StateArchived  = "archived"
)

// Status is what Lookup tells about a task.
type Status struct {
	ID        string `json:"id"`
	Type      string `json:"type"`
	Queue     string `json:"queue"`
	AccountID string `json:"account_id"`
	// State is one of pending, active, scheduled, retry, completed,
	// archived.
	State     string `json:"state"`
	Retried   int    `json:"retried"`
	MaxRetry  int    `json:"max_retry"`
	LastError string `json:"last_error,omitempty"`
	// Result is what the handler wrote with its ResultWriter (JSON by
	// convention), if anything.
	Result        json.RawMessage `json:"result,omitempty"`
	CreatedAt     time.Time       `json:"created_at"`
	NextProcessAt *time.Time      `json:"next_process_at,omitempty"`
	LastFailedAt  *time.Time      `json:"last_failed_at,omitempty"`
	CompletedAt   *time.Time      `json:"completed_at,omitempty"`
}

// Client enqueues tasks on behalf of an account and looks them up. It is
// safe for concurrent use.
type Client struct {
	store     *store.Store
	asynq     *asynq.Client
	inspector *asynq.Inspector
	log       *slog.Logger
}

// NewClient returns a Client on rdb (shared with asynq; the caller owns and
// closes it) that keeps task records in st. A nil logger discards.
func NewClient(rdb redis.UniversalClient, st *store.Store, logger *slog.Logger) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Client{
		store:     st,
		asynq:     asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
		log:       logger,
	}
}

// Enqueue records task for accountID and enqueues it. Defaults come first
// and opts override them: queue QueueDefault, MaxRetry from the payload's
// retry object or DefaultRetryMax, Retention DefaultRetention and a fresh
// task ID. Pass options here rather than to asynq.NewTask: options set on
// the task itself are invisible to Enqueue and would override these
// defaults. Re-enqueueing an existing task ID returns asynq.ErrTaskIDConflict;
// an ID that belongs to another account returns store.ErrConflict.
func (c *Client) Enqueue(ctx context.Context, accountID string, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error) {
	if task == nil {
		return nil, errors.New("tasks: enqueue a nil task")
	}
	queue, id := QueueDefault, ""
	retention, wait := DefaultRetention, time.Duration(0)
	for _, o := range opts {
		switch o.Type() {
		case asynq.QueueOpt:
			queue, _ = o.Value().(string)
		case asynq.TaskIDOpt:
			id, _ = o.Value().(string)
		case asynq.RetentionOpt:
			retention, _ = o.Value().(time.Duration)
		case asynq.ProcessInOpt:
			wait, _ = o.Value().(time.Duration)
		case asynq.ProcessAtOpt:
			if at, ok := o.Value().(time.Time); ok {
				wait = time.Until(at)
			}
		}
	}
	maxRetry := DefaultRetryMax
	if r, ok := RetryFromPayload(task.Payload()); ok {
		maxRetry = r.MaxRetry()
	}
	all := make([]asynq.Option, 0, len(opts)+4)
	all = append(all, asynq.Queue(queue), asynq.MaxRetry(maxRetry), asynq.Retention(DefaultRetention))
	if id == "" {
		id = uuid.NewString()
		all = append(all, asynq.TaskID(id))
	}
	all = append(all, opts...)

	created, err := c.store.CreateTask(ctx, store.TaskRecord{
		ID: id, Queue: queue, Type: task.Type(), AccountID: accountID,
	}, RecordTTL+max(wait, 0)+retention)
	if err != nil {
		return nil, fmt.Errorf("tasks: enqueue %s: %w", task.Type(), err)
	}
	info, err := c.asynq.EnqueueContext(ctx, task, all...)
	if err != nil {
		if created {
			if derr := c.store.DeleteTask(context.WithoutCancel(ctx), id); derr != nil {
				c.log.WarnContext(ctx, "drop task record after failed enqueue", "task_id", id, "error", derr)
			}
		}
		return nil, fmt.Errorf("tasks: enqueue %s on %s: %w", task.Type(), queue, err)
	}
	if c.log.Enabled(ctx, slog.LevelDebug) {
		c.log.DebugContext(ctx, "task enqueued", "task_id", id, "task_type", task.Type(), "queue", queue, "account", accountID)
	}
	return info, nil
}

// Lookup tells the state of task id. A task packflow has no record of, or
// whose asynq record has expired, is store.ErrNotFound.
func (c *Client) Lookup(ctx context.Context, id string) (Status, error) {
	rec, err := c.store.Task(ctx, id)
	if err != nil {
		return Status{}, fmt.Errorf("tasks: lookup %s: %w", id, err)
	}
	info, err := c.inspector.GetTaskInfo(rec.Queue, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return Status{}, fmt.Errorf("tasks: lookup %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return Status{}, fmt.Errorf("tasks: lookup %s: %w", id, err)
	}
	return statusOf(rec, info), nil
}

func statusOf(rec store.TaskRecord, info *asynq.TaskInfo) Status {
	st := Status{
		ID:        info.ID,
		Type:      info.Type,
		Queue:     info.Queue,
		AccountID: rec.AccountID,
		State:     stateName(info.State),
		Retried:   info.Retried,
		MaxRetry:  info.MaxRetry,
		LastError: info.LastErr,
		CreatedAt: rec.CreatedAt,
	}
	if len(info.Result) > 0 {
		st.Result = json.RawMessage(info.Result)
		if !json.Valid(info.Result) {
			// Not JSON: hand it over as a JSON string.
			b, _ := json.Marshal(string(info.Result))
			st.Result = b
		}
	}
	st.NextProcessAt = timePtr(info.NextProcessAt)
	st.LastFailedAt = timePtr(info.LastFailedAt)
	st.CompletedAt = timePtr(info.CompletedAt)
	return st
}

func stateName(s asynq.TaskState) string {
	switch s {
	case asynq.TaskStateActive:
		return StateActive
	case asynq.TaskStateScheduled:
		return StateScheduled
	case asynq.TaskStateRetry:
		return StateRetry
	case asynq.TaskStateArchived:
		return StateArchived
	case asynq.TaskStateCompleted:
		return StateCompleted
	default:
		// Pending, and aggregating (waiting in a group), which packflow
		// does not use.
		return StatePending
	}
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}
