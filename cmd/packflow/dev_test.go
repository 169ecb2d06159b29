package main

import (
	"context"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/redisconn"
)

// The embedded Redis listens on loopback, where any local user can reach
// it: it must refuse clients that do not know its password.
func TestEmbeddedRedisRequiresPassword(t *testing.T) {
	if _, err := startEmbeddedRedis(""); err == nil {
		t.Fatal("startEmbeddedRedis accepted an empty password")
	}
	r, err := startEmbeddedRedis("s3cret-for-test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.close)
	ctx := context.Background()

	anon := redis.NewClient(&redis.Options{Addr: r.mr.Addr(), DisableIdentity: true})
	t.Cleanup(func() { _ = anon.Close() })
	if err := anon.Set(ctx, "k", "v", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOAUTH") {
		t.Errorf("SET without a password: %v, want NOAUTH", err)
	}
	wrong := redis.NewClient(&redis.Options{Addr: r.mr.Addr(), Password: "guess", DisableIdentity: true})
	t.Cleanup(func() { _ = wrong.Close() })
	if err := wrong.Ping(ctx).Err(); err == nil {
		t.Error("PING with a wrong password succeeded")
	}

	// The URL handed to the in-process services carries the password.
	opts, err := redisconn.Parse(r.url())
	if err != nil {
		t.Fatalf("parse %s: %v", r.url(), err)
	}
	c := redis.NewClient(&redis.Options{Addr: opts.Addrs[0], Password: opts.Password, DisableIdentity: true})
	t.Cleanup(func() { _ = c.Close() })
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Errorf("SET with the URL's password: %v", err)
	}
}
