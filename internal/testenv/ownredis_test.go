package testenv

import (
	"context"
	"os"
	"os/exec"
	"testing"
)

// Without PACKFLOW_TEST_REDIS_URL, a redis-server on PATH is started and
// leased from, so that `make test` runs every integration test.
func TestRealRedisStartsItsOwn(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		Require(t, "redis-server is not on PATH")
	}
	t.Setenv(RedisURLEnv, "")
	a, b := RealRedis(t), RealRedis(t)
	if a.Addr != b.Addr || a.DB == b.DB {
		t.Fatalf("two leases: %s/%d and %s/%d; want one server, two databases", a.Addr, a.DB, b.Addr, b.DB)
	}
	ctx := context.Background()
	if err := a.Client.Set(ctx, "k", "a", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := b.Client.Exists(ctx, "k").Result(); err != nil || n != 0 {
		t.Errorf("a key set in one lease is seen in the other: %d, %v", n, err)
	}
	if own.url == "" || os.Getenv(RedisURLEnv) != "" {
		t.Errorf("own server URL %q", own.url)
	}
}
