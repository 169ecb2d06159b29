package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/api"
	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
	"github.com/packflow/packflow/worker/cache"
)

// component is anything with the one lifecycle.
type component interface {
	Start(ctx context.Context) error
	Shutdown(ctx context.Context) error
}

// named is a component with a name for the logs.
type named struct {
	name string
	c    component
}

// serve starts comps in order, waits for ctx to end, and shuts them down
// in reverse within timeout. When a start fails, those already started are
// shut down and the start error is returned. started, when set, is called
// once everything runs.
func serve(ctx context.Context, log *slog.Logger, timeout time.Duration, started func(), comps ...named) error {
	var running []named
	stopAll := func() error {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
		defer cancel()
		var errs []error
		for i := len(running) - 1; i >= 0; i-- {
			n := running[i]
			if err := n.c.Shutdown(sctx); err != nil {
				errs = append(errs, fmt.Errorf("stop %s: %w", n.name, err))
			} else {
				log.Info("stopped", "component", n.name)
			}
		}
		return errors.Join(errs...)
	}
	for _, n := range comps {
		if err := n.c.Start(ctx); err != nil {
			return errors.Join(fmt.Errorf("start %s: %w", n.name, err), stopAll())
		}
		running = append(running, n)
	}
	if started != nil {
		started()
	}
	<-ctx.Done()
	log.Info("stopping", "reason", context.Cause(ctx))
	return stopAll()
}

// newLogger returns the process logger, writing to w.
func newLogger(cfg Config, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// deps are the shared parts of the processes: Redis, records, archives
// and the metrics registry. close releases them.
type deps struct {
	rdb     redis.UniversalClient
	store   *store.Store
	blob    *blob.Store
	metrics *prometheus.Registry
}

func openDeps(ctx context.Context, cfg Config, log *slog.Logger) (*deps, error) {
	rdb, err := redisconn.Open(cfg.RedisURL)
	if err != nil {
		return nil, usageError{fmt.Errorf("PACKFLOW_REDIS_URL: %w", err)}
	}
	bs, err := blob.OpenWith(ctx, cfg.BlobURL, blob.Options{S3: cfg.S3})
	if err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("blob store: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log.Info("using", "redis", redisconn.Redacted(cfg.RedisURL), "blob", bs.String(), "data_dir", cfg.DataDir)
	var box *secretbox.Box
	if cfg.SecretKey != nil {
		if box, err = secretbox.New(cfg.SecretKey); err != nil {
			_ = rdb.Close()
			return nil, usageError{fmt.Errorf("PACKFLOW_SECRET_KEY: %w", err)}
		}
	} else {
		log.Warn("no secret key (PACKFLOW_SECRET_KEY): credentials and password values cannot be stored")
	}
	return &deps{rdb: rdb, store: store.New(rdb, store.Options{Secrets: box}), blob: bs, metrics: reg}, nil
}

func (d *deps) close() error {
	if err := d.rdb.Close(); err != nil {
		return fmt.Errorf("close redis: %w", err)
	}
	return nil
}

// newAPI builds the API server on d.
func newAPI(cfg Config, d *deps, log *slog.Logger) (*api.Server, error) {
	client := tasks.NewClient(d.rdb, d.store, log.With("component", "tasks"))
	// New API dependencies are wired here, one field each.
	return api.New(api.Options{
		Store:       d.store,
		Redis:       d.rdb,
		Blob:        d.blob,
		Enqueuer:    client,
		Tasks:       client,
		Logger:      log.With("component", "api"),
		Metrics:     d.metrics,
		Listen:      cfg.Listen,
		BodyLimit:   cfg.BodyLimit,
		UploadLimit: cfg.UploadLimit,
		AdminToken:  cfg.AdminToken,
		TrustProxy:  cfg.TrustProxy,
		ReadyChecks: map[string]api.ReadyCheck{"blob": d.blob.Ready},
		Version:     versionString(),

		ExecutionRetention:   cfg.ExecutionRetention,
		EventStreamsPerToken: cfg.EventStreamsPerToken,
	})
}

// nodeWorker is a worker with its install cache, which it closes after
// the worker stops.
type nodeWorker struct {
	*worker.Worker
	cache *cache.Cache
	conn  *tasks.Connector
}

// Shutdown stops the worker, then closes its cache.
func (n *nodeWorker) Shutdown(ctx context.Context) error {
	return errors.Join(n.Worker.Shutdown(ctx), n.conn.Close(), n.cache.Close())
}

// newWorker builds the worker on d, with every task handler and its
// install cache. A node joining the fleet installs the active packages
// before it takes tasks.
func newWorker(cfg Config, d *deps, log *slog.Logger) (*nodeWorker, error) {
	nodeID := cfg.NodeID
	if nodeID == "" {
		id, err := worker.DefaultNodeID()
		if err != nil {
			return nil, err
		}
		nodeID = id
	}
	wlog := log.With("component", "worker") // the worker adds its node ID
	keep := cfg.CacheKeep
	if keep == 0 {
		keep = -1 // cache.Options: 0 is the default, negative keeps none
	}
	c, err := cache.Open(cfg.CacheDir, cache.Options{Logger: log.With("component", "cache"),
		Limits: manifest.Limits{MaxArchiveSize: cfg.UploadLimit}, Keep: keep})
	if err != nil {
		return nil, fmt.Errorf("install cache: %w", err)
	}
	client := tasks.NewClient(d.rdb, d.store, log.With("component", "tasks"))
	installer, err := tasks.NewInstaller(tasks.InstallerOptions{Store: d.store, Blob: d.blob, Cache: c,
		NodeID: nodeID, Enqueuer: client, Logger: wlog})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: d.store, AllowLocal: cfg.AllowLocal,
		LocalDir: filepath.Join(cfg.DataDir, "local"), Logger: log.With("component", "remote")})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	executor, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: d.store, Connector: conn,
		Stager: tasks.InstallerStager{Installer: installer}, DatacenterLimits: cfg.DatacenterLimits,
		StepTimeout: cfg.StepTimeout, Logger: wlog})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	datacenters := cfg.Datacenters
	if len(datacenters) == 0 {
		datacenters = []string{store.DefaultDatacenter}
	}
	// New task handlers that need more of the configuration get it here,
	// one field each (add the setting in config.go).
	handlers := tasks.Handlers(tasks.Deps{
		Store:         d.store,
		NodeID:        nodeID,
		Logger:        wlog,
		Blob:          d.blob,
		ArchiveLimits: manifest.Limits{MaxArchiveSize: cfg.UploadLimit},
		Enqueuer:      client,
		Installer:     installer,
		Executor:      executor,
	})
	w, err := worker.New(worker.Options{
		Redis:             d.rdb,
		Store:             d.store,
		NodeID:            nodeID,
		Version:           versionString(),
		Concurrency:       cfg.Concurrency,
		Queues:            cfg.Queues,
		Datacenters:       datacenters,
		TaskCheckInterval: cfg.TaskCheckInterval,
		ShutdownTimeout:   cfg.ShutdownTimeout,
		Retry:             cfg.Retry,
		Handlers:          handlers,
		Logger:            wlog,
		Metrics:           d.metrics,
		Join: func(ctx context.Context) error {
			_, err := installer.Sync(ctx)
			return err
		},
		Installed: func() ([]string, error) { return installedVersions(c) },
	})
	if err != nil {
		_ = c.Close()
		return nil, err
	}
	return &nodeWorker{Worker: w, cache: c, conn: conn}, nil
}

// installedVersions lists the cache's versions as uuid@version.
func installedVersions(c *cache.Cache) ([]string, error) {
	list, err := c.List()
	if err != nil {
		return nil, err
	}
	out := make([]string, len(list))
	for i, e := range list {
		out[i] = e.UUID + "@" + e.Version
	}
	return out, nil
}

// parseProcessFlags parses a process subcommand's flags and config.
// defaults replace built-in defaults of this subcommand (dev allows the
// local transport).
func parseProcessFlags(e env, name, usage string, settings []string, defaults map[string]string, args []string) (Config, error) {
	f := newFlagSet(name, usage, settings, defaults, e.getenv, e.stderr)
	if err := f.parse(args); err != nil {
		return Config{}, usageErrorOrHelp(err)
	}
	if f.fs.NArg() > 0 {
		return Config{}, usageError{fmt.Errorf("unexpected arguments: %q", f.fs.Args())}
	}
	cfg, err := loadConfig(f)
	if err != nil {
		return Config{}, usageError{fmt.Errorf("bad configuration:\n%w", err)}
	}
	return cfg, nil
}

// parseServiceFlags parses the flags of a process that needs a shared
// Redis (api, worker, scheduler: only dev embeds one) and returns its
// configuration and logger.
func parseServiceFlags(e env, name, usage string, settings, args []string) (Config, *slog.Logger, error) {
	cfg, err := parseProcessFlags(e, name, usage, settings, nil, args)
	if err != nil {
		return Config{}, nil, err
	}
	if cfg.RedisURL == "" {
		return Config{}, nil, usageError{errors.New("PACKFLOW_REDIS_URL (or -redis-url) is required")}
	}
	return cfg, newLogger(cfg, e.stderr), nil
}

func runAPICommand(ctx context.Context, e env, args []string) error {
	cfg, log, err := parseServiceFlags(e, "api", "Usage: packflow api [flags]\n\nServes the HTTP API.", apiSettings(), args)
	if err != nil {
		return err
	}
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(d, log)
	srv, err := newAPI(cfg, d, log)
	if err != nil {
		return err
	}
	return serve(ctx, log, cfg.ShutdownTimeout, nil, named{"api", srv})
}

func runWorkerCommand(ctx context.Context, e env, args []string) error {
	cfg, log, err := parseServiceFlags(e, "worker", "Usage: packflow worker [flags]\n\nRuns tasks as a worker node.", workerSettings(), args)
	if err != nil {
		return err
	}
	d, err := openDeps(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(d, log)
	w, err := newWorker(cfg, d, log)
	if err != nil {
		return err
	}
	comps := []named{{"worker", w}}
	if cfg.MetricsListen != "" {
		ops := newOpsServer(cfg.MetricsListen, d.metrics, log)
		ops.ready = func() error {
			if w.Joining() {
				return errors.New("joining: installing the active packages")
			}
			if !w.Ready() {
				return errors.New("not taking tasks")
			}
			return nil
		}
		comps = append([]named{{"metrics", ops}}, comps...)
	}
	// Shutdown waits for running tasks up to ShutdownTimeout; leave it a
	// moment beyond that to hand the rest back.
	return serve(ctx, log, cfg.ShutdownTimeout+5*time.Second, nil, comps...)
}

func closeLogged(d *deps, log *slog.Logger) {
	if err := d.close(); err != nil {
		log.Warn("close", "err", err)
	}
}
