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
// asynq keeps every key of a queue under the hash tag {<queue>}, so that on
// Redis Cluster a queue lives in one slot (its Lua scripts touch several of
// its keys at once). Queue names therefore may not contain '{' or '}'
// (CheckQueueName); it also means a cluster shards by queue: one hot queue
// is served by one master.
//
// # Lifecycle
//
//	New ──▶ Start ──▶ (tasks run) ──▶ Shutdown
//	         │                          │
//	         ├ node record written,      ├ stop taking tasks
//	         │ heartbeat every 5s        ├ running tasks finish (ShutdownTimeout)
//	         └ Join, if set: the node    │   or, when ctx ends first, are cancelled
//	           installs the active       │   and go back to their queue unpenalised
//	           packages ("joining")      └ node record removed
//	           before it takes a task
//
// Run wraps the three under a context; cmd ties that context to SIGTERM and
// SIGINT.
//
// # Pickup latency and idle Redis load
//
// asynq polls: a worker whose queues are empty sleeps a uniform draw in
// [½, 1½]× TaskCheckInterval between polls, and each poll runs one Lua
// dequeue script (EVALSHA, which itself runs EXISTS and RPOPLPUSH) per
// queue it serves. The default of 10ms (asynq's own default is 1s) brings
// the idle submit-to-start p99 to about 15ms (asynq's default: about
// 1.4s). Measured on an idle worker against redis-server 7.0 on loopback:
//
//	                       queues  polls/s  EVALSHA/s  commands/s (INFO)  Redis CPU (user+sys)
//	packflow default 10ms    3       ≈ 90     ≈ 270       ≈ 740–830          ≈ 1.7% of a core
//	packflow default 10ms    4       ≈ 90     ≈ 360       ≈ 1,100            ≈ 2% of a core
//	asynq default 1s         1       ≈ 1      ≈ 1         ≈ 6                —
//
// (4 queues: node, publish, default and one exec:<dc> queue. Inside Redis
// an EVALSHA takes about 13µs; most of the CPU is the network I/O of the
// polls, as Redis's own CPU counters show.) Housekeeping adds a few
// commands a second: forwarding due retries every DelayedTaskCheckInterval
// (1s), asynq's and packflow's heartbeats (5s), the janitor. Redis runs
// commands on one core, so about fifty idle workers at the default would
// keep it busy: fleets of more than about twenty workers should raise
// TaskCheckInterval (PACKFLOW_TASK_CHECK_INTERVAL). 50ms cuts the polling
// five-fold for a pickup p99 of about 75ms; 100ms ten-fold. make bench
// reports the figure for the defaults ("idle Redis load per worker").
package worker
