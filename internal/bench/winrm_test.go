package bench

import (
	"context"
	"log/slog"
	"strings"
	"testing"
)

func TestWinRMSuiteQuick(t *testing.T) {
	t.Parallel()
	env := &Env{Dir: t.TempDir(), Quick: true, Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, nil))}
	suite := WinRMSuite()
	if suite.Name != "winrm" {
		t.Errorf("suite name %q", suite.Name)
	}
	results, err := suite.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 1 {
		t.Fatalf("%d results, want 1", len(results))
	}
	r := results[0]
	if r.Unit != "MB/s" || r.Better != Higher || r.Baseline != "2 KiB per command" ||
		r.Value <= 0 || r.BaselineValue <= 0 || r.Ratio <= 0 {
		t.Errorf("result shape: %+v", r)
	}
	if !strings.Contains(r.Note, "goal ≥ 20 MB/s") {
		t.Errorf("note %q lacks the goal", r.Note)
	}
}
