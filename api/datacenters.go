package api

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/packflow/packflow/store"
)

// Work that connects to servers (deployments, server checks) runs on a
// worker serving the server's datacenter (PACKFLOW_DATACENTERS). When no
// live worker serves it, such work would wait in its queue with no word,
// so the API refuses it with 422 naming the datacenter and the ones live
// workers serve, unless the request sets "queue_without_worker": true.
// Work queued that way shows "waiting for a worker in <datacenter>" (the
// execution's servers, the check's task) until a worker of the
// datacenter is live. Live means heartbeating and not draining
// (store.Node.Serves).

// ruleNoWorker is the rule of a request refused because no live worker
// serves a datacenter it needs.
const ruleNoWorker = "no live worker"

// waitingFor is what work queued for datacenter dc shows while no live
// worker serves it.
func waitingFor(dc string) string { return "waiting for a worker in " + dc }

// datacenterOf is the datacenter of sv (the default one when unset).
func datacenterOf(sv store.Server) string {
	if sv.Datacenter == "" {
		return store.DefaultDatacenter
	}
	return sv.Datacenter
}

// unservedProblems returns one problem per datacenter of targets that no
// live worker serves, at the path of its first server.
func unservedProblems(targets []store.Server, paths []string, live map[string]bool) []FieldError {
	var errs []FieldError
	seen := map[string]bool{}
	for i, sv := range targets {
		dc := datacenterOf(sv)
		if live[dc] || seen[dc] {
			continue
		}
		seen[dc] = true
		var names []string
		for _, o := range targets {
			if datacenterOf(o) == dc {
				names = append(names, o.Name)
			}
		}
		errs = append(errs, FieldError{Path: paths[i], Rule: ruleNoWorker,
			Message: fmt.Sprintf("no live worker serves datacenter %q (server %s); %s; start a worker with PACKFLOW_DATACENTERS=%s, or send \"queue_without_worker\": true to queue anyway",
				dc, strings.Join(names, ", "), liveList(live), dc)})
	}
	return errs
}

// liveList says which datacenters live workers serve.
func liveList(live map[string]bool) string {
	if len(live) == 0 {
		return "no live worker serves any datacenter"
	}
	dcs := slices.Sorted(maps.Keys(live))
	return "live workers serve " + strings.Join(dcs, ", ")
}

// liveDatacenters returns the datacenters live workers serve.
func (s *Server) liveDatacenters(ctx context.Context) (map[string]bool, error) {
	live, err := s.store.LiveDatacenters(ctx)
	if err != nil {
		return nil, fmt.Errorf("api: live datacenters: %w", err)
	}
	return live, nil
}
