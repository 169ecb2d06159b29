package api

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func TestGetTask(t *testing.T) {
	t.Parallel()
	var client *tasks.Client
	b := setup(t, func(o *Options) {
		client = tasks.NewClient(o.Store.Redis(), o.Store, testLogger(t))
		o.Enqueuer, o.Tasks = client, client
	})
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	globex := b.createAccount(t, testAdminToken, map[string]any{"name": "globex"})
	acmeViewer := b.mintToken(t, acme.ID, "v", store.RoleViewer)
	globexAdmin := b.mintToken(t, globex.ID, "g", store.RoleAdmin)

	info, err := client.Enqueue(context.Background(), acme.ID, asynq.NewTask("test:noop", []byte(`{}`)))
	if err != nil {
		t.Fatal(err)
	}
	var st tasks.Status
	b.do(t, http.MethodGet, "/api/v1/tasks/"+info.ID, acmeViewer.Token, nil).mustStatus(t, http.StatusOK).json(t, &st)
	if st.ID != info.ID || st.State != tasks.StatePending || st.Type != "test:noop" || st.MaxRetry != tasks.DefaultRetryMax {
		t.Errorf("status %+v", st)
	}
	b.do(t, http.MethodGet, "/api/v1/tasks/"+info.ID, testAdminToken, nil).mustStatus(t, http.StatusOK)
	// Another account's task is not found, exactly like a missing one.
	other := b.do(t, http.MethodGet, "/api/v1/tasks/"+info.ID, globexAdmin.Token, nil).mustStatus(t, http.StatusNotFound).problem(t)
	missing := b.do(t, http.MethodGet, "/api/v1/tasks/no-such-task", globexAdmin.Token, nil).mustStatus(t, http.StatusNotFound).problem(t)
	if other.Detail != missing.Detail {
		t.Errorf("an invisible task (%q) is told apart from a missing one (%q)", other.Detail, missing.Detail)
	}
}

func TestGetTaskWithoutLookup(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.do(t, http.MethodGet, "/api/v1/tasks/x", testAdminToken, nil).mustStatus(t, http.StatusServiceUnavailable).problem(t)
}

func TestListNodes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var pg page[store.Node]
	b.do(t, http.MethodGet, "/api/v1/nodes", testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &pg)
	if pg.Items == nil || len(pg.Items) != 0 {
		t.Fatalf("no nodes listed as %+v, want []", pg.Items)
	}
	now := time.Now().UTC()
	for _, id := range []string{"n2", "n1", "n3"} {
		n := store.Node{ID: id, Hostname: "h", Queues: map[string]int{"default": 3, tasks.NodeQueue(id): 10},
			Concurrency: 4, StartedAt: now, LastSeen: now, HeartbeatInterval: 5 * time.Second}
		if err := b.store.Heartbeat(context.Background(), n, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	viewer := b.mintToken(t, store.RootAccountID, "v", store.RoleViewer)
	b.do(t, http.MethodGet, "/api/v1/nodes?limit=2", viewer.Token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
	if len(pg.Items) != 2 || pg.Items[0].ID != "n1" || pg.Items[1].ID != "n2" || pg.NextCursor == "" {
		t.Fatalf("first page %+v", pg)
	}
	b.do(t, http.MethodGet, "/api/v1/nodes?limit=2&cursor="+pg.NextCursor, viewer.Token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
	if len(pg.Items) != 1 || pg.Items[0].ID != "n3" || pg.NextCursor != "" || pg.Items[0].Queues["node:n3"] != 10 {
		t.Fatalf("second page %+v", pg)
	}
}
