package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/labstack/echo/v4"
)

// healthz answers whether the process is alive: it touches nothing.
func (s *Server) healthz(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.opts.Version})
}

// readyz answers whether this replica can serve: Redis answers and every
// ReadyCheck (the blob store is writable, …) passes. A failure gives 503
// with one entry per failed check.
func (s *Server) readyz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), defaultReadyWait)
	defer cancel()
	checks := map[string]ReadyCheck{"redis": func(ctx context.Context) error {
		return s.opts.Redis.Ping(ctx).Err()
	}}
	for name, check := range s.opts.ReadyChecks {
		checks[name] = check
	}
	var (
		mu     sync.Mutex
		failed []FieldError
		wg     sync.WaitGroup
	)
	for name, check := range checks {
		wg.Go(func() {
			if err := check(ctx); err != nil {
				s.log(c).Warn("not ready", "check", name, "err", err)
				mu.Lock()
				failed = append(failed, FieldError{Path: name, Rule: "ready", Message: err.Error()})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b FieldError) int { return strings.Compare(a.Path, b.Path) })
		p := newProblem(http.StatusServiceUnavailable, "Not ready", "a dependency is not available; see errors")
		p.Type = problemTypeNotReady
		p.Errors = failed
		return p
	}
	names := make([]string, 0, len(checks))
	for name := range checks {
		names = append(names, name)
	}
	slices.Sort(names)
	return c.JSON(http.StatusOK, map[string]any{"status": "ok", "checks": names})
}
