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
// # Activation and installs
//
// package:activate-install (ActivateHandler) resolves the version's
// dependency closure (Resolve), records it with the version as the
// package's activation (store.Store.Activate) and queues one
// package:install per live node into the node's own queue, with task IDs
// derived from the activation so that a retried fan-out queues nothing
// twice. The recorded closure is frozen: a dependency's later activation
// does not change it; activating the package again resolves it anew.
//
// package:install (Installer) installs the frozen closure into the node's
// cache, dependencies first (force re-installs the package itself, never
// its dependencies), records the node's state (pending, installed, or
// failed once no retry is left, with the error and the attempts), and
// prunes versions no active closure holds beyond the cache's Keep. An
// install of a superseded activation does nothing. Installer.Sync is what
// a joining node runs before it takes tasks; Installer.Ensure gives an
// execution the installed trees of a version, installing what the node
// lacks. package:prune (on the node's queue) prunes the same way without
// installing anything.
//
// # Schedules
//
// schedule:run (ScheduleRunner) is one fire of a schedule, enqueued by
// the scheduler process with the task ID sched:<schedule>:<fire time>.
// It does the schedule's action as the schedule's owner: deploy (Deploy
// onto the servers named, resolved at the fire) or install-sync (a
// package:install on every live node that lacks an active version, and a
// package:prune on every live node), and
// records the run. Activating a version creates, disabled, the schedules
// its manifest declares (CreateDefaultSchedules).
//
// # Results
//
// A handler writes the record it produced with task.ResultWriter().Write;
// Client.Enqueue keeps completed tasks for DefaultRetention so that Lookup
// can report the result.//
// # Executions
//
// Deploy checks a deployment whole (every parameter of every step, the
// servers, the commands rendered for their shells) and reports every
// problem at once; then it records the execution and enqueues one
// execution:server task per server, with a task ID derived from the
// execution, the server and the run, in the queue exec:<datacenter> of the
// server. The Executor runs a server's steps in order while it holds the
// server's lease in Redis (renewed while held, released at the end,
// expiring when its worker dies), so at most one step runs on a server
// at once across the fleet:
//
//	queued ─▶ lease ─▶ running ─┬─▶ succeeded
//	  ▲                         ├─▶ failed     permanent error, or last attempt
//	  └──── retry (backoff) ◀───┤              error retrying may fix
//	                            └─▶ cancelled  remote process killed, rest skipped
//
// and each step through checkpointed phases (stored in the execution's
// record after each arrow that ends in a name):
//
//	stage (install cache, else blob store) ─▶ make dir ─▶ [dir]
//	  ─▶ upload ─▶ render ─▶ run from the package root ─▶ [ran]
//	  ─▶ reboot and wait for a new boot id, when RebootOnSuccess ─▶ [rebooted]
//	  ─▶ remove the package unless Persistent (else record its path) ─▶ [done]
//
// A failed run removes the package it uploaded. A retry resumes at the
// first step not done, after its last phase: a command that succeeded is
// never run again. "retry": {"max": 0} turns retries off; only an absent
// max means DefaultRetryMax.
//
// A run stops from the side in two ways. A cancel (Cancel, recording who
// and when) kills the remote process and records the step and the run
// "cancelled by <user>". A lease the worker may have lost ends the run
// with ErrLeaseLost, to be retried: another worker holds it, or no
// renewal succeeded for the lease's life less one renewal interval
// (Redis out of reach), so that the command is killed before the lease
// can expire and another worker take the server. Steps are numbered from
// 1 in the log, the events (0: the server as a whole) and the record
// (store.StepNumber).
package tasks
