package bench

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/internal/testenv"
)

func TestDeploySuiteQuick(t *testing.T) {
	sshdtest.Start(t, sshdtest.Options{}) // skips without sshd, fails in CI
	if _, err := exec.LookPath("ansible-playbook"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("ansible-playbook is required in CI (.ci/run installs it): %v", err)
		}
		testenv.Require(t, fmt.Sprintf("ansible-playbook not installed (%v); install the ansible package to run this test", err))
	}
	r := testenv.RealRedis(t)
	env := &Env{RedisAddr: r.Addr, Dir: t.TempDir(), Quick: true,
		Log: slog.New(slog.NewTextHandler(validateLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))}
	if DeploySuite().Name != "deploy" {
		t.Errorf("suite name %q", DeploySuite().Name)
	}
	results, err := deploySuiteOn(r.DB).Run(context.Background(), env)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(results) != 2 {
		t.Fatalf("%d results, want 2", len(results))
	}
	for _, res := range results {
		t.Logf("%s: %.2fs against %s %.2fs", res.Name, res.Value, res.Baseline, res.BaselineValue)
		if res.Unit != "s" || res.Better != Lower || res.Value <= 0 || res.BaselineValue <= 0 || !strings.Contains(res.Name, "4 hosts") {
			t.Errorf("result: %+v", res)
		}
	}
}
