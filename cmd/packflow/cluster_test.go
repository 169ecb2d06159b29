//go:build unix

package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/redistest"
)

const topologyPkg = "7c000000-0000-4000-8000-00000000c1a5"

// TestClusterFlow runs every process on a three-master Redis Cluster
// (redis+cluster:// URL): publish → install on two nodes → deploy onto a
// server, and a schedule fired by the scheduler. Any operation whose keys
// span two slots fails with CROSSSLOT, so the flow passing means each of
// its multi-key operations stays in one slot; the keys it wrote must be
// spread over all three masters.
func TestClusterFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a Redis Cluster and every process")
	}
	c := redistest.StartCluster(t, 3)
	p := startPlatform(t, c.URL)
	p.publishInstall(topologyPkg, "1.0.0")
	p.addLocalServer("here")
	p.deploy(topologyPkg, "1.0.0", "here", "it's $(id) on a cluster")

	var sc struct {
		ID string `json:"id"`
	}
	if code := p.do(http.MethodPost, "/api/v1/schedules", map[string]any{"name": "sync", "every": "1s",
		"action": map[string]any{"kind": "install-sync"}}, &sc); code != http.StatusCreated {
		t.Fatalf("create schedule: %d", code)
	}
	p.poll("a scheduled fire that succeeded", func() (bool, string) {
		var runs struct {
			Items []scheduleRun `json:"items"`
		}
		p.do(http.MethodGet, "/api/v1/schedules/"+sc.ID+"/runs", nil, &runs)
		for _, r := range runs.Items {
			if r.Trigger == "schedule" && r.Outcome == "succeeded" {
				return true, ""
			}
		}
		return false, describeRuns(runs.Items)
	})

	ctx := context.Background()
	var mu sync.Mutex
	perMaster := map[string][]string{}
	err := c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		keys, err := m.Keys(ctx, "*").Result()
		mu.Lock()
		perMaster[m.Options().Addr] = keys
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for addr, keys := range perMaster {
		if len(keys) == 0 {
			t.Errorf("master %s holds no key: the flow did not use the whole cluster", addr)
		}
	}
}

// scheduleRun is one fire in GET /schedules/{id}/runs.
type scheduleRun struct {
	Trigger string `json:"trigger"`
	Outcome string `json:"outcome"`
	Error   string `json:"error"`
}

func describeRuns(runs []scheduleRun) string {
	var b strings.Builder
	for _, r := range runs {
		b.WriteString(r.Trigger + ":" + r.Outcome + " " + r.Error + "; ")
	}
	return b.String()
}

// TestQueueNamesWithBracesRefused: a worker refuses a queue whose name
// would break asynq's hash tag, naming the variable.
func TestQueueNamesWithBracesRefused(t *testing.T) {
	t.Parallel()
	w := newTWriter(t)
	var out strings.Builder
	code := run(context.Background(), []string{"worker"}, mapEnv(map[string]string{
		"PACKFLOW_REDIS_URL": "redis+cluster://127.0.0.1:1", "PACKFLOW_QUEUES": "default=3,{hot}=1",
		"PACKFLOW_DATA_DIR": t.TempDir()}), w, &syncWriter{w: &out})
	if code != exitUsage || !strings.Contains(out.String(), "PACKFLOW_QUEUES") || !strings.Contains(out.String(), "'{' and '}'") {
		t.Fatalf("exit %d, stderr:\n%s", code, out.String())
	}
}

// syncWriter serializes writes to w.
type syncWriter struct {
	mu sync.Mutex
	w  *strings.Builder
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
