package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestHealthcheck: exit 0 on 200, 1 on anything else or no answer, 2 on
// a bad URL.
func TestHealthcheck(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	for _, tt := range []struct {
		url  string
		want int
	}{
		{srv.URL + "/healthz", exitOK},
		{srv.URL + "/readyz", exitError},
		{"http://" + freeAddr(t) + "/healthz", exitError},
		{"ftp://x/healthz", exitUsage},
	} {
		if got := run(context.Background(), []string{"healthcheck", "-url", tt.url}, mapEnv(nil), io.Discard, io.Discard); got != tt.want {
			t.Errorf("healthcheck %s: exit %d, want %d", tt.url, got, tt.want)
		}
	}
}
