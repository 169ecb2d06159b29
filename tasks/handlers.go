package tasks

import (
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// Task type names.
const (
	TypePublish         = "package:publish"
	TypeActivateInstall = "package:activate-install"
	TypeInstall         = "package:install"
	TypePrune           = "package:prune"
	TypeExecuteServer   = "execution:server"
)

// Queue names. A worker serves QueuePublish, QueueDefault, its own node
// queue and the exec queue of each datacenter it is configured for.
const (
	// QueuePublish carries package:publish; workers give it a high weight.
	QueuePublish = "publish"
	// QueueDefault carries everything without a queue of its own.
	QueueDefault = "default"
)

// NodeQueue is the queue only node id serves (installs into its cache).
func NodeQueue(id string) string { return "node:" + id }

// ExecQueue is the queue of the workers near the servers of datacenter dc.
func ExecQueue(dc string) string { return store.ExecQueuePrefix + dc }

// Deps is what the task handlers need. The worker fills it from its
// config; each handler uses only its part.
type Deps struct {
	// Store holds packflow's records.
	Store *store.Store
	// NodeID is the node running the handlers (for installs into its cache).
	NodeID string
	// Logger is the fallback logger; handlers prefer LoggerFrom(ctx).
	Logger *slog.Logger
	// Blob holds package archives; ArchiveLimits bound those published
	// (give it the API's upload limit as MaxArchiveSize).
	Blob          *blob.Store
	ArchiveLimits manifest.Limits
	// Enqueuer queues follow-up tasks (the installs of an activation).
	Enqueuer *Client
	// Installer installs into this node's cache (package:install, and
	// executions on a node that lacks their version).
	Installer *Installer
	// Executor runs execution:server and server:check; without it they
	// are not handled by this worker.
	Executor *Executor
}

// Handlers returns the handler of each task type, keyed by type name.
func Handlers(d Deps) map[string]asynq.Handler {
	h := map[string]asynq.Handler{
		TypePublish:         publishHandler(d),
		TypeActivateInstall: activateHandler(d),
		TypeInstall:         installHandler(d),
		TypePrune:           pruneHandler(d),
		TypeScheduleRun:     scheduleHandler(d),
	}
	if d.Executor != nil {
		h[TypeExecuteServer] = d.Executor
		h[TypeServerCheck] = checkHandler(d.Executor.o.Store, d.Executor.o.Connector)
	}
	return h
}
