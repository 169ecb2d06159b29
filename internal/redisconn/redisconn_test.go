package redisconn

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/redis/go-redis/v9"
)

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		want redis.UniversalOptions
	}{
		{"redis://127.0.0.1:6380/3", redis.UniversalOptions{Addrs: []string{"127.0.0.1:6380"}, DB: 3}},
		{"redis://localhost", redis.UniversalOptions{Addrs: []string{"localhost:6379"}}},
		{"redis://u:p%40ss@h:1/0", redis.UniversalOptions{Addrs: []string{"h:1"}, Username: "u", Password: "p@ss"}},
		{"redis+sentinel://:pw@s1:26379,s2/mymaster/2?sentinel_password=sp", redis.UniversalOptions{
			Addrs: []string{"s1:26379", "s2:26379"}, MasterName: "mymaster", DB: 2, Password: "pw", SentinelPassword: "sp"}},
	}
	for _, tt := range tests {
		got, err := Parse(tt.url)
		if err != nil {
			t.Fatalf("Parse(%q): %v", tt.url, err)
		}
		tt.want.DisableIdentity = true
		if d := cmp.Diff(tt.want, *got, cmpopts.IgnoreUnexported(redis.UniversalOptions{})); d != "" {
			t.Errorf("Parse(%q) (-want +got):\n%s", tt.url, d)
		}
	}
	tls, err := Parse("rediss://h:6380")
	if err != nil || tls.TLSConfig == nil || tls.TLSConfig.ServerName != "h" {
		t.Errorf("rediss: want TLS config for h, got %+v, %v", tls, err)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"http://h", "redis://", "redis://h/x", "redis://h/-1", "redis+sentinel://s1", "redis+sentinel://s1/m/1/2", "redis+sentinel://s1,,s2/m", "::"} {
		if _, err := Parse(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("Parse(%q) = %v, want ErrBadURL", bad, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	if got := Redacted("redis://u:secret@h:1/0"); got != "redis://u:xxxxx@h:1/0" {
		t.Errorf("Redacted = %q", got)
	}
}
