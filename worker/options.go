package worker

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// Defaults of Options. Each is documented on its field.
const (
	DefaultConcurrency              = 32
	DefaultTaskCheckInterval        = 10 * time.Millisecond
	DefaultDelayedTaskCheckInterval = time.Second
	DefaultShutdownTimeout          = 25 * time.Second
	DefaultHeartbeatInterval        = 5 * time.Second
	DefaultNodeQueueWeight          = 10
)

// DefaultQueues are the queues a worker serves when Options.Queues is
// empty, with their weights. The node queue and the exec queues of
// Options.Datacenters are added to them.
func DefaultQueues() map[string]int {
	return map[string]int{tasks.QueuePublish: 6, tasks.QueueDefault: 3}
}

// Options configures a Worker.
type Options struct {
	// Redis is the client asynq and the node registry use. Required. The
	// caller owns and closes it.
	Redis redis.UniversalClient
	// Store holds the node record. Default: store.New(Redis, {}).
	Store *store.Store
	// NodeID names this node and its queue node:<id>. Letters, digits,
	// '.', '_' and '-', at most 64. Default DefaultNodeID().
	NodeID string
	// Hostname is reported in the node record. Default os.Hostname().
	Hostname string
	// Version is reported in the node record.
	Version string
	// Concurrency is how many tasks run at once. Default 32.
	Concurrency int
	// Queues maps queue names to weights (PACKFLOW_QUEUES, see
	// ParseQueues). Default DefaultQueues(). The node queue is always
	// added (weight NodeQueueWeight) and so is exec:<dc> (weight 3) for
	// each of Datacenters, unless listed here. Names may not contain '{'
	// or '}' (CheckQueueName).
	Queues map[string]int
	// Datacenters whose exec queues this worker serves.
	Datacenters []string
	// NodeQueueWeight is the weight of node:<id>. Default 10.
	NodeQueueWeight int
	// StrictPriority drains higher-weight queues first instead of
	// sampling queues by weight.
	StrictPriority bool
	// TaskCheckInterval is how long an idle worker waits between polls of
	// its queues (asynq sleeps a uniform draw in [½, 1½]× this). Default
	// 10ms: an idle worker starts a new task within about 15ms. See the
	// package comment for the Redis load it costs.
	TaskCheckInterval time.Duration
	// DelayedTaskCheckInterval is how often scheduled and retrying tasks
	// are moved to their queues when due. Default 1s.
	DelayedTaskCheckInterval time.Duration
	// ShutdownTimeout is how long Shutdown lets running tasks finish
	// before they are handed back to their queue. Default 25s.
	ShutdownTimeout time.Duration
	// HeartbeatInterval is how often the node record is refreshed.
	// Default 5s. The record lives NodeTTL.
	HeartbeatInterval time.Duration
	// NodeTTL is how long a node record outlives its last heartbeat.
	// Default 12 heartbeat intervals.
	NodeTTL time.Duration
	// Retry is the default retry delay policy; tasks override it with a
	// retry object in their payload. Default tasks.DefaultBackoff().
	Retry tasks.Backoff
	// Handlers maps task types to handlers (tasks.Handlers). Required.
	Handlers map[string]asynq.Handler
	// Join, when set, runs at Start before the worker takes any task:
	// a joining node installs the active packages (tasks.Installer.Sync).
	// Meanwhile the node record says Joining and Ready reports false. An
	// error is logged and the worker starts anyway.
	Join func(ctx context.Context) error
	// Installed, when set, lists the package versions installed on the
	// node (uuid@version) for the node record, at each heartbeat.
	Installed func() ([]string, error)
	// Logger receives the worker's and the tasks' logs. Default: discard.
	Logger *slog.Logger
	// Metrics registers the task metrics. Nil: metrics are not exported.
	Metrics prometheus.Registerer
}

var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// withDefaults fills unset fields and validates the result.
func (o Options) withDefaults() (Options, error) {
	if o.Redis == nil {
		return o, errors.New("worker: Options.Redis is required")
	}
	if o.Handlers == nil {
		return o, errors.New("worker: Options.Handlers is required")
	}
	if o.Store == nil {
		o.Store = store.New(o.Redis, store.Options{})
	}
	if o.NodeID == "" {
		id, err := DefaultNodeID()
		if err != nil {
			return o, err
		}
		o.NodeID = id
	}
	if !nodeIDPattern.MatchString(o.NodeID) {
		return o, fmt.Errorf("worker: node id %q: use 1 to 64 letters, digits, '.', '_' or '-'", o.NodeID)
	}
	if o.Hostname == "" {
		o.Hostname, _ = os.Hostname()
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.NodeQueueWeight == 0 {
		o.NodeQueueWeight = DefaultNodeQueueWeight
	}
	if o.TaskCheckInterval == 0 {
		o.TaskCheckInterval = DefaultTaskCheckInterval
	}
	if o.DelayedTaskCheckInterval == 0 {
		o.DelayedTaskCheckInterval = DefaultDelayedTaskCheckInterval
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = DefaultShutdownTimeout
	}
	if o.HeartbeatInterval == 0 {
		o.HeartbeatInterval = DefaultHeartbeatInterval
	}
	if o.NodeTTL == 0 {
		o.NodeTTL = 12 * o.HeartbeatInterval
	}
	if o.Retry == (tasks.Backoff{}) {
		o.Retry = tasks.DefaultBackoff()
	}
	switch {
	case o.Concurrency < 0:
		return o, fmt.Errorf("worker: concurrency must be positive, got %d", o.Concurrency)
	case o.NodeQueueWeight < 0:
		return o, fmt.Errorf("worker: node queue weight must be positive, got %d", o.NodeQueueWeight)
	case o.TaskCheckInterval < 0 || o.DelayedTaskCheckInterval < 0:
		return o, errors.New("worker: task check intervals must be positive")
	case o.ShutdownTimeout < 0:
		return o, fmt.Errorf("worker: shutdown timeout must be positive, got %v", o.ShutdownTimeout)
	case o.HeartbeatInterval < 0:
		return o, fmt.Errorf("worker: heartbeat interval must be positive, got %v", o.HeartbeatInterval)
	case o.NodeTTL < 2*o.HeartbeatInterval:
		return o, fmt.Errorf("worker: node TTL %v must be at least two heartbeat intervals (%v)", o.NodeTTL, o.HeartbeatInterval)
	}
	if err := o.Retry.Validate(); err != nil {
		return o, fmt.Errorf("worker: retry: %w", err)
	}
	q, err := o.queues()
	if err != nil {
		return o, err
	}
	o.Queues = q
	return o, nil
}

// queues returns the full queue map: configured (or default) queues, the
// exec queues of the datacenters and the node queue.
func (o Options) queues() (map[string]int, error) {
	src := o.Queues
	if len(src) == 0 {
		src = DefaultQueues()
	}
	q := make(map[string]int, len(src)+len(o.Datacenters)+1)
	for name, w := range src {
		if err := CheckQueueName(name); err != nil {
			return nil, err
		}
		if w <= 0 {
			return nil, fmt.Errorf("worker: queue %q: weight must be positive, got %d", name, w)
		}
		q[name] = w
	}
	for _, dc := range o.Datacenters {
		if strings.TrimSpace(dc) == "" {
			return nil, errors.New("worker: empty datacenter name")
		}
		if err := CheckQueueName(tasks.ExecQueue(dc)); err != nil {
			return nil, fmt.Errorf("worker: datacenter %q: %w", dc, err)
		}
		if _, ok := q[tasks.ExecQueue(dc)]; !ok {
			q[tasks.ExecQueue(dc)] = 3
		}
	}
	if _, ok := q[tasks.NodeQueue(o.NodeID)]; !ok {
		q[tasks.NodeQueue(o.NodeID)] = o.NodeQueueWeight
	}
	return q, nil
}

// CheckQueueName reports whether name can be an asynq queue: not empty
// or blank, and without '{' or '}'. asynq keeps every key of a queue in
// one Redis Cluster slot by writing it as "asynq:{<queue>}:…"; a brace
// inside the name would end that hash tag early and scatter the queue's
// keys over slots, which a cluster refuses (CROSSSLOT).
func CheckQueueName(name string) error {
	switch {
	case strings.TrimSpace(name) == "":
		return errors.New("worker: empty queue name")
	case strings.ContainsAny(name, "{}"):
		return fmt.Errorf("worker: queue %q: '{' and '}' are not allowed in queue names (asynq wraps each queue's keys as {<queue>} for Redis Cluster); rename the queue", name)
	}
	return nil
}

// DefaultNodeID returns the host name followed by six random hex digits,
// so that two workers on one host never share an ID.
func DefaultNodeID() (string, error) {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "node"
	}
	host = strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '-'
	}, host)
	if len(host) > 50 {
		host = host[:50]
	}
	var b [3]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("worker: random node id: %w", err)
	}
	return host + "-" + hex.EncodeToString(b[:]), nil
}

// ParseQueues reads a queue list such as "publish=6,default=3,exec:eu=2"
// (PACKFLOW_QUEUES). A name without "=weight" gets weight 1. Empty input
// is an empty map (the defaults apply).
func ParseQueues(s string) (map[string]int, error) {
	q := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, weight, hasWeight := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if name == "" {
			return nil, fmt.Errorf("worker: queue list %q: empty queue name", s)
		}
		w := 1
		if hasWeight {
			n, err := strconv.Atoi(strings.TrimSpace(weight))
			if err != nil || n <= 0 {
				return nil, fmt.Errorf("worker: queue %q: weight must be a positive integer, got %q", name, weight)
			}
			w = n
		}
		if err := CheckQueueName(name); err != nil {
			return nil, err
		}
		if _, dup := q[name]; dup {
			return nil, fmt.Errorf("worker: queue %q listed twice", name)
		}
		q[name] = w
	}
	return q, nil
}

// queueNames returns the names of q, sorted, for logs.
func queueNames(q map[string]int) []string {
	names := make([]string, 0, len(q))
	for n := range q {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
