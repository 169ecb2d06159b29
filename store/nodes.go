package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StaleAfterBeats is how many heartbeat intervals may pass without a
// heartbeat before a node counts as stale.
const StaleAfterBeats = 3

// Node is a worker node's heartbeat record. A node writes it every
// HeartbeatInterval with a TTL; the record disappears when the node shuts
// down or its TTL runs out.
type Node struct {
	ID       string `json:"id"`
	Hostname string `json:"hostname"`
	// Queues maps each queue the node serves to its weight.
	Queues      map[string]int `json:"queues"`
	Concurrency int            `json:"concurrency"`
	Version     string         `json:"version,omitempty"`
	StartedAt   time.Time      `json:"started_at"`
	// LastSeen is the time of the last heartbeat; Heartbeat sets it to now
	// when zero.
	LastSeen time.Time `json:"last_seen"`
	// HeartbeatInterval is how often the node writes this record.
	HeartbeatInterval time.Duration `json:"heartbeat_interval"`
	// Active is the number of tasks running on the node at LastSeen.
	Active int64 `json:"active"`
	// Processed and Failed count tasks handled since StartedAt.
	Processed int64 `json:"processed"`
	Failed    int64 `json:"failed"`
	// Draining means the node is shutting down: it finishes its running
	// tasks but takes no new ones; do not send it work.
	Draining bool `json:"draining,omitempty"`
	// Joining means the node is installing the active packages it
	// lacks before it takes tasks; it is not ready yet.
	Joining bool `json:"joining,omitempty"`
	// Installed lists the package versions in the node's install cache,
	// as uuid@version.
	Installed []string `json:"installed,omitempty"`
	// Stale is computed when reading: LastSeen is older than
	// StaleAfterBeats heartbeat intervals. It is never stored.
	Stale bool `json:"stale"`
}

// Heartbeat writes n as live for ttl and indexes it for Nodes.
func (s *Store) Heartbeat(ctx context.Context, n Node, ttl time.Duration) error {
	if n.ID == "" {
		return errors.New("store: heartbeat without a node id")
	}
	if ttl <= 0 {
		return fmt.Errorf("store: heartbeat of node %s: ttl must be positive, got %v", n.ID, ttl)
	}
	if n.LastSeen.IsZero() {
		n.LastSeen = time.Now().UTC()
	}
	n.Stale = false
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("store: encode node %s: %w", n.ID, err)
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.key("node", n.ID), b, ttl)
		p.ZAdd(ctx, s.key("nodes"), redis.Z{Score: float64(n.LastSeen.Unix()), Member: n.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: heartbeat of node %s: %w", n.ID, err)
	}
	return nil
}

// Node returns the record of node id, or ErrNotFound when it has none
// (never started, shut down, or its heartbeat expired).
func (s *Store) Node(ctx context.Context, id string) (Node, error) {
	b, err := s.rdb.Get(ctx, s.key("node", id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Node{}, fmt.Errorf("store: node %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Node{}, fmt.Errorf("store: get node %s: %w", id, err)
	}
	return decodeNode(id, b, time.Now())
}

// Nodes lists the nodes whose heartbeat has not expired, sorted by ID, with
// Stale computed. Index entries of expired nodes are dropped on the way.
func (s *Store) Nodes(ctx context.Context) ([]Node, error) {
	ids, err := s.rdb.ZRange(ctx, s.key("nodes"), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list nodes: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	// One GET per node in a pipeline rather than MGET: on Redis Cluster the
	// node keys live in different slots.
	cmds := make([]*redis.StringCmd, len(ids))
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.Get(ctx, s.key("node", id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: get nodes: %w", err)
	}
	now := time.Now()
	nodes := make([]Node, 0, len(ids))
	var gone []any
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			gone = append(gone, ids[i])
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: get node %s: %w", ids[i], err)
		}
		n, err := decodeNode(ids[i], b, now)
		if err != nil {
			return nil, err
		}
		nodes = append(nodes, n)
	}
	if len(gone) > 0 {
		if err := s.rdb.ZRem(ctx, s.key("nodes"), gone...).Err(); err != nil {
			return nil, fmt.Errorf("store: drop expired nodes: %w", err)
		}
	}
	sort.Slice(nodes, func(i, j int) bool { return nodes[i].ID < nodes[j].ID })
	return nodes, nil
}

// RemoveNode deletes the record of node id; a missing record is not an
// error.
func (s *Store) RemoveNode(ctx context.Context, id string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.key("node", id))
		p.ZRem(ctx, s.key("nodes"), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: remove node %s: %w", id, err)
	}
	return nil
}

func decodeNode(id string, b []byte, now time.Time) (Node, error) {
	var n Node
	if err := json.Unmarshal(b, &n); err != nil {
		return Node{}, fmt.Errorf("store: decode node %s: %w", id, err)
	}
	n.Stale = n.HeartbeatInterval > 0 && now.Sub(n.LastSeen) > StaleAfterBeats*n.HeartbeatInterval
	return n, nil
}

// ExecQueuePrefix starts the name of a datacenter's execution queue,
// exec:<datacenter>, which the workers near its servers serve.
const ExecQueuePrefix = "exec:"

// Datacenters returns the datacenters whose execution queues n serves,
// sorted.
func (n Node) Datacenters() []string {
	var out []string
	for q := range n.Queues {
		if dc, ok := strings.CutPrefix(q, ExecQueuePrefix); ok && dc != "" {
			out = append(out, dc)
		}
	}
	sort.Strings(out)
	return out
}

// Serves reports whether n takes new tasks: it is neither stale (gone
// silent) nor draining (shutting down). A joining node counts: it takes
// tasks once it has installed the active packages.
func (n Node) Serves() bool { return !n.Stale && !n.Draining }

// LiveDatacenters returns the datacenters that at least one node serving
// new tasks (Node.Serves) takes execution tasks for: a deployment or a
// server check in any other datacenter would wait until such a worker
// starts.
func (s *Store) LiveDatacenters(ctx context.Context) (map[string]bool, error) {
	nodes, err := s.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]bool{}
	for _, n := range nodes {
		if !n.Serves() {
			continue
		}
		for _, dc := range n.Datacenters() {
			out[dc] = true
		}
	}
	return out, nil
}
