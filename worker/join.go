package worker

import (
	"context"
	"fmt"
	"time"
)

// join runs Options.Join, if any, before the worker takes tasks: the node
// catches up with the fleet (installs every active package version) so
// that no execution runs on a node missing its packages. The node record
// says Joining meanwhile. A failed join is logged and the worker starts
// anyway (the join itself hands what it could not install to install
// tasks); only ctx ending interrupts the start.
func (w *Worker) join(ctx context.Context) error {
	if w.opts.Join == nil {
		return nil
	}
	start := time.Now()
	w.log.Info("joining: installing the active packages before taking tasks")
	err := w.opts.Join(ctx)
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("worker: start interrupted while joining: %w", cerr)
	}
	if err != nil {
		w.log.Error("joining failed; taking tasks anyway", "error", err)
	}
	w.joining.Store(false)
	w.log.Info("joined", "took", time.Since(start))
	return nil
}

// Ready reports whether the worker takes tasks: it started, finished
// joining, and is not shutting down. A worker's /readyz answers with it.
func (w *Worker) Ready() bool { return w.ready.Load() }

// Joining reports whether the worker is still installing the active
// packages before it takes tasks.
func (w *Worker) Joining() bool { return w.joining.Load() }
