package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// TaskRecord is what packflow remembers about a task it enqueued, next to
// asynq's own record: the queue to look the task up in and the account it
// belongs to, so that a lookup can enforce ownership.
type TaskRecord struct {
	ID        string    `json:"id"`
	Queue     string    `json:"queue"`
	Type      string    `json:"type"`
	AccountID string    `json:"account_id"`
	CreatedAt time.Time `json:"created_at"`
}

// CreateTask stores rec under pf:task:<id> for ttl unless a record with that
// ID exists. It reports whether it created the record. An existing record
// for the same account, queue and type is not an error (task IDs
// deduplicate enqueues); one that differs is ErrConflict.
func (s *Store) CreateTask(ctx context.Context, rec TaskRecord, ttl time.Duration) (bool, error) {
	if rec.ID == "" {
		return false, errors.New("store: task record without an id")
	}
	if rec.CreatedAt.IsZero() {
		rec.CreatedAt = time.Now().UTC()
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return false, fmt.Errorf("store: encode task %s: %w", rec.ID, err)
	}
	key := s.key("task", rec.ID)
	// Two rounds: the existing record may expire between SETNX and GET.
	for range 2 {
		ok, err := s.rdb.SetNX(ctx, key, b, ttl).Result()
		if err != nil {
			return false, fmt.Errorf("store: create task %s: %w", rec.ID, err)
		}
		if ok {
			return true, nil
		}
		old, err := s.Task(ctx, rec.ID)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return false, err
		}
		if old.AccountID != rec.AccountID || old.Queue != rec.Queue || old.Type != rec.Type {
			return false, fmt.Errorf("store: task %s exists for another account, queue or type: %w", rec.ID, ErrConflict)
		}
		return false, nil
	}
	return false, fmt.Errorf("store: create task %s: record kept expiring under us: %w", rec.ID, ErrConflict)
}

// Task returns the record of task id, or ErrNotFound.
func (s *Store) Task(ctx context.Context, id string) (TaskRecord, error) {
	b, err := s.rdb.Get(ctx, s.key("task", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return TaskRecord{}, fmt.Errorf("store: task %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return TaskRecord{}, fmt.Errorf("store: get task %s: %w", id, err)
	}
	var rec TaskRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return TaskRecord{}, fmt.Errorf("store: decode task %s: %w", id, err)
	}
	return rec, nil
}

// DeleteTask removes the record of task id; a missing record is not an
// error.
func (s *Store) DeleteTask(ctx context.Context, id string) error {
	if err := s.rdb.Del(ctx, s.key("task", id)).Err(); err != nil {
		return fmt.Errorf("store: delete task %s: %w", id, err)
	}
	return nil
}
