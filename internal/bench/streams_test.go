package bench

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
)

func TestStreamsSuiteQuick(t *testing.T) {
	r := testenv.RealRedis(t) // skips without a real Redis, fails in CI
	env := &Env{RedisAddr: r.Addr, Dir: t.TempDir(), Quick: true,
		Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if StreamsSuite().Name != "streams" {
		t.Errorf("suite name %q", StreamsSuite().Name)
	}
	results, err := streamsSuiteOn(r.DB).Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	res := results[0]
	if res.Unit != "ms" || res.Better != Lower || res.Value <= 0 || res.BaselineValue <= 0 || res.Goal != 0.5 ||
		!strings.Contains(res.Name, "50 clients") {
		t.Errorf("result: %+v", res)
	}
}
