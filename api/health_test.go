package api

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
)

func TestReadyz(t *testing.T) {
	t.Parallel()
	var blobErr error
	b := setup(t, func(o *Options) {
		o.ReadyChecks = map[string]ReadyCheck{"blob": func(context.Context) error { return blobErr }}
	})
	b.do(t, http.MethodGet, "/readyz", "", nil).mustStatus(t, http.StatusOK)

	blobErr = errors.New("disk read-only")
	p := b.do(t, http.MethodGet, "/readyz", "", nil).mustStatus(t, http.StatusServiceUnavailable).problem(t)
	if len(p.Errors) != 1 || p.Errors[0].Path != "blob" || !strings.Contains(p.Errors[0].Message, "read-only") {
		t.Errorf("errors %+v, want the blob check", p.Errors)
	}
	blobErr = nil

	// Redis gone: not ready, but alive.
	if err := b.rdb.Close(); err != nil {
		t.Fatal(err)
	}
	p = b.do(t, http.MethodGet, "/readyz", "", nil).mustStatus(t, http.StatusServiceUnavailable).problem(t)
	if len(p.Errors) != 1 || p.Errors[0].Path != "redis" {
		t.Errorf("errors %+v, want the redis check", p.Errors)
	}
	b.do(t, http.MethodGet, "/healthz", "", nil).mustStatus(t, http.StatusOK)
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t)
	client := asynq.NewClientFromRedisClient(b.rdb)
	for range 3 {
		if _, err := client.Enqueue(asynq.NewTask("test:noop", nil), asynq.Queue("publish")); err != nil {
			t.Fatal(err)
		}
	}
	b.do(t, http.MethodGet, "/api/v1/accounts", testAdminToken, nil).mustStatus(t, http.StatusOK)
	b.do(t, http.MethodGet, "/api/v1/accounts", "", nil).mustStatus(t, http.StatusUnauthorized)

	text := string(b.do(t, http.MethodGet, "/metrics", "", nil).mustStatus(t, http.StatusOK).body)
	for _, want := range []string{
		`packflow_http_requests_total{code="200",method="GET",route="/api/v1/accounts"} 1`,
		`packflow_http_requests_total{code="401",method="GET",route="/api/v1/accounts"} 1`,
		`packflow_http_request_duration_seconds_count{code="200",method="GET",route="/api/v1/accounts"} 1`,
		`packflow_queue_tasks{queue="publish",state="pending"} 3`,
		`packflow_queue_inspect_up 1`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if t.Failed() {
		t.Log(text)
	}
}
