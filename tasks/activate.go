package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/store"
)

// ActivatePayload is the payload of package:activate-install.
type ActivatePayload struct {
	// ID names the activation; it is also the task's ID, so enqueueing
	// one request twice queues it once.
	ID        string `json:"id"`
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// Force re-installs the version on nodes that have it.
	Force bool `json:"force,omitempty"`
	// AccountID and RequestedBy are who asked; the install tasks belong
	// to the account.
	AccountID   string    `json:"account_id"`
	RequestedBy string    `json:"requested_by,omitempty"`
	RequestedAt time.Time `json:"requested_at"`
	// InstallRetry, when set, is the retry policy of every install task
	// (retry_max and backoff); the worker's defaults apply otherwise.
	InstallRetry *Retry `json:"install_retry,omitempty"`
}

// ActivateRequest is what NewActivateTask needs.
type ActivateRequest struct {
	PackageID, Version     string
	Force                  bool
	AccountID, RequestedBy string
	InstallRetry           *Retry
}

// NewActivateTask returns a package:activate-install task for r with a
// fresh activation ID, its payload, and the options to enqueue it with
// (the default queue and the activation ID as task ID).
func NewActivateTask(r ActivateRequest) (*asynq.Task, ActivatePayload, []asynq.Option, error) {
	if r.PackageID == "" || r.Version == "" || r.AccountID == "" {
		return nil, ActivatePayload{}, nil, errors.New("tasks: activate needs a package, a version and an account")
	}
	if r.InstallRetry != nil {
		if err := r.InstallRetry.Validate(); err != nil {
			return nil, ActivatePayload{}, nil, err
		}
	}
	p := ActivatePayload{ID: "activate:" + uuid.NewString(), PackageID: r.PackageID, Version: r.Version, Force: r.Force,
		AccountID: r.AccountID, RequestedBy: r.RequestedBy, RequestedAt: time.Now().UTC(), InstallRetry: r.InstallRetry}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, ActivatePayload{}, nil, fmt.Errorf("tasks: encode activate payload: %w", err)
	}
	return asynq.NewTask(TypeActivateInstall, b), p, []asynq.Option{asynq.Queue(QueueDefault), asynq.TaskID(p.ID)}, nil
}

// ActivateResult is what package:activate-install writes as its result.
type ActivateResult struct {
	PackageID string                 `json:"package_id"`
	Version   string                 `json:"version"`
	Closure   []store.ClosureVersion `json:"closure"`
	// Nodes are the nodes an install was queued for.
	Nodes        []string `json:"nodes"`
	InstallTasks []string `json:"install_tasks"`
}

// ActivateOptions configures the package:activate-install handler.
type ActivateOptions struct {
	Store *store.Store
	// Enqueuer queues the install tasks.
	Enqueuer *Client
	// Logger is the fallback logger; nil discards.
	Logger *slog.Logger
}

// ActivateHandler runs package:activate-install: it resolves the version's
// dependency closure, makes the version active with that closure (frozen
// from then on), and queues one package:install per live node into the
// node's own queue.
//
// Every step is safe to repeat: the activation is recorded once per ID,
// and install tasks have IDs derived from it (InstallTaskID). A dependency
// that is missing, unsatisfiable or cyclic, and a version that is gone,
// fail without retry; so does an activation a newer one superseded.
// Draining nodes get no install: they catch up when they start again.
type ActivateHandler struct {
	store  *store.Store
	client *Client
	log    *slog.Logger
}

// NewActivateHandler returns the package:activate-install handler.
func NewActivateHandler(o ActivateOptions) (*ActivateHandler, error) {
	if o.Store == nil || o.Enqueuer == nil {
		return nil, errors.New("tasks: activate handler needs a store and an enqueuer")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &ActivateHandler{store: o.Store, client: o.Enqueuer, log: o.Logger}, nil
}

// ProcessTask implements asynq.Handler.
func (h *ActivateHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p ActivatePayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.ID == "" || p.PackageID == "" || p.Version == "" {
		return fmt.Errorf("tasks: activate: bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	log := LoggerFrom(ctx).With("package", p.PackageID, "version", p.Version, "activation", p.ID)
	root := VersionRef{UUID: p.PackageID, Version: p.Version}
	closure, err := Resolve(ctx, StoreCatalog{Store: h.store}, root)
	if errors.Is(err, ErrDependency) {
		return fmt.Errorf("tasks: activate %s: %w: %w", root, err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("tasks: activate %s: %w", root, err)
	}
	nodes, err := h.store.Nodes(ctx)
	if err != nil {
		return fmt.Errorf("tasks: activate %s: %w", root, err)
	}
	var targets []string
	for _, n := range nodes {
		// A stale node still gets its install: it waits in the node's
		// queue until the node is back.
		if !n.Draining {
			targets = append(targets, n.ID)
		}
	}
	a, err := h.store.Activate(ctx, store.Activation{
		PackageID: p.PackageID, Version: p.Version, Closure: closureOf(closure), Force: p.Force,
		ID: p.ID, RequestedAt: p.RequestedAt, RequestedBy: p.RequestedBy,
	}, targets)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrSuperseded) {
		return fmt.Errorf("tasks: activate %s: %w: %w", root, err, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("tasks: activate %s: %w", root, err)
	}
	if _, err := CreateDefaultSchedules(ctx, h.store, a.PackageID, a.Version, p.RequestedBy); err != nil {
		return fmt.Errorf("tasks: activate %s: %w", root, err)
	}
	res := ActivateResult{PackageID: a.PackageID, Version: a.Version, Closure: a.Closure, Nodes: []string{}, InstallTasks: []string{}}
	var errs []error
	for _, node := range targets {
		task, opts, err := NewInstallTask(a, node, p.InstallRetry)
		if err == nil {
			_, err = h.client.Enqueue(ctx, p.AccountID, task, opts...)
		}
		if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
			errs = append(errs, fmt.Errorf("node %s: %w", node, err))
			continue
		}
		res.Nodes = append(res.Nodes, node)
		res.InstallTasks = append(res.InstallTasks, InstallTaskID(a.ID, node))
	}
	if err := errors.Join(errs...); err != nil {
		// Retried: the installs already queued are not queued again.
		return fmt.Errorf("tasks: activate %s: queue installs: %w", root, err)
	}
	log.InfoContext(ctx, "package activated", "closure", len(a.Closure), "nodes", len(res.Nodes))
	return writeResult(t, res)
}

// activateHandler builds the package:activate-install handler from the
// worker's dependencies; without an enqueuer its tasks fail and retry with
// an error saying so.
func activateHandler(d Deps) asynq.Handler {
	h, err := NewActivateHandler(ActivateOptions{Store: d.Store, Enqueuer: d.Enqueuer, Logger: d.Logger})
	if err != nil {
		return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return err })
	}
	return h
}
