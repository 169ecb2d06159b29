package sshdtest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
	"golang.org/x/crypto/ssh"
)

func clientConfig(t *testing.T, s *Server) *ssh.ClientConfig {
	t.Helper()
	signer, err := ssh.ParsePrivateKey(s.ClientKeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	hostKey, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s.HostKey))
	if err != nil {
		t.Fatal(err)
	}
	return &ssh.ClientConfig{
		User:            s.User,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey),
	}
}

func output(t *testing.T, addr string, cfg *ssh.ClientConfig, cmd string) string {
	t.Helper()
	c, err := ssh.Dial("tcp", addr, cfg)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	defer func() { _ = c.Close() }()
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sess.Close() }()
	out, err := sess.Output(cmd)
	if err != nil {
		t.Fatalf("%s on %s: %v", cmd, addr, err)
	}
	return strings.TrimSpace(string(out))
}

func TestStartSeveralAddresses(t *testing.T) {
	s := Start(t, Options{Addrs: []string{"127.0.0.2", "127.0.0.3"}})
	if s.Len() != 2 {
		t.Fatalf("Len() = %d, want 2", s.Len())
	}
	cfg := clientConfig(t, s)
	for i := range s.Len() {
		if got := output(t, s.Addr(i), cfg, "echo $HOME"); got != s.Home {
			t.Errorf("host %d: HOME = %q, want the clean home %q", i, got, s.Home)
		}
	}
}

// TestFleetSpansProcesses checks more hosts than one sshd can listen for.
func TestFleetSpansProcesses(t *testing.T) {
	s := Start(t, Options{Hosts: 17})
	if s.Len() != 17 || len(s.procs) != 2 {
		t.Fatalf("hosts=%d processes=%d, want 17 hosts on 2 processes", s.Len(), len(s.procs))
	}
	cfg := clientConfig(t, s)
	for _, i := range []int{0, 14, 15, 16} {
		if got := output(t, s.Addr(i), cfg, "echo ok"); got != "ok" {
			t.Errorf("host %d answered %q", i, got)
		}
	}
}

// TestOpenSSHClient checks the key file and known_hosts work for OpenSSH's
// own client, which the benchmarks compare against.
func TestOpenSSHClient(t *testing.T) {
	sshBin, err := exec.LookPath("ssh")
	if err != nil {
		testenv.Require(t, "ssh client not installed; install openssh-client to run this test")
	}
	s := Start(t, Options{})
	host, port, _ := strings.Cut(s.Addr(0), ":")
	cmd := exec.Command(sshBin, "-i", s.ClientKeyFile, "-p", port,
		"-o", "UserKnownHostsFile="+s.KnownHostsFile, "-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", s.User+"@"+host, "echo", "hello")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh: %v: %s", err, stderr.String())
	}
	if got := strings.TrimSpace(string(out)); got != "hello" {
		t.Errorf("ssh printed %q", got)
	}
}

func TestRejectsNonLoopback(t *testing.T) {
	if _, err := hostIPs(Options{Addrs: []string{"10.0.0.1"}}); err == nil {
		t.Fatal("hostIPs accepted a non-loopback address")
	}
}
