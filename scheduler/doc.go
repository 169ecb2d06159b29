// Package scheduler is the scheduler process: it fires schedules (cron
// expressions or intervals, see scheduler/spec) into schedule:run tasks,
// which workers run (tasks.ScheduleRunner). Any number of replicas may
// run; each fire is enqueued exactly once.
//
// # Exactly once, without a leader
//
// Redis holds each enabled schedule's next fire time in one sorted set
// (store.DueFires). Every replica polls it and, for each due fire,
// claims it with one atomic script (store.ClaimFire) that advances the
// next fire time only while it is still the one the replica read, and in
// the same step records the run and marks the fire pending. Of several
// replicas claiming one fire exactly one wins; the others see the new
// next fire time and move on. The winner then enqueues the task with the
// ID sched:<schedule>:<fire time in Unix seconds> and clears the mark.
//
// A replica can die between its claim and its enqueue. Every replica
// therefore also sweeps fires pending for longer than PendingAfter (2 s)
// and enqueues them itself; asynq refuses a second task with the same
// ID, so a slow winner and a sweeper never both enqueue one fire. There
// is no leader to elect and no lease to expire: when a replica dies the
// others fire the next due schedule at their next poll, and a fire it
// had claimed within PendingAfter.
//
//	due (score = next fire) ──claim (CAS + run + pending)──▶ enqueue sched:<id>:<unix> ──▶ clear pending
//	                                 ▲                                    │ replica died
//	                                 └──── sweep: pending > 2 s ◀─────────┘
//
// Changes take effect at once: the API rewrites a schedule's next fire
// time when it is created, changed, paused or resumed, and replicas read
// only that set, at most PollInterval (250 ms) apart and sooner when the
// earliest fire is nearer. The Redis load is three cheap commands per
// replica per poll (about 12 per second) plus one claim and one enqueue
// per fire.
//
// # Missed fires and overlap
//
// A fire handled more than Grace (5 s) after its time counts as missed:
// every scheduler was down over it. All the fire times missed are folded
// into one run: with catch_up "once" (the default) it fires once now,
// for the latest missed time; with "none" the run is recorded as missed
// and nothing fires. Either way the schedule then carries on from the
// next fire time to come.
//
// With overlap "skip" (the default) a fire whose schedule's previous run
// is still going (its task waiting or running, or the execution it made
// not finished) is recorded as skipped; "allow" fires regardless.
package scheduler
