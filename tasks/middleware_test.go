package tasks_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/packflow/packflow/tasks"
)

func TestDispatch(t *testing.T) {
	var logs strings.Builder
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	m, err := tasks.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	var outcomes []tasks.Outcome
	starts := 0
	h := tasks.Dispatch(map[string]asynq.Handler{
		"ok": asynq.HandlerFunc(func(ctx context.Context, _ *asynq.Task) error {
			tasks.LoggerFrom(ctx).Info("inside")
			return nil
		}),
		"fail":  asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return errors.New("nope") }),
		"panic": asynq.HandlerFunc(func(context.Context, *asynq.Task) error { panic("kaboom") }),
	}, tasks.DispatchOptions{Logger: logger, Metrics: m,
		OnStart: func() { starts++ }, OnFinish: func(o tasks.Outcome) { outcomes = append(outcomes, o) }})

	ctx := context.Background()
	tests := []struct {
		typ     string
		wantErr error
		want    tasks.Outcome
	}{
		{"ok", nil, tasks.OutcomeOK},
		{"fail", nil, tasks.OutcomeError},
		{"panic", tasks.ErrPanic, tasks.OutcomePanic},
		{"missing", asynq.SkipRetry, tasks.OutcomeError},
	}
	for i, tt := range tests {
		err := h.ProcessTask(ctx, asynq.NewTask(tt.typ, nil))
		if tt.want == tasks.OutcomeOK && err != nil {
			t.Errorf("%s: err = %v", tt.typ, err)
		}
		if tt.want != tasks.OutcomeOK && err == nil {
			t.Errorf("%s: no error", tt.typ)
		}
		if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: err = %v, want %v", tt.typ, err, tt.wantErr)
		}
		if len(outcomes) != i+1 || outcomes[i] != tt.want {
			t.Errorf("%s: outcomes = %v, want last %v", tt.typ, outcomes, tt.want)
		}
	}
	if starts != len(tests) {
		t.Errorf("OnStart ran %d times, want %d", starts, len(tests))
	}
	out := logs.String()
	for _, want := range []string{"msg=inside", "task_type=ok", "msg=\"task panicked\"", "kaboom", "goroutine"} {
		if !strings.Contains(out, want) {
			t.Errorf("logs lack %q:\n%s", want, out)
		}
	}
}

func TestLoggerFromOutsideTask(t *testing.T) {
	if l := tasks.LoggerFrom(context.Background()); l == nil {
		t.Fatal("nil logger")
	}
}

func TestNewMetricsTwiceOnOneRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	if _, err := tasks.NewMetrics(reg); err != nil {
		t.Fatal(err)
	}
	if _, err := tasks.NewMetrics(reg); err != nil {
		t.Errorf("second NewMetrics on the same registry: %v", err)
	}
}

func BenchmarkDispatch(b *testing.B) {
	m, err := tasks.NewMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	h := tasks.Dispatch(map[string]asynq.Handler{
		"noop": asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil }),
	}, tasks.DispatchOptions{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m,
		OnStart: func() {}, OnFinish: func(tasks.Outcome) {}})
	task := asynq.NewTask("noop", nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := h.ProcessTask(ctx, task); err != nil {
			b.Fatal(err)
		}
	}
}
