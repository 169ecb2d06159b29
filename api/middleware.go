package api

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/labstack/echo/v4"
)

// Keys of values kept in the echo.Context.
const (
	ctxRequestID = "packflow.request_id"
	ctxLogger    = "packflow.logger"
	ctxPrincipal = "packflow.principal"
	ctxRawBody   = "packflow.raw_body"
)

// middleware installs, outermost first: request IDs, the request log and
// metrics, panic recovery and the default body limit.
func (s *Server) middleware(e *echo.Echo) {
	e.Use(s.requestIDs, s.observe, s.recoverPanics, defaultBodyLimit(s.opts.BodyLimit))
}

// requestIDs takes a caller's X-Request-ID when it is sane, or makes one,
// and echoes it in the answer.
func (s *Server) requestIDs(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		id := c.Request().Header.Get(echo.HeaderXRequestID)
		if !saneRequestID(id) {
			id = rand.Text()
		}
		c.Set(ctxRequestID, id)
		c.Response().Header().Set(echo.HeaderXRequestID, id)
		c.Set(ctxLogger, s.opts.Logger.With("request_id", id))
		return next(c)
	}
}

func saneRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, r := range id {
		if r <= ' ' || r > '~' {
			return false
		}
	}
	return true
}

// requestID returns the ID of the request c serves.
func requestID(c echo.Context) string {
	id, _ := c.Get(ctxRequestID).(string)
	return id
}

// log returns the request's logger: the server's, with the request ID and,
// once authenticated, the account and user.
func (s *Server) log(c echo.Context) *slog.Logger {
	if l, ok := c.Get(ctxLogger).(*slog.Logger); ok {
		return l
	}
	return s.opts.Logger
}

// observe writes the request log line and the HTTP metrics. It hands a
// handler's error to the error handler itself, so that the status logged
// is the status sent.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		if err := next(c); err != nil {
			c.Error(err)
		}
		took := time.Since(start)
		req, res := c.Request(), c.Response()
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		s.metrics.observe(req.Method, route, res.Status, took)
		level := slog.LevelInfo
		switch {
		case res.Status >= 500:
			level = slog.LevelError
		case isProbe(route):
			level = slog.LevelDebug // probes every few seconds would drown the log
		}
		s.log(c).LogAttrs(req.Context(), level, "http request",
			slog.String("method", req.Method),
			slog.String("path", req.URL.Path),
			slog.String("route", route),
			slog.Int("status", res.Status),
			slog.Int64("bytes", res.Size),
			slog.Duration("took", took),
			slog.String("remote", c.RealIP()),
		)
		return nil
	}
}

// isProbe reports whether route is polled by machines: health checks and
// metrics scrapes.
func isProbe(route string) bool {
	switch route {
	case "/healthz", "/readyz", "/metrics":
		return true
	}
	return false
}

// recoverPanics turns a handler's panic into a 500 problem and logs the
// stack: the process never dies of one request.
func (s *Server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if err, ok := r.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(r) // the server's way to abort a response; keep it
			}
			s.log(c).Error("handler panicked", "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = newProblem(http.StatusInternalServerError, "", "internal error").
				withCause(fmt.Errorf("panic: %v", r))
		}()
		return next(c)
	}
}

// defaultBodyLimit caps every request body at limit bytes: reading past
// it fails with an *http.MaxBytesError, which the error handler answers
// with 413. It does not refuse a large Content-Length up front, so that a
// route's own bodyLimit can raise the cap.
func defaultBodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			c.Set(ctxRawBody, req.Body)
			if req.Body != nil && req.Body != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
			}
			return next(c)
		}
	}
}

// bodyLimit sets the body limit of one route, replacing the server-wide
// one (uploads take a larger cap): a declared length over limit is refused
// at once with 413, nothing read; reading past it fails as above.
func bodyLimit(limit int64) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			if req.ContentLength > limit {
				return newProblem(http.StatusRequestEntityTooLarge, "",
					fmt.Sprintf("the request body is larger than %d bytes", limit))
			}
			raw, ok := c.Get(ctxRawBody).(io.ReadCloser)
			if !ok {
				raw = req.Body
			}
			if raw != nil && raw != http.NoBody {
				req.Body = http.MaxBytesReader(c.Response(), raw, limit)
			}
			return next(c)
		}
	}
}
