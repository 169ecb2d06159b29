package store_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
)

func TestTokens(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *store.Store, _ redis.UniversalClient) {
		ctx := context.Background()
		if _, err := s.EnsureRootAccount(ctx); err != nil {
			t.Fatal(err)
		}
		tok, secret, err := s.CreateToken(ctx, store.Token{AccountID: store.RootAccountID, User: "ci", Role: store.RoleOperator})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(secret, "pf_"+tok.ID+"_") || len(secret) < 40 {
			t.Errorf("secret %q", secret)
		}
		got, err := s.ResolveToken(ctx, secret)
		if err != nil {
			t.Fatal(err)
		}
		if got.ID != tok.ID || got.Role != store.RoleOperator || got.User != "ci" || got.LastUsedAt == nil {
			t.Errorf("resolved %+v", got)
		}
		for _, bad := range []string{"", secret + "x", strings.TrimSuffix(secret, secret[len(secret)-1:]), "pf_" + tok.ID + "_guess"} {
			if _, err := s.ResolveToken(ctx, bad); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("ResolveToken(%q): %v, want ErrNotFound", bad, err)
			}
		}
		if err := s.RevokeToken(ctx, tok.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResolveToken(ctx, secret); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("revoked token resolves: %v", err)
		}
		if err := s.RevokeToken(ctx, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second revoke: %v", err)
		}

		bad := []store.Token{
			{AccountID: store.RootAccountID, User: "x", Role: "superuser"},
			{AccountID: store.RootAccountID, Role: store.RoleViewer},
		}
		for _, b := range bad {
			if _, _, err := s.CreateToken(ctx, b); !errors.Is(err, store.ErrInvalid) {
				t.Errorf("CreateToken(%+v): %v, want ErrInvalid", b, err)
			}
		}
		if _, _, err := s.CreateToken(ctx, store.Token{AccountID: "nope", User: "x", Role: store.RoleViewer}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("token for a missing account: %v", err)
		}
	})
}

func TestBootstrapToken(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *store.Store, _ redis.UniversalClient) {
		ctx := context.Background()
		if _, err := s.EnsureRootAccount(ctx); err != nil {
			t.Fatal(err)
		}
		first, second := "first-admin-token-0123", "second-admin-token-0123"
		for range 2 {
			tok, err := s.EnsureBootstrapToken(ctx, first)
			if err != nil {
				t.Fatal(err)
			}
			if tok.ID != store.BootstrapTokenID || tok.Role != store.RoleAdmin || tok.AccountID != store.RootAccountID {
				t.Fatalf("bootstrap token %+v", tok)
			}
		}
		if _, err := s.ResolveToken(ctx, first); err != nil {
			t.Fatal(err)
		}
		// A new configured token replaces the old one.
		if _, err := s.EnsureBootstrapToken(ctx, second); err != nil {
			t.Fatal(err)
		}
		if _, err := s.ResolveToken(ctx, first); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("the replaced admin token still resolves: %v", err)
		}
		if _, err := s.ResolveToken(ctx, second); err != nil {
			t.Errorf("the new admin token: %v", err)
		}
		list, err := s.Tokens(ctx)
		if err != nil || len(list) != 1 {
			t.Errorf("Tokens: %v, %v; want the one bootstrap token", list, err)
		}
		if _, err := s.EnsureBootstrapToken(ctx, "short"); !errors.Is(err, store.ErrInvalid) {
			t.Errorf("short admin token: %v", err)
		}
	})
}
