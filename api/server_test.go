package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// testAdminToken is the bootstrap admin token of every test server.
const testAdminToken = "test-admin-token-0123456789"

// bundle is what setup gives a test: the server, its store and Redis.
type bundle struct {
	srv   *Server
	store *store.Store
	rdb   *redis.Client
	http  *httptest.Server
}

// tLogWriter sends log lines to t.Log.
type tLogWriter struct{ t testing.TB }

func (w tLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// setup starts a Server on miniredis, bootstrapped with testAdminToken,
// behind an httptest server. mod may change the options.
func setup(t *testing.T, mod ...func(*Options)) *bundle {
	t.Helper()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	opts := Options{Store: st, Logger: testLogger(t), AdminToken: testAdminToken}
	for _, m := range mod {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Bootstrap(context.Background()); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &bundle{srv: srv, store: st, rdb: rdb, http: hs}
}

// answer is a decoded HTTP answer.
type answer struct {
	status int
	header http.Header
	body   []byte
}

func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("decode %s: %v", a.body, err)
	}
}

// do sends method path with body (JSON-encoded unless []byte or
// io.Reader) and the bearer token (none when empty).
func (b *bundle) do(t *testing.T, method, path, token string, body any) answer {
	t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case []byte:
		r = bytes.NewReader(v)
	case io.Reader:
		r = v
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, b.http.URL+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return answer{status: res.StatusCode, header: res.Header, body: data}
}

// mustStatus fails t unless a has status want.
func (a answer) mustStatus(t *testing.T, want int) answer {
	t.Helper()
	if a.status != want {
		t.Fatalf("status %d, want %d; body %s", a.status, want, a.body)
	}
	return a
}

// problem decodes a as a problem, checking its media type and shape.
func (a answer) problem(t *testing.T) Problem {
	t.Helper()
	if ct := a.header.Get("Content-Type"); !strings.HasPrefix(ct, problemContentType) {
		t.Fatalf("Content-Type %q, want %s; body %s", ct, problemContentType, a.body)
	}
	var raw map[string]any
	a.json(t, &raw)
	for _, k := range []string{"type", "title", "status", "detail"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("problem lacks %q: %s", k, a.body)
		}
	}
	var p Problem
	a.json(t, &p)
	if p.Status != a.status {
		t.Errorf("problem status %d, HTTP status %d", p.Status, a.status)
	}
	return p
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"no store", Options{}, "Store is required"},
		{"negative body limit", Options{Store: st, BodyLimit: -1}, "body limit"},
		{"short admin token", Options{Store: st, AdminToken: "short"}, "admin token"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error about %s", err, tc.want)
			}
		})
	}
}

func TestStartServeShutdown(t *testing.T) {
	t.Parallel()
	_, rdb := testenv.Miniredis(t)
	srv, err := New(Options{Store: store.New(rdb, store.Options{}), Logger: testLogger(t), Listen: "127.0.0.1:0", AdminToken: testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := srv.Start(t.Context()); err == nil {
		t.Error("a second Start succeeded")
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+srv.Addr().String()+"/api/v1/accounts", nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v1/accounts: %d", res.StatusCode)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if res, err := http.DefaultClient.Do(req.Clone(context.Background())); err == nil {
		_ = res.Body.Close()
		t.Fatal("server still answers after Shutdown")
	}
}
