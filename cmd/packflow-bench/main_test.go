package main

import (
	"context"
	"io"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/bench"
	"github.com/packflow/packflow/internal/testenv"
)

func TestSelectSuites(t *testing.T) {
	all := []bench.Suite{{Name: "asynq"}, {Name: "validate"}, {Name: "ssh"}}
	tests := []struct {
		only    string
		want    []string
		wantErr string
	}{
		{"", []string{"asynq", "validate", "ssh"}, ""},
		{"ssh,asynq", []string{"asynq", "ssh"}, ""},
		{" validate ,", []string{"validate"}, ""},
		{"nope", nil, `no suite "nope"`},
	}
	for _, tt := range tests {
		got, err := selectSuites(all, tt.only)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("selectSuites(%q) error = %v, want %q", tt.only, err, tt.wantErr)
			}
			continue
		}
		var names []string
		for _, s := range got {
			names = append(names, s.Name)
		}
		if err != nil || !slices.Equal(names, tt.want) {
			t.Errorf("selectSuites(%q) = %v, %v; want %v", tt.only, names, err, tt.want)
		}
	}
}

func TestSuiteNamesUnique(t *testing.T) {
	seen := map[string]bool{}
	for _, s := range suites() {
		if s.Name == "" || seen[s.Name] {
			t.Errorf("suite name %q empty or repeated", s.Name)
		}
		seen[s.Name] = true
	}
}

func TestStartRedis(t *testing.T) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Require(t, "redis-server is not installed")
	}
	rs, err := startRedis(context.Background(), t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: rs.addr, DB: 63, DisableIdentity: true})
	defer func() { _ = c.Close() }()
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Errorf("ping DB 63 of the started server: %v", err)
	}
	rs.stop()
	if err := c.Ping(context.Background()).Err(); err == nil {
		t.Error("server still answers after stop")
	}
	if rs.cmd.ProcessState == nil {
		t.Error("stop returned before the process was reaped")
	}
}
