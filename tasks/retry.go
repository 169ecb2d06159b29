package tasks

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/hibiken/asynq"
)

// DefaultRetryMax is how many times a task is retried unless its enqueuer
// says otherwise.
const DefaultRetryMax = 3

// Backoff is an exponential retry delay with an optional full jitter and a
// cap. The zero value means "no delay"; use DefaultBackoff or fill both
// durations.
type Backoff struct {
	// Base is the ceiling of the first retry delay; it doubles with each
	// attempt. Default 10s.
	Base time.Duration
	// Cap bounds every delay. Default 10m.
	Cap time.Duration
	// Jitter draws the delay uniformly from [0, ceiling] instead of using
	// the ceiling itself, so that tasks failing together do not retry
	// together. Default true.
	Jitter bool
}

// DefaultBackoff returns the platform's default retry delay policy.
func DefaultBackoff() Backoff {
	return Backoff{Base: 10 * time.Second, Cap: 10 * time.Minute, Jitter: true}
}

// Validate reports a policy that cannot be used.
func (b Backoff) Validate() error {
	switch {
	case b.Base < 0:
		return fmt.Errorf("tasks: backoff base must not be negative, got %v", b.Base)
	case b.Cap < 0:
		return fmt.Errorf("tasks: backoff cap must not be negative, got %v", b.Cap)
	case b.Cap < b.Base:
		return fmt.Errorf("tasks: backoff cap %v is below its base %v", b.Cap, b.Base)
	}
	return nil
}

// Ceiling is the deterministic part of the delay before retry number
// attempt (0 for the first retry): min(Cap, Base·2^attempt). A negative
// attempt counts as 0.
func (b Backoff) Ceiling(attempt int) time.Duration {
	if b.Base <= 0 || b.Cap <= 0 {
		return 0
	}
	if attempt < 0 {
		attempt = 0
	}
	d := b.Base
	for range attempt {
		if d > b.Cap/2 {
			return b.Cap
		}
		d *= 2
	}
	return min(d, b.Cap)
}

// Delay is the wait before retry number attempt (0 for the first retry):
// Ceiling(attempt), then, when Jitter is on and rnd is not nil, a uniform
// draw in [0, Ceiling(attempt)]. rnd is not safe for concurrent use; the
// caller serialises access.
func (b Backoff) Delay(attempt int, rnd *rand.Rand) time.Duration {
	c := b.Ceiling(attempt)
	if !b.Jitter || rnd == nil || c <= 0 {
		return c
	}
	return FullJitter(c, rnd)
}

// FullJitter returns a duration drawn uniformly from [0, ceiling].
func FullJitter(ceiling time.Duration, rnd *rand.Rand) time.Duration {
	if ceiling <= 0 {
		return 0
	}
	return time.Duration(rnd.Int64N(int64(ceiling) + 1))
}

// RetryDelayFunc adapts a Backoff to asynq: defaults applies unless the
// task's payload carries a "retry" object (see Retry). src seeds the
// jitter; nil means a randomly seeded source. The returned function is safe
// for concurrent use.
func RetryDelayFunc(defaults Backoff, src rand.Source) asynq.RetryDelayFunc {
	if src == nil {
		src = rand.NewPCG(rand.Uint64(), rand.Uint64()) //nolint:gosec // jitter needs no secret randomness
	}
	var mu sync.Mutex
	rnd := rand.New(src) //nolint:gosec // as above
	return func(n int, _ error, t *asynq.Task) time.Duration {
		b := defaults
		if t != nil {
			if r, ok := RetryFromPayload(t.Payload()); ok {
				b = r.Apply(defaults)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return b.Delay(n, rnd)
	}
}

// Retry is a task's own retry policy, carried at the top level of its JSON
// payload under "retry". Unset fields fall back to the worker's defaults.
type Retry struct {
	// Max is the number of retries after the first attempt: absent (nil)
	// means DefaultRetryMax, 0 means no retry at all.
	Max *int `json:"max,omitempty"`
	// Backoff overrides Backoff.Base.
	Backoff Duration `json:"backoff,omitempty"`
	// BackoffMax overrides Backoff.Cap.
	BackoffMax Duration `json:"backoff_max,omitempty"`
	// Jitter overrides Backoff.Jitter.
	Jitter *bool `json:"jitter,omitempty"`
}

// Validate reports values that cannot be used.
func (r Retry) Validate() error {
	if r.Max != nil && *r.Max < 0 {
		return fmt.Errorf("tasks: retry max must not be negative, got %d", *r.Max)
	}
	if r.Backoff < 0 || r.BackoffMax < 0 {
		return errors.New("tasks: retry backoff must not be negative")
	}
	if r.Backoff > 0 && r.BackoffMax > 0 && r.BackoffMax < r.Backoff {
		return fmt.Errorf("tasks: retry backoff_max %v is below backoff %v", time.Duration(r.BackoffMax), time.Duration(r.Backoff))
	}
	return nil
}

// Apply returns defaults with r's fields laid over them. A cap below the
// resulting base is raised to the base.
func (r Retry) Apply(defaults Backoff) Backoff {
	b := defaults
	if r.Backoff > 0 {
		b.Base = time.Duration(r.Backoff)
	}
	if r.BackoffMax > 0 {
		b.Cap = time.Duration(r.BackoffMax)
	}
	if r.Jitter != nil {
		b.Jitter = *r.Jitter
	}
	if b.Cap < b.Base {
		b.Cap = b.Base
	}
	return b
}

// MaxRetry is the number of retries the policy allows: Max when set (0
// for none), else DefaultRetryMax.
func (r Retry) MaxRetry() int {
	if r.Max != nil {
		return *r.Max
	}
	return DefaultRetryMax
}

// Retries returns n as a Retry.Max value.
func Retries(n int) *int { return &n }

// retryEnvelope decodes only the retry object of a payload.
type retryEnvelope struct {
	Retry *Retry `json:"retry"`
}

// RetryFromPayload reads the "retry" object of a JSON payload. It reports
// false when the payload is not a JSON object or has no valid retry object.
func RetryFromPayload(payload []byte) (Retry, bool) {
	if len(payload) == 0 || payload[0] != '{' {
		return Retry{}, false
	}
	var env retryEnvelope
	if err := json.Unmarshal(payload, &env); err != nil || env.Retry == nil {
		return Retry{}, false
	}
	if env.Retry.Validate() != nil {
		return Retry{}, false
	}
	return *env.Retry, true
}

// WithRetry returns payload, a JSON object, with its "retry" member set to
// r. An empty payload becomes {"retry": ...}.
func WithRetry(payload []byte, r Retry) ([]byte, error) {
	if err := r.Validate(); err != nil {
		return nil, err
	}
	obj := map[string]json.RawMessage{}
	if len(payload) > 0 {
		if err := json.Unmarshal(payload, &obj); err != nil {
			return nil, fmt.Errorf("tasks: payload is not a JSON object: %w", err)
		}
	}
	rb, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode retry: %w", err)
	}
	obj["retry"] = rb
	out, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("tasks: encode payload: %w", err)
	}
	return out, nil
}

// Duration is a time.Duration written in JSON as a Go duration string
// ("10s", "1m30s"). It also accepts a number of seconds.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("tasks: duration %q: %w", s, err)
		}
		*d = Duration(v)
		return nil
	}
	var secs float64
	if err := json.Unmarshal(b, &secs); err != nil {
		return fmt.Errorf("tasks: duration must be a string like \"10s\" or a number of seconds: %w", err)
	}
	*d = Duration(secs * float64(time.Second))
	return nil
}
