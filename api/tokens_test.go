package api

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/packflow/packflow/store"
)

// redisHolds reports whether needle appears in any key or value of the
// Redis behind b (strings, hashes, sets and sorted sets).
func (b *bundle) redisHolds(t *testing.T, needle string) bool {
	t.Helper()
	ctx := context.Background()
	keys, err := b.rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("Redis is empty; the scan would prove nothing")
	}
	for _, k := range keys {
		var vals []string
		switch typ := b.rdb.Type(ctx, k).Val(); typ {
		case "string":
			vals = []string{b.rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range b.rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = b.rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = b.rdb.ZRange(ctx, k, 0, -1).Val()
		case "list":
			vals = b.rdb.LRange(ctx, k, 0, -1).Val()
		default:
			t.Fatalf("key %s has type %s the scan does not read", k, typ)
		}
		for _, v := range append(vals, k) {
			if strings.Contains(v, needle) {
				return true
			}
		}
	}
	return false
}

func TestTokenLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.mintToken(t, store.RootAccountID, "ci", store.RolePublisher)
	if !strings.HasPrefix(created.Token, "pf_"+created.ID+"_") {
		t.Errorf("secret %q does not have the form pf_<id>_<random>", created.Token)
	}
	if created.Role != store.RolePublisher || created.User != "ci" || created.Account != store.RootAccountID {
		t.Errorf("created %+v", created.tokenJSON)
	}

	// Stored hashed: neither secret appears anywhere in Redis.
	if b.redisHolds(t, created.Token) {
		t.Error("a minted token's secret is stored in Redis")
	}
	if b.redisHolds(t, testAdminToken) {
		t.Error("the admin token is stored in Redis")
	}

	// Works, and is never shown again.
	b.do(t, http.MethodGet, "/api/v1/accounts", created.Token, nil).mustStatus(t, http.StatusOK)
	list := b.do(t, http.MethodGet, "/api/v1/tokens", testAdminToken, nil).mustStatus(t, http.StatusOK)
	if strings.Contains(string(list.body), created.Token) || strings.Contains(string(list.body), `"token"`) {
		t.Errorf("token list shows a secret: %s", list.body)
	}
	var pg page[tokenJSON]
	list.json(t, &pg)
	var ids []string
	for _, tok := range pg.Items {
		ids = append(ids, tok.ID)
	}
	if strings.Join(ids, ",") != strings.Join(slices.Sorted(slices.Values([]string{created.ID, store.BootstrapTokenID})), ",") {
		t.Errorf("listed %v", ids)
	}

	// Revoked: 401 at once; revoking again is 404.
	b.do(t, http.MethodDelete, "/api/v1/tokens/"+created.ID, testAdminToken, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/accounts", created.Token, nil).mustStatus(t, http.StatusUnauthorized)
	b.do(t, http.MethodDelete, "/api/v1/tokens/"+created.ID, testAdminToken, nil).mustStatus(t, http.StatusNotFound)
}

func TestRevokeOwnToken(t *testing.T) {
	t.Parallel()
	b := setup(t)
	mine := b.mintToken(t, store.RootAccountID, "val", store.RoleViewer)
	other := b.mintToken(t, store.RootAccountID, "walt", store.RoleViewer)
	// A viewer may revoke its own token, not a colleague's (which it cannot see).
	b.do(t, http.MethodDelete, "/api/v1/tokens/"+other.ID, mine.Token, nil).mustStatus(t, http.StatusNotFound)
	b.do(t, http.MethodDelete, "/api/v1/tokens/"+mine.ID, mine.Token, nil).mustStatus(t, http.StatusNoContent)
	b.do(t, http.MethodGet, "/api/v1/accounts", other.Token, nil).mustStatus(t, http.StatusOK)
}

func TestCreateTokenValidation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	p := b.do(t, http.MethodPost, "/api/v1/tokens", testAdminToken,
		map[string]any{"account": "nowhere", "user": "", "role": "superuser"}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	var paths []string
	for _, e := range p.Errors {
		paths = append(paths, e.Path)
	}
	if got := strings.Join(paths, ","); got != "user,role,account" {
		t.Errorf("error paths %s, want every problem: user,role,account", got)
	}
}
