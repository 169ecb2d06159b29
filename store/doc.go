// Package store owns packflow's records in Redis (go-redis): accounts,
// tokens, packages, versions, uploads, servers, credentials, blueprints,
// executions, schedules and worker nodes. Every record belongs to an
// account. Keys live under one prefix ("pf:" by default) so that a Redis
// can be shared with asynq, whose keys start with "asynq:".
//
// The store never decides policy (who may see what); it answers the
// questions that policy needs, such as an account's ancestors.
package store
