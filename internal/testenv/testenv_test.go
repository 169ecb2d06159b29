package testenv

import (
	"context"
	"testing"
	"time"
)

func TestMiniredisExpires(t *testing.T) {
	t.Parallel()
	_, c := Miniredis(t)
	ctx := context.Background()
	if err := c.Set(ctx, "k", "v", 200*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for c.Exists(ctx, "k").Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatal("key with a TTL never expired: the clock is not advancing")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRealRedisLeasesDistinctDatabases(t *testing.T) {
	t.Parallel()
	a := RealRedis(t)
	b := RealRedis(t)
	if a.DB == b.DB {
		t.Fatalf("two leases share database %d", a.DB)
	}
	ctx := context.Background()
	if err := a.Client.Set(ctx, "x", "1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if n := b.Client.Exists(ctx, "x").Val(); n != 0 {
		t.Fatal("a key written in one lease is visible in another")
	}
}
