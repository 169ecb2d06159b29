package main

import (
	"context"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// runInBackground runs packflow args until the returned stop is called,
// which returns the exit status.
func runInBackground(t *testing.T, env map[string]string, args ...string) (stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	w := newTWriter(t)
	go func() { done <- run(ctx, args, mapEnv(env), w, w) }()
	return func() int {
		cancel()
		return <-done
	}
}

// tryGet fetches url and returns the status code.
func tryGet(ctx context.Context, url string) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	_ = res.Body.Close()
	return res.StatusCode, nil
}

// waitUp polls url until it answers 200. This waits for start-up; it
// asserts nothing about time.
func waitUp(t *testing.T, url string) {
	t.Helper()
	for range 500 {
		if code, err := tryGet(t.Context(), url); err == nil && code == http.StatusOK {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s never answered 200", url)
}

func TestAPIProcess(t *testing.T) {
	t.Parallel()
	mr, _ := testenv.Miniredis(t)
	addr := freeAddr(t)
	token := "api-process-admin-token"
	stop := runInBackground(t, map[string]string{
		"PACKFLOW_REDIS_URL":   "redis://" + mr.Addr() + "/0",
		"PACKFLOW_ADMIN_TOKEN": token,
		"PACKFLOW_DATA_DIR":    t.TempDir(),
		"PACKFLOW_LISTEN":      addr,
		"PACKFLOW_LOG_FORMAT":  "json",
	}, "api")
	waitUp(t, "http://"+addr+"/readyz")
	if code, body := get(t, "http://"+addr+"/api/v1/accounts", token); code != http.StatusOK || !strings.Contains(string(body), `"root"`) {
		t.Errorf("/api/v1/accounts: %d %s", code, body)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit status %d", code)
	}
	if _, err := tryGet(t.Context(), "http://"+addr+"/healthz"); err == nil {
		t.Error("the API still answers after stopping")
	}
}

func TestWorkerProcess(t *testing.T) {
	t.Parallel()
	mr, rdb := testenv.Miniredis(t)
	addr := freeAddr(t)
	stop := runInBackground(t, map[string]string{
		"PACKFLOW_REDIS_URL":      "redis://" + mr.Addr() + "/0",
		"PACKFLOW_DATA_DIR":       t.TempDir(),
		"PACKFLOW_METRICS_LISTEN": addr,
		"PACKFLOW_QUEUES":         "publish=2,default=1",
	}, "worker", "-node-id", "w-test", "-datacenters", "eu")
	waitUp(t, "http://"+addr+"/readyz") // ready: registered and joined
	st := store.New(rdb, store.Options{})
	n, err := st.Node(context.Background(), "w-test")
	if err != nil {
		t.Fatalf("node record: %v", err)
	}
	for _, q := range []string{"publish", "default", "node:w-test", "exec:eu"} {
		if _, ok := n.Queues[q]; !ok {
			t.Errorf("node serves %v, want %s among them", n.Queues, q)
		}
	}
	if code, body := get(t, "http://"+addr+"/metrics", ""); code != http.StatusOK || !strings.Contains(string(body), "go_goroutines") {
		t.Errorf("/metrics: %d", code)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit status %d", code)
	}
	if _, err := st.Node(context.Background(), "w-test"); err == nil {
		t.Error("the node record outlives a graceful stop")
	}
}
