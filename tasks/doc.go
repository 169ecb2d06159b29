// Package tasks owns packflow's background work: task type and queue names,
// the client that enqueues tasks and looks them up, the retry policy, the
// per-task middleware (logging, metrics, panic capture), and the handler of
// each task type (publish, activate-install, install, execute) — the
// business logic the worker runs.
//
// # Retry policy
//
// A failed task is retried up to its MaxRetry (DefaultRetryMax unless the
// enqueuer says otherwise) after a delay from Backoff: the ceiling
// min(Cap, Base·2^attempt), then, when Jitter is on, a uniform draw in
// [0, ceiling] ("full jitter"). The worker's defaults come from its config;
// a task overrides them with a "retry" object at the top level of its JSON
// payload, the same shape the HTTP API accepts:
//
//	{"retry": {"max": 5, "backoff": "10s", "backoff_max": "10m", "jitter": true}, ...}
//
// WithRetry puts such an object into a payload. asynq stores retry times in
// whole seconds, so delays below a second round down.
//
// # Results
//
// A handler writes the record it produced with task.ResultWriter().Write;
// Client.Enqueue keeps completed tasks for DefaultRetention so that Lookup
// can report the result.
package tasks
