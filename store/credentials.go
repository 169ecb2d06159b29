package store

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"

	"github.com/redis/go-redis/v9"
)

// ErrNoSecretKey means a record holding a secret was written or read on a
// Store without Options.Secrets (no PACKFLOW_SECRET_KEY configured).
var ErrNoSecretKey = errors.New("store: no secret key configured; set PACKFLOW_SECRET_KEY")

// CredentialKind says what a credential's secret is.
type CredentialKind string

// The kinds of credentials.
const (
	// CredentialSSHKey: the secret is a PEM private key, optionally
	// encrypted with the passphrase.
	CredentialSSHKey CredentialKind = "ssh-key"
	// CredentialPassword: the secret is a password.
	CredentialPassword CredentialKind = "password"
)

// Valid reports whether k is a known kind.
func (k CredentialKind) Valid() bool { return k == CredentialSSHKey || k == CredentialPassword }

// Credential is what servers log in with. Its secret and passphrase are
// sealed in Redis and never part of this struct: CredentialSecret opens
// them for the worker that connects.
type Credential struct {
	ID        string         `json:"id"`
	AccountID string         `json:"account_id"`
	Name      string         `json:"name"`
	Kind      CredentialKind `json:"kind"`
	Username  string         `json:"username"`
	// HasPassphrase tells whether a passphrase was given with the key.
	HasPassphrase bool      `json:"has_passphrase"`
	CreatedAt     time.Time `json:"created_at"`
}

// Secret is a credential's secret part, in clear: only in memory, only
// where a server is connected to.
type Secret struct {
	Secret     string
	Passphrase string
}

type storedCredential struct {
	Credential
	SealedSecret     string `json:"secret_sealed"`
	SealedPassphrase string `json:"passphrase_sealed,omitempty"`
}

func (s *Store) credKey(id string) string { return s.key("{inv}", "cred", id) }
func (s *Store) credNameKey(account, name string) string {
	return s.key("{inv}", "cred-name", account, strings.ToLower(name))
}
func (s *Store) credsKey() string              { return s.key("{inv}", "creds") }
func (s *Store) credUsersKey(id string) string { return s.key("{inv}", "cred-users", id) }

// newID returns a fresh opaque record ID.
func newID() string { return strings.ToLower(rand.Text()[:20]) }

// CheckName reports why name cannot name an inventory record (credential,
// server, blueprint), or "".
func CheckName(name string) string {
	switch {
	case strings.TrimSpace(name) == "":
		return "a name is required"
	case len(name) > 200:
		return "a name has at most 200 characters"
	case strings.TrimSpace(name) != name:
		return "a name cannot start or end with spaces"
	case strings.IndexFunc(name, unicode.IsControl) >= 0:
		return "a name cannot hold control characters"
	}
	return ""
}

func aad(kind, id string) string { return "packflow:" + kind + ":" + id }

// CreateCredential records c (its account, name, kind and username) with
// sec sealed. Names are unique within an account (ErrConflict).
func (s *Store) CreateCredential(ctx context.Context, c Credential, sec Secret) (Credential, error) {
	if s.secrets == nil {
		return Credential{}, ErrNoSecretKey
	}
	if msg := CheckName(c.Name); msg != "" {
		return Credential{}, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	if !c.Kind.Valid() || c.AccountID == "" || sec.Secret == "" {
		return Credential{}, fmt.Errorf("%w: a credential needs an account, a kind and a secret", ErrInvalid)
	}
	c.ID = newID()
	c.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	c.HasPassphrase = sec.Passphrase != ""
	rec := storedCredential{Credential: c}
	var err error
	if rec.SealedSecret, err = s.secrets.SealString(sec.Secret, aad("cred-secret", c.ID)); err != nil {
		return Credential{}, err
	}
	if sec.Passphrase != "" {
		if rec.SealedPassphrase, err = s.secrets.SealString(sec.Passphrase, aad("cred-passphrase", c.ID)); err != nil {
			return Credential{}, err
		}
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return Credential{}, fmt.Errorf("store: encode credential: %w", err)
	}
	nameKey := s.credNameKey(c.AccountID, c.Name)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, nameKey).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: credential name %q is taken in this account", ErrConflict, c.Name)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, s.credKey(c.ID), data, 0)
			p.Set(ctx, nameKey, c.ID, 0)
			p.ZAdd(ctx, s.credsKey(), redis.Z{Member: c.ID})
			return nil
		})
		return err
	}, nameKey)
	if err != nil {
		return Credential{}, wrapStoreErr("create credential", err)
	}
	return c, nil
}

// wrapStoreErr keeps the sentinel errors callers branch on and wraps the
// rest as a store failure of op.
func wrapStoreErr(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, ErrConflict) || errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalid) {
		return err
	}
	return fmt.Errorf("store: %s: %w", op, err)
}

func (s *Store) storedCredential(ctx context.Context, id string) (storedCredential, error) {
	return getRecord[storedCredential](ctx, s.rdb, s.credKey(id), "credential %q", id)
}

// Credential returns the credential with id (never its secret).
func (s *Store) Credential(ctx context.Context, id string) (Credential, error) {
	c, err := s.storedCredential(ctx, id)
	return c.Credential, err
}

// CredentialSecret opens the secret and passphrase of credential id.
func (s *Store) CredentialSecret(ctx context.Context, id string) (Secret, error) {
	if s.secrets == nil {
		return Secret{}, ErrNoSecretKey
	}
	c, err := s.storedCredential(ctx, id)
	if err != nil {
		return Secret{}, err
	}
	var sec Secret
	if sec.Secret, err = s.secrets.OpenString(c.SealedSecret, aad("cred-secret", id)); err != nil {
		return Secret{}, fmt.Errorf("store: open credential %q: %w", id, err)
	}
	if c.SealedPassphrase != "" {
		if sec.Passphrase, err = s.secrets.OpenString(c.SealedPassphrase, aad("cred-passphrase", id)); err != nil {
			return Secret{}, fmt.Errorf("store: open credential %q: %w", id, err)
		}
	}
	return sec, nil
}

// Credentials returns every credential, ordered by ID.
func (s *Store) Credentials(ctx context.Context) ([]Credential, error) {
	recs, err := listJSON[storedCredential](ctx, s, s.credsKey(), s.credKey)
	if err != nil {
		return nil, fmt.Errorf("store: list credentials: %w", err)
	}
	out := make([]Credential, len(recs))
	for i, r := range recs {
		out[i] = r.Credential
	}
	return out, nil
}

// DeleteCredential deletes credential id. One still used by a server is
// refused with ErrConflict.
func (s *Store) DeleteCredential(ctx context.Context, id string) error {
	c, err := s.storedCredential(ctx, id)
	if err != nil {
		return err
	}
	users := s.credUsersKey(id)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		n, err := tx.SCard(ctx, users).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: credential %q is used by %d server(s)", ErrConflict, c.Name, n)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, s.credKey(id), s.credNameKey(c.AccountID, c.Name))
			p.ZRem(ctx, s.credsKey(), id)
			return nil
		})
		return err
	}, users, s.credKey(id))
	return wrapStoreErr("delete credential", err)
}

// listJSON reads every record whose ID is in the sorted set index, in
// index order, skipping records deleted while listing.
func listJSON[T any](ctx context.Context, s *Store, index string, key func(string) string) ([]T, error) {
	ids, err := s.rdb.ZRange(ctx, index, 0, -1).Result()
	if err != nil {
		return nil, err
	}
	out := make([]T, 0, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Get(ctx, key(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		data, err := c.(*redis.StringCmd).Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, err
		}
		var v T
		if err := json.Unmarshal(data, &v); err != nil {
			return nil, fmt.Errorf("decode %s: %w", ids[i], err)
		}
		out = append(out, v)
	}
	return out, nil
}

func jsonBytes(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("store: encode %T: %w", v, err)
	}
	return b, nil
}
