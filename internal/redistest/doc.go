// Package redistest starts the Redis topologies that a single test Redis
// cannot stand in for: a Redis Cluster of masters (redis-server
// --cluster-enabled yes, joined by redis-cli --cluster create) and a
// Sentinel group (a master, its replicas and three sentinels). Everything
// listens on 127.0.0.1, lives in a temporary directory and is stopped by
// t.Cleanup, as internal/sshdtest does for sshd.
//
// A test calling these skips with a message when redis-server or
// redis-cli is missing, and fails under CI=true (internal/testenv).
package redistest
