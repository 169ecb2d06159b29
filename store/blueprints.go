package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// ActiveVersion in a blueprint step means "the package's active version
// at deployment time".
const ActiveVersion = "active"

// MaxBlueprintSteps is the most steps a blueprint holds. Every step runs
// in turn on every server of a deployment, and each is checked, resolved
// and recorded with the execution: a bound keeps one request from
// costing the platform without limit. Far above any real blueprint.
const MaxBlueprintSteps = 100

// BlueprintStep is one package of a blueprint, with the values the
// designer set for its parameters.
type BlueprintStep struct {
	Package string `json:"package"`
	// Version is a published version or ActiveVersion.
	Version    string            `json:"version"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Secrets names the parameters whose values are passwords: they are
	// sealed at rest and masked in every answer.
	Secrets []string `json:"secrets,omitempty"`
}

// Blueprint is an ordered list of package versions with parameter values.
type Blueprint struct {
	ID          string          `json:"id"`
	AccountID   string          `json:"account_id"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Steps       []BlueprintStep `json:"steps"`
	CreatedAt   time.Time       `json:"created_at"`
	UpdatedAt   time.Time       `json:"updated_at"`
}

// storedStep is a BlueprintStep as kept in Redis: secret values sealed.
type storedStep struct {
	Package    string            `json:"package"`
	Version    string            `json:"version"`
	Parameters map[string]string `json:"parameters,omitempty"`
	Sealed     map[string]string `json:"sealed,omitempty"`
}

type storedBlueprint struct {
	Blueprint
	Steps []storedStep `json:"steps"`
}

func (s *Store) blueprintKey(id string) string { return s.key("{bp}", "id", id) }
func (s *Store) blueprintNameKey(account, name string) string {
	return s.key("{bp}", "name", account, strings.ToLower(name))
}
func (s *Store) blueprintsKey() string { return s.key("{bp}", "all") }

func (s *Store) sealSteps(id string, steps []BlueprintStep) ([]storedStep, error) {
	out := make([]storedStep, len(steps))
	for i, st := range steps {
		ss := storedStep{Package: st.Package, Version: st.Version}
		for k, v := range st.Parameters {
			if !slices.Contains(st.Secrets, k) {
				if ss.Parameters == nil {
					ss.Parameters = map[string]string{}
				}
				ss.Parameters[k] = v
				continue
			}
			if s.secrets == nil {
				return nil, ErrNoSecretKey
			}
			sealed, err := s.secrets.SealString(v, aad(fmt.Sprintf("bp:%s:%d", id, i), k))
			if err != nil {
				return nil, err
			}
			if ss.Sealed == nil {
				ss.Sealed = map[string]string{}
			}
			ss.Sealed[k] = sealed
		}
		out[i] = ss
	}
	return out, nil
}

func (s *Store) openSteps(id string, steps []storedStep) ([]BlueprintStep, error) {
	out := make([]BlueprintStep, len(steps))
	for i, ss := range steps {
		st := BlueprintStep{Package: ss.Package, Version: ss.Version, Parameters: map[string]string{}}
		for k, v := range ss.Parameters {
			st.Parameters[k] = v
		}
		for k, v := range ss.Sealed {
			if s.secrets == nil {
				return nil, ErrNoSecretKey
			}
			pt, err := s.secrets.OpenString(v, aad(fmt.Sprintf("bp:%s:%d", id, i), k))
			if err != nil {
				return nil, fmt.Errorf("store: open blueprint %s: %w", id, err)
			}
			st.Parameters[k] = pt
			st.Secrets = append(st.Secrets, k)
		}
		slices.Sort(st.Secrets)
		out[i] = st
	}
	return out, nil
}

// PutBlueprint creates b (when b.ID is empty) or replaces it. Names are
// unique within an account.
func (s *Store) PutBlueprint(ctx context.Context, b Blueprint) (Blueprint, error) {
	if msg := CheckName(b.Name); msg != "" {
		return Blueprint{}, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	if len(b.Steps) > MaxBlueprintSteps {
		return Blueprint{}, fmt.Errorf("%w: a blueprint has at most %d steps, not %d", ErrInvalid, MaxBlueprintSteps, len(b.Steps))
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var old *Blueprint
	if b.ID == "" {
		b.ID, b.CreatedAt = newID(), now
	} else {
		o, err := s.Blueprint(ctx, b.ID)
		if err != nil {
			return Blueprint{}, err
		}
		old = &o
		b.AccountID, b.CreatedAt = o.AccountID, o.CreatedAt
	}
	b.UpdatedAt = now
	steps, err := s.sealSteps(b.ID, b.Steps)
	if err != nil {
		return Blueprint{}, err
	}
	data, err := jsonBytes(storedBlueprint{Blueprint: b, Steps: steps})
	if err != nil {
		return Blueprint{}, err
	}
	nameKey := s.blueprintNameKey(b.AccountID, b.Name)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		owner, err := tx.Get(ctx, nameKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if owner != "" && owner != b.ID {
			return fmt.Errorf("%w: blueprint name %q is taken in this account", ErrConflict, b.Name)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != nil && !strings.EqualFold(old.Name, b.Name) {
				p.Del(ctx, s.blueprintNameKey(old.AccountID, old.Name))
			}
			p.Set(ctx, s.blueprintKey(b.ID), data, 0)
			p.Set(ctx, nameKey, b.ID, 0)
			p.ZAdd(ctx, s.blueprintsKey(), redis.Z{Member: b.ID})
			return nil
		})
		return err
	}, nameKey, s.blueprintKey(b.ID))
	if err != nil {
		return Blueprint{}, wrapStoreErr("put blueprint", err)
	}
	return s.Blueprint(ctx, b.ID)
}

// Blueprint returns blueprint id with its secret values opened.
func (s *Store) Blueprint(ctx context.Context, id string) (Blueprint, error) {
	sb, err := getRecord[storedBlueprint](ctx, s.rdb, s.blueprintKey(id), "blueprint %q", id)
	if err != nil {
		return Blueprint{}, err
	}
	return s.openBlueprint(sb)
}

func (s *Store) openBlueprint(sb storedBlueprint) (Blueprint, error) {
	b := sb.Blueprint
	steps, err := s.openSteps(b.ID, sb.Steps)
	if err != nil {
		return Blueprint{}, err
	}
	b.Steps = steps
	return b, nil
}

// Blueprints returns every blueprint, ordered by ID.
func (s *Store) Blueprints(ctx context.Context) ([]Blueprint, error) {
	recs, err := listJSON[storedBlueprint](ctx, s, s.blueprintsKey(), s.blueprintKey)
	if err != nil {
		return nil, fmt.Errorf("store: list blueprints: %w", err)
	}
	out := make([]Blueprint, 0, len(recs))
	for _, r := range recs {
		b, err := s.openBlueprint(r)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, nil
}

// DeleteBlueprint deletes blueprint id. Executions of it are kept.
func (s *Store) DeleteBlueprint(ctx context.Context, id string) error {
	b, err := s.Blueprint(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.blueprintKey(id), s.blueprintNameKey(b.AccountID, b.Name))
		p.ZRem(ctx, s.blueprintsKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete blueprint: %w", err)
	}
	return nil
}
