package tasks_test

import (
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func TestBackoffCeiling(t *testing.T) {
	b := tasks.Backoff{Base: time.Second, Cap: 10 * time.Second}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{-1, time.Second},
		{0, time.Second},
		{1, 2 * time.Second},
		{2, 4 * time.Second},
		{3, 8 * time.Second},
		{4, 10 * time.Second},
		{62, 10 * time.Second},
		{1 << 30, 10 * time.Second},
	}
	for _, tt := range tests {
		if got := b.Ceiling(tt.attempt); got != tt.want {
			t.Errorf("Ceiling(%d) = %v, want %v", tt.attempt, got, tt.want)
		}
	}
	if got := (tasks.Backoff{}).Ceiling(3); got != 0 {
		t.Errorf("zero Backoff: Ceiling = %v, want 0", got)
	}
}

func TestBackoffDelayBounds(t *testing.T) {
	rnd := rand.New(rand.NewPCG(1, 2))
	policies := []tasks.Backoff{
		{Base: 10 * time.Second, Cap: 10 * time.Minute, Jitter: true},
		{Base: 3 * time.Millisecond, Cap: 7 * time.Millisecond, Jitter: true},
		{Base: time.Nanosecond, Cap: time.Hour, Jitter: true},
		{Base: time.Second, Cap: time.Second, Jitter: true},
	}
	for _, b := range policies {
		for attempt := range 40 {
			bound := time.Duration(math.Min(float64(b.Cap), float64(b.Base)*math.Pow(2, float64(attempt))))
			for range 50 {
				if d := b.Delay(attempt, rnd); d < 0 || d > bound {
					t.Fatalf("%+v: Delay(%d) = %v, want within [0, %v]", b, attempt, d, bound)
				}
			}
		}
	}
}

func TestBackoffDelaySpread(t *testing.T) {
	b := tasks.Backoff{Base: time.Second, Cap: time.Minute, Jitter: true}
	rnd := rand.New(rand.NewPCG(3, 4))
	const n = 4000
	bound := b.Ceiling(3) // 8s
	var sum time.Duration
	seen := map[time.Duration]bool{}
	var low, high int
	for range n {
		d := b.Delay(3, rnd)
		sum += d
		seen[d] = true
		if d < bound/4 {
			low++
		}
		if d > bound*3/4 {
			high++
		}
	}
	if len(seen) < n/2 {
		t.Errorf("only %d distinct delays in %d draws", len(seen), n)
	}
	// The mean of a uniform draw in [0, bound] is bound/2; with 4000 draws
	// its standard error is under 1% of bound, so ±10% never flakes.
	mean := sum / n
	if mean < bound*4/10 || mean > bound*6/10 {
		t.Errorf("mean delay %v, want about %v", mean, bound/2)
	}
	// Both quarters at the edges are reached (expect ~1000 each).
	if low < n/8 || high < n/8 {
		t.Errorf("draws below ¼ bound: %d, above ¾ bound: %d; want both ≥ %d", low, high, n/8)
	}
}

func TestBackoffDeterministicWithoutJitter(t *testing.T) {
	b := tasks.Backoff{Base: 2 * time.Second, Cap: time.Minute}
	r1 := rand.New(rand.NewPCG(1, 1))
	r2 := rand.New(rand.NewPCG(9, 9))
	for attempt := range 10 {
		if d1, d2 := b.Delay(attempt, r1), b.Delay(attempt, r2); d1 != d2 || d1 != b.Ceiling(attempt) {
			t.Errorf("Delay(%d) = %v and %v, want %v both times", attempt, d1, d2, b.Ceiling(attempt))
		}
	}
	// Jitter on but no random source: the ceiling.
	b.Jitter = true
	if d := b.Delay(1, nil); d != 4*time.Second {
		t.Errorf("nil source: Delay = %v, want 4s", d)
	}
}

func TestBackoffValidate(t *testing.T) {
	tests := []struct {
		b    tasks.Backoff
		okay bool
	}{
		{tasks.DefaultBackoff(), true},
		{tasks.Backoff{}, true},
		{tasks.Backoff{Base: time.Second, Cap: time.Second}, true},
		{tasks.Backoff{Base: -time.Second, Cap: time.Second}, false},
		{tasks.Backoff{Base: time.Minute, Cap: time.Second}, false},
	}
	for _, tt := range tests {
		if err := tt.b.Validate(); (err == nil) != tt.okay {
			t.Errorf("%+v: Validate() = %v, want ok=%v", tt.b, err, tt.okay)
		}
	}
}

func TestRetryDelayFuncOverride(t *testing.T) {
	defaults := tasks.Backoff{Base: time.Second, Cap: time.Minute}
	f := tasks.RetryDelayFunc(defaults, rand.NewPCG(1, 2))
	off := false
	withRetry, err := tasks.WithRetry([]byte(`{"server":"s1"}`), tasks.Retry{
		Max: tasks.Retries(5), Backoff: tasks.Duration(3 * time.Second), BackoffMax: tasks.Duration(5 * time.Second), Jitter: &off,
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		payload []byte
		attempt int
		want    time.Duration
	}{
		{"defaults", []byte(`{"server":"s1"}`), 2, 4 * time.Second},
		{"not JSON", []byte("raw bytes"), 0, time.Second},
		{"override", withRetry, 0, 3 * time.Second},
		{"override capped", withRetry, 3, 5 * time.Second},
		{"only base", []byte(`{"retry":{"backoff":"500ms"}}`), 1, time.Second},
		{"seconds as number", []byte(`{"retry":{"backoff":2}}`), 0, 2 * time.Second},
		{"invalid override ignored", []byte(`{"retry":{"backoff":"-1s"}}`), 0, time.Second},
		{"cap below base raised", []byte(`{"retry":{"backoff":"2m"}}`), 0, 2 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := f(tt.attempt, nil, asynq.NewTask("x", tt.payload)); got != tt.want {
				t.Errorf("delay = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRetryDelayFuncJitterFromOverride(t *testing.T) {
	f := tasks.RetryDelayFunc(tasks.Backoff{Base: time.Second, Cap: time.Minute}, rand.NewPCG(5, 6))
	task := asynq.NewTask("x", []byte(`{"retry":{"jitter":true,"backoff":"1m","backoff_max":"1m"}}`))
	seen := map[time.Duration]bool{}
	for range 100 {
		d := f(0, nil, task)
		if d < 0 || d > time.Minute {
			t.Fatalf("delay %v out of [0, 1m]", d)
		}
		seen[d] = true
	}
	if len(seen) < 50 {
		t.Errorf("jitter on: only %d distinct delays in 100", len(seen))
	}
}

func TestWithRetry(t *testing.T) {
	out, err := tasks.WithRetry([]byte(`{"a":1,"retry":{"max":9}}`), tasks.Retry{Max: tasks.Retries(2), Backoff: tasks.Duration(time.Minute)})
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"a": 1.0, "retry": map[string]any{"max": 2.0, "backoff": "1m0s"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	r, ok := tasks.RetryFromPayload(out)
	if !ok || r.MaxRetry() != 2 {
		t.Errorf("RetryFromPayload = %+v, %v", r, ok)
	}
	if _, err := tasks.WithRetry([]byte(`[1]`), tasks.Retry{}); err == nil {
		t.Error("WithRetry on a JSON array: want an error")
	}
	if _, err := tasks.WithRetry(nil, tasks.Retry{Max: tasks.Retries(-1)}); err == nil {
		t.Error("negative max: want an error")
	}
	if r, ok := tasks.RetryFromPayload([]byte(`{"a":1}`)); ok || r.MaxRetry() != tasks.DefaultRetryMax {
		t.Errorf("no retry object: got %+v, %v", r, ok)
	}
}

// TestRetryMaxZeroMeansNoRetry: "max": 0 is the "do not retry" switch; only
// an absent max means the default. The policy keeps its meaning through
// the JSON round trips of payloads, execution records (rerun) and
// schedules.
func TestRetryMaxZeroMeansNoRetry(t *testing.T) {
	tests := []struct {
		json string
		want int
	}{
		{`{"max":0}`, 0},
		{`{"max":0,"backoff":"1s"}`, 0},
		{`{"max":2}`, 2},
		{`{}`, tasks.DefaultRetryMax},
		{`{"backoff":"1s"}`, tasks.DefaultRetryMax},
		{`{"max":null}`, tasks.DefaultRetryMax},
	}
	for _, tt := range tests {
		var r tasks.Retry
		if err := json.Unmarshal([]byte(tt.json), &r); err != nil {
			t.Fatalf("%s: %v", tt.json, err)
		}
		if got := r.MaxRetry(); got != tt.want {
			t.Errorf("%s: MaxRetry() = %d, want %d", tt.json, got, tt.want)
		}
		// As a schedule or an execution record stores it.
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		var back tasks.Retry
		if err := json.Unmarshal(b, &back); err != nil || back.MaxRetry() != tt.want {
			t.Errorf("%s: stored as %s, read back MaxRetry() = %d (%v), want %d", tt.json, b, back.MaxRetry(), err, tt.want)
		}
		// As a task payload carries it.
		payload, err := tasks.WithRetry([]byte(`{"server":"s1"}`), r)
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := tasks.RetryFromPayload(payload); !ok || p.MaxRetry() != tt.want {
			t.Errorf("%s: payload %s gives MaxRetry() = %d, %v, want %d", tt.json, payload, p.MaxRetry(), ok, tt.want)
		}
	}
}

// TestEnqueueRetryMaxZero: a payload saying "max": 0 is enqueued with no
// retry at all.
func TestEnqueueRetryMaxZero(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	c := tasks.NewClient(rdb, store.New(rdb, store.Options{}), nil)
	payload, err := tasks.WithRetry([]byte(`{"server":"s1"}`), tasks.Retry{Max: tasks.Retries(0)})
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.Enqueue(ctx, "acct", asynq.NewTask(tasks.TypeExecuteServer, payload))
	if err != nil {
		t.Fatal(err)
	}
	if info.MaxRetry != 0 {
		t.Errorf("MaxRetry = %d, want 0", info.MaxRetry)
	}
}

// TestScheduleDeployRetryMaxZero: a schedule's deploy with "max": 0
// deploys without retries.
func TestScheduleDeployRetryMaxZero(t *testing.T) {
	ctx := context.Background()
	_, rdb := testenv.Miniredis(t)
	st := store.New(rdb, store.Options{})
	if _, err := st.EnsureRootAccount(ctx); err != nil {
		t.Fatal(err)
	}
	for raw, want := range map[string]int{`{"max":0}`: 0, `{"max":4}`: 4, `{"backoff":"5s"}`: tasks.DefaultRetryMax} {
		sc := store.Schedule{ID: "s1", AccountID: store.RootAccountID, User: "alice", Action: store.ScheduleAction{
			Kind: store.ActionDeploy, Package: "0b8f5e0e-1111-4c2a-9a55-0c1d2e3f4a01", Version: "1", Retry: json.RawMessage(raw)}}
		req, _, err := tasks.ScheduleDeployRequest(ctx, st, sc)
		if err != nil {
			t.Fatal(err)
		}
		if req.Retry == nil || req.Retry.MaxRetry() != want {
			t.Errorf("schedule retry %s: deploys with %+v, want %d retries", raw, req.Retry, want)
		}
	}
}
