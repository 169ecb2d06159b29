package redistest_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/internal/redistest"
)

// TestCluster: the URL opens a cluster client through redisconn, and the
// keys it writes land on every master.
func TestCluster(t *testing.T) {
	t.Parallel()
	c := redistest.StartCluster(t, 3)
	rdb, err := redisconn.Open(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if _, ok := rdb.(*redis.ClusterClient); !ok {
		t.Fatalf("redisconn.Open(%q) = %T, want a cluster client", c.URL, rdb)
	}
	ctx := context.Background()
	for i := range 60 {
		if err := rdb.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	sizes := map[string]int64{}
	err = c.Client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		n, err := m.DBSize(ctx).Result()
		mu.Lock()
		sizes[m.Options().Addr] = n
		mu.Unlock()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(sizes) != 3 {
		t.Fatalf("masters: %v, want 3", sizes)
	}
	for addr, n := range sizes {
		if n == 0 {
			t.Errorf("master %s holds no key of 60: %v", addr, sizes)
		}
	}
}

// TestSentinel: the sentinels name the master, and the URL opens a client
// that writes to it.
func TestSentinel(t *testing.T) {
	t.Parallel()
	s := redistest.StartSentinel(t, 1, 0)
	ctx := context.Background()
	m, err := s.CurrentMaster(ctx)
	if err != nil || m != s.Master.Addr {
		t.Fatalf("CurrentMaster = %q, %v; want %s", m, err, s.Master.Addr)
	}
	rdb, err := redisconn.Open(s.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	direct := redis.NewClient(&redis.Options{Addr: s.Master.Addr, DisableIdentity: true})
	defer direct.Close()
	if v, err := direct.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("master holds %q, %v", v, err)
	}
}
