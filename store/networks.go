package store

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Network is one of an account's networks in a datacenter, as the
// original platform listed them for Network parameters: a name chosen by
// the account, unique within its datacenter, and the CIDR block it
// covers.
type Network struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	// Name is what deployments give as a Network value.
	Name string `json:"name"`
	// Datacenter is the datacenter the network is in; servers of that
	// datacenter may use it.
	Datacenter  string    `json:"datacenter"`
	CIDR        string    `json:"cidr"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// CheckNetwork returns every problem of n's fields, paths named as in the
// API's request body.
func CheckNetwork(n Network) []Problem {
	var out []Problem
	add := func(path, rule, msg string) { out = append(out, Problem{Path: path, Rule: rule, Message: msg}) }
	switch msg := CheckName(n.Name); {
	case msg != "" && strings.TrimSpace(n.Name) == "":
		add("name", "missing", msg)
	case msg != "":
		add("name", "invalid value", msg)
	case IsNetworkLiteral(n.Name):
		add("name", "invalid value", fmt.Sprintf("a network name cannot be an address or CIDR block (%q): deployments give either a name or a CIDR block, so a name must not read as one; name it e.g. \"net-%s\"", n.Name, strings.NewReplacer("/", "-", ":", "-").Replace(n.Name)))
	}
	if n.Datacenter == "" {
		add("datacenter", "missing", "a network is in a datacenter; give the datacenter of the servers that use it (\"default\" for servers recorded without one)")
	} else if strings.ContainsAny(n.Datacenter, " \t:,") || len(n.Datacenter) > 64 {
		add("datacenter", "invalid value", "a datacenter name has at most 64 characters, without spaces, ':' or ','")
	}
	if strings.TrimSpace(n.CIDR) == "" {
		add("cidr", "missing", "a CIDR block such as 10.0.1.0/24 is required")
	} else if pfx, err := netip.ParsePrefix(n.CIDR); err != nil {
		add("cidr", "invalid value", fmt.Sprintf("%q is not a CIDR block such as 10.0.1.0/24", n.CIDR))
	} else if pfx.Masked() != pfx {
		add("cidr", "invalid value", fmt.Sprintf("%q has host bits set; the block is %s", n.CIDR, pfx.Masked()))
	}
	if len(n.Description) > 4000 {
		add("description", "invalid value", "a description has at most 4000 characters")
	}
	return out
}

// IsNetworkLiteral tells whether v reads as a CIDR block or an address,
// the values a Network parameter takes besides a network's name.
func IsNetworkLiteral(v string) bool {
	v = strings.TrimSpace(v)
	if _, err := netip.ParsePrefix(v); err == nil {
		return true
	}
	_, err := netip.ParseAddr(v)
	return err == nil
}

func (s *Store) networkKey(id string) string { return s.key("{inv}", "network", id) }
func (s *Store) networkNameKey(account, datacenter, name string) string {
	return s.key("{inv}", "network-name", account, datacenter, strings.ToLower(name))
}
func (s *Store) networksKey() string { return s.key("{inv}", "networks") }

// CreateNetwork records n (in DefaultDatacenter when it names none, as
// servers are). Names are unique, in any case, within an
// account's datacenter (ErrConflict).
func (s *Store) CreateNetwork(ctx context.Context, n Network) (Network, error) {
	if n.Datacenter == "" {
		n.Datacenter = DefaultDatacenter
	}
	if p := CheckNetwork(n); len(p) > 0 {
		return Network{}, fmt.Errorf("%w: %s: %s", ErrInvalid, p[0].Path, p[0].Message)
	}
	n.ID = newID()
	n.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	n.UpdatedAt = n.CreatedAt
	if err := s.putNetwork(ctx, n, nil); err != nil {
		return Network{}, wrapStoreErr("create network", err)
	}
	return n, nil
}

// putNetwork writes n, moving its name index from old (nil for a new
// network) in one transaction.
func (s *Store) putNetwork(ctx context.Context, n Network, old *Network) error {
	data, err := jsonBytes(n)
	if err != nil {
		return err
	}
	nameKey := s.networkNameKey(n.AccountID, n.Datacenter, n.Name)
	return s.pkgTx(ctx, func(tx *redis.Tx) error {
		owner, err := tx.Get(ctx, nameKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if owner != "" && owner != n.ID {
			return fmt.Errorf("%w: this account has a network named %q in datacenter %s already", ErrConflict, n.Name, n.Datacenter)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != nil {
				if oldKey := s.networkNameKey(old.AccountID, old.Datacenter, old.Name); oldKey != nameKey {
					p.Del(ctx, oldKey)
				}
			}
			p.Set(ctx, s.networkKey(n.ID), data, 0)
			p.Set(ctx, nameKey, n.ID, 0)
			p.ZAdd(ctx, s.networksKey(), redis.Z{Member: n.ID})
			return nil
		})
		return err
	}, nameKey, s.networkKey(n.ID))
}

// Network returns the network with id, or ErrNotFound.
func (s *Store) Network(ctx context.Context, id string) (Network, error) {
	return getRecord[Network](ctx, s.rdb, s.networkKey(id), "network %q", id)
}

// Networks returns every network, ordered by ID.
func (s *Store) Networks(ctx context.Context) ([]Network, error) {
	out, err := listJSON[Network](ctx, s, s.networksKey(), s.networkKey)
	if err != nil {
		return nil, fmt.Errorf("store: list networks: %w", err)
	}
	return out, nil
}

// UpdateNetwork applies fn to network id and writes the result, checked
// like a new network. The ID, account and creation time cannot change.
func (s *Store) UpdateNetwork(ctx context.Context, id string, fn func(*Network) error) (Network, error) {
	old, err := s.Network(ctx, id)
	if err != nil {
		return Network{}, err
	}
	n := old
	if err := fn(&n); err != nil {
		return Network{}, err
	}
	n.ID, n.AccountID, n.CreatedAt = old.ID, old.AccountID, old.CreatedAt
	if p := CheckNetwork(n); len(p) > 0 {
		return Network{}, fmt.Errorf("%w: %s: %s", ErrInvalid, p[0].Path, p[0].Message)
	}
	n.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.putNetwork(ctx, n, &old); err != nil {
		return Network{}, wrapStoreErr("update network", err)
	}
	return n, nil
}

// DeleteNetwork deletes network id. Deployments that name it afterwards
// are refused with the reason.
func (s *Store) DeleteNetwork(ctx context.Context, id string) error {
	n, err := s.Network(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.networkKey(id))
		p.Del(ctx, s.networkNameKey(n.AccountID, n.Datacenter, n.Name))
		p.ZRem(ctx, s.networksKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete network: %w", err)
	}
	return nil
}
