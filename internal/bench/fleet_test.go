package bench

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
)

func TestFleetSuiteQuick(t *testing.T) {
	r := testenv.RealRedis(t) // skips without a real Redis, fails in CI
	env := &Env{RedisAddr: r.Addr, Dir: t.TempDir(), Quick: true,
		Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if FleetSuite().Name != "fleet" {
		t.Errorf("suite name %q", FleetSuite().Name)
	}
	results, err := fleetSuiteOn(r.DB).Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	res := results[0]
	if res.Unit != "s" || res.Better != Lower || res.Value <= 0 || res.BaselineValue <= 0 || !strings.Contains(res.Name, "3 nodes") {
		t.Errorf("result: %+v", res)
	}
}
