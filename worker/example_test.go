package worker_test

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// A worker process: handlers from tasks, defaults for everything else,
// graceful shutdown on SIGTERM or SIGINT.
func Example() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", DisableIdentity: true})
	defer func() { _ = rdb.Close() }()
	st := store.New(rdb, store.Options{})
	nodeID, err := worker.DefaultNodeID() // or PACKFLOW_NODE_ID
	if err != nil {
		log.Error("node id", "error", err)
		return
	}

	w, err := worker.New(worker.Options{
		Redis:       rdb,
		Store:       st,
		NodeID:      nodeID,
		Datacenters: []string{"eu-west"},
		Handlers:    tasks.Handlers(tasks.Deps{Store: st, NodeID: nodeID, Logger: log}),
		Logger:      log,
		Metrics:     prometheus.NewRegistry(),
	})
	if err != nil {
		log.Error("worker config", "error", err)
		return
	}
	if err := w.Run(ctx); err != nil {
		log.Error("worker", "error", err)
	}
}
