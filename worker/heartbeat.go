package worker

import (
	"context"
	"time"

	"github.com/packflow/packflow/store"
)

// heartbeat refreshes the node record every HeartbeatInterval until ctx
// ends, then closes done.
func (w *Worker) heartbeat(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(w.opts.HeartbeatInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			bctx, cancel := context.WithTimeout(ctx, w.opts.HeartbeatInterval)
			if err := w.beat(bctx); err != nil && ctx.Err() == nil {
				w.log.Warn("heartbeat failed", "error", err)
			}
			cancel()
		}
	}
}

// beat writes the node record once.
func (w *Worker) beat(ctx context.Context) error {
	return w.store.Heartbeat(ctx, store.Node{
		ID:                w.opts.NodeID,
		Hostname:          w.opts.Hostname,
		Queues:            w.opts.Queues,
		Concurrency:       w.opts.Concurrency,
		Version:           w.opts.Version,
		StartedAt:         w.startedAt,
		HeartbeatInterval: w.opts.HeartbeatInterval,
		Active:            w.active.Load(),
		Processed:         w.processed.Load(),
		Failed:            w.failed.Load(),
		Draining:          w.stopping.Load(),
	}, w.opts.NodeTTL)
}
