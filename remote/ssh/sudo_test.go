package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/sshtest"
	"github.com/packflow/packflow/remote"
)

// fakeSudo puts sudo and id stand-ins first in PATH: sudo insists on -n,
// logs its command line and runs it; id -u reports an unprivileged user.
func fakeSudo(t *testing.T) (env []string, logFile string) {
	t.Helper()
	bin := t.TempDir()
	logFile = filepath.Join(t.TempDir(), "sudo.log")
	scripts := map[string]string{
		"sudo": "#!/bin/sh\n[ \"$1\" = -n ] || { echo 'sudo: a password is required' >&2; exit 1; }\nshift\n" +
			"printf '%s\\n' \"$*\" >> \"$SUDO_LOG\"\nexec \"$@\"\n",
		"id": "#!/bin/sh\necho 1000\n",
	}
	for name, body := range scripts {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "SUDO_LOG=" + logFile}, logFile
}

func sudoLog(t *testing.T, logFile string) string {
	t.Helper()
	b, err := os.ReadFile(logFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestSudoRunAndRemove(t *testing.T) {
	env, logFile := fakeSudo(t)
	s := sshtest.Start(t, sshtest.Options{Env: env})
	opts := faultOptions(t, s)
	opts.Sudo = true
	c := dial(t, opts)
	var out bytes.Buffer
	if err := c.Run(t.Context(), &remote.Cmd{Command: "echo through sudo", Stdout: &out}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if out.String() != "through sudo\n" || !strings.Contains(sudoLog(t, logFile), "/bin/sh -c echo through sudo") {
		t.Errorf("stdout %q, sudo log %q: want the command run through sudo -n", out.String(), sudoLog(t, logFile))
	}
	dir := filepath.Join(t.TempDir(), "gone")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(t.Context(), dir); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) || !strings.Contains(sudoLog(t, logFile), "rm -rf -- ") {
		t.Errorf("Remove through sudo: stat %v, log %q", err, sudoLog(t, logFile))
	}
}

func TestSudoCancelKills(t *testing.T) {
	env, logFile := fakeSudo(t)
	s := sshtest.Start(t, sshtest.Options{Env: env})
	opts := faultOptions(t, s)
	opts.Sudo = true
	c := dial(t, opts)
	ctx, cancel := context.WithCancel(t.Context())
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	marker := "sleep 7" + time.Now().Format("150405999")
	go func() {
		errc <- c.Run(ctx, &remote.Cmd{Command: "echo started; " + marker, Stdout: writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(started) })
			return len(p), nil
		})})
	}()
	<-started
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v, want context.Canceled", err)
	}
	if !strings.Contains(sudoLog(t, logFile), "kill -s KILL -- -") {
		t.Errorf("sudo log %q: want the kill through sudo", sudoLog(t, logFile))
	}
	for range 100 {
		var out bytes.Buffer
		_ = c.Run(t.Context(), &remote.Cmd{Command: "ps -eo pid,ppid,pgid,sid,stat,args | grep '[s]" + marker[1:] + "' || true", Stdout: &out})
		if out.Len() == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("%s still runs after its command was cancelled; sudo log %q", marker, sudoLog(t, logFile))
}

func TestRebootThroughSudoForNonRoot(t *testing.T) {
	env, _ := fakeSudo(t)
	// The server reboots only on "sudo -n shutdown -r now" (the bare command
	// would fail: there is no shutdown here); id -u says 1000.
	s := sshtest.Start(t, sshtest.Options{Env: env, RebootCommand: "sudo -n shutdown -r now"})
	c := dial(t, faultOptions(t, s))
	if err := c.Reboot(t.Context(), remote.RebootOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if s.Reboots() != 1 {
		t.Errorf("reboots = %d, want 1", s.Reboots())
	}
}
