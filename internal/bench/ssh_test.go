package bench

import (
	"context"
	"log/slog"
	"testing"

	"github.com/packflow/packflow/internal/sshdtest"
)

func TestSSHSuiteQuick(t *testing.T) {
	// Skips without sshd, fails in CI.
	sshdtest.Start(t, sshdtest.Options{})
	env := &Env{Dir: t.TempDir(), Quick: true, Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, nil))}
	suite := SSHSuite()
	if suite.Name != "ssh" {
		t.Errorf("suite name %q", suite.Name)
	}
	results, err := suite.Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	want := []struct {
		unit, baseline string
		better         Better
	}{
		{"MB/s", "scp -r", Higher},
		{"s", "ssh host true", Lower},
	}
	for i, r := range results {
		w := want[i]
		if r.Unit != w.unit || r.Baseline != w.baseline || r.Better != w.better || r.Goal != 1.0 ||
			r.Value <= 0 || r.BaselineValue <= 0 || r.Ratio <= 0 {
			t.Errorf("result %d shape: %+v", i, r)
		}
	}
}
