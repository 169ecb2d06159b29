// Package api owns packflow's HTTP API: the Echo server and its lifecycle,
// request IDs, request logs, panic recovery, body limits, bearer-token
// authentication and role checks, the one application/problem+json error
// answer, list pagination, health and readiness, Prometheus metrics, and
// the OpenAPI document assembled from the fragments in openapi/.
//
// Handlers only record, validate and enqueue; everything that touches a
// server runs as a task on a worker. The interfaces the API needs from
// other packages (Enqueuer, TaskLookup, BlobStore) are declared here, where
// they are used.
//
// Topic files add their routes in routes.go: one method per topic taking
// the authenticated /api/v1 group, and one OpenAPI fragment per topic in
// openapi/ that documents exactly those routes (a test holds the two in
// step).
package api
