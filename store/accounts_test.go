package store_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// backends runs fn against miniredis and, when PACKFLOW_TEST_REDIS_URL is
// set, against a real redis-server.
func backends(t *testing.T, fn func(t *testing.T, s *store.Store, rdb redis.UniversalClient)) {
	t.Helper()
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		_, rdb := testenv.Miniredis(t)
		fn(t, store.New(rdb, store.Options{}), rdb)
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		r := testenv.RealRedis(t)
		fn(t, store.New(r.Client, store.Options{}), r.Client)
	})
}

func TestAccountTree(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *store.Store, _ redis.UniversalClient) {
		ctx := context.Background()
		for range 2 { // idempotent
			root, err := s.EnsureRootAccount(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if root.ID != store.RootAccountID || root.Parent != "" {
				t.Fatalf("root %+v", root)
			}
		}
		mk := func(name, parent string) store.Account {
			t.Helper()
			a, err := s.CreateAccount(ctx, store.Account{Name: name, Parent: parent})
			if err != nil {
				t.Fatalf("create %s: %v", name, err)
			}
			return a
		}
		acme := mk("acme", store.RootAccountID)
		eu := mk("acme-eu", acme.ID)
		paris := mk("acme-paris", eu.ID)
		globex := mk("globex", store.RootAccountID)

		got, err := s.Account(ctx, paris.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(paris, got); diff != "" {
			t.Errorf("read back (-want +got):\n%s", diff)
		}
		if a, err := s.AccountByName(ctx, "ACME-EU"); err != nil || a.ID != eu.ID {
			t.Errorf("AccountByName: %v %v", a, err)
		}

		anc, err := s.Ancestors(ctx, paris.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{eu.ID, acme.ID, store.RootAccountID}, anc); diff != "" {
			t.Errorf("Ancestors (-want +got):\n%s", diff)
		}
		if anc, _ := s.Ancestors(ctx, store.RootAccountID); len(anc) != 0 {
			t.Errorf("root has ancestors %v", anc)
		}
		desc, err := s.Descendants(ctx, acme.ID)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff([]string{eu.ID, paris.ID}, desc); diff != "" {
			t.Errorf("Descendants (-want +got):\n%s", diff)
		}
		all, err := s.Descendants(ctx, store.RootAccountID)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 4 {
			t.Errorf("root has %d descendants, want 4", len(all))
		}

		tree, err := s.AccountTree(ctx, eu.ID)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, a := range tree {
			names = append(names, a.Name)
		}
		slices.Sort(names)
		if diff := cmp.Diff([]string{"acme-eu", "acme-paris"}, names); diff != "" {
			t.Errorf("AccountTree (-want +got):\n%s", diff)
		}
		list, err := s.Accounts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 5 || !slices.IsSortedFunc(list, func(a, b store.Account) int { return strings.Compare(a.ID, b.ID) }) {
			t.Errorf("Accounts: %d, sorted %v", len(list), list)
		}

		within := []struct {
			account, scope string
			want           bool
		}{
			{paris.ID, acme.ID, true},
			{paris.ID, paris.ID, true},
			{acme.ID, paris.ID, false},
			{globex.ID, acme.ID, false},
			{globex.ID, store.RootAccountID, true},
		}
		for _, w := range within {
			if got, err := s.IsWithin(ctx, w.account, w.scope); err != nil || got != w.want {
				t.Errorf("IsWithin(%s, %s) = %v, %v; want %v", w.account, w.scope, got, err, w.want)
			}
		}
	})
}

func TestCreateAccountErrors(t *testing.T) {
	t.Parallel()
	backends(t, func(t *testing.T, s *store.Store, _ redis.UniversalClient) {
		ctx := context.Background()
		if _, err := s.EnsureRootAccount(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateAccount(ctx, store.Account{Name: "Acme", Parent: store.RootAccountID}); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name string
			a    store.Account
			want error
		}{
			{"name taken in another case", store.Account{Name: "ACME", Parent: store.RootAccountID}, store.ErrConflict},
			{"root's name", store.Account{Name: "root", Parent: store.RootAccountID}, store.ErrConflict},
			{"missing parent", store.Account{Name: "orphan", Parent: "nope"}, store.ErrNotFound},
			{"no parent", store.Account{Name: "orphan"}, store.ErrInvalid},
			{"empty name", store.Account{Parent: store.RootAccountID}, store.ErrInvalid},
			{"control character", store.Account{Name: "a\nb", Parent: store.RootAccountID}, store.ErrInvalid},
		}
		for _, tc := range tests {
			if _, err := s.CreateAccount(ctx, tc.a); !errors.Is(err, tc.want) {
				t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
			}
		}
		if _, err := s.Account(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Account(nope): %v", err)
		}
		if _, err := s.Ancestors(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Ancestors(nope): %v", err)
		}
		if _, err := s.Descendants(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("Descendants(nope): %v", err)
		}
	})
}
