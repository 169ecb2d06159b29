// Package testenv gives tests the real parts they need: a real Redis on a
// database of their own, or an embedded miniredis for unit tests. The real
// Redis is the one PACKFLOW_TEST_REDIS_URL names or, when that is unset, a
// redis-server from PATH that the test binary starts for itself. A test that
// needs a real part skips with a message when it is missing, except under
// CI=true, where it fails: CI never passes by skipping.
package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/redisconn"
)

// RedisURLEnv names the variable that points integration tests at a real
// redis-server.
const RedisURLEnv = "PACKFLOW_TEST_REDIS_URL"

// InCI reports whether the tests run in CI, where missing parts fail.
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// Require skips the test with why when a real part is missing, or fails it
// in CI.
func Require(t testing.TB, why string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s (required when CI=true)", why)
	}
	t.Skip(why)
}

// Redis is a real Redis database leased to one test.
type Redis struct {
	// URL points at the leased database; hand it to code under test.
	URL string
	// Client is connected to the leased database.
	Client *redis.Client
	// Addr is the host:port of the server.
	Addr string
	// DB is the leased database number.
	DB int
}

// RealRedis leases a database of a real redis-server for the duration of t,
// flushed before use: the server PACKFLOW_TEST_REDIS_URL names, or else one
// this test binary starts from PATH (see ownRedis). Leases are Redis keys in
// database 0, so test binaries running in parallel never share a database.
// Start a server of your own with enough databases (.ci/run uses
// --databases 256).
func RealRedis(t testing.TB) *Redis {
	t.Helper()
	raw := os.Getenv(RedisURLEnv)
	if raw == "" {
		var err error
		if raw, err = ownRedis(); err != nil {
			Require(t, fmt.Sprintf("integration tests need a real redis-server: set %s or put redis-server on PATH (%v)", RedisURLEnv, err))
		}
	}
	opts, err := redisconn.Parse(raw)
	if err != nil {
		t.Fatalf("%s: %v", RedisURLEnv, err)
	}
	if len(opts.Addrs) != 1 || opts.MasterName != "" || opts.IsClusterMode {
		t.Fatalf("%s must be a plain redis:// URL for tests", RedisURLEnv)
	}
	addr := opts.Addrs[0]
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: addr, Username: opts.Username, Password: opts.Password, DisableIdentity: true})
	t.Cleanup(func() { _ = admin.Close() })
	n := 16
	if v, err := admin.ConfigGet(ctx, "databases").Result(); err == nil {
		if c, err := strconv.Atoi(v["databases"]); err == nil {
			n = c
		}
	} else {
		Require(t, fmt.Sprintf("redis at %s is not reachable: %v", addr, err))
	}
	owner := fmt.Sprintf("%d:%s:%d", os.Getpid(), t.Name(), time.Now().UnixNano())
	for db := 1; db < n; db++ {
		lease := fmt.Sprintf("testenv:lease:%d", db)
		ok, err := admin.SetNX(ctx, lease, owner, 10*time.Minute).Result()
		if err != nil {
			t.Fatalf("lease redis db: %v", err)
		}
		if !ok {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: addr, Username: opts.Username, Password: opts.Password, DB: db, DisableIdentity: true})
		if err := c.FlushDB(ctx).Err(); err != nil {
			t.Fatalf("flush redis db %d: %v", db, err)
		}
		t.Cleanup(func() {
			_ = c.Close()
			if v, _ := admin.Get(context.Background(), lease).Result(); v == owner {
				_ = admin.Del(context.Background(), lease).Err()
			}
		})
		u := fmt.Sprintf("redis://%s/%d", addr, db)
		if opts.Password != "" {
			u = fmt.Sprintf("redis://%s:%s@%s/%d", opts.Username, opts.Password, addr, db)
		}
		return &Redis{URL: u, Client: c, Addr: addr, DB: db}
	}
	t.Fatalf("no free database on the redis at %s (it has %d): start it with more --databases", addr, n)
	return nil
}

// Miniredis starts an embedded miniredis for t and advances its clock about
// every 100 ms so that keys with a TTL expire. It returns the server and a
// client connected to it.
func Miniredis(t testing.TB) (*miniredis.Miniredis, *redis.Client) {
	t.Helper()
	mr := miniredis.RunT(t)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				mr.FastForward(100 * time.Millisecond)
			}
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: mr.Addr(), DisableIdentity: true})
	t.Cleanup(func() {
		close(done)
		<-stopped
		_ = c.Close()
	})
	return mr, c
}
