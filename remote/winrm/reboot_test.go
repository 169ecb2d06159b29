package winrm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
)

func TestRemove(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.host.WriteFile(`C:\pkg\1.0\a.txt`, []byte("a"))
	b.host.WriteFile(`C:\pkg\1.0\sub\b.txt`, []byte("b"))
	b.host.WriteFile(`C:\pkg\10\keep.txt`, []byte("keep"))

	if err := b.client.Remove(t.Context(), `C:\pkg\1.0`); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if b.host.Exists(`C:\pkg\1.0`) || b.host.Exists(`C:\pkg\1.0\sub\b.txt`) {
		t.Errorf("C:\\pkg\\1.0 still exists")
	}
	if !b.host.Exists(`C:\pkg\10\keep.txt`) {
		t.Errorf("a sibling with a common prefix was removed")
	}
	if err := b.client.Remove(t.Context(), `C:\pkg\missing`); err != nil {
		t.Errorf("Remove of a missing path: %v", err)
	}
	last := b.srv.Commands()[len(b.srv.Commands())-1]
	want := "# packflow:remove\n$Path = 'C:\\pkg\\missing'\n"
	if !strings.HasPrefix(last.Script, want) ||
		!strings.Contains(last.Script, "Remove-Item -LiteralPath $Path -Recurse -Force") {
		t.Errorf("remove script:\n%s", last.Script)
	}
}

func TestRemoveRefusesDangerousPaths(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	before := len(b.srv.Commands())
	for _, p := range []string{"", `C:`, `C:\`, `c:/`, `\`, `/`, `\\server\share\dir`, `relative\dir`,
		`C:\pkg\..\Windows`, `C:\pkg\.`, `C:\pkg\\x`, `C:\pkg\*`} {
		if err := b.client.Remove(t.Context(), p); !errors.Is(err, remote.ErrUnsafeValue) {
			t.Errorf("Remove(%q) = %v, want remote.ErrUnsafeValue", p, err)
		}
	}
	if after := len(b.srv.Commands()); after != before {
		t.Errorf("%d refused removals reached the host", after-before)
	}
}

func TestRebootWaitsForNewBoot(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{RebootDowntime: 200 * time.Millisecond}})
	before := b.host.BootTime()
	if err := b.client.Reboot(t.Context(), remote.RebootOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if b.host.Boots() != 1 || b.host.BootTime() == before {
		t.Fatalf("boots = %d, boot time %s (was %s): the host did not reboot", b.host.Boots(), b.host.BootTime(), before)
	}
	// Whether a poll fell into the downtime depends on scheduling (under
	// -race on a loaded machine the first poll may come after it): the
	// new boot time above is what proves Reboot waited for the reboot.
	var sawRestart bool
	for _, c := range b.srv.Commands() {
		if strings.HasPrefix(c.Script, "# packflow:reboot\n") && strings.Contains(c.Script, "    Restart-Computer -Force\n") {
			sawRestart = true
		}
	}
	if !sawRestart {
		t.Errorf("no Restart-Computer -Force script was sent")
	}
	// Commands run after the reboot.
	if err := b.client.Run(t.Context(), &remote.Cmd{Command: "exit 0"}); err != nil {
		t.Errorf("Run after reboot: %v", err)
	}
}

func TestRebootTimesOutWhenBootTimeNeverChanges(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{IgnoreRestart: true}})
	err := b.client.Reboot(t.Context(), remote.RebootOptions{Timeout: 300 * time.Millisecond})
	if !errors.Is(err, remote.ErrTimeout) {
		t.Fatalf("err = %v, want remote.ErrTimeout", err)
	}
}

func TestRebootCommandFailure(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	err := b.client.Reboot(t.Context(), remote.RebootOptions{Command: "no-such-cmdlet", Timeout: time.Minute})
	var exit *remote.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("err = %v, want the reboot command's exit error", err)
	}
	if b.host.Boots() != 0 {
		t.Errorf("host rebooted")
	}
}

func TestRebootDelay(t *testing.T) {
	t.Parallel()
	base, maxDelay := 2*time.Second, 30*time.Second
	want := []time.Duration{2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 30 * time.Second, 30 * time.Second}
	for n, w := range want {
		if got := rebootDelay(n, base, maxDelay); got != w {
			t.Errorf("rebootDelay(%d) = %s, want %s", n, got, w)
		}
	}
	if got := rebootDelay(1000, base, maxDelay); got != maxDelay {
		t.Errorf("rebootDelay(1000) = %s, want the cap", got)
	}
}

func TestCancelledContextStopsEveryOperation(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	src := t.TempDir()
	ops := map[string]func() error{
		"run":    func() error { return b.client.Run(ctx, &remote.Cmd{Command: "echo hi"}) },
		"upload": func() error { return b.client.Upload(ctx, src, `C:\dst`) },
		"remove": func() error { return b.client.Remove(ctx, `C:\dst`) },
		"reboot": func() error { return b.client.Reboot(ctx, remote.RebootOptions{}) },
	}
	before := len(b.srv.Commands())
	for name, op := range ops {
		if err := op(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s: err = %v, want context.Canceled", name, err)
		}
	}
	if n := len(b.srv.Commands()) - before; n != 0 {
		t.Errorf("%d commands reached the host", n)
	}
}
