package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Execution and server-run statuses.
const (
	StatusQueued    = "queued"
	StatusRunning   = "running"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
	// StatusSkipped is a step not run: cancelled before it started, or
	// meant for servers of another OS.
	StatusSkipped = "skipped"
	StatusPending = "pending"
)

// DefaultExecutionRetention is how long an execution, its log and its
// events are kept after their last change, unless the execution says
// otherwise.
const DefaultExecutionRetention = 30 * 24 * time.Hour

// DefaultLogMaxLen bounds the events kept per execution (approximately).
const DefaultLogMaxLen = 100_000

// ExecStep is one step of an execution's plan: a package version and what
// its manifest says about running it.
type ExecStep struct {
	// Step is the step's number, from 1, as the log and the events
	// number it.
	Step    int    `json:"step"`
	Package string `json:"package"`
	Version string `json:"version"`
	Name    string `json:"name"`
	// OS is the OS the package runs on (linux or windows); servers of
	// another OS skip the step.
	OS              string        `json:"os"`
	Mode            string        `json:"mode"`
	Command         string        `json:"command"`
	Persistent      bool          `json:"persistent"`
	RebootOnSuccess bool          `json:"reboot_on_success"`
	Timeout         time.Duration `json:"timeout"`
	// System lists the system variables the manifest declares, spelled
	// as declared; the worker fills them per server.
	System []string `json:"system,omitempty"`
}

// Value is one parameter value of a step. Secret values are sealed at
// rest and never part of API answers.
type Value struct {
	Text   string `json:"text"`
	Secret bool   `json:"secret,omitempty"`
}

// Execution is one deployment of a blueprint (or one package) onto
// servers.
type Execution struct {
	ID          string `json:"id"`
	AccountID   string `json:"account_id"`
	BlueprintID string `json:"blueprint_id,omitempty"`
	// User and Account name who deployed (T3.Identity.User and
	// T3.Identity.Account).
	User        string     `json:"user"`
	AccountName string     `json:"account_name"`
	Steps       []ExecStep `json:"steps"`
	ServerIDs   []string   `json:"server_ids"`
	// Parameters are the values the deployment was given, for the audit;
	// password values are masked (their sealed values are kept apart, for
	// the worker only).
	Parameters map[string]string `json:"parameters,omitempty"`
	// Retry is the retry policy as requested (JSON), for the record.
	Retry json.RawMessage `json:"retry,omitempty"`
	// Timeout bounds each server's whole run; 0 means none.
	Timeout   time.Duration `json:"timeout,omitempty"`
	Retention time.Duration `json:"retention"`
	CreatedAt time.Time     `json:"created_at"`
	// Cancelled is set by a cancel and cleared by a rerun.
	Cancelled bool `json:"cancelled"`
	// CancelledBy and CancelledAt say who cancelled the execution last,
	// and when; a rerun keeps them, for the audit.
	CancelledBy string     `json:"cancelled_by,omitempty"`
	CancelledAt *time.Time `json:"cancelled_at,omitempty"`
}

// number fills the step numbers of e (records written before they were
// stored lack them).
func (e *Execution) number() {
	for i := range e.Steps {
		e.Steps[i].Step = StepNumber(i)
	}
}

// StepNumber is the number, from 1, of the step at index i of an
// execution's plan: the one the log, the events and the record show.
// Events of the server as a whole carry step 0 (index -1).
func StepNumber(i int) int {
	if i < 0 {
		return 0
	}
	return i + 1
}

// StepRun is the state of one step on one server; a finished step is
// its checkpoint.
type StepRun struct {
	// Step is the step's number, from 1.
	Step   int    `json:"step"`
	Status string `json:"status"`
	// Phase is how far the step went: "" (nothing yet), "ran" (the
	// command succeeded), "rebooted" (the reboot after it finished) and
	// "done". A retry resumes after the last phase reached.
	Phase      string     `json:"phase,omitempty"`
	Attempts   int        `json:"attempts"`
	ExitCode   *int       `json:"exit_code,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Rebooted   bool       `json:"rebooted"`
	// Dir is where the package was uploaded; PersistedPath is set when
	// it stays there.
	Dir           string `json:"dir,omitempty"`
	PersistedPath string `json:"persisted_path,omitempty"`
	Error         string `json:"error,omitempty"`
}

// ServerRun is the state of an execution on one server.
type ServerRun struct {
	ServerID   string `json:"server_id"`
	Name       string `json:"name"`
	Datacenter string `json:"datacenter"`
	// Run counts the runs (1, then one more per rerun); TaskID is the
	// task of the current one.
	Run        int        `json:"run"`
	TaskID     string     `json:"task_id"`
	Status     string     `json:"status"`
	Attempts   int        `json:"attempts"`
	Error      string     `json:"error,omitempty"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
	Steps      []StepRun  `json:"steps"`
}

// number fills the step numbers of r.
func (r *ServerRun) number() {
	for i := range r.Steps {
		r.Steps[i].Step = StepNumber(i)
	}
}

// Final reports whether the run has ended.
func (r ServerRun) Final() bool {
	return r.Status == StatusSucceeded || r.Status == StatusFailed || r.Status == StatusCancelled
}

// ExecutionStatus derives an execution's status from its server runs.
func ExecutionStatus(runs []ServerRun) string {
	var queued, running, failed, cancelled int
	for _, r := range runs {
		switch r.Status {
		case StatusQueued:
			queued++
		case StatusRunning:
			running++
		case StatusFailed:
			failed++
		case StatusCancelled:
			cancelled++
		}
	}
	switch {
	case running > 0 || (queued > 0 && queued < len(runs)):
		return StatusRunning
	case queued > 0:
		return StatusQueued
	case failed > 0:
		return StatusFailed
	case cancelled > 0:
		return StatusCancelled
	}
	return StatusSucceeded
}

// Event is one entry of an execution's event stream: a log line or a
// change of a server's state.
type Event struct {
	// ID is the stream ID; SSE's Last-Event-ID resumes after it.
	ID     string `json:"id"`
	Kind   string `json:"kind"` // "log" or "state"
	Server string `json:"server"`
	// Step is the step's number, from 1 (StepNumber); 0 for the server
	// as a whole.
	Step   int       `json:"step"`
	Stream string    `json:"stream,omitempty"` // stdout, stderr, or packflow
	Line   string    `json:"line,omitempty"`
	Status string    `json:"status,omitempty"`
	Time   time.Time `json:"time"`
}

// Event kinds.
const (
	EventLog   = "log"
	EventState = "state"
)

func (s *Store) execKey(id, part string) string { return s.key("{ex:"+id+"}", part) }
func (s *Store) execIndexKey() string           { return s.key("{exidx}", "all") }

// NewExecutionID returns a fresh execution ID, for callers that derive
// task IDs before CreateExecution.
func NewExecutionID() string { return newID() }

// CreateExecution records e with one run per server and the sealed
// values of each step (values[i] for e.Steps[i]).
func (s *Store) CreateExecution(ctx context.Context, e Execution, runs []ServerRun, values []map[string]Value) (Execution, error) {
	if e.ID == "" {
		e.ID = newID()
	}
	if e.Retention <= 0 {
		e.Retention = DefaultExecutionRetention
	}
	e.CreatedAt = time.Now().UTC().Truncate(time.Millisecond)
	e.number()
	for i := range runs {
		runs[i].number()
	}
	sealedVals, err := s.sealValues(e.ID, values)
	if err != nil {
		return Execution{}, err
	}
	rec, err := jsonBytes(e)
	if err != nil {
		return Execution{}, err
	}
	vals, err := jsonBytes(sealedVals)
	if err != nil {
		return Execution{}, err
	}
	fields := make([]any, 0, 2*len(runs))
	for _, r := range runs {
		b, err := jsonBytes(r)
		if err != nil {
			return Execution{}, err
		}
		fields = append(fields, r.ServerID, b)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, s.execKey(e.ID, "rec"), rec, e.Retention)
		p.Set(ctx, s.execKey(e.ID, "values"), vals, e.Retention)
		p.HSet(ctx, s.execKey(e.ID, "runs"), fields...)
		p.PExpire(ctx, s.execKey(e.ID, "runs"), e.Retention)
		return nil
	})
	if err != nil {
		return Execution{}, fmt.Errorf("store: create execution: %w", err)
	}
	if err := s.rdb.ZAdd(ctx, s.execIndexKey(), redis.Z{Score: float64(e.CreatedAt.UnixMilli()), Member: e.ID}).Err(); err != nil {
		return Execution{}, fmt.Errorf("store: index execution: %w", err)
	}
	return e, nil
}

type sealedValue struct {
	Text   string `json:"text,omitempty"`
	Sealed string `json:"sealed,omitempty"`
}

func (s *Store) sealValues(id string, values []map[string]Value) ([]map[string]sealedValue, error) {
	out := make([]map[string]sealedValue, len(values))
	for i, m := range values {
		out[i] = make(map[string]sealedValue, len(m))
		for k, v := range m {
			if !v.Secret {
				out[i][k] = sealedValue{Text: v.Text}
				continue
			}
			if s.secrets == nil {
				return nil, ErrNoSecretKey
			}
			sv, err := s.secrets.SealString(v.Text, aad(fmt.Sprintf("exec:%s:%d", id, i), k))
			if err != nil {
				return nil, err
			}
			out[i][k] = sealedValue{Sealed: sv}
		}
	}
	return out, nil
}

// ExecutionValues opens the parameter values of execution id's steps.
func (s *Store) ExecutionValues(ctx context.Context, id string) ([]map[string]Value, error) {
	var sealed []map[string]sealedValue
	if err := getJSON(ctx, s.rdb, s.execKey(id, "values"), &sealed); err != nil {
		return nil, fmt.Errorf("store: execution %s values: %w", id, err)
	}
	out := make([]map[string]Value, len(sealed))
	for i, m := range sealed {
		out[i] = make(map[string]Value, len(m))
		for k, v := range m {
			if v.Sealed == "" {
				out[i][k] = Value{Text: v.Text}
				continue
			}
			if s.secrets == nil {
				return nil, ErrNoSecretKey
			}
			pt, err := s.secrets.OpenString(v.Sealed, aad(fmt.Sprintf("exec:%s:%d", id, i), k))
			if err != nil {
				return nil, fmt.Errorf("store: open execution %s values: %w", id, err)
			}
			out[i][k] = Value{Text: pt, Secret: true}
		}
	}
	return out, nil
}

// Execution returns execution id.
func (s *Store) Execution(ctx context.Context, id string) (Execution, error) {
	e, err := getRecord[Execution](ctx, s.rdb, s.execKey(id, "rec"), "execution %q", id)
	e.number()
	return e, err
}

// ServerRuns returns the runs of execution id in the order of its
// servers.
func (s *Store) ServerRuns(ctx context.Context, e Execution) ([]ServerRun, error) {
	m, err := s.rdb.HGetAll(ctx, s.execKey(e.ID, "runs")).Result()
	if err != nil {
		return nil, fmt.Errorf("store: execution runs: %w", err)
	}
	out := make([]ServerRun, 0, len(e.ServerIDs))
	for _, sid := range e.ServerIDs {
		b, ok := m[sid]
		if !ok {
			continue
		}
		var r ServerRun
		if err := json.Unmarshal([]byte(b), &r); err != nil {
			return nil, fmt.Errorf("store: decode run %s: %w", sid, err)
		}
		r.number()
		out = append(out, r)
	}
	return out, nil
}

// ServerRun returns the run of server sid in execution id.
func (s *Store) ServerRun(ctx context.Context, id, sid string) (ServerRun, error) {
	b, err := s.rdb.HGet(ctx, s.execKey(id, "runs"), sid).Bytes()
	if errors.Is(err, redis.Nil) {
		return ServerRun{}, fmt.Errorf("execution %s server %s: %w", id, sid, ErrNotFound)
	}
	if err != nil {
		return ServerRun{}, fmt.Errorf("store: get run: %w", err)
	}
	var r ServerRun
	if err := json.Unmarshal(b, &r); err != nil {
		return ServerRun{}, fmt.Errorf("store: decode run: %w", err)
	}
	r.number()
	return r, nil
}

// PutServerRun writes r (the checkpoint of its steps) and adds a state
// event for the step at index step (-1 for the server as a whole).
func (s *Store) PutServerRun(ctx context.Context, e Execution, r ServerRun, step int) error {
	r.number()
	b, err := jsonBytes(r)
	if err != nil {
		return err
	}
	status := r.Status
	if step >= 0 && step < len(r.Steps) {
		status = r.Steps[step].Status
	}
	ev := Event{Kind: EventState, Server: r.Name, Step: StepNumber(step), Status: status, Line: r.Error,
		Time: time.Now().UTC()}
	if step >= 0 && step < len(r.Steps) {
		ev.Line = r.Steps[step].Error
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, s.execKey(e.ID, "runs"), r.ServerID, b)
		s.addEvents(ctx, p, e, ev)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save run: %w", err)
	}
	return nil
}

func (s *Store) addEvents(ctx context.Context, p redis.Pipeliner, e Execution, evs ...Event) {
	key := s.execKey(e.ID, "events")
	for _, ev := range evs {
		p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: DefaultLogMaxLen, Approx: true, Values: []any{
			"kind", ev.Kind, "server", ev.Server, "step", strconv.Itoa(ev.Step), "stream", ev.Stream,
			"line", ev.Line, "status", ev.Status, "time", ev.Time.Format(time.RFC3339Nano),
		}})
	}
	ttl := e.Retention
	if ttl <= 0 {
		ttl = DefaultExecutionRetention
	}
	for _, part := range []string{"events", "rec", "runs", "values"} {
		p.PExpire(ctx, s.execKey(e.ID, part), ttl)
	}
}

// AppendLog adds log events to execution e's stream.
func (s *Store) AppendLog(ctx context.Context, e Execution, evs []Event) error {
	if len(evs) == 0 {
		return nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		s.addEvents(ctx, p, e, evs...)
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: append log: %w", err)
	}
	return nil
}

// Events returns up to count events of execution id after the stream ID
// after ("" or "0" for the start). With block > 0 it waits that long for
// new events when there are none.
func (s *Store) Events(ctx context.Context, id, after string, count int64, block time.Duration) ([]Event, error) {
	if after == "" {
		after = "0"
	}
	key := s.execKey(id, "events")
	var msgs []redis.XMessage
	if block > 0 {
		res, err := s.rdb.XRead(ctx, &redis.XReadArgs{Streams: []string{key, after}, Count: count, Block: block}).Result()
		if errors.Is(err, redis.Nil) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("store: read events: %w", err)
		}
		for _, st := range res {
			msgs = append(msgs, st.Messages...)
		}
	} else {
		start := "(" + after
		if after == "0" {
			start = "-"
		}
		var err error
		msgs, err = s.rdb.XRangeN(ctx, key, start, "+", count).Result()
		if err != nil {
			return nil, fmt.Errorf("store: read events: %w", err)
		}
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		str := func(k string) string { v, _ := m.Values[k].(string); return v }
		step, _ := strconv.Atoi(str("step"))
		t, _ := time.Parse(time.RFC3339Nano, str("time"))
		out = append(out, Event{ID: m.ID, Kind: str("kind"), Server: str("server"), Step: step,
			Stream: str("stream"), Line: str("line"), Status: str("status"), Time: t})
	}
	return out, nil
}

// Executions returns every execution, newest first.
func (s *Store) Executions(ctx context.Context) ([]Execution, error) {
	ids, err := s.rdb.ZRevRange(ctx, s.execIndexKey(), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list executions: %w", err)
	}
	out := make([]Execution, 0, len(ids))
	var gone []any
	for _, id := range ids {
		e, err := s.Execution(ctx, id)
		if errors.Is(err, ErrNotFound) {
			gone = append(gone, id) // expired
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	if len(gone) > 0 {
		_ = s.rdb.ZRem(ctx, s.execIndexKey(), gone...).Err()
	}
	return out, nil
}

// SetCancelled sets the cancel flag of execution id, recording by (the
// user) and the time, or clears it (cancelled false; the audit fields
// stay).
func (s *Store) SetCancelled(ctx context.Context, id string, cancelled bool, by string) (Execution, error) {
	k := s.execKey(id, "rec")
	var out Execution
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		if err := getJSON(ctx, tx, k, &out); err != nil {
			return err
		}
		if cancelled && !out.Cancelled {
			now := time.Now().UTC().Truncate(time.Millisecond)
			out.CancelledBy, out.CancelledAt = by, &now
		}
		out.Cancelled = cancelled
		b, err := jsonBytes(out)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, k, b, redis.KeepTTL)
			return nil
		})
		return err
	}, k)
	if errors.Is(err, ErrNotFound) {
		return out, fmt.Errorf("execution %q: %w", id, ErrNotFound)
	}
	out.number()
	return out, wrapStoreErr("cancel execution", err)
}

// Server leases: at most one step runs on a server at once, across every
// worker. A lease is a key holding its holder's token with an expiry; the
// holder renews it while it works and releases it at the end, and a
// holder that dies loses it when it expires.

var (
	renewLease = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("PEXPIRE", KEYS[1], ARGV[2]) end return 0`)
	dropLease  = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)
)

func (s *Store) leaseKey(name string) string { return s.key("{lease}", name) }

// ServerLeaseName names the lease of server id.
func ServerLeaseName(id string) string { return "server:" + id }

// AcquireLease takes lease name for token for ttl; false when another
// token holds it.
func (s *Store) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	ok, err := s.rdb.SetNX(ctx, s.leaseKey(name), token, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("store: acquire lease %s: %w", name, err)
	}
	return ok, nil
}

// RenewLease extends lease name held by token; false when it was lost.
func (s *Store) RenewLease(ctx context.Context, name, token string, ttl time.Duration) (bool, error) {
	n, err := renewLease.Run(ctx, s.rdb, []string{s.leaseKey(name)}, token, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("store: renew lease %s: %w", name, err)
	}
	return n == 1, nil
}

// ReleaseLease gives up lease name if token still holds it.
func (s *Store) ReleaseLease(ctx context.Context, name, token string) error {
	if err := dropLease.Run(ctx, s.rdb, []string{s.leaseKey(name)}, token).Err(); err != nil {
		return fmt.Errorf("store: release lease %s: %w", name, err)
	}
	return nil
}

func (s *Store) countKey(group string) string { return s.key("{lease}", "group", group) }

// AcquireSlot takes one of limit slots of group for token (a sorted set
// of holders scored by expiry, expired holders dropped first).
func (s *Store) AcquireSlot(ctx context.Context, group, token string, limit int, ttl time.Duration) (bool, error) {
	n, err := acquireSlot.Run(ctx, s.rdb, []string{s.countKey(group)}, token, limit,
		time.Now().UnixMilli(), ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("store: acquire slot %s: %w", group, err)
	}
	return n == 1, nil
}

// RenewSlot extends token's slot of group.
func (s *Store) RenewSlot(ctx context.Context, group, token string, ttl time.Duration) error {
	err := s.rdb.ZAddXX(ctx, s.countKey(group), redis.Z{Member: token, Score: float64(time.Now().Add(ttl).UnixMilli())}).Err()
	if err != nil {
		return fmt.Errorf("store: renew slot %s: %w", group, err)
	}
	return nil
}

// ReleaseSlot gives token's slot of group back.
func (s *Store) ReleaseSlot(ctx context.Context, group, token string) error {
	if err := s.rdb.ZRem(ctx, s.countKey(group), token).Err(); err != nil {
		return fmt.Errorf("store: release slot %s: %w", group, err)
	}
	return nil
}

var acquireSlot = redis.NewScript(`
redis.call("ZREMRANGEBYSCORE", KEYS[1], "-inf", ARGV[3])
if redis.call("ZSCORE", KEYS[1], ARGV[1]) then
  redis.call("ZADD", KEYS[1], ARGV[3] + ARGV[4], ARGV[1]) return 1
end
if redis.call("ZCARD", KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call("ZADD", KEYS[1], ARGV[3] + ARGV[4], ARGV[1])
redis.call("PEXPIRE", KEYS[1], ARGV[4])
return 1`)
