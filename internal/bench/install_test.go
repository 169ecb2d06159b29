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

func TestInstallSuiteQuick(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unzip"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("unzip is required in CI: %v", err)
		}
		testenv.Require(t, fmt.Sprintf("unzip not installed (%v); install the unzip package to run this test", err))
	}
	dir := t.TempDir()
	env := &Env{Dir: dir, Quick: true, Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, nil))}
	suite := InstallSuite()
	if suite.Name != "install" {
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
	if r.Unit != "s" || r.Better != Lower || r.Baseline != "unzip -d" || r.Value <= 0 || r.BaselineValue <= 0 || r.Ratio <= 0 {
		t.Errorf("result shape: %+v", r)
	}
	if r.Goal < 0.66 || r.Goal > 0.67 {
		t.Errorf("goal %v, want 1/1.5", r.Goal)
	}
	if !strings.Contains(r.Note, "MB/s") {
		t.Errorf("note %q lacks MB/s", r.Note)
	}
	// Every run's cache and unzip output is removed; only the archive stays.
	ents, err := os.ReadDir(dir + "/install")
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || ents[0].Name() != "install-bench.zip" {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("left in the scratch dir: %v", names)
	}
}
