package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
)

func TestValidateSuiteQuick(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unzip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unzip is required in CI: %v", err)
		}
		testenv.Require(t, fmt.Sprintf("unzip not installed (%v); install the unzip package to run this test", err))
	}
	env := &Env{Dir: t.TempDir(), Quick: true, Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, nil))}
	suite := ValidateSuite()
	if suite.Name != "validate" {
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
	if r.Unit != "s" || r.Better != Lower || r.Baseline != "unzip -t" || r.Value <= 0 || r.BaselineValue <= 0 || r.Ratio <= 0 {
		t.Errorf("result shape: %+v", r)
	}
	if r.Goal < 0.66 || r.Goal > 0.67 {
		t.Errorf("goal %v, want 1/1.5", r.Goal)
	}
	for _, want := range []string{"MB/s", "allocs/op"} {
		if !strings.Contains(r.Note, want) {
			t.Errorf("note %q lacks %q", r.Note, want)
		}
	}
}

type validateLogWriter struct{ t *testing.T }

func (w validateLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
