package worker_test

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

func TestParseQueues(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]int
		wantErr string
	}{
		{"", map[string]int{}, ""},
		{"publish=6, default=3,exec:eu=2", map[string]int{"publish": 6, "default": 3, "exec:eu": 2}, ""},
		{"default", map[string]int{"default": 1}, ""},
		{"default=0", nil, "positive"},
		{"default=x", nil, "positive"},
		{"=3", nil, "empty queue name"},
		{"a=1,a=2", nil, "twice"},
		{"default=1,{hot}=2", nil, "'{' and '}' are not allowed"},
		{"a}b", nil, "'{' and '}' are not allowed"},
	}
	for _, tt := range tests {
		got, err := worker.ParseQueues(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseQueues(%q) error = %v, want one mentioning %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseQueues(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseQueues(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestNewValidatesAndFillsQueues(t *testing.T) {
	_, rdb := testenv.Miniredis(t)
	h := map[string]asynq.Handler{}
	base := func() worker.Options { return worker.Options{Redis: rdb, Handlers: h, NodeID: "n1"} }
	tests := []struct {
		name       string
		tweak      func(*worker.Options)
		wantQueues map[string]int
		wantErr    string
	}{
		{"defaults", func(*worker.Options) {}, map[string]int{"node:n1": 10, "publish": 6, "default": 3}, ""},
		{"datacenters", func(o *worker.Options) { o.Datacenters = []string{"eu", "us"} },
			map[string]int{"node:n1": 10, "publish": 6, "default": 3, "exec:eu": 3, "exec:us": 3}, ""},
		{"own queues keep node queue", func(o *worker.Options) { o.Queues = map[string]int{"default": 1} },
			map[string]int{"node:n1": 10, "default": 1}, ""},
		{"node weight overridable", func(o *worker.Options) { o.Queues = map[string]int{"node:n1": 2} },
			map[string]int{"node:n1": 2}, ""},
		{"no redis", func(o *worker.Options) { o.Redis = nil }, nil, "Redis is required"},
		{"no handlers", func(o *worker.Options) { o.Handlers = nil }, nil, "Handlers is required"},
		{"bad node id", func(o *worker.Options) { o.NodeID = "a b" }, nil, "node id"},
		{"bad weight", func(o *worker.Options) { o.Queues = map[string]int{"x": -1} }, nil, "weight"},
		{"negative concurrency", func(o *worker.Options) { o.Concurrency = -1 }, nil, "concurrency"},
		{"bad retry", func(o *worker.Options) { o.Retry = tasks.Backoff{Base: time.Minute, Cap: time.Second} }, nil, "retry"},
		{"brace in queue", func(o *worker.Options) { o.Queues = map[string]int{"x{y": 1} }, nil, "'{' and '}' are not allowed"},
		{"brace in datacenter", func(o *worker.Options) { o.Datacenters = []string{"eu}"} }, nil, `datacenter "eu}"`},
		{"ttl too short", func(o *worker.Options) { o.HeartbeatInterval = time.Second; o.NodeTTL = time.Second }, nil, "TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := base()
			tt.tweak(&o)
			w, err := worker.New(o)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("New error = %v, want one mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.wantQueues, w.Queues()); diff != "" {
				t.Errorf("queues (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDefaultNodeID(t *testing.T) {
	a, err := worker.DefaultNodeID()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := worker.DefaultNodeID()
	if a == b {
		t.Errorf("two default node IDs are equal: %q", a)
	}
	_, rdb := testenv.Miniredis(t)
	w, err := worker.New(worker.Options{Redis: rdb, Handlers: map[string]asynq.Handler{}})
	if err != nil {
		t.Fatalf("New with default node id %q: %v", w.NodeID(), err)
	}
	if !strings.HasPrefix(w.NodeID(), strings.SplitN(a, "-", 2)[0]) {
		t.Errorf("node id %q does not start with the host name", w.NodeID())
	}
}
