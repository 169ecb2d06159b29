package sshtest

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/ssh"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func dial(t *testing.T, s *Server) (*ssh.Client, error) {
	t.Helper()
	signer, err := ssh.ParsePrivateKey(s.ClientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey()))
	if err != nil {
		t.Fatal(err)
	}
	return ssh.Dial("tcp", s.Addr(), &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	})
}

func output(t *testing.T, c *ssh.Client, cmd string) (string, error) {
	t.Helper()
	sess, err := c.NewSession()
	if err != nil {
		return "", err
	}
	defer func() { _ = sess.Close() }()
	out, err := sess.Output(cmd)
	return string(out), err
}

func TestRunsRealCommands(t *testing.T) {
	s := Start(t, Options{})
	c, err := dial(t, s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	out, err := output(t, c, "echo $((6*7)); exit 3")
	var exit *ssh.ExitError
	if out != "42\n" || !errors.As(err, &exit) || exit.ExitStatus() != 3 {
		t.Errorf("output %q, err %v; want 42 and exit status 3", out, err)
	}
	if out, err := output(t, c, BootIDCommand); err != nil || strings.TrimSpace(out) != s.BootID() {
		t.Errorf("boot id %q, %v; want %s", out, err, s.BootID())
	}
}

func TestRebootRefusesWhileDown(t *testing.T) {
	s := Start(t, Options{RebootDown: time.Hour})
	c, err := dial(t, s)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if _, err := output(t, c, DefaultRebootCommand); err != nil {
		t.Fatalf("reboot command: %v", err)
	}
	_ = c.Wait() // the server drops the connection
	_, err = net.Dial("tcp", s.Addr())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial while rebooting = %v, want connection refused", err)
	}
	if s.Reboots() != 1 {
		t.Errorf("reboots = %d", s.Reboots())
	}
}

func TestRebootComesBackWithNewBootID(t *testing.T) {
	s := Start(t, Options{RebootDown: 10 * time.Millisecond})
	before := s.BootID()
	c, err := dial(t, s)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = output(t, c, "sudo -n "+DefaultRebootCommand)
	_ = c.Wait()
	_ = c.Close()
	for range 200 {
		if c, err = dial(t, s); err == nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("server did not come back: %v", err)
	}
	defer func() { _ = c.Close() }()
	out, err := output(t, c, BootIDCommand)
	if err != nil || strings.TrimSpace(out) == before || strings.TrimSpace(out) != s.BootID() {
		t.Errorf("boot id after reboot %q (%v), before %s", out, err, before)
	}
}

func TestChangeHostKey(t *testing.T) {
	s := Start(t, Options{})
	old := s.HostKey()
	key, err := s.ChangeHostKey()
	if err != nil || key == old || s.HostKey() != key {
		t.Fatalf("ChangeHostKey = %q, %v (old %q)", key, err, old)
	}
	c, err := dial(t, s) // dial pins the current key
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
}

func TestRejectsNonLoopback(t *testing.T) {
	if _, err := New(Options{Addr: "0.0.0.0:0"}); err == nil {
		t.Error("New listened on a non-loopback address")
	}
}
