package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/hibiken/asynqmon"
	"github.com/labstack/echo/v4"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
)

// monitorPath is where the queue monitor is served.
const monitorPath = "/monitor"

// sharedRedis hands asynqmon the server's own Redis client instead of a
// second connection pool.
type sharedRedis struct{ c redis.UniversalClient }

// MakeRedisClient implements asynq.RedisConnOpt.
func (o sharedRedis) MakeRedisClient() any { return o.c }

// monitorRoutes mounts the queue monitor (asynqmon: queues, tasks, retries,
// archived tasks, servers) under /monitor/. Its queues hold every
// account's tasks, so only admins of the root account may open it.
func (s *Server) monitorRoutes(e *echo.Echo) {
	mon := asynqmon.New(asynqmon.Options{RootPath: monitorPath, RedisConnOpt: sharedRedis{s.opts.Redis}})
	e.GET(monitorPath, func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, monitorPath+"/")
	})
	e.Any(monitorPath+"/*", echo.WrapHandler(mon), s.monitorAuth)
}

// monitorAuth admits admins of the root account. Browsers cannot add a
// Bearer header to the monitor page's own requests, so besides
// "Authorization: Bearer <token>" it takes HTTP Basic credentials whose
// password is a token (the user name is ignored), and asks a browser for
// them on 401.
func (s *Server) monitorAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		secret := ""
		if _, pw, ok := c.Request().BasicAuth(); ok {
			secret = pw
		} else if scheme, tok, ok := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
			secret = strings.TrimSpace(tok)
		}
		if secret == "" {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="packflow queue monitor", charset="UTF-8"`)
			return newProblem(http.StatusUnauthorized, "", "send an admin token: Authorization: Bearer <token>, or as the password of HTTP Basic")
		}
		t, err := s.store.ResolveToken(c.Request().Context(), secret)
		if errors.Is(err, store.ErrNotFound) {
			c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Basic realm="packflow queue monitor", charset="UTF-8"`)
			return newProblem(http.StatusUnauthorized, "", "the token is unknown or revoked")
		}
		if err != nil {
			return newProblem(http.StatusServiceUnavailable, "", "cannot check the token now; try again").withCause(err)
		}
		if t.Role != store.RoleAdmin || t.AccountID != store.RootAccountID {
			return newProblem(http.StatusForbidden, "", "the queue monitor shows every account's tasks: it needs an admin token of the root account")
		}
		return next(c)
	}
}
