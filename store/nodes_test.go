package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func TestNodesHeartbeatListRemove(t *testing.T) {
	ctx := context.Background()
	mr, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})

	now := time.Now().UTC()
	fresh := store.Node{ID: "b", Hostname: "h1", Queues: map[string]int{"node:b": 10, "default": 3},
		Concurrency: 8, StartedAt: now.Add(-time.Hour), HeartbeatInterval: 5 * time.Second}
	stale := store.Node{ID: "a", Hostname: "h2", Queues: map[string]int{"node:a": 10},
		Concurrency: 4, LastSeen: now.Add(-16 * time.Second), HeartbeatInterval: 5 * time.Second}
	for _, n := range []store.Node{fresh, stale} {
		if err := s.Heartbeat(ctx, n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stale.Stale = true
	want := []store.Node{stale, fresh}
	opts := []cmp.Option{cmpopts.IgnoreFields(store.Node{}, "LastSeen"), cmpopts.EquateApproxTime(time.Millisecond)}
	if diff := cmp.Diff(want, got, opts...); diff != "" {
		t.Errorf("Nodes (-want +got):\n%s", diff)
	}
	if got[1].LastSeen.IsZero() || time.Since(got[1].LastSeen) > time.Minute {
		t.Errorf("LastSeen of a heartbeat without one = %v, want about now", got[1].LastSeen)
	}

	if err := s.RemoveNode(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Node(ctx, "b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Node after RemoveNode: err = %v, want ErrNotFound", err)
	}

	// A node whose record expired disappears from the list.
	mr.FastForward(2 * time.Minute)
	got, err = s.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 0 {
		t.Errorf("Nodes after expiry = %+v, want none", got)
	}
	if n, _ := rdb.ZCard(ctx, "pf:nodes").Result(); n != 0 {
		t.Errorf("index still holds %d expired nodes", n)
	}
}

func TestHeartbeatRejects(t *testing.T) {
	_, rdb := testenv.Miniredis(t)
	s := store.New(rdb, store.Options{})
	if err := s.Heartbeat(context.Background(), store.Node{}, time.Minute); err == nil {
		t.Error("node without id: want an error")
	}
	if err := s.Heartbeat(context.Background(), store.Node{ID: "x"}, 0); err == nil {
		t.Error("zero ttl: want an error")
	}
}
