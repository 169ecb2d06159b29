package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

// RootAccountID is the system account created at start. Every other
// account descends from it, and the first admin token belongs to it.
const RootAccountID = "root"

// maxAccountDepth bounds walks up the account tree, so that a damaged
// record can never loop forever.
const maxAccountDepth = 64

// Account is a tenant. Every record belongs to one; an account may have a
// parent, of which it is then a sub-account.
type Account struct {
	ID string `json:"id"`
	// Name is unique across the platform, compared without regard to case,
	// so that people can name an account instead of quoting its ID.
	Name string `json:"name"`
	// Parent is the ID of the parent account; empty only for the root.
	Parent string `json:"parent,omitempty"`
	// Vendor marks an account whose published packages nobody may
	// overwrite.
	Vendor    bool      `json:"vendor"`
	CreatedAt time.Time `json:"created_at"`
}

// Account keys share one hash tag so that the transactions below stay on
// one Redis Cluster slot.
func (s *Store) accountKey(id string) string    { return s.key("{acct}", "id", id) }
func (s *Store) accountNameKey(n string) string { return s.key("{acct}", "name", strings.ToLower(n)) }
func (s *Store) accountKidsKey(id string) string {
	return s.key("{acct}", "children", id)
}
func (s *Store) accountsKey() string { return s.key("{acct}", "all") }

// maxAccountName bounds an account's name, in bytes.
const maxAccountName = 100

// CheckAccountName reports why name cannot name an account, or "": it is
// 1 to 100 bytes of UTF-8 text, not only spaces, without leading or
// trailing spaces and without control characters (NUL, line breaks).
func CheckAccountName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "an account name is required (not only spaces)"
	case len(name) > maxAccountName:
		return fmt.Sprintf("an account name has at most %d characters", maxAccountName)
	case strings.TrimSpace(name) != name:
		return "an account name cannot start or end with spaces"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "an account name cannot hold control characters (NUL, line breaks, tabs)"
	case !utf8.ValidString(name):
		return "an account name must be UTF-8 text"
	}
	return ""
}

// validAccountName is CheckAccountName as an error.
func validAccountName(name string) error {
	if msg := CheckAccountName(name); msg != "" {
		return errors.New(msg)
	}
	return nil
}

// ErrInvalid is wrapped by errors about a record that can never be
// stored as given (a bad name, an unknown role).
var ErrInvalid = errors.New("store: invalid record")

// EnsureRootAccount creates the root account when it does not exist yet.
// It is safe to call at every start and from many processes at once.
func (s *Store) EnsureRootAccount(ctx context.Context) (Account, error) {
	root := Account{ID: RootAccountID, Name: RootAccountID, CreatedAt: time.Now().UTC()}
	err := s.createAccount(ctx, root)
	if err != nil && !errors.Is(err, ErrConflict) {
		return Account{}, err
	}
	return s.Account(ctx, RootAccountID)
}

// CreateAccount records a new account under parent (which must exist)
// and returns it with its ID. A name already in use gives ErrConflict; a
// missing parent, ErrNotFound.
func (s *Store) CreateAccount(ctx context.Context, a Account) (Account, error) {
	if err := validAccountName(a.Name); err != nil {
		return Account{}, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	if a.Parent == "" {
		return Account{}, fmt.Errorf("%w: an account needs a parent", ErrInvalid)
	}
	a.ID = uuid.NewString()
	a.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	if err := s.createAccount(ctx, a); err != nil {
		return Account{}, err
	}
	return a, nil
}

// createAccount writes a atomically: the parent must exist and the name
// must be free, checked and written in one optimistic transaction.
func (s *Store) createAccount(ctx context.Context, a Account) error {
	data, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("store: encode account: %w", err)
	}
	nameKey, idKey := s.accountNameKey(a.Name), s.accountKey(a.ID)
	watch := []string{nameKey, idKey}
	if a.Parent != "" {
		watch = append(watch, s.accountKey(a.Parent))
	}
	txf := func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, nameKey, idKey).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: account name %q is taken", ErrConflict, a.Name)
		}
		if a.Parent != "" {
			n, err := tx.Exists(ctx, s.accountKey(a.Parent)).Result()
			if err != nil {
				return err
			}
			if n == 0 {
				return fmt.Errorf("parent account %q: %w", a.Parent, ErrNotFound)
			}
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, idKey, data, 0)
			p.Set(ctx, nameKey, a.ID, 0)
			p.ZAdd(ctx, s.accountsKey(), redis.Z{Member: a.ID})
			if a.Parent != "" {
				p.SAdd(ctx, s.accountKidsKey(a.Parent), a.ID)
			}
			return nil
		})
		return err
	}
	for range 10 {
		err = s.rdb.Watch(ctx, txf, watch...)
		if !errors.Is(err, redis.TxFailedErr) {
			break
		}
	}
	if err != nil {
		if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("store: create account: %w", err)
	}
	return nil
}

// Account returns the account with id, or ErrNotFound.
func (s *Store) Account(ctx context.Context, id string) (Account, error) {
	data, err := s.rdb.Get(ctx, s.accountKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return Account{}, fmt.Errorf("account %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("store: get account: %w", err)
	}
	var a Account
	if err := json.Unmarshal(data, &a); err != nil {
		return Account{}, fmt.Errorf("store: decode account %q: %w", id, err)
	}
	return a, nil
}

// AccountByName returns the account named name (any case), or
// ErrNotFound.
func (s *Store) AccountByName(ctx context.Context, name string) (Account, error) {
	id, err := s.rdb.Get(ctx, s.accountNameKey(name)).Result()
	if errors.Is(err, redis.Nil) {
		return Account{}, fmt.Errorf("account named %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Account{}, fmt.Errorf("store: find account by name: %w", err)
	}
	return s.Account(ctx, id)
}

// Accounts returns every account, ordered by ID.
func (s *Store) Accounts(ctx context.Context) ([]Account, error) {
	ids, err := s.rdb.ZRange(ctx, s.accountsKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list accounts: %w", err)
	}
	return s.accountsByID(ctx, ids)
}

// AccountTree returns the account id and all its descendants, ordered by
// ID.
func (s *Store) AccountTree(ctx context.Context, id string) ([]Account, error) {
	ids, err := s.Descendants(ctx, id)
	if err != nil {
		return nil, err
	}
	ids = append(ids, id)
	slices.Sort(ids)
	return s.accountsByID(ctx, ids)
}

func (s *Store) accountsByID(ctx context.Context, ids []string) ([]Account, error) {
	if len(ids) == 0 {
		return []Account{}, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.accountKey(id)
	}
	// One GET per key in a pipeline rather than MGET: the keys share a
	// slot, but a pipeline keeps working should that ever change.
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: get accounts: %w", err)
	}
	out := make([]Account, 0, len(ids))
	for i, c := range cmds {
		data, err := c.(*redis.StringCmd).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // listed but gone; nothing deletes accounts today
		}
		if err != nil {
			return nil, fmt.Errorf("store: get account %q: %w", ids[i], err)
		}
		var a Account
		if err := json.Unmarshal(data, &a); err != nil {
			return nil, fmt.Errorf("store: decode account %q: %w", ids[i], err)
		}
		out = append(out, a)
	}
	return out, nil
}

// Ancestors returns the IDs of id's parent, its parent's parent and so on
// up to the root, nearest first. The root has none. An unknown id gives
// ErrNotFound.
func (s *Store) Ancestors(ctx context.Context, id string) ([]string, error) {
	var out []string
	cur := id
	for range maxAccountDepth {
		a, err := s.Account(ctx, cur)
		if err != nil {
			return nil, err
		}
		if a.Parent == "" {
			return out, nil
		}
		out = append(out, a.Parent)
		cur = a.Parent
	}
	return nil, fmt.Errorf("store: account %q is nested deeper than %d levels", id, maxAccountDepth)
}

// Descendants returns the IDs of every sub-account of id, at any depth,
// in breadth-first order. An unknown id gives ErrNotFound.
func (s *Store) Descendants(ctx context.Context, id string) ([]string, error) {
	n, err := s.rdb.Exists(ctx, s.accountKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: descendants: %w", err)
	}
	if n == 0 {
		return nil, fmt.Errorf("account %q: %w", id, ErrNotFound)
	}
	var out []string
	seen := map[string]bool{id: true}
	level := []string{id}
	for depth := 0; len(level) > 0; depth++ {
		if depth > maxAccountDepth {
			return nil, fmt.Errorf("store: account %q has sub-accounts deeper than %d levels", id, maxAccountDepth)
		}
		var next []string
		for _, parent := range level {
			kids, err := s.rdb.SMembers(ctx, s.accountKidsKey(parent)).Result()
			if err != nil {
				return nil, fmt.Errorf("store: descendants: %w", err)
			}
			slices.Sort(kids)
			for _, k := range kids {
				if !seen[k] {
					seen[k] = true
					next = append(next, k)
				}
			}
		}
		out = append(out, next...)
		level = next
	}
	return out, nil
}

// IsWithin reports whether account is scope itself or one of its
// descendants: the question behind "a role acts only within its account
// and its sub-accounts". An unknown account gives ErrNotFound.
func (s *Store) IsWithin(ctx context.Context, account, scope string) (bool, error) {
	if account == scope {
		return true, nil
	}
	anc, err := s.Ancestors(ctx, account)
	if err != nil {
		return false, err
	}
	return slices.Contains(anc, scope), nil
}
