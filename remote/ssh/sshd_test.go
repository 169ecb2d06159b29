package ssh_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/remotetest"
	"github.com/packflow/packflow/remote/ssh"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger sends logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func sshdOptions(t *testing.T, s *sshdtest.Server, i int) ssh.Options {
	return ssh.Options{
		Addr:        s.Addr(i),
		User:        s.User,
		Auth:        ssh.Auth{PrivateKeyPEM: s.ClientKeyPEM},
		HostKey:     ssh.HostKeyPolicy{Pinned: s.HostKey},
		StagingBase: t.TempDir(),
		Logger:      testLogger(t),
	}
}

func dial(t *testing.T, opts ssh.Options) *ssh.Client {
	t.Helper()
	c, err := ssh.Dial(t.Context(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestConformanceRealSSHD(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	remotetest.Run(t, func(t *testing.T) remote.Communicator {
		c, err := ssh.Dial(t.Context(), sshdOptions(t, s, 0))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		return c
	}, remotetest.Capabilities{})
}

func TestConformancePool(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	pool := ssh.NewPool(ssh.PoolOptions{Logger: testLogger(t)})
	t.Cleanup(func() { _ = pool.Close() })
	remotetest.Run(t, func(t *testing.T) remote.Communicator {
		c, err := pool.Get(t.Context(), sshdOptions(t, s, 0))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		return c
	}, remotetest.Capabilities{})
	if pool.Len() != 1 {
		t.Errorf("pool holds %d hosts, want 1", pool.Len())
	}
}

func TestKnownHostsAndSeveralHosts(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{Addrs: []string{"127.0.0.2", "127.0.0.3"}})
	for i := range s.Len() {
		opts := sshdOptions(t, s, i)
		opts.HostKey = ssh.HostKeyPolicy{KnownHostsFile: s.KnownHostsFile}
		c := dial(t, opts)
		var out bytes.Buffer
		if err := c.Run(t.Context(), &remote.Cmd{Command: "echo $SSH_CONNECTION", Stdout: &out}); err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		if ip, _, _ := strings.Cut(s.Addr(i), ":"); !strings.Contains(out.String(), ip) {
			t.Errorf("host %d: connection %q does not reach %s", i, out.String(), ip)
		}
		if c.HostKey() != s.HostKey {
			t.Errorf("HostKey() = %q, want %q", c.HostKey(), s.HostKey)
		}
	}
}

func TestWrongKeyIsAuthError(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	other := sshdtest.Start(t, sshdtest.Options{})
	opts := sshdOptions(t, s, 0)
	opts.Auth.PrivateKeyPEM = other.ClientKeyPEM
	_, err := ssh.Dial(t.Context(), opts)
	if !errors.Is(err, remote.ErrAuth) || !remote.Permanent(err) {
		t.Errorf("Dial with a key sshd does not know = %v, want remote.ErrAuth", err)
	}
}

func TestPinnedMismatchFailsBeforeAnySession(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	other := sshdtest.Start(t, sshdtest.Options{})
	opts := sshdOptions(t, s, 0)
	opts.HostKey.Pinned = other.HostKey
	_, err := ssh.Dial(t.Context(), opts)
	if !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("Dial with another pinned key = %v, want remote.ErrHostKeyMismatch", err)
	}
	opts.HostKey = ssh.HostKeyPolicy{KnownHostsFile: other.KnownHostsFile}
	if _, err := ssh.Dial(t.Context(), opts); !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("Dial with a known_hosts file of another port = %v, want remote.ErrHostKeyMismatch", err)
	}
}

func TestUnreachableIsDisconnected(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	opts := sshdOptions(t, s, 0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err := ssh.Dial(t.Context(), opts)
	if !errors.Is(err, remote.ErrDisconnected) || remote.Permanent(err) {
		t.Errorf("Dial of a closed port = %v, want remote.ErrDisconnected", err)
	}
}

func TestStagingDirIsPrivate(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	opts := sshdOptions(t, s, 0)
	opts.StagingBase += "/base dir"
	c := dial(t, opts)
	a, err := c.StagingDir(t.Context(), "pkg-1.0")
	if err != nil {
		t.Fatalf("StagingDir: %v", err)
	}
	b, err := c.StagingDir(t.Context(), "pkg-1.0")
	if err != nil {
		t.Fatalf("StagingDir: %v", err)
	}
	if a == b || !strings.HasPrefix(a, opts.StagingBase+"/pkg-1.0.") {
		t.Errorf("staging dirs %q and %q, want two distinct dirs under %s", a, b, opts.StagingBase)
	}
	var out bytes.Buffer
	if err := c.Run(t.Context(), &remote.Cmd{Command: "stat -c %a " + "'" + a + "'", Stdout: &out}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(out.String()); got != "700" {
		t.Errorf("staging dir mode %s, want 700", got)
	}
	for _, bad := range []string{"", "../x", "a/b", ".hidden"} {
		if _, err := c.StagingDir(t.Context(), bad); err == nil {
			t.Errorf("StagingDir(%q) succeeded", bad)
		}
	}
}

func TestPersistentDir(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, sshdOptions(t, s, 0))
	got, err := c.PersistentDir("0d6f4c1e-8a4e-4a57-9a4b-0c3b1e2f9d10", "1.2.3")
	if err != nil || got != "/opt/packflow/packages/0d6f4c1e-8a4e-4a57-9a4b-0c3b1e2f9d10/1.2.3" {
		t.Errorf("PersistentDir = %q, %v", got, err)
	}
	if _, err := c.PersistentDir("..", "1"); err == nil {
		t.Error("PersistentDir accepted ..")
	}
}

func TestUnsupportedShell(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, sshdOptions(t, s, 0))
	err := c.Run(t.Context(), &remote.Cmd{Command: "dir", Shell: remote.ShellCmd})
	if !errors.Is(err, remote.ErrUnsupported) {
		t.Errorf("Run of a cmd.exe command = %v, want remote.ErrUnsupported", err)
	}
}

func TestClosedClient(t *testing.T) {
	s := sshdtest.Start(t, sshdtest.Options{})
	c := dial(t, sshdOptions(t, s, 0))
	_ = c.Close()
	if err := c.Run(context.Background(), &remote.Cmd{Command: "true"}); !errors.Is(err, ssh.ErrClosed) {
		t.Errorf("Run after Close = %v, want ssh.ErrClosed", err)
	}
}
