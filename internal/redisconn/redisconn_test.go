package redisconn

import (
	"errors"
	"strings"
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
		{"redis+cluster://h1:7000,h2:7001,h3", redis.UniversalOptions{
			Addrs: []string{"h1:7000", "h2:7001", "h3:6379"}, IsClusterMode: true}},
		{"redis+cluster://u:pw@h1:7000/", redis.UniversalOptions{
			Addrs: []string{"h1:7000"}, IsClusterMode: true, Username: "u", Password: "pw"}},
		{"redis+cluster://[::1]:7000,[::1]/0", redis.UniversalOptions{
			Addrs: []string{"[::1]:7000", "[::1]:6379"}, IsClusterMode: true}},
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
	for _, u := range []string{"rediss+cluster://h:7000", "redis+cluster://h:7000?tls=true"} {
		if o, err := Parse(u); err != nil || o.TLSConfig == nil || !o.IsClusterMode {
			t.Errorf("Parse(%q): want a cluster with TLS, got %+v, %v", u, o, err)
		}
	}
	tls, err := Parse("rediss://h:6380")
	if err != nil || tls.TLSConfig == nil || tls.TLSConfig.ServerName != "h" {
		t.Errorf("rediss: want TLS config for h, got %+v, %v", tls, err)
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"http://h", "redis://", "redis://h/x", "redis://h/-1", "redis+sentinel://s1", "redis+sentinel://s1/m/1/2", "redis+sentinel://s1,,s2/m", "::",
		"redis+cluster://", "redis+cluster://h1,,h2", "redis+cluster://h1:7000/3", "redis+cluster://h1?tls=maybe"} {
		if _, err := Parse(bad); !errors.Is(err, ErrBadURL) {
			t.Errorf("Parse(%q) = %v, want ErrBadURL", bad, err)
		}
	}
}

func TestRedacted(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"redis://u:secret@h:1/0":                           "redis://u:xxxxx@h:1/0",
		"redis+sentinel://:secret@s1:1,s2:2/m/3":           "redis+sentinel://:xxxxx@s1:1,s2:2/m/3",
		"redis+sentinel://s1:1/m?sentinel_password=secret": "redis+sentinel://s1:1/m?sentinel_password=xxxxx",
		"redis+cluster://u:secret@h1:7000,h2:7001":         "redis+cluster://u:xxxxx@h1:7000,h2:7001",
		"redis+cluster://h1:7000,h2:7001":                  "redis+cluster://h1:7000,h2:7001",
	} {
		if got := Redacted(in); got != want {
			t.Errorf("Redacted(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestParseErrorsHidePasswords: a bad URL's error names the URL without
// its secrets, since errors reach logs.
func TestParseErrorsHidePasswords(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"redis+cluster://u:secret@h1,,h2", "redis+sentinel://:secret@s1",
		"redis+cluster://:secret@h/2", "redis://:secret@h/x"} {
		_, err := Parse(bad)
		if err == nil || strings.Contains(err.Error(), "secret") {
			t.Errorf("Parse(%q) = %v, want an error without the password", bad, err)
		}
	}
}
