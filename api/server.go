package api

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// Defaults of Options.
const (
	DefaultListen      = "127.0.0.1:8080"
	DefaultBodyLimit   = 1 << 20  // 1 MiB
	DefaultUploadLimit = 64 << 20 // 64 MiB
	defaultReadyWait   = 3 * time.Second
	// DefaultEventStreamsPerToken is how many execution event streams
	// one token may hold open on one API process by default.
	DefaultEventStreamsPerToken = 20
)

// Enqueuer puts a task on a queue on behalf of an account, so that the
// task can later be found and its ownership checked.
type Enqueuer interface {
	Enqueue(ctx context.Context, accountID string, task *asynq.Task, opts ...asynq.Option) (*asynq.TaskInfo, error)
}

// ReadyCheck reports whether a dependency can serve; /readyz runs them.
type ReadyCheck func(ctx context.Context) error

// Options configures a Server. Store is required; everything else has a
// default.
type Options struct {
	// Store holds the records. Required.
	Store *store.Store
	// Redis is the client for readiness and queue figures. Default:
	// Store.Redis().
	Redis redis.UniversalClient
	// Blob stores package archives (BlobStore is declared in uploads.go).
	// Routes that need it answer 503 while it is nil.
	Blob BlobStore
	// Enqueuer puts tasks on queues. Routes that enqueue answer 503 while
	// it is nil.
	Enqueuer Enqueuer
	// Tasks looks up enqueued tasks for GET /tasks/{id}, which answers
	// 503 while it is nil.
	Tasks TaskLookup
	// Logger receives request logs and errors. Default: discard.
	Logger *slog.Logger
	// Metrics is the registry /metrics serves; the server registers its
	// HTTP and queue collectors on it. Default: a new registry.
	Metrics *prometheus.Registry
	// Listen is the TCP address Start listens on. Default DefaultListen.
	Listen string
	// BodyLimit caps request bodies, in bytes. Default DefaultBodyLimit.
	BodyLimit int64
	// UploadLimit caps package uploads, in bytes. Default
	// DefaultUploadLimit.
	UploadLimit int64
	// AdminToken, when set, is registered at Start as the admin token of
	// the root account (replacing any previous one).
	AdminToken string
	// ReadyChecks are run by /readyz besides the Redis ping, by name (for
	// example "blob").
	ReadyChecks map[string]ReadyCheck
	// Queues are the asynq queues whose depths /metrics reports. Default:
	// every queue asynq knows of at scrape time.
	Queues []string
	// ExecutionRetention is how long executions, their logs and events
	// are kept after their last change. Default
	// store.DefaultExecutionRetention.
	ExecutionRetention time.Duration
	// Version is reported in logs and /healthz.
	Version string
	// TrustProxy takes the client address in request logs from
	// X-Forwarded-For, as set by a load balancer on a private or loopback
	// address. Default false: the peer's address, which a client cannot
	// forge.
	TrustProxy bool
	// EventStreamsPerToken bounds the execution event streams
	// (GET /executions/{id}/events) one token holds open on this process
	// at once; past it the answer is 429. Default
	// DefaultEventStreamsPerToken.
	EventStreamsPerToken int
}

func (o *Options) setDefaults() {
	if o.Redis == nil && o.Store != nil {
		o.Redis = o.Store.Redis()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Metrics == nil {
		o.Metrics = prometheus.NewRegistry()
	}
	if o.Listen == "" {
		o.Listen = DefaultListen
	}
	if o.BodyLimit == 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.UploadLimit == 0 {
		o.UploadLimit = DefaultUploadLimit
	}
	if o.EventStreamsPerToken == 0 {
		o.EventStreamsPerToken = DefaultEventStreamsPerToken
	}
}

// validate reports every bad option at once.
func (o *Options) validate() error {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("a Store is required"))
	}
	if o.BodyLimit < 0 {
		errs = append(errs, fmt.Errorf("body limit %d is negative", o.BodyLimit))
	}
	if o.UploadLimit < 0 {
		errs = append(errs, fmt.Errorf("upload limit %d is negative", o.UploadLimit))
	}
	if o.EventStreamsPerToken < 0 {
		errs = append(errs, fmt.Errorf("event streams per token %d is negative", o.EventStreamsPerToken))
	}
	if o.AdminToken != "" && len(o.AdminToken) < 16 {
		errs = append(errs, errors.New("the admin token must be at least 16 characters"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("api: bad options: %w", err)
	}
	return nil
}

// Server is the HTTP API.
type Server struct {
	opts    Options
	store   *store.Store
	echo    *echo.Echo
	openapi []byte
	// query holds the query parameters each route takes, from openapi.
	query   map[string][]string
	metrics *httpMetrics
	// previews keeps the check of each upload's archive (see
	// getUploadManifest).
	previews *manifest.CheckCache
	// events fans execution events out to SSE streams; streams bounds
	// the streams of each token.
	events  *eventHub
	streams *streamLimiter

	mu      sync.Mutex
	httpSrv *http.Server
	addr    net.Addr
	served  chan struct{}
}

// New builds a Server: routes, middleware and the OpenAPI document. It
// does not touch Redis or the network; Start does.
func New(opts Options) (*Server, error) {
	opts.setDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	doc, err := buildOpenAPI(openapiFS)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	query, err := queryParams(doc)
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	s := &Server{opts: opts, store: opts.Store, openapi: doc, query: query, previews: manifest.NewCheckCache(0),
		events:  newEventHub(hubSource{opts.Store}, opts.Logger),
		streams: &streamLimiter{max: opts.EventStreamsPerToken}}
	s.metrics, err = newHTTPMetrics(opts.Metrics)
	if err != nil {
		return nil, fmt.Errorf("api: register metrics: %w", err)
	}
	if err := opts.Metrics.Register(newQueueCollector(opts.Redis, opts.Queues, opts.Logger)); err != nil {
		return nil, fmt.Errorf("api: register queue metrics: %w", err)
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	e.IPExtractor = echo.ExtractIPDirect()
	if opts.TrustProxy {
		e.IPExtractor = echo.ExtractIPFromXFFHeader()
	}
	s.echo = e
	s.middleware(e)
	s.routes(e)
	return s, nil
}

// Handler returns the HTTP handler, for tests (httptest) and embedding.
// Call Bootstrap first when serving without Start.
func (s *Server) Handler() http.Handler { return s.echo }

// Bootstrap creates the root account and registers the admin token. Start
// calls it; it is idempotent.
func (s *Server) Bootstrap(ctx context.Context) error {
	if _, err := s.store.EnsureRootAccount(ctx); err != nil {
		return fmt.Errorf("api: create root account: %w", err)
	}
	if s.opts.AdminToken != "" {
		if _, err := s.store.EnsureBootstrapToken(ctx, s.opts.AdminToken); err != nil {
			return fmt.Errorf("api: register admin token: %w", err)
		}
	}
	return nil
}

// Start bootstraps the records, listens on Options.Listen and serves in
// the background until Shutdown.
func (s *Server) Start(ctx context.Context) error {
	s.mu.Lock()
	started := s.httpSrv != nil
	s.mu.Unlock()
	if started {
		return errors.New("api: already started")
	}
	if err := s.Bootstrap(ctx); err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.opts.Listen)
	if err != nil {
		return fmt.Errorf("api: listen: %w", err)
	}
	srv := &http.Server{
		Handler:           s.echo,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.opts.Logger.Handler(), slog.LevelWarn),
	}
	// Event streams never end by themselves: end them when shutting down.
	srv.RegisterOnShutdown(s.events.close)
	s.mu.Lock()
	s.httpSrv, s.addr, s.served = srv, ln.Addr(), make(chan struct{})
	served := s.served
	s.mu.Unlock()
	s.opts.Logger.Info("api listening", "addr", ln.Addr().String(), "version", s.opts.Version)
	go func() {
		defer close(served)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.opts.Logger.Error("api stopped serving", "err", err)
		}
	}()
	return nil
}

// Addr returns the address Start listens on, or nil before Start.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections and waits, until ctx ends, for
// the requests in flight.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv, served := s.httpSrv, s.served
	s.mu.Unlock()
	if srv == nil {
		s.events.close()
		return nil
	}
	err := srv.Shutdown(ctx)
	select {
	case <-served:
	case <-ctx.Done():
	}
	if err != nil {
		return fmt.Errorf("api: shutdown: %w", err)
	}
	return nil
}
