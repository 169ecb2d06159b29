package local_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/local"
	"github.com/packflow/packflow/remote/remotetest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func TestConformance(t *testing.T) {
	remotetest.Run(t, func(*testing.T) remote.Communicator {
		return local.New(local.Options{})
	}, remotetest.Capabilities{RebootUnsupported: true})
}

func TestUnsupportedShell(t *testing.T) {
	c := local.New(local.Options{})
	err := c.Run(t.Context(), &remote.Cmd{Command: "Get-Date", Shell: remote.ShellPowerShell})
	if !errors.Is(err, remote.ErrUnsupported) || !remote.Permanent(err) {
		t.Errorf("Run of a PowerShell command = %v, want remote.ErrUnsupported", err)
	}
}

func TestKilledBySignal(t *testing.T) {
	c := local.New(local.Options{})
	err := c.Run(t.Context(), &remote.Cmd{Command: "kill -TERM $$"})
	var exit *remote.ExitError
	if !errors.As(err, &exit) || exit.Code != -1 || exit.Signal != "TERM" {
		t.Errorf("Run of a self-killed shell = %v, want an ExitError with a signal", err)
	}
}

func TestClosed(t *testing.T) {
	c := local.New(local.Options{})
	_ = c.Close()
	if err := c.Run(context.Background(), &remote.Cmd{Command: "true"}); !errors.Is(err, local.ErrClosed) {
		t.Errorf("Run after Close = %v, want local.ErrClosed", err)
	}
}

func TestUploadCopiesSymlinks(t *testing.T) {
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "target"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target", filepath.Join(src, "link")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := local.New(local.Options{}).Upload(t.Context(), src, dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.Readlink(filepath.Join(dst, "link")); err != nil || got != "target" {
		t.Errorf("Readlink = %q, %v; want target", got, err)
	}
}

// TestCommandsDoNotInheritTheWorkerEnvironment reproduces the probe of a
// tenant's script printing the worker's secrets: a variable of the
// worker's environment must not reach the command.
func TestCommandsDoNotInheritTheWorkerEnvironment(t *testing.T) {
	t.Setenv("PACKFLOW_SECRET_KEY", "worker-secret-must-not-leak")
	var out strings.Builder
	err := local.New(local.Options{}).Run(t.Context(), &remote.Cmd{Command: "env", Stdout: &out})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "worker-secret-must-not-leak") {
		t.Fatalf("the command saw the worker's environment:\n%s", out.String())
	}
	var names []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		name, _, _ := strings.Cut(line, "=")
		names = append(names, name)
	}
	// sh itself adds PWD (and some shells SHLVL and _); nothing else.
	names = slices.DeleteFunc(names, func(n string) bool { return n == "PWD" || n == "SHLVL" || n == "_" || n == "OLDPWD" })
	slices.Sort(names)
	if want := []string{"HOME", "LANG", "PATH"}; !slices.Equal(names, want) {
		t.Errorf("environment names = %v, want %v", names, want)
	}
}

func TestEnvOption(t *testing.T) {
	var out strings.Builder
	c := local.New(local.Options{Env: []string{"PATH=/usr/bin:/bin", "GREETING=hi"}})
	if err := c.Run(t.Context(), &remote.Cmd{Command: `printf '%s' "$GREETING/$HOME"`, Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "hi/" {
		t.Errorf("output = %q, want %q", out.String(), "hi/")
	}
}
