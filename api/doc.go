// Package api owns packflow's HTTP API: the Echo server and its lifecycle,
// request IDs, request logs, panic recovery, body limits, bearer-token
// authentication and role checks, the one application/problem+json error
// answer, list pagination, health and readiness, Prometheus metrics, and
// the OpenAPI document assembled from the fragments in openapi/.
//
// Requests follow one set of rules, each in one place: decodeJSON checks a
// body against its type and lists every problem at once (422; 415 for a
// body not sent as JSON; 400 only for one that is not JSON); checkQuery
// refuses query parameters the route's OpenAPI operation does not list,
// and parsePage bad limits and cursors (400); findServerRef resolves a
// server by ID or name for paths and deployments alike; keepMasked and
// keptNotSecret decide when a masked password sent back keeps the stored
// one. Every error answer, and the error texts of tasks, uploads, installs
// and runs, pass through publicText: no internal prefix reaches a caller,
// and the whole chain is logged.
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
