package bench

import (
	"context"
	"log/slog"
	"os/exec"
	"runtime"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
)

// TestDevIdleSuiteSmoke runs the dev-idle suite with a small workload: it
// reports the idle CPU and the pickup of dev and of its 10 ms baseline.
func TestDevIdleSuiteSmoke(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("by design: the suite reads /proc")
	}
	if _, err := exec.LookPath("redis-server"); err != nil {
		testenv.Require(t, "needs redis-server on PATH")
	}
	if testing.Short() {
		t.Skip("by design: builds and runs packflow dev twice")
	}
	env := &Env{Dir: t.TempDir(), Quick: true, Log: slog.New(slog.DiscardHandler)}
	rows, err := DevIdleSuite().Run(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 {
		t.Fatalf("rows %+v, want the CPU and the pickup", rows)
	}
	for _, r := range rows {
		if r.Value <= 0 && r.Unit == "ms" || r.BaselineValue <= 0 && r.Unit == "ms" || r.Baseline == "" {
			t.Errorf("row %+v lacks a figure", r)
		}
	}
}
