package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Schedule action kinds.
const (
	// ActionDeploy deploys a blueprint (or one package) onto servers.
	ActionDeploy = "deploy"
	// ActionInstallSync installs the active versions on the live nodes
	// that miss them (the installs prune old versions).
	ActionInstallSync = "install-sync"
)

// What a schedule does about fires missed while no scheduler ran, and
// about a fire while its previous run is still going.
const (
	CatchUpOnce  = "once"
	CatchUpNone  = "none"
	OverlapSkip  = "skip"
	OverlapAllow = "allow"
)

// Run statuses of a schedule beyond the execution statuses (queued,
// running, succeeded, failed): a fire skipped because the previous run was
// still going, and fires missed while no scheduler ran.
const (
	RunSkipped = "skipped"
	RunMissed  = "missed"
)

// Run triggers.
const (
	TriggerSchedule = "schedule"
	TriggerCatchUp  = "catch-up"
	TriggerManual   = "manual"
)

// ScheduleRunsKept is how many runs of a schedule are kept, the newest.
const ScheduleRunsKept = 200

// ScheduleAction is what a schedule does when it fires.
type ScheduleAction struct {
	// Kind is ActionDeploy or ActionInstallSync.
	Kind string `json:"kind"`
	// Blueprint names the blueprint a deploy runs; Package and Version
	// name one package instead (default schedules of a package).
	Blueprint string `json:"blueprint,omitempty"`
	Package   string `json:"package,omitempty"`
	Version   string `json:"version,omitempty"`
	// Servers are server IDs or names, resolved at each fire.
	Servers    []string          `json:"servers,omitempty"`
	Parameters map[string]string `json:"parameters,omitempty"`
	// Secrets names the parameters whose values are passwords: sealed at
	// rest, masked in answers.
	Secrets []string `json:"secrets,omitempty"`
	// Retry is the deployment's retry policy as the API takes it (JSON).
	Retry json.RawMessage `json:"retry,omitempty"`
}

// Schedule fires an action on a cron expression or an interval.
type Schedule struct {
	ID        string `json:"id"`
	AccountID string `json:"account_id"`
	// User created the schedule; deployments run in their name.
	User string `json:"user"`
	Name string `json:"name"`
	// Exactly one of Cron and Every is set.
	Cron  string        `json:"cron,omitempty"`
	Every time.Duration `json:"every,omitempty"`
	// Timezone is the IANA zone Cron is read in; "" is UTC.
	Timezone string `json:"timezone,omitempty"`
	// Anchor is the origin of Every: fires are at Anchor + k·Every.
	Anchor  time.Time      `json:"anchor"`
	Enabled bool           `json:"enabled"`
	CatchUp string         `json:"catch_up"`
	Overlap string         `json:"overlap"`
	Action  ScheduleAction `json:"action"`
	// Origin is "uuid@version" of the package whose manifest declared
	// this schedule, when it came from one.
	Origin    string    `json:"origin,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// ScheduleRun is one fire of a schedule and what came of it.
type ScheduleRun struct {
	// Key identifies the run within its schedule: the fire time in Unix
	// seconds, or "manual-<unix ms>" for run-now.
	Key        string `json:"key"`
	ScheduleID string `json:"schedule_id"`
	Trigger    string `json:"trigger"`
	// ScheduledAt is the fire time; FiredAt when the fire was handled.
	ScheduledAt time.Time `json:"scheduled_at"`
	FiredAt     time.Time `json:"fired_at"`
	// Status is queued, running, succeeded, failed, skipped or missed.
	Status string `json:"status"`
	// TaskID is the task of the fire; ExecutionID the execution a
	// deploy made; TaskIDs the tasks the action queued.
	TaskID      string   `json:"task_id,omitempty"`
	ExecutionID string   `json:"execution_id,omitempty"`
	TaskIDs     []string `json:"task_ids,omitempty"`
	// Missed counts the fire times a catch-up stands for, or that were
	// missed.
	Missed     int        `json:"missed,omitempty"`
	Error      string     `json:"error,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// ScheduleTaskID is the task ID of a schedule's run: the same for every
// replica that fires it, so that it is enqueued once.
func ScheduleTaskID(id, key string) string { return "sched:" + id + ":" + key }

// FireKey is the run key of a fire at t.
func FireKey(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

// DueFire is a schedule whose next fire time has come.
type DueFire struct {
	ID string
	At time.Time
}

// PendingFire is a claimed fire whose task may not be enqueued yet.
type PendingFire struct {
	ID, Key string
}

type storedSchedule struct {
	Schedule
	Sealed map[string]string `json:"sealed,omitempty"`
}

func (s *Store) schedKey(id string) string { return s.key("{sched}", "id", id) }
func (s *Store) schedNameKey(account, name string) string {
	return s.key("{sched}", "name", account, strings.ToLower(name))
}
func (s *Store) schedsKey() string             { return s.key("{sched}", "all") }
func (s *Store) schedDueKey() string           { return s.key("{sched}", "due") }
func (s *Store) schedPendingKey() string       { return s.key("{sched}", "pending") }
func (s *Store) schedRunsKey(id string) string { return s.key("{sched}", "runs", id) }
func (s *Store) schedRunIdxKey(id string) string {
	return s.key("{sched}", "run-index", id)
}

func (s *Store) sealSchedule(sc Schedule) (storedSchedule, error) {
	out := storedSchedule{Schedule: sc}
	out.Action.Parameters = nil
	for k, v := range sc.Action.Parameters {
		if !slices.Contains(sc.Action.Secrets, k) {
			if out.Action.Parameters == nil {
				out.Action.Parameters = map[string]string{}
			}
			out.Action.Parameters[k] = v
			continue
		}
		if s.secrets == nil {
			return storedSchedule{}, ErrNoSecretKey
		}
		sealed, err := s.secrets.SealString(v, aad("sched:"+sc.ID, k))
		if err != nil {
			return storedSchedule{}, err
		}
		if out.Sealed == nil {
			out.Sealed = map[string]string{}
		}
		out.Sealed[k] = sealed
	}
	return out, nil
}

func (s *Store) openSchedule(ss storedSchedule) (Schedule, error) {
	sc := ss.Schedule
	params := make(map[string]string, len(sc.Action.Parameters)+len(ss.Sealed))
	for k, v := range sc.Action.Parameters {
		params[k] = v
	}
	for k, v := range ss.Sealed {
		if s.secrets == nil {
			return Schedule{}, ErrNoSecretKey
		}
		pt, err := s.secrets.OpenString(v, aad("sched:"+sc.ID, k))
		if err != nil {
			return Schedule{}, fmt.Errorf("store: open schedule %s: %w", sc.ID, err)
		}
		params[k] = pt
	}
	sc.Action.Parameters = params
	return sc, nil
}

// PutSchedule creates sc (when sc.ID is empty) or replaces it, and sets
// its next fire time: next, or none when next is zero or sc is disabled.
// Names are unique within an account (ErrConflict).
func (s *Store) PutSchedule(ctx context.Context, sc Schedule, next time.Time) (Schedule, error) {
	if msg := CheckName(sc.Name); msg != "" {
		return Schedule{}, fmt.Errorf("%w: %s", ErrInvalid, msg)
	}
	if sc.AccountID == "" {
		return Schedule{}, fmt.Errorf("%w: a schedule needs an account", ErrInvalid)
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	var old *Schedule
	if sc.ID == "" {
		sc.ID, sc.CreatedAt = newID(), now
	} else {
		o, err := s.storedSchedule(ctx, sc.ID)
		if err != nil {
			return Schedule{}, err
		}
		old = &o.Schedule
		sc.AccountID, sc.CreatedAt = o.AccountID, o.CreatedAt
	}
	sc.UpdatedAt = now
	rec, err := s.sealSchedule(sc)
	if err != nil {
		return Schedule{}, err
	}
	data, err := jsonBytes(rec)
	if err != nil {
		return Schedule{}, err
	}
	nameKey := s.schedNameKey(sc.AccountID, sc.Name)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		owner, err := tx.Get(ctx, nameKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		if owner != "" && owner != sc.ID {
			return fmt.Errorf("%w: schedule name %q is taken in this account", ErrConflict, sc.Name)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			if old != nil && !strings.EqualFold(old.Name, sc.Name) {
				p.Del(ctx, s.schedNameKey(old.AccountID, old.Name))
			}
			p.Set(ctx, s.schedKey(sc.ID), data, 0)
			p.Set(ctx, nameKey, sc.ID, 0)
			p.ZAdd(ctx, s.schedsKey(), redis.Z{Member: sc.ID})
			s.setDue(ctx, p, sc, next)
			return nil
		})
		return err
	}, nameKey, s.schedKey(sc.ID))
	if err != nil {
		return Schedule{}, wrapStoreErr("put schedule", err)
	}
	return s.Schedule(ctx, sc.ID)
}

func (s *Store) setDue(ctx context.Context, p redis.Pipeliner, sc Schedule, next time.Time) {
	if !sc.Enabled || next.IsZero() {
		p.ZRem(ctx, s.schedDueKey(), sc.ID)
		return
	}
	p.ZAdd(ctx, s.schedDueKey(), redis.Z{Score: float64(next.Unix()), Member: sc.ID})
}

// SetScheduleEnabled pauses (enabled false) or resumes schedule id, whose
// next fire time becomes next.
func (s *Store) SetScheduleEnabled(ctx context.Context, id string, enabled bool, next time.Time) (Schedule, error) {
	key := s.schedKey(id)
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var rec storedSchedule
		if err := getJSON(ctx, tx, key, &rec); err != nil {
			return err
		}
		rec.Enabled = enabled
		rec.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		data, err := jsonBytes(rec)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, data, 0)
			s.setDue(ctx, p, rec.Schedule, next)
			return nil
		})
		return err
	}, key)
	if errors.Is(err, ErrNotFound) {
		return Schedule{}, fmt.Errorf("schedule %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Schedule{}, wrapStoreErr("set schedule enabled", err)
	}
	return s.Schedule(ctx, id)
}

func (s *Store) storedSchedule(ctx context.Context, id string) (storedSchedule, error) {
	return getRecord[storedSchedule](ctx, s.rdb, s.schedKey(id), "schedule %q", id)
}

// ScheduleSealed returns schedule id without its secret values, for
// those that only need when and what it fires.
func (s *Store) ScheduleSealed(ctx context.Context, id string) (Schedule, error) {
	rec, err := s.storedSchedule(ctx, id)
	return rec.Schedule, err
}

// Schedule returns schedule id with its secret values opened.
func (s *Store) Schedule(ctx context.Context, id string) (Schedule, error) {
	rec, err := s.storedSchedule(ctx, id)
	if err != nil {
		return Schedule{}, err
	}
	return s.openSchedule(rec)
}

// Schedules returns every schedule, ordered by ID.
func (s *Store) Schedules(ctx context.Context) ([]Schedule, error) {
	recs, err := listJSON[storedSchedule](ctx, s, s.schedsKey(), s.schedKey)
	if err != nil {
		return nil, fmt.Errorf("store: list schedules: %w", err)
	}
	out := make([]Schedule, 0, len(recs))
	for _, r := range recs {
		sc, err := s.openSchedule(r)
		if err != nil {
			return nil, err
		}
		out = append(out, sc)
	}
	return out, nil
}

// DeleteSchedule deletes schedule id and its run history.
func (s *Store) DeleteSchedule(ctx context.Context, id string) error {
	rec, err := s.storedSchedule(ctx, id)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, s.schedKey(id), s.schedNameKey(rec.AccountID, rec.Name), s.schedRunsKey(id), s.schedRunIdxKey(id))
		p.ZRem(ctx, s.schedsKey(), id)
		p.ZRem(ctx, s.schedDueKey(), id)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete schedule: %w", err)
	}
	return nil
}

// NextFire returns the next fire time of schedule id, or the zero time
// when it has none (paused, or its expression never fires again).
func (s *Store) NextFire(ctx context.Context, id string) (time.Time, error) {
	score, err := s.rdb.ZScore(ctx, s.schedDueKey(), id).Result()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("store: next fire: %w", err)
	}
	return time.Unix(int64(score), 0).UTC(), nil
}

// EarliestFire returns the earliest next fire time of any schedule, or
// the zero time when none is due ever.
func (s *Store) EarliestFire(ctx context.Context) (time.Time, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.schedDueKey(), 0, 0).Result()
	if err != nil {
		return time.Time{}, fmt.Errorf("store: earliest fire: %w", err)
	}
	if len(zs) == 0 {
		return time.Time{}, nil
	}
	return time.Unix(int64(zs[0].Score), 0).UTC(), nil
}

// DueFires returns up to limit schedules whose next fire time is at or
// before now, earliest first.
func (s *Store) DueFires(ctx context.Context, now time.Time, limit int64) ([]DueFire, error) {
	zs, err := s.rdb.ZRangeByScoreWithScores(ctx, s.schedDueKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now.Unix(), 10), Count: limit,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: due fires: %w", err)
	}
	out := make([]DueFire, len(zs))
	for i, z := range zs {
		id, _ := z.Member.(string)
		out[i] = DueFire{ID: id, At: time.Unix(int64(z.Score), 0).UTC()}
	}
	return out, nil
}

// claimScript advances a schedule's next fire time from ARGV[2] to
// ARGV[3] ("" for none) only when it is still ARGV[2], and in the same
// step records the run and, when ARGV[7] is set, the pending fire.
var claimScript = redis.NewScript(`
local cur = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not cur or tonumber(cur) ~= tonumber(ARGV[2]) then return 0 end
if ARGV[3] == '' then redis.call('ZREM', KEYS[1], ARGV[1]) else redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1]) end
if redis.call('HSETNX', KEYS[2], ARGV[4], ARGV[5]) == 1 then redis.call('ZADD', KEYS[3], ARGV[6], ARGV[4]) end
if ARGV[7] ~= '' then redis.call('ZADD', KEYS[4], ARGV[8], ARGV[7]) end
return 1
`)

// ClaimFire claims the fire of schedule id due at `at`: it moves the
// schedule's next fire time to next (none when zero) and records run, in
// one atomic step that succeeds only while the next fire time is still
// `at`. Of several schedulers claiming one fire, exactly one gets true.
// When enqueue is true the fire is also recorded as pending until
// FireEnqueued, so that another scheduler enqueues it should this one die
// first (StalePendingFires).
func (s *Store) ClaimFire(ctx context.Context, id string, at, next time.Time, run ScheduleRun, enqueue bool, now time.Time) (bool, error) {
	data, err := jsonBytes(run)
	if err != nil {
		return false, err
	}
	nextArg, pending := "", ""
	if !next.IsZero() {
		nextArg = strconv.FormatInt(next.Unix(), 10)
	}
	if enqueue {
		pending = id + "|" + run.Key
	}
	n, err := claimScript.Run(ctx, s.rdb,
		[]string{s.schedDueKey(), s.schedRunsKey(id), s.schedRunIdxKey(id), s.schedPendingKey()},
		id, at.Unix(), nextArg, run.Key, data, run.ScheduledAt.Unix(), pending, now.UnixMilli()).Int()
	if err != nil {
		return false, fmt.Errorf("store: claim fire of %s: %w", id, err)
	}
	if n == 1 {
		s.trimRuns(ctx, id)
	}
	return n == 1, nil
}

// FireEnqueued clears the pending mark of a fire whose task is enqueued.
func (s *Store) FireEnqueued(ctx context.Context, f PendingFire) error {
	if err := s.rdb.ZRem(ctx, s.schedPendingKey(), f.ID+"|"+f.Key).Err(); err != nil {
		return fmt.Errorf("store: fire enqueued: %w", err)
	}
	return nil
}

// StalePendingFires returns the fires claimed before `before` whose tasks
// are not known to be enqueued.
func (s *Store) StalePendingFires(ctx context.Context, before time.Time) ([]PendingFire, error) {
	ms, err := s.rdb.ZRangeByScore(ctx, s.schedPendingKey(), &redis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(before.UnixMilli(), 10), Count: 100,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("store: pending fires: %w", err)
	}
	out := make([]PendingFire, 0, len(ms))
	for _, m := range ms {
		id, key, ok := strings.Cut(m, "|")
		if ok {
			out = append(out, PendingFire{ID: id, Key: key})
		}
	}
	return out, nil
}

// PutScheduleRun records run of its schedule, replacing the run of the
// same key.
func (s *Store) PutScheduleRun(ctx context.Context, run ScheduleRun) error {
	data, err := jsonBytes(run)
	if err != nil {
		return err
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.schedRunsKey(run.ScheduleID), run.Key, data)
		p.ZAdd(ctx, s.schedRunIdxKey(run.ScheduleID), redis.Z{Score: float64(run.ScheduledAt.Unix()), Member: run.Key})
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: put schedule run: %w", err)
	}
	s.trimRuns(ctx, run.ScheduleID)
	return nil
}

// trimRuns drops the oldest runs beyond ScheduleRunsKept. Failing to is
// harmless: the next run tries again.
func (s *Store) trimRuns(ctx context.Context, id string) {
	old, err := s.rdb.ZRange(ctx, s.schedRunIdxKey(id), 0, -ScheduleRunsKept-1).Result()
	if err != nil || len(old) == 0 {
		return
	}
	_, _ = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HDel(ctx, s.schedRunsKey(id), old...)
		p.ZRem(ctx, s.schedRunIdxKey(id), toAny(old)...)
		return nil
	})
}

func toAny(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}

// ScheduleRun returns the run key of schedule id.
func (s *Store) ScheduleRun(ctx context.Context, id, key string) (ScheduleRun, error) {
	var run ScheduleRun
	b, err := s.rdb.HGet(ctx, s.schedRunsKey(id), key).Bytes()
	if errors.Is(err, redis.Nil) {
		return run, fmt.Errorf("run %s of schedule %q: %w", key, id, ErrNotFound)
	}
	if err != nil {
		return run, fmt.Errorf("store: get schedule run: %w", err)
	}
	if err := json.Unmarshal(b, &run); err != nil {
		return run, fmt.Errorf("store: decode schedule run: %w", err)
	}
	return run, nil
}

// ScheduleRuns returns the newest limit runs of schedule id (all kept
// runs when limit is 0), newest first.
func (s *Store) ScheduleRuns(ctx context.Context, id string, limit int64) ([]ScheduleRun, error) {
	keys, err := s.rdb.ZRevRange(ctx, s.schedRunIdxKey(id), 0, limit-1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list schedule runs: %w", err)
	}
	if len(keys) == 0 {
		return []ScheduleRun{}, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.schedRunsKey(id), keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list schedule runs: %w", err)
	}
	out := make([]ScheduleRun, 0, len(vals))
	for _, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var run ScheduleRun
		if err := json.Unmarshal([]byte(str), &run); err != nil {
			return nil, fmt.Errorf("store: decode schedule run: %w", err)
		}
		out = append(out, run)
	}
	return out, nil
}

// SchedulesUsingVersion returns the schedules whose deploy action runs
// packageID at exactly version, itself or through a step of its
// blueprint. A schedule that runs the active version does not pin one.
func (s *Store) SchedulesUsingVersion(ctx context.Context, packageID, version string) ([]Schedule, error) {
	recs, err := listJSON[storedSchedule](ctx, s, s.schedsKey(), s.schedKey)
	if err != nil {
		return nil, fmt.Errorf("store: list schedules: %w", err)
	}
	var out []Schedule
	for _, r := range recs {
		a := r.Action
		if a.Kind != ActionDeploy {
			continue
		}
		uses := a.Package == packageID && a.Version == version
		if !uses && a.Blueprint != "" {
			var bp storedBlueprint
			err := getJSON(ctx, s.rdb, s.blueprintKey(a.Blueprint), &bp)
			if err != nil && !errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("store: blueprint of schedule %s: %w", r.ID, err)
			}
			for _, st := range bp.Steps {
				if st.Package == packageID && st.Version == version {
					uses = true
				}
			}
		}
		if uses {
			out = append(out, r.Schedule)
		}
	}
	return out, nil
}
