package api

import (
	"context"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/packflow/packflow/store"
)

// Point 20: GET /nodes shows only the installed packages the caller sees.
func TestNodesShowOnlyVisibleInstalls(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	ctx := context.Background()
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	other := b.createAccount(t, testAdminToken, map[string]any{"name": "other"})
	const private, public = "20000000-0000-4000-8000-0000000000a1", "20000000-0000-4000-8000-0000000000b2"
	publishParams(t, b, acme.ID, private, "1.0.0", store.VisibilityPrivate)
	publishParams(t, b, acme.ID, public, "1.0.0", store.VisibilityPublic)
	now := time.Now().UTC()
	installed := []string{private + "@1.0.0", public + "@1.0.0"}
	n := store.Node{ID: "n1", Hostname: "h", Queues: map[string]int{"default": 1}, Concurrency: 1, StartedAt: now, LastSeen: now,
		HeartbeatInterval: 5 * time.Second, Installed: installed}
	if err := b.store.Heartbeat(ctx, n, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		token string
		want  []string
	}{
		{b.mintToken(t, acme.ID, "v", store.RoleViewer).Token, installed},
		{b.mintToken(t, other.ID, "v", store.RoleViewer).Token, []string{public + "@1.0.0"}},
		{testAdminToken, installed},
	} {
		var pg page[store.Node]
		a := b.do(t, http.MethodGet, "/api/v1/nodes", tc.token, nil).mustStatus(t, http.StatusOK)
		a.json(t, &pg)
		if len(pg.Items) != 1 || !slices.Equal(pg.Items[0].Installed, tc.want) {
			t.Errorf("installed %v, want %v", pg.Items, tc.want)
		}
	}
}
