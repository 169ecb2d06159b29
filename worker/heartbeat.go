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
	var installed []string
	if w.opts.Installed != nil {
		var err error
		if installed, err = w.opts.Installed(); err != nil {
			w.log.Debug("list installed packages for the node record", "error", err)
		}
	}
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
		Joining:           w.joining.Load(),
		Installed:         installed,
	}, w.opts.NodeTTL)
}
