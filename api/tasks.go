package api

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// TaskLookup tells the state of an enqueued task; an unknown or expired
// task is store.ErrNotFound.
type TaskLookup interface {
	Lookup(ctx context.Context, id string) (tasks.Status, error)
}

func (s *Server) opsRoutes(g *echo.Group) {
	g.GET("/tasks/:id", s.getTask)
	g.GET("/nodes", s.listNodes)
}

// getTask answers GET /tasks/{id}: state, retries, last error and the
// record the task produced. A task of an account the caller may not see is
// 404, like one that does not exist.
func (s *Server) getTask(c echo.Context) error {
	if s.opts.Tasks == nil {
		return newProblem(http.StatusServiceUnavailable, "", "this server cannot look up tasks")
	}
	st, err := s.opts.Tasks.Lookup(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return notFound("task")
	}
	if err != nil {
		return err
	}
	if err := s.mustSee(c, st.AccountID, "task"); err != nil {
		return err
	}
	st.LastError = publicText(st.LastError)
	out := taskJSON{Status: st}
	if dc, ok := strings.CutPrefix(st.Queue, store.ExecQueuePrefix); ok && st.State == "pending" {
		live, err := s.liveDatacenters(c.Request().Context())
		if err != nil {
			return err
		}
		if !live[dc] {
			out.Waiting = waitingFor(dc)
		}
	}
	return c.JSON(http.StatusOK, out)
}

// taskJSON is a task's state; Waiting says when it waits in the queue of
// a datacenter no live worker serves.
type taskJSON struct {
	tasks.Status
	Waiting string `json:"waiting,omitempty"`
}

// listNodes answers GET /nodes: the live worker nodes. Nodes serve every
// account, so every authenticated caller may list them; each node's
// installed versions show only the packages the caller may see in the
// library.
func (s *Server) listNodes(c echo.Context) error {
	ctx := c.Request().Context()
	nodes, err := s.store.Nodes(ctx)
	if err != nil {
		return err
	}
	if nodes == nil {
		nodes = []store.Node{}
	}
	view, err := s.libraryView(ctx, principalFrom(c))
	if err != nil {
		return err
	}
	seen := map[string]bool{} // package ID → visible, looked up once
	for i, n := range nodes {
		var shown []string
		for _, iv := range n.Installed {
			id, _, _ := strings.Cut(iv, "@")
			ok, known := seen[id]
			if !known {
				p, err := s.store.Package(ctx, id)
				switch {
				case errors.Is(err, store.ErrNotFound):
					ok = view.root // a deleted package: only the root sees its leftovers
				case err != nil:
					return err
				default:
					ok = view.sees(p)
				}
				seen[id] = ok
			}
			if ok {
				shown = append(shown, iv)
			}
		}
		nodes[i].Installed = shown
	}
	return listPage(c, nodes, func(n store.Node) string { return n.ID })
}
