package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func TestTaskRecords(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})
	rec := store.TaskRecord{ID: "t1", Queue: "publish", Type: "package:publish", AccountID: "acct"}

	tests := []struct {
		name        string
		rec         store.TaskRecord
		wantCreated bool
		wantErr     error
	}{
		{"new", rec, true, nil},
		{"same again deduplicates", rec, false, nil},
		{"other account conflicts", store.TaskRecord{ID: "t1", Queue: "publish", Type: "package:publish", AccountID: "other"}, false, store.ErrConflict},
		{"other queue conflicts", store.TaskRecord{ID: "t1", Queue: "default", Type: "package:publish", AccountID: "acct"}, false, store.ErrConflict},
	}
	for _, tt := range tests {
		created, err := s.CreateTask(ctx, tt.rec, time.Hour)
		if created != tt.wantCreated || !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: CreateTask = %v, %v; want %v, %v", tt.name, created, err, tt.wantCreated, tt.wantErr)
		}
	}
	got, err := s.Task(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	if got.AccountID != "acct" || got.Queue != "publish" || got.Type != "package:publish" || got.CreatedAt.IsZero() {
		t.Errorf("Task = %+v", got)
	}
	if err := s.DeleteTask(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Task(ctx, "t1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Task after delete: err = %v, want ErrNotFound", err)
	}
	if _, err := s.CreateTask(ctx, store.TaskRecord{}, time.Hour); err == nil {
		t.Error("record without id: want an error")
	}
}
