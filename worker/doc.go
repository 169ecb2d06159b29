// Package worker owns the packflow worker process: the asynq server wired
// with packflow's middleware, retry policy and queues, the node's identity
// and heartbeat record, and graceful shutdown.
//
// # Queues
//
// A worker serves, by weight: its own queue node:<id> (installs into this
// node's cache; weight 10), publish (6), default (3), and exec:<dc> (3) for
// each datacenter it is configured for. Weights are sampled per poll, so a
// busy queue never starves the others.
//
// # Lifecycle
//
//	New ──▶ Start ──▶ (tasks run) ──▶ Shutdown
//	         │                          │
//	         └ node record written,      ├ stop taking tasks
//	           heartbeat every 5s        ├ running tasks finish (ShutdownTimeout)
//	                                     │   or, when ctx ends first, are cancelled
//	                                     │   and go back to their queue unpenalised
//	                                     └ node record removed
//
// Run wraps the three under a context; cmd ties that context to SIGTERM and
// SIGINT.
//
// # Pickup latency and idle Redis load
//
// asynq polls: a worker whose queues are empty sleeps a uniform draw in
// [½, 1½]× TaskCheckInterval between polls, and each poll runs one Lua
// dequeue script per queue it serves. The default of 10ms (asynq's own
// default is 1s) brings the idle submit-to-start p99 to about 15ms (asynq's
// default: about 1.4s), at a cost measured on an idle worker serving four
// queues (node, publish, default, one exec queue):
//
//	TaskCheckInterval  10ms (default)  ≈ 400 EVALSHA/s  (≈ 100 polls/s × 4 queues)
//	TaskCheckInterval  1s   (asynq)    ≈   4 EVALSHA/s
//
// plus, in both cases, about 4–5 commands/s of housekeeping (forwarding due
// retries every DelayedTaskCheckInterval, asynq's and packflow's
// heartbeats, the janitor, the cancellation subscriber). One Redis core
// serves on the order of 100k such scripts a second, so a few dozen idle
// workers at the default cost a few percent of one Redis; fleets of
// hundreds of workers should raise TaskCheckInterval (PACKFLOW_TASK_CHECK_INTERVAL).
package worker
