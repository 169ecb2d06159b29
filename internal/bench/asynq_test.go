package bench

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/testenv"
)

func TestAsynqSuiteQuick(t *testing.T) {
	r := testenv.RealRedis(t) // skips without a real Redis, fails in CI
	env := &Env{RedisAddr: r.Addr, Dir: t.TempDir(), Quick: true,
		Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, nil))}
	suite := asynqSuiteOn(r.DB)
	if AsynqSuite().Name != "asynq" || suite.Name != "asynq" {
		t.Errorf("suite name %q", suite.Name)
	}
	results, err := suite.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	want := []struct {
		name, unit, baseline string
		better               Better
		goal                 float64
	}{
		{"enqueue throughput", "tasks/s", "bare asynq client", Higher, 0},
		{"processing throughput, no-op, concurrency 64", "tasks/s", "bare asynq server, same queues", Higher, 0.9},
		{"processing throughput, no-op, concurrency 64, vs one queue", "tasks/s", "bare asynq server, one queue", Higher, 0},
		{"submit-to-start p50, idle worker", "ms", "asynq defaults", Lower, 0},
		{"submit-to-start p99, idle worker", "ms", "asynq defaults", Lower, 0},
		{"idle Redis load per worker", "commands/s", "asynq defaults", Lower, 0},
	}
	if len(results) != len(want) {
		t.Fatalf("%d results, want %d: %+v", len(results), len(want), results)
	}
	for i, r := range results {
		w := want[i]
		if r.Name != w.name || r.Unit != w.unit || r.Baseline != w.baseline || r.Better != w.better || r.Goal != w.goal ||
			r.Value <= 0 || r.BaselineValue <= 0 || r.Ratio <= 0 {
			t.Errorf("result %d shape: %+v", i, r)
		}
	}
	if results[4].Note == "" {
		t.Error("the p99 row carries no note with its goal")
	}
}

func TestPercentile(t *testing.T) {
	ms := func(n int) time.Duration { return time.Duration(n) * time.Millisecond }
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, ms(i))
	}
	tests := []struct {
		p    float64
		want time.Duration
	}{{0.5, ms(50)}, {0.99, ms(99)}, {1, ms(100)}, {0, ms(1)}}
	for _, tt := range tests {
		if got := percentile(ds, tt.p); got != tt.want {
			t.Errorf("percentile(%v) = %v, want %v", tt.p, got, tt.want)
		}
	}
	if got := percentile(nil, 0.5); got != 0 {
		t.Errorf("percentile of nothing = %v", got)
	}
}
