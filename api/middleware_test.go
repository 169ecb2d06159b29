package api

import (
	"bytes"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/labstack/echo/v4"
)

func TestProblemAnswers(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.BodyLimit = 64 })
	b.srv.echo.GET("/test/panic", func(echo.Context) error { panic("boom") })
	b.srv.echo.GET("/test/echo-error", func(echo.Context) error { return echo.NewHTTPError(http.StatusTeapot, "short and stout") })
	b.srv.echo.POST("/test/large", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) }, bodyLimit(128))
	b.srv.echo.POST("/test/json", func(c echo.Context) error {
		var v map[string]any
		if err := decodeJSON(c, &v); err != nil {
			return err
		}
		return c.NoContent(http.StatusNoContent)
	})

	big := `{"name":"` + strings.Repeat("x", 100) + `"}`
	tests := []struct {
		name       string
		method     string
		path       string
		body       []byte
		chunked    bool
		want       int
		wantDetail string
	}{
		{"panic", http.MethodGet, "/test/panic", nil, false, http.StatusInternalServerError, "internal error"},
		{"echo error", http.MethodGet, "/test/echo-error", nil, false, http.StatusTeapot, "short and stout"},
		{"no route", http.MethodGet, "/nowhere", nil, false, http.StatusNotFound, ""},
		{"body over the limit", http.MethodPost, "/api/v1/accounts", []byte(big), false, http.StatusRequestEntityTooLarge, "64 bytes"},
		{"chunked body over the limit", http.MethodPost, "/test/json", []byte(big), true, http.StatusRequestEntityTooLarge, "64 bytes"},
		{"route limit over", http.MethodPost, "/test/large", bytes.Repeat([]byte("x"), 200), false, http.StatusRequestEntityTooLarge, "128 bytes"},
		{"route limit raises the default", http.MethodPost, "/test/large", bytes.Repeat([]byte("x"), 100), false, http.StatusNoContent, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != nil {
				body = tc.body
				if tc.chunked {
					body = struct{ *bytes.Reader }{bytes.NewReader(tc.body)} // unknown length
				}
			}
			a := b.do(t, tc.method, tc.path, testAdminToken, body).mustStatus(t, tc.want)
			if a.header.Get(echo.HeaderXRequestID) == "" {
				t.Error("no X-Request-ID in the answer")
			}
			if tc.want < 400 {
				return
			}
			p := a.problem(t)
			if !strings.Contains(p.Detail, tc.wantDetail) {
				t.Errorf("detail %q, want it to mention %q", p.Detail, tc.wantDetail)
			}
			if p.RequestID != a.header.Get(echo.HeaderXRequestID) {
				t.Errorf("problem request_id %q, header %q", p.RequestID, a.header.Get(echo.HeaderXRequestID))
			}
		})
	}
	// The process survived the panic.
	b.do(t, http.MethodGet, "/healthz", "", nil).mustStatus(t, http.StatusOK)
}

func TestRequestIDFromCaller(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, tc := range []struct{ sent, want string }{
		{"abc-123", "abc-123"},
		{"has space", ""},
		{strings.Repeat("x", 65), ""},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/healthz", nil)
		req.Header.Set(echo.HeaderXRequestID, tc.sent)
		res, err := b.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		got := res.Header.Get(echo.HeaderXRequestID)
		if tc.want != "" && got != tc.want {
			t.Errorf("sent %q, got %q", tc.sent, got)
		}
		if tc.want == "" && (got == tc.sent || got == "") {
			t.Errorf("sent %q, got %q: want a fresh ID", tc.sent, got)
		}
	}
}

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestRequestLogRemoteAddress(t *testing.T) {
	t.Parallel()
	for _, trust := range []bool{false, true} {
		var logs syncBuffer
		b := setup(t, func(o *Options) {
			o.TrustProxy = trust
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, b.http.URL+"/api/v1/accounts", nil)
		req.Header.Set("X-Forwarded-For", "203.0.113.7")
		res, err := b.http.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = res.Body.Close()
		want := "remote=127.0.0.1"
		if trust {
			want = "remote=203.0.113.7"
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("TrustProxy=%v: log lacks %s:\n%s", trust, want, logs.String())
		}
	}
}
