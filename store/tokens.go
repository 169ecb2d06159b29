package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
)

// Role is what a token may do. The store only records it; the API decides
// what each role allows.
type Role string

// The roles a token can carry.
const (
	RoleViewer    Role = "viewer"
	RoleOperator  Role = "operator"
	RolePublisher Role = "publisher"
	RoleAdmin     Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleViewer, RoleOperator, RolePublisher, RoleAdmin:
		return true
	}
	return false
}

// BootstrapTokenID is the ID of the admin token configured at start
// (PACKFLOW_ADMIN_TOKEN, or the one packflow dev generates).
const BootstrapTokenID = "bootstrap-admin"

// lastUsedEvery limits how often resolving a token writes its LastUsedAt.
const lastUsedEvery = time.Minute

// Token grants a user of an account a role. Its secret is shown once when
// it is minted; only its SHA-256 digest is stored.
type Token struct {
	ID         string     `json:"id"`
	AccountID  string     `json:"account"`
	User       string     `json:"user"`
	Role       Role       `json:"role"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

// storedToken is a Token as kept in Redis, with the digest of its secret.
type storedToken struct {
	Token
	Digest string `json:"sha256"`
}

func (s *Store) tokenKey(id string) string           { return s.key("{tok}", "id", id) }
func (s *Store) tokenDigestKey(digest string) string { return s.key("{tok}", "sha256", digest) }
func (s *Store) tokensKey() string                   { return s.key("{tok}", "all") }

func digest(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CreateToken mints a token for t.AccountID (which must exist), t.User and
// t.Role, and returns it with its secret, of the form pf_<id>_<random>.
// The secret is not kept and cannot be shown again.
func (s *Store) CreateToken(ctx context.Context, t Token) (Token, string, error) {
	if !t.Role.Valid() {
		return Token{}, "", fmt.Errorf("%w: unknown role %q", ErrInvalid, t.Role)
	}
	if msg := CheckUser(t.User); msg != "" {
		return Token{}, "", fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	if _, err := s.Account(ctx, t.AccountID); err != nil {
		return Token{}, "", err
	}
	t.ID = strings.ToLower(rand.Text()[:16])
	t.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	t.LastUsedAt = nil
	secret := "pf_" + t.ID + "_" + rand.Text() + rand.Text()
	if err := s.putToken(ctx, storedToken{Token: t, Digest: digest(secret)}, ""); err != nil {
		return Token{}, "", err
	}
	return t, secret, nil
}

// MaxUserLength bounds a token's user name, in bytes.
const MaxUserLength = 200

// CheckUser reports why user cannot name the user of a token, or "": it
// is 1 to MaxUserLength bytes of text, not only spaces, without leading
// or trailing spaces and without control characters (NUL, line breaks),
// since it is shown in lists and written in logs.
func CheckUser(user string) string {
	switch {
	case strings.TrimSpace(user) == "":
		return "a user is required (not only spaces)"
	case len(user) > MaxUserLength:
		return fmt.Sprintf("a user has at most %d characters", MaxUserLength)
	case strings.TrimSpace(user) != user:
		return "a user cannot start or end with spaces"
	case strings.IndexFunc(user, unicode.IsControl) >= 0:
		return "a user cannot hold control characters (NUL, line breaks, tabs)"
	case !utf8.ValidString(user):
		return "a user must be UTF-8 text"
	}
	return ""
}

// EnsureBootstrapToken registers secret as the admin token of the root
// account, under BootstrapTokenID. Calling it again with the same secret
// changes nothing; with another secret, the previous one stops working.
func (s *Store) EnsureBootstrapToken(ctx context.Context, secret string) (Token, error) {
	if len(secret) < 16 {
		return Token{}, fmt.Errorf("%w: the admin token must be at least 16 characters", ErrInvalid)
	}
	d := digest(secret)
	old, err := s.storedToken(ctx, BootstrapTokenID)
	switch {
	case err == nil && subtle.ConstantTimeCompare([]byte(old.Digest), []byte(d)) == 1:
		return old.Token, nil
	case err != nil && !errors.Is(err, ErrNotFound):
		return Token{}, err
	}
	t := storedToken{
		Token: Token{
			ID:        BootstrapTokenID,
			AccountID: RootAccountID,
			User:      "admin",
			Role:      RoleAdmin,
			CreatedAt: time.Now().UTC().Truncate(time.Millisecond),
		},
		Digest: d,
	}
	if err := s.putToken(ctx, t, old.Digest); err != nil {
		return Token{}, err
	}
	return t.Token, nil
}

// putToken writes t and its digest index, dropping oldDigest's index when
// it is set (a replaced secret).
func (s *Store) putToken(ctx context.Context, t storedToken, oldDigest string) error {
	data, err := json.Marshal(t)
	if err != nil {
		return fmt.Errorf("store: encode token: %w", err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		if oldDigest != "" {
			p.Del(ctx, s.tokenDigestKey(oldDigest))
		}
		p.Set(ctx, s.tokenKey(t.ID), data, 0)
		p.Set(ctx, s.tokenDigestKey(t.Digest), t.ID, 0)
		p.ZAdd(ctx, s.tokensKey(), redis.Z{Member: t.ID})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save token: %w", err)
	}
	return nil
}

func (s *Store) storedToken(ctx context.Context, id string) (storedToken, error) {
	data, err := s.rdb.Get(ctx, s.tokenKey(id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return storedToken{}, fmt.Errorf("token %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return storedToken{}, fmt.Errorf("store: get token: %w", err)
	}
	var t storedToken
	if err := json.Unmarshal(data, &t); err != nil {
		return storedToken{}, fmt.Errorf("store: decode token %q: %w", id, err)
	}
	return t, nil
}

// Token returns the token with id (never its secret), or ErrNotFound.
func (s *Store) Token(ctx context.Context, id string) (Token, error) {
	t, err := s.storedToken(ctx, id)
	return t.Token, err
}

// Tokens returns every token, ordered by ID.
func (s *Store) Tokens(ctx context.Context) ([]Token, error) {
	ids, err := s.rdb.ZRange(ctx, s.tokensKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list tokens: %w", err)
	}
	if len(ids) == 0 {
		return []Token{}, nil
	}
	cmds, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, id := range ids {
			p.Get(ctx, s.tokenKey(id))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("store: get tokens: %w", err)
	}
	out := make([]Token, 0, len(ids))
	for i, c := range cmds {
		data, err := c.(*redis.StringCmd).Bytes()
		if errors.Is(err, redis.Nil) {
			continue // revoked while listing
		}
		if err != nil {
			return nil, fmt.Errorf("store: get token %q: %w", ids[i], err)
		}
		var t storedToken
		if err := json.Unmarshal(data, &t); err != nil {
			return nil, fmt.Errorf("store: decode token %q: %w", ids[i], err)
		}
		out = append(out, t.Token)
	}
	return out, nil
}

// ResolveToken returns the token whose secret is secret, or ErrNotFound.
// It records when the token was last used, at most once a minute.
func (s *Store) ResolveToken(ctx context.Context, secret string) (Token, error) {
	if secret == "" {
		return Token{}, fmt.Errorf("empty token: %w", ErrNotFound)
	}
	d := digest(secret)
	id, err := s.rdb.Get(ctx, s.tokenDigestKey(d)).Result()
	if errors.Is(err, redis.Nil) {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	if err != nil {
		return Token{}, fmt.Errorf("store: resolve token: %w", err)
	}
	t, err := s.storedToken(ctx, id)
	if err != nil {
		return Token{}, err
	}
	if subtle.ConstantTimeCompare([]byte(t.Digest), []byte(d)) != 1 {
		return Token{}, fmt.Errorf("token: %w", ErrNotFound)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) >= lastUsedEvery {
		t.LastUsedAt = &now
		// Best effort: failing to note the use must not refuse the call,
		// and a token revoked meanwhile must not come back.
		if data, err := json.Marshal(t); err == nil {
			_ = s.rdb.SetXX(ctx, s.tokenKey(t.ID), data, redis.KeepTTL).Err()
		}
	}
	return t.Token, nil
}

// RevokeToken deletes the token with id; its secret stops working at
// once. An unknown id gives ErrNotFound.
func (s *Store) RevokeToken(ctx context.Context, id string) error {
	t, err := s.storedToken(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.tokenKey(id))
		p.Del(ctx, s.tokenDigestKey(t.Digest))
		p.ZRem(ctx, s.tokensKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: revoke token: %w", err)
	}
	return nil
}
