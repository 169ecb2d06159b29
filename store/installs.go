package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrSuperseded means a newer activation of the package was recorded than
// the one the caller acts for: its work is obsolete.
var ErrSuperseded = errors.New("store: superseded by a newer activation")

// ClosureVersion is one version of an activation's dependency closure, with
// its archive.
type ClosureVersion struct {
	UUID    string `json:"uuid"`
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
}

// String formats the version as uuid@version.
func (v ClosureVersion) String() string { return v.UUID + "@" + v.Version }

// Activation is a package's active version and the environment installed
// with it: the dependency closure resolved when it was activated. The
// closure stays as recorded (it is "frozen") when a dependency later gets
// another active version, until the package is activated again.
type Activation struct {
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// Closure lists every version installed with the package, each after
	// the versions it requires, the package itself last.
	Closure []ClosureVersion `json:"closure"`
	// Force re-installs versions a node already has.
	Force bool `json:"force"`
	// ID names the activation (the ID of the task that made it); installs
	// carry it, so that the work of an older activation is told apart.
	ID          string    `json:"id"`
	RequestedAt time.Time `json:"requested_at"`
	RequestedBy string    `json:"requested_by,omitempty"`
	ActivatedAt time.Time `json:"activated_at"`
}

// Install states of a package on a node.
const (
	InstallPending   = "pending"
	InstallInstalled = "installed"
	InstallFailed    = "failed"
)

// NodeInstall is where the install of a package's active version stands on
// one node.
type NodeInstall struct {
	Node      string `json:"node"`
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// State is pending (queued, running, or waiting to retry), installed
	// or failed (no retry left).
	State string `json:"state"`
	// Error is the last attempt's error, if it failed.
	Error string `json:"error,omitempty"`
	// Attempts counts the attempts made so far.
	Attempts int `json:"attempts"`
	// Activation is the ID of the activation the install is for.
	Activation string `json:"activation"`
	// TaskID is the install task, when one was queued.
	TaskID    string    `json:"task_id,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (s *Store) activationKey(id string) string { return s.key("{pkg}", "activation", id) }
func (s *Store) activationsKey() string         { return s.key("{pkg}", "activations") }
func (s *Store) installsKey(id string) string   { return s.key("{pkg}", "installs", id) }

// Activate makes a.Version the active version of package a.PackageID and
// records a as its activation, with every node in pending marked pending
// (the statuses of the previous activation go). Recording the same
// activation (same ID) again changes nothing and returns the recorded one.
// The package or version missing is ErrNotFound; a newer activation
// already recorded (a later RequestedAt) is ErrSuperseded.
func (s *Store) Activate(ctx context.Context, a Activation, pending []string) (Activation, error) {
	if a.PackageID == "" || a.Version == "" || a.ID == "" {
		return Activation{}, errors.New("store: an activation needs a package, a version and an id")
	}
	if len(a.Closure) == 0 || a.Closure[len(a.Closure)-1].UUID != a.PackageID || a.Closure[len(a.Closure)-1].Version != a.Version {
		return Activation{}, fmt.Errorf("%w: the closure of %s@%s must end with it", ErrInvalid, a.PackageID, a.Version)
	}
	pkgKey, vKey, aKey, iKey := s.packageKey(a.PackageID), s.versionKey(a.PackageID, a.Version), s.activationKey(a.PackageID), s.installsKey(a.PackageID)
	var out Activation
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var pkg Package
		if err := getJSON(ctx, tx, pkgKey, &pkg); err != nil {
			return fmt.Errorf("package %q: %w", a.PackageID, err)
		}
		n, err := tx.Exists(ctx, vKey).Result()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("version %s of %q: %w", a.Version, a.PackageID, ErrNotFound)
		}
		var cur Activation
		switch err := getJSON(ctx, tx, aKey, &cur); {
		case errors.Is(err, ErrNotFound):
		case err != nil:
			return err
		case cur.ID == a.ID:
			out = cur
			return nil
		case cur.RequestedAt.After(a.RequestedAt):
			return fmt.Errorf("%w: %s@%s was activated by %s after this request", ErrSuperseded, cur.PackageID, cur.Version, cur.ID)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		a.ActivatedAt = now
		pkg.ActiveVersion = a.Version
		pkg.UpdatedAt = now
		pb, err1 := json.Marshal(pkg)
		ab, err2 := json.Marshal(a)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		fields := make([]any, 0, 2*len(pending))
		for _, node := range pending {
			b, err := json.Marshal(NodeInstall{Node: node, PackageID: a.PackageID, Version: a.Version,
				State: InstallPending, Activation: a.ID, UpdatedAt: now})
			if err != nil {
				return err
			}
			fields = append(fields, node, b)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, pkgKey, pb, 0)
			p.Set(ctx, aKey, ab, 0)
			p.SAdd(ctx, s.activationsKey(), a.PackageID)
			p.Del(ctx, iKey)
			if len(fields) > 0 {
				p.HSet(ctx, iKey, fields...)
			}
			return nil
		})
		out = a
		return err
	}, pkgKey, vKey, aKey, iKey)
	if err != nil {
		if errors.Is(err, ErrNotFound) || errors.Is(err, ErrSuperseded) || errors.Is(err, ErrInvalid) {
			return Activation{}, err
		}
		return Activation{}, fmt.Errorf("store: activate %s@%s: %w", a.PackageID, a.Version, err)
	}
	return out, nil
}

// Activation returns the activation of package id, or ErrNotFound when it
// has no active version.
func (s *Store) Activation(ctx context.Context, id string) (Activation, error) {
	return getRecord[Activation](ctx, s.rdb, s.activationKey(id), "activation of %q", id)
}

// Activations returns the activation of every package with an active
// version, by package ID. Entries of packages deleted since are dropped.
func (s *Store) Activations(ctx context.Context) ([]Activation, error) {
	return s.activations(ctx, s.rdb)
}

func (s *Store) activations(ctx context.Context, c redis.Cmdable) ([]Activation, error) {
	ids, err := c.SMembers(ctx, s.activationsKey()).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list activations: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	slices.Sort(ids)
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.activationKey(id)
	}
	vals, err := c.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list activations: %w", err)
	}
	out := make([]Activation, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var a Activation
		if err := json.Unmarshal([]byte(str), &a); err != nil {
			return nil, fmt.Errorf("store: decode activation of %s: %w", ids[i], err)
		}
		out = append(out, a)
	}
	return out, nil
}

// ActiveUsers returns the activations whose closure holds id at version:
// the version is in use and must not be deleted.
func (s *Store) ActiveUsers(ctx context.Context, id, version string) ([]Activation, error) {
	return s.activeUsers(ctx, s.rdb, id, version)
}

func (s *Store) activeUsers(ctx context.Context, c redis.Cmdable, id, version string) ([]Activation, error) {
	all, err := s.activations(ctx, c)
	if err != nil {
		return nil, err
	}
	var out []Activation
	for _, a := range all {
		if slices.ContainsFunc(a.Closure, func(v ClosureVersion) bool { return v.UUID == id && v.Version == version }) {
			out = append(out, a)
		}
	}
	return out, nil
}

// RecordNodeInstall writes where the install of a package stands on a
// node, provided it is for the package's current activation
// (ni.Activation); otherwise it writes nothing and returns ErrSuperseded.
func (s *Store) RecordNodeInstall(ctx context.Context, ni NodeInstall) error {
	if ni.Node == "" || ni.PackageID == "" || ni.Activation == "" {
		return errors.New("store: a node install needs a node, a package and an activation")
	}
	if ni.UpdatedAt.IsZero() {
		ni.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	}
	b, err := json.Marshal(ni)
	if err != nil {
		return fmt.Errorf("store: encode install of %s on %s: %w", ni.PackageID, ni.Node, err)
	}
	aKey := s.activationKey(ni.PackageID)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		var cur Activation
		if err := getJSON(ctx, tx, aKey, &cur); err != nil {
			if errors.Is(err, ErrNotFound) {
				return fmt.Errorf("%w: %s has no active version", ErrSuperseded, ni.PackageID)
			}
			return err
		}
		if cur.ID != ni.Activation {
			return fmt.Errorf("%w: %s is now %s@%s (activation %s)", ErrSuperseded, ni.PackageID, cur.PackageID, cur.Version, cur.ID)
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.HSet(ctx, s.installsKey(ni.PackageID), ni.Node, b)
			return nil
		})
		return err
	}, aKey)
	if err != nil {
		if errors.Is(err, ErrSuperseded) {
			return err
		}
		return fmt.Errorf("store: record install of %s on %s: %w", ni.PackageID, ni.Node, err)
	}
	return nil
}

// NodeInstalls returns the install records of package id by node: those
// of its current activation, and of nodes that installed it since.
func (s *Store) NodeInstalls(ctx context.Context, id string) (map[string]NodeInstall, error) {
	m, err := s.rdb.HGetAll(ctx, s.installsKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: installs of %s: %w", id, err)
	}
	out := make(map[string]NodeInstall, len(m))
	for node, v := range m {
		var ni NodeInstall
		if err := json.Unmarshal([]byte(v), &ni); err != nil {
			return nil, fmt.Errorf("store: decode install of %s on %s: %w", id, node, err)
		}
		out[node] = ni
	}
	return out, nil
}
