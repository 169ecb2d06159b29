package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// TestFollowResumesAfterADrop serves an execution's events over a
// connection that drops after the first event: the client reconnects
// with Last-Event-ID, prints every line once, and exits with the
// execution's outcome (cancelled: 3).
func TestFollowResumesAfterADrop(t *testing.T) {
	t.Parallel()
	events := []string{
		`id: 1-0` + "\nevent: log\ndata: {\"kind\":\"log\",\"server\":\"web1\",\"step\":0,\"stream\":\"stdout\",\"line\":\"first\"}\n\n",
		`id: 2-0` + "\nevent: log\ndata: {\"kind\":\"log\",\"server\":\"web1\",\"step\":0,\"stream\":\"stdout\",\"line\":\"second\"}\n\n",
		`id: 3-0` + "\nevent: state\ndata: {\"kind\":\"state\",\"server\":\"web1\",\"step\":0,\"status\":\"cancelled\"}\n\n",
		"id: 3-0\nevent: end\ndata: {\"execution_id\":\"ex1\"}\n\n",
	}
	var mu sync.Mutex
	var resumes []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/executions/ex1/events":
			mu.Lock()
			resumes = append(resumes, r.Header.Get("Last-Event-ID"))
			first := len(resumes) == 1
			mu.Unlock()
			w.Header().Set("Content-Type", "text/event-stream")
			start := 0
			if id := r.Header.Get("Last-Event-ID"); id != "" {
				fmt.Sscanf(id, "%d-0", &start)
			}
			for i := start; i < len(events); i++ {
				_, _ = fmt.Fprint(w, events[i])
				w.(http.Flusher).Flush()
				if first {
					// Drop the connection mid-stream.
					hj, _, _ := w.(http.Hijacker).Hijack()
					_ = hj.Close()
					return
				}
			}
		case "/api/v1/executions/ex1":
			_, _ = fmt.Fprint(w, `{"id":"ex1","status":"cancelled","servers":[{"name":"web1","status":"cancelled"}]}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"logs", "ex1", "-follow"}, mapEnv(map[string]string{"PACKFLOW_API_URL": srv.URL, "PACKFLOW_TOKEN": "t"}), &stdout, &stderr)
	if code != exitCancelled {
		t.Errorf("exit %d, want %d\n%s", code, exitCancelled, stderr.String())
	}
	if got, want := stdout.String(), "web1 step 1 stdout: first\nweb1 step 1 stdout: second\n"; got != want {
		t.Errorf("stdout %q, want %q", got, want)
	}
	if !strings.Contains(stderr.String(), "web1 step 1: cancelled") || !strings.Contains(stderr.String(), "resuming") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if len(resumes) != 2 || resumes[0] != "" || resumes[1] != "1-0" {
		t.Errorf("connections with Last-Event-ID %q, want \"\" then 1-0", resumes)
	}
}
