package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/scheduler"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func schedulerSettings() []string {
	return []string{"redis-url", "metrics-listen", "scheduler-poll-interval", "scheduler-grace",
		"shutdown-timeout", "log-level", "log-format"}
}

// newScheduler builds a scheduler replica on d.
func newScheduler(cfg Config, d *deps, log *slog.Logger) (*scheduler.Scheduler, error) {
	sl := log.With("component", "scheduler")
	client := tasks.NewClient(d.rdb, d.store, log.With("component", "tasks"))
	return scheduler.New(scheduler.Options{
		Store:        d.store,
		Enqueuer:     client,
		Tasks:        client,
		Logger:       sl,
		PollInterval: cfg.SchedulerPoll,
		Grace:        cfg.SchedulerGrace,
	})
}

// openSchedulerDeps opens what a scheduler needs: Redis and the records.
// It reads no archive and opens no secret.
func openSchedulerDeps(cfg Config, log *slog.Logger) (*deps, error) {
	rdb, err := redisconn.Open(cfg.RedisURL)
	if err != nil {
		return nil, usageError{fmt.Errorf("PACKFLOW_REDIS_URL: %w", err)}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	log.Info("using", "redis", redisconn.Redacted(cfg.RedisURL))
	return &deps{rdb: rdb, store: store.New(rdb, store.Options{}), metrics: reg}, nil
}

func runSchedulerCommand(ctx context.Context, e env, args []string) error {
	cfg, log, err := parseServiceFlags(e, "scheduler", "Usage: packflow scheduler [flags]\n\n"+
		"Fires schedules into tasks. Run as many replicas as you like: each fire is enqueued once.",
		schedulerSettings(), args)
	if err != nil {
		return err
	}
	d, err := openSchedulerDeps(cfg, log)
	if err != nil {
		return err
	}
	defer closeLogged(d, log)
	s, err := newScheduler(cfg, d, log)
	if err != nil {
		return err
	}
	comps := []named{{"scheduler", s}}
	if cfg.MetricsListen != "" {
		ops := newOpsServer(cfg.MetricsListen, d.metrics, log)
		// Ready while Redis answers: a scheduler needs nothing else.
		ops.ready = func() error {
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			return d.store.Ping(ctx)
		}
		comps = append([]named{{"metrics", ops}}, comps...)
	}
	return serve(ctx, log, cfg.ShutdownTimeout, nil, comps...)
}
