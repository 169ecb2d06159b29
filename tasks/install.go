package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/worker/cache"
)

// ArchiveOpener opens package archives by blob key; *blob.Store is one.
type ArchiveOpener interface {
	Open(ctx context.Context, key string) (*blob.Object, error)
}

// InstallPayload is the payload of package:install: install the active
// version of a package, with its frozen closure, on one node.
type InstallPayload struct {
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// Activation is the ID of the activation the install is for; an
	// install whose activation was superseded does nothing.
	Activation string `json:"activation"`
	// Closure is the activation's closure, dependencies first.
	Closure []store.ClosureVersion `json:"closure"`
	// Force re-installs the package's version where it is installed.
	Force bool `json:"force,omitempty"`
	// Node is the node whose queue carries the task.
	Node string `json:"node"`
	// Retry overrides the worker's retry policy (see Retry).
	Retry *Retry `json:"retry,omitempty"`
}

// InstallTaskID is the task ID of the install of activation on node, so
// that fanning an activation out twice queues each install once.
func InstallTaskID(activation, node string) string { return "install:" + activation + ":" + node }

// NewInstallTask returns the package:install task of activation a on
// node, and the options to enqueue it with: the node's own queue, the
// task ID InstallTaskID, and MaxRetry from retry (DefaultRetryMax when
// nil).
func NewInstallTask(a store.Activation, node string, retry *Retry) (*asynq.Task, []asynq.Option, error) {
	if node == "" || a.ID == "" {
		return nil, nil, errors.New("tasks: install task needs a node and an activation")
	}
	b, err := json.Marshal(InstallPayload{PackageID: a.PackageID, Version: a.Version, Activation: a.ID,
		Closure: a.Closure, Force: a.Force, Node: node, Retry: retry})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode install payload: %w", err)
	}
	opts := []asynq.Option{asynq.Queue(NodeQueue(node)), asynq.TaskID(InstallTaskID(a.ID, node))}
	return asynq.NewTask(TypeInstall, b), opts, nil
}

// InstallResult is what package:install writes as its result.
type InstallResult struct {
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	Node      string `json:"node"`
	// Path is the package's tree on the node.
	Path string `json:"path"`
	// Installed lists the versions unpacked by this run; the others were
	// there already.
	Installed []string `json:"installed"`
}

// InstallerOptions configures an Installer.
type InstallerOptions struct {
	// Store holds the library and the install records. Required.
	Store *store.Store
	// Blob holds the archives. Required.
	Blob ArchiveOpener
	// Cache is the node's install cache. Required.
	Cache *cache.Cache
	// NodeID is the node the installer works for. Required.
	NodeID string
	// Enqueuer, when set, queues a package:install on this node's queue
	// for an activation Sync could not install, so that the task's retries
	// take over.
	Enqueuer *Client
	// Logger receives the installer's logs; nil discards.
	Logger *slog.Logger
}

// Installer installs package versions into one node's cache: the
// package:install handler, the catch-up of a joining node (Sync) and the
// on-demand install of executions (Ensure). It is safe for concurrent use.
type Installer struct {
	store  *store.Store
	blob   ArchiveOpener
	cache  *cache.Cache
	node   string
	client *Client
	log    *slog.Logger
}

// NewInstaller returns an Installer.
func NewInstaller(o InstallerOptions) (*Installer, error) {
	if o.Store == nil || o.Blob == nil || o.Cache == nil || o.NodeID == "" {
		return nil, errors.New("tasks: an installer needs a store, a blob store, a cache and a node ID")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Installer{store: o.Store, blob: o.Blob, cache: o.Cache, node: o.NodeID, client: o.Enqueuer, log: o.Logger}, nil
}

// installClosure installs every version of closure, in order, and returns
// the entries, the last one the package's own. force re-installs the last
// one. An error wraps asynq.SkipRetry when trying again cannot help.
func (in *Installer) installClosure(ctx context.Context, closure []store.ClosureVersion, force bool) ([]cache.Entry, []string, error) {
	entries := make([]cache.Entry, 0, len(closure))
	var fresh []string
	for i, cv := range closure {
		v, err := in.store.Version(ctx, cv.UUID, cv.Version)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil, fmt.Errorf("tasks: install %s: the version is no longer published: %w", cv, asynq.SkipRetry)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("tasks: install %s: %w", cv, err)
		}
		res, err := in.cache.Install(ctx, cache.Request{
			UUID: v.PackageID, Version: v.Version, SHA256: v.SHA256, Size: v.Size,
			Force: force && i == len(closure)-1,
			Open: func(ctx context.Context) (io.ReadCloser, error) {
				obj, err := in.blob.Open(ctx, v.BlobKey)
				if err != nil {
					return nil, err
				}
				return obj, nil
			},
		})
		switch {
		case errors.Is(err, cache.ErrInvalidRef), errors.Is(err, manifest.ErrInvalid):
			return nil, nil, fmt.Errorf("tasks: install %s: %w: %w", cv, err, asynq.SkipRetry)
		case err != nil:
			// A checksum mismatch is retried too: a blob store that is
			// still replicating the archive may serve it whole later.
			return nil, nil, fmt.Errorf("tasks: install %s: %w", cv, err)
		}
		if !res.AlreadyInstalled {
			fresh = append(fresh, cv.String())
		}
		entries = append(entries, res.Entry)
	}
	return entries, fresh, nil
}

// ProcessTask implements asynq.Handler for package:install.
func (in *Installer) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p InstallPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.PackageID == "" || p.Activation == "" || len(p.Closure) == 0 {
		return fmt.Errorf("tasks: install: bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	if p.Node != "" && p.Node != in.node {
		return fmt.Errorf("tasks: install for node %s reached node %s: %w", p.Node, in.node, asynq.SkipRetry)
	}
	log := LoggerFrom(ctx).With("package", p.PackageID, "version", p.Version)
	retried, _ := asynq.GetRetryCount(ctx)
	taskID, _ := asynq.GetTaskID(ctx)
	rec := store.NodeInstall{Node: in.node, PackageID: p.PackageID, Version: p.Version,
		State: store.InstallPending, Attempts: retried + 1, Activation: p.Activation, TaskID: taskID}
	if err := in.store.RecordNodeInstall(ctx, rec); errors.Is(err, store.ErrSuperseded) {
		log.InfoContext(ctx, "install skipped: the package was activated again since", "reason", err)
		return nil
	} else if err != nil {
		return fmt.Errorf("tasks: install: %w", err)
	}
	entries, fresh, err := in.installClosure(ctx, p.Closure, p.Force)
	if err != nil {
		rec.Error = err.Error()
		if lastAttempt(ctx) || errors.Is(err, asynq.SkipRetry) {
			rec.State = store.InstallFailed
		}
		in.record(context.WithoutCancel(ctx), log, rec)
		return err
	}
	rec.State = store.InstallInstalled
	in.record(ctx, log, rec)
	in.prune(ctx, log)
	root := entries[len(entries)-1]
	log.InfoContext(ctx, "package installed", "path", root.Path, "unpacked", len(fresh), "closure", len(entries))
	return writeResult(t, InstallResult{PackageID: p.PackageID, Version: p.Version, Node: in.node, Path: root.Path, Installed: nonNilStrings(fresh)})
}

// record writes an install record; a report of a superseded activation is
// dropped.
func (in *Installer) record(ctx context.Context, log *slog.Logger, rec store.NodeInstall) {
	rec.UpdatedAt = time.Time{}
	if err := in.store.RecordNodeInstall(ctx, rec); err != nil && !errors.Is(err, store.ErrSuperseded) {
		log.WarnContext(ctx, "record the install state", "state", rec.State, "error", err)
	}
}

// prune prunes the cache after an install; a failure is only logged, as
// the install itself succeeded.
func (in *Installer) prune(ctx context.Context, log *slog.Logger) {
	if _, err := in.Prune(ctx); err != nil {
		log.WarnContext(ctx, "prune the install cache", "error", err)
	}
}

// Prune removes from the node's cache the versions no active closure
// holds, beyond the cache's Keep newest of each package, and returns what
// it removed.
func (in *Installer) Prune(ctx context.Context) ([]cache.Entry, error) {
	acts, err := in.store.Activations(ctx)
	if err != nil {
		return nil, fmt.Errorf("tasks: prune: list activations: %w", err)
	}
	keep := map[string][]string{}
	for _, a := range acts {
		for _, cv := range a.Closure {
			keep[cv.UUID] = append(keep[cv.UUID], cv.Version)
		}
	}
	removed, err := in.cache.Prune(ctx, keep)
	if err != nil {
		return removed, fmt.Errorf("tasks: prune the install cache: %w", err)
	}
	return removed, nil
}

// PrunePayload is the payload of package:prune.
type PrunePayload struct {
	// Node is the node whose cache is pruned.
	Node string `json:"node"`
}

// PruneResult is what package:prune writes as its result.
type PruneResult struct {
	Node string `json:"node"`
	// Removed lists the versions removed, as uuid@version.
	Removed []string `json:"removed"`
}

// NewPruneTask returns a package:prune task for node's cache with the given
// task ID, and the options to enqueue it with (the node's own queue).
func NewPruneTask(node, id string) (*asynq.Task, []asynq.Option, error) {
	if node == "" || id == "" {
		return nil, nil, errors.New("tasks: prune task needs a node and a task ID")
	}
	b, err := json.Marshal(PrunePayload{Node: node})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode prune payload: %w", err)
	}
	return asynq.NewTask(TypePrune, b), []asynq.Option{asynq.Queue(NodeQueue(node)), asynq.TaskID(id)}, nil
}

// pruneHandler returns the package:prune handler of the node's Installer.
func pruneHandler(d Deps) asynq.Handler {
	return asynq.HandlerFunc(func(ctx context.Context, t *asynq.Task) error {
		var p PrunePayload
		if err := json.Unmarshal(t.Payload(), &p); err != nil || p.Node == "" {
			return fmt.Errorf("tasks: prune: bad payload %q: %w", t.Payload(), asynq.SkipRetry)
		}
		if d.Installer == nil {
			return errors.New("tasks: prune: this worker has no install cache")
		}
		if p.Node != d.Installer.node {
			return fmt.Errorf("tasks: prune for node %s reached node %s: %w", p.Node, d.Installer.node, asynq.SkipRetry)
		}
		removed, err := d.Installer.Prune(ctx)
		if err != nil {
			return err
		}
		res := PruneResult{Node: p.Node, Removed: []string{}}
		for _, e := range removed {
			res.Removed = append(res.Removed, e.UUID+"@"+e.Version)
		}
		LoggerFrom(ctx).InfoContext(ctx, "install cache pruned", "removed", len(removed))
		return writeResult(t, res)
	})
}

// SyncReport is what Sync did.
type SyncReport struct {
	// Installed lists the packages (uuid@version) installed or found
	// installed; Failed those that were not, with their errors.
	Installed []string
	Failed    map[string]string
}

// Sync installs the active version of every package, with its frozen
// closure, on this node: what a joining node does before it takes
// executions. A package that fails is recorded as pending with its error
// and, when the installer has an Enqueuer, handed to a package:install task
// on this node's queue so that the retry policy applies. Only a failure to
// read the activations, or ctx ending, is an error.
func (in *Installer) Sync(ctx context.Context) (SyncReport, error) {
	acts, err := in.store.Activations(ctx)
	if err != nil {
		return SyncReport{}, fmt.Errorf("tasks: sync installs: %w", err)
	}
	log := in.log.With("node", in.node)
	rep := SyncReport{Failed: map[string]string{}}
	for _, a := range acts {
		if err := ctx.Err(); err != nil {
			return rep, fmt.Errorf("tasks: sync installs: %w", err)
		}
		ref := a.PackageID + "@" + a.Version
		rec := store.NodeInstall{Node: in.node, PackageID: a.PackageID, Version: a.Version,
			State: store.InstallInstalled, Attempts: 1, Activation: a.ID}
		if _, _, err := in.installClosure(ctx, a.Closure, false); err != nil {
			rep.Failed[ref] = err.Error()
			rec.State, rec.Error = store.InstallPending, err.Error()
			if in.client == nil || errors.Is(err, asynq.SkipRetry) {
				rec.State = store.InstallFailed
			} else if tid, qerr := in.queueRetry(ctx, a); qerr != nil {
				log.WarnContext(ctx, "queue an install that failed at start", "package", a.PackageID, "error", qerr)
				rec.State = store.InstallFailed
			} else {
				rec.TaskID = tid
			}
			log.WarnContext(ctx, "install at start failed", "package", a.PackageID, "version", a.Version, "error", err)
		} else {
			rep.Installed = append(rep.Installed, ref)
		}
		in.record(ctx, log, rec)
	}
	in.prune(ctx, log)
	log.InfoContext(ctx, "active packages installed", "installed", len(rep.Installed), "failed", len(rep.Failed))
	return rep, nil
}

// queueRetry queues a package:install of a on this node with a fresh task
// ID (the activation's own may be spent), returning the task ID.
func (in *Installer) queueRetry(ctx context.Context, a store.Activation) (string, error) {
	task, opts, err := NewInstallTask(a, in.node, nil)
	if err != nil {
		return "", err
	}
	opts = opts[:1] // the queue; a fresh ID
	info, err := in.client.Enqueue(ctx, store.RootAccountID, task, opts...)
	if err != nil {
		return "", err
	}
	return info.ID, nil
}

// Ensure returns the installed trees of uuid@version and of every version
// it depends on (dependencies first, the package last), installing what
// this node lacks: the package's frozen closure when it is the active
// version, else the closure resolved from the library now. Executions call
// it instead of failing on a node that missed an install.
func (in *Installer) Ensure(ctx context.Context, ref VersionRef) ([]cache.Entry, error) {
	var closure []store.ClosureVersion
	a, err := in.store.Activation(ctx, ref.UUID)
	active := err == nil && a.Version == ref.Version
	switch {
	case active:
		closure = a.Closure
	case err == nil || errors.Is(err, store.ErrNotFound):
		c, err := Resolve(ctx, StoreCatalog{Store: in.store}, ref)
		if err != nil {
			return nil, err
		}
		closure = closureOf(c)
	default:
		return nil, fmt.Errorf("tasks: ensure %s: %w", ref, err)
	}
	entries, fresh, err := in.installClosure(ctx, closure, false)
	if err != nil {
		return nil, err
	}
	if len(fresh) > 0 {
		log := in.log.With("node", in.node, "package", ref.String())
		log.InfoContext(ctx, "installed on demand", "unpacked", fresh)
		if active {
			// The node missed the activation's install: say it has it now.
			attempts := 1
			if recs, err := in.store.NodeInstalls(ctx, ref.UUID); err == nil && recs[in.node].Activation == a.ID {
				attempts = recs[in.node].Attempts + 1
			}
			in.record(ctx, log, store.NodeInstall{Node: in.node, PackageID: a.PackageID, Version: a.Version,
				State: store.InstallInstalled, Attempts: attempts, Activation: a.ID})
		}
	}
	return entries, nil
}

// closureOf converts a resolved closure to the form the store records.
func closureOf(c Closure) []store.ClosureVersion {
	out := make([]store.ClosureVersion, len(c.Order))
	for i, v := range c.Order {
		out[i] = store.ClosureVersion{UUID: v.UUID, Version: v.Version, SHA256: v.SHA256, Size: v.Size}
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// StoreCatalog is the library in the store, as Resolve reads it.
type StoreCatalog struct {
	Store *store.Store
}

// Versions implements PackageCatalog.
func (c StoreCatalog) Versions(ctx context.Context, uuid string) ([]CatalogVersion, error) {
	names, err := c.Store.Versions(ctx, uuid)
	if err != nil {
		return nil, err
	}
	out := make([]CatalogVersion, 0, len(names))
	for _, name := range names {
		v, err := c.Store.Version(ctx, uuid, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		cv := CatalogVersion{Version: v.Version, SHA256: v.SHA256, Size: v.Size}
		for _, r := range v.Requires {
			cv.Requires = append(cv.Requires, manifest.Requirement{UUID: r.UUID, Name: r.Name, Version: r.Version})
		}
		out = append(out, cv)
	}
	return out, nil
}

// ActiveVersion implements PackageCatalog.
func (c StoreCatalog) ActiveVersion(ctx context.Context, uuid string) (string, error) {
	p, err := c.Store.Package(ctx, uuid)
	if err != nil {
		return "", err
	}
	return p.ActiveVersion, nil
}

// installHandler returns the package:install handler: the node's
// Installer, or, on a worker without one, a handler whose tasks fail and
// retry with an error saying so.
func installHandler(d Deps) asynq.Handler {
	if d.Installer == nil {
		return asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
			return errors.New("tasks: install: this worker has no install cache")
		})
	}
	return d.Installer
}
