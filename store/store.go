package store

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/secretbox"
)

// Errors callers branch on.
var (
	// ErrNotFound means the record does not exist.
	ErrNotFound = errors.New("store: not found")
	// ErrConflict means the write would break a uniqueness rule or the
	// record changed under the caller.
	ErrConflict = errors.New("store: conflict")
)

// Options configures a Store.
type Options struct {
	// Prefix is put in front of every key. Default "pf:".
	Prefix string
	// Secrets seals credential secrets and Password values at rest.
	// Without it, records holding secrets are refused (ErrNoSecretKey).
	Secrets *secretbox.Box
}

// Store reads and writes packflow's records.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	secrets *secretbox.Box
}

// New returns a Store on rdb. The caller owns rdb and closes it.
func New(rdb redis.UniversalClient, opts Options) *Store {
	if opts.Prefix == "" {
		opts.Prefix = "pf:"
	}
	return &Store{rdb: rdb, prefix: opts.Prefix, secrets: opts.Secrets}
}

// Redis returns the client the store uses, for components that share it
// (asynq, health checks).
func (s *Store) Redis() redis.UniversalClient { return s.rdb }

// key joins parts under the store's prefix: key("acct", id) = "pf:acct:<id>".
func (s *Store) key(parts ...string) string {
	return s.prefix + strings.Join(parts, ":")
}

// Ping checks that Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("store: ping redis: %w", err)
	}
	return nil
}
