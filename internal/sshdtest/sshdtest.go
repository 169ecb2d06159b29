package sshdtest

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// DefaultBinary is where Debian's openssh-server installs sshd.
const DefaultBinary = "/usr/sbin/sshd"

// maxListenPerProcess stays under sshd's limit of 16 listen sockets.
const maxListenPerProcess = 15

// Options describes the sshd "hosts" to start.
type Options struct {
	// Addrs are the loopback IP addresses (in 127.0.0.0/8) to listen on,
	// one per host. Empty means Hosts addresses counted up from 127.0.1.1,
	// or just 127.0.0.1 when Hosts is zero too.
	Addrs []string
	// Hosts is the number of hosts to start when Addrs is empty.
	Hosts int
	// Binary is the sshd executable; default DefaultBinary.
	Binary string
	// Dir holds keys, configuration and the sessions' home. Empty means a
	// new temporary directory removed by Close.
	Dir string
	// ExtraConfig lines are appended to every sshd_config.
	ExtraConfig []string
	// StartTimeout bounds the wait for sshd to accept; default 15 s.
	StartTimeout time.Duration
}

// Server is a set of running sshd processes sharing one host key, one
// authorized client key and one port, each host on its own loopback address.
type Server struct {
	// HostKey is the host's public key as an authorized_keys line
	// ("ssh-ed25519 AAAA…").
	HostKey string
	// HostSigner is the host's private key, for tests that need to present
	// the same identity elsewhere.
	HostSigner ssh.Signer
	// ClientKeyPEM is the unencrypted OpenSSH private key sshd accepts.
	ClientKeyPEM []byte
	// ClientKeyFile is ClientKeyPEM written to disk (mode 0600), for ssh/scp -i.
	ClientKeyFile string
	// KnownHostsFile lists the host key for every address ("[ip]:port").
	KnownHostsFile string
	// User is the account sessions log in as (the current user).
	User string
	// Home is the clean HOME of sessions (an empty .bashrc and .profile).
	Home string
	// Dir holds everything above.
	Dir string

	addrs   []string
	procs   []*process
	ownDir  bool
	closeMu sync.Mutex
	closed  bool
}

type process struct {
	cmd    *exec.Cmd
	done   chan struct{}
	stderr *lockedBuffer
}

// Start launches sshd for a test and stops it when the test ends. When sshd
// is not installed it skips the test, unless CI=true, where it fails it.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	bin := opts.Binary
	if bin == "" {
		bin = DefaultBinary
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sshdtest: sshd is required in CI: %v", err)
		}
		t.Skipf("sshdtest: sshd not installed (%v); install openssh-server to run this test", err)
	}
	if opts.Dir == "" {
		opts.Dir = t.TempDir()
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := Launch(ctx, opts)
	if err != nil {
		t.Fatalf("sshdtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sshdtest: close: %v", err)
		}
	})
	return s
}

// Launch starts the sshd processes and waits until every address accepts
// connections. The caller must Close the server.
func Launch(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" {
		opts.Binary = DefaultBinary
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 15 * time.Second
	}
	ips, err := hostIPs(opts)
	if err != nil {
		return nil, err
	}
	s := &Server{Dir: opts.Dir}
	if s.Dir == "" {
		dir, err := os.MkdirTemp("", "sshdtest-")
		if err != nil {
			return nil, fmt.Errorf("create dir: %w", err)
		}
		s.Dir, s.ownDir = dir, true
	}
	if err := s.prepare(); err != nil {
		_ = s.Close()
		return nil, err
	}
	// The privilege separation directory sshd insists on.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil { //nolint:gosec // the mode sshd expects of it
		_ = s.Close()
		return nil, fmt.Errorf("create privilege separation dir: %w", err)
	}
	const attempts = 3
	for i := range attempts {
		err = s.launch(ctx, opts, ips)
		if err == nil {
			return s, nil
		}
		s.stopProcesses()
		if ctx.Err() != nil || i == attempts-1 {
			break
		}
	}
	_ = s.Close()
	return nil, err
}

// Addr returns host:port of host i.
func (s *Server) Addr(i int) string { return s.addrs[i] }

// Addrs returns host:port of every host.
func (s *Server) Addrs() []string { return append([]string(nil), s.addrs...) }

// Len returns the number of hosts.
func (s *Server) Len() int { return len(s.addrs) }

// Close stops every sshd process (by PID) and removes the directory when
// Launch created it. It is safe to call more than once.
func (s *Server) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	s.stopProcesses()
	if s.ownDir {
		if err := os.RemoveAll(s.Dir); err != nil {
			return fmt.Errorf("remove %s: %w", s.Dir, err)
		}
	}
	return nil
}

func (s *Server) stopProcesses() {
	for _, p := range s.procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	s.procs = nil
}

// hostIPs returns the listen IPs, checking they are loopback addresses.
func hostIPs(opts Options) ([]string, error) {
	ips := opts.Addrs
	if len(ips) == 0 {
		n := max(opts.Hosts, 0)
		if n == 0 {
			ips = []string{"127.0.0.1"}
		}
		if n > 254*254 {
			return nil, fmt.Errorf("too many hosts: %d", n)
		}
		for i := range n {
			ips = append(ips, fmt.Sprintf("127.0.%d.%d", 1+i/254, 1+i%254))
		}
	}
	for _, ip := range ips {
		parsed := net.ParseIP(ip)
		if parsed == nil || !parsed.IsLoopback() {
			return nil, fmt.Errorf("address %q is not a loopback IP", ip)
		}
	}
	return ips, nil
}

// prepare writes keys, known_hosts and the sessions' home.
func (s *Server) prepare() error {
	u, err := user.Current()
	if err != nil {
		return fmt.Errorf("current user: %w", err)
	}
	s.User = u.Username

	hostPEM, hostPub, hostSigner, err := newKey()
	if err != nil {
		return err
	}
	s.HostKey = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(hostPub)))
	s.HostSigner = hostSigner
	clientPEM, clientPub, _, err := newKey()
	if err != nil {
		return err
	}
	s.ClientKeyPEM = clientPEM
	s.ClientKeyFile = filepath.Join(s.Dir, "client_ed25519")
	s.KnownHostsFile = filepath.Join(s.Dir, "known_hosts")
	s.Home = filepath.Join(s.Dir, "home")

	files := []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{filepath.Join(s.Dir, "host_ed25519"), hostPEM, 0o600},
		{s.ClientKeyFile, clientPEM, 0o600},
		{filepath.Join(s.Dir, "authorized_keys"), ssh.MarshalAuthorizedKey(clientPub), 0o600},
		{filepath.Join(s.Home, ".bashrc"), nil, 0o644},
		{filepath.Join(s.Home, ".profile"), nil, 0o644},
	}
	if err := os.MkdirAll(s.Home, 0o755); err != nil { //nolint:gosec // the sessions' home, readable like any home
		return fmt.Errorf("create home: %w", err)
	}
	for _, f := range files {
		if err := os.WriteFile(f.path, f.data, f.mode); err != nil {
			return fmt.Errorf("write %s: %w", f.path, err)
		}
	}
	return nil
}

// launch picks a port and starts one sshd per group of addresses.
func (s *Server) launch(ctx context.Context, opts Options, ips []string) error {
	port, err := freePort(ctx, ips[0])
	if err != nil {
		return err
	}
	s.addrs = s.addrs[:0]
	for _, ip := range ips {
		s.addrs = append(s.addrs, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	if err := s.writeKnownHosts(); err != nil {
		return err
	}
	for n := 0; n*maxListenPerProcess < len(s.addrs); n++ {
		group := s.addrs[n*maxListenPerProcess : min((n+1)*maxListenPerProcess, len(s.addrs))]
		if err := s.startProcess(n, opts, group); err != nil {
			return err
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, opts.StartTimeout)
	defer cancel()
	for i, p := range s.procs {
		group := s.addrs[i*maxListenPerProcess : min((i+1)*maxListenPerProcess, len(s.addrs))]
		for _, addr := range group {
			if err := waitAccept(waitCtx, addr, p); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Server) writeKnownHosts() error {
	var b strings.Builder
	for _, addr := range s.addrs {
		b.WriteString(knownHostsLine(addr, s.HostKey))
	}
	if err := os.WriteFile(s.KnownHostsFile, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write known_hosts: %w", err)
	}
	return nil
}

// knownHostsLine returns the known_hosts line of key at addr ("[ip]:port key").
func knownHostsLine(addr, key string) string {
	host, port, _ := net.SplitHostPort(addr)
	name := host
	if port != "22" {
		name = "[" + host + "]:" + port
	}
	return name + " " + key + "\n"
}

func (s *Server) startProcess(n int, opts Options, addrs []string) error {
	cfg := filepath.Join(s.Dir, fmt.Sprintf("sshd_config.%d", n))
	if err := os.WriteFile(cfg, []byte(s.config(addrs, opts.ExtraConfig)), 0o600); err != nil {
		return fmt.Errorf("write sshd config: %w", err)
	}
	// sshd wants an absolute path to re-execute itself.
	cmd := exec.Command(opts.Binary, "-D", "-e", "-f", cfg) //nolint:noctx // sshd outlives the start-up ctx; Close stops it by PID
	stderr := &lockedBuffer{}
	cmd.Stderr = stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start sshd: %w", err)
	}
	p := &process{cmd: cmd, done: make(chan struct{}), stderr: stderr}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	s.procs = append(s.procs, p)
	return nil
}

func (s *Server) config(addrs, extra []string) string {
	lines := []string{
		"HostKey " + filepath.Join(s.Dir, "host_ed25519"),
		"PidFile none",
		"StrictModes no",
		"UsePAM no",
		"PermitRootLogin yes",
		"PubkeyAuthentication yes",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"AuthorizedKeysFile " + filepath.Join(s.Dir, "authorized_keys"),
		"SetEnv HOME=" + s.Home,
		"Subsystem sftp internal-sftp",
		"UseDNS no",
		"PrintMotd no",
		"PrintLastLog no",
		"X11Forwarding no",
		"MaxStartups 500",
		"MaxSessions 100",
		"LoginGraceTime 30",
		"LogLevel ERROR",
	}
	for _, a := range addrs {
		lines = append(lines, "ListenAddress "+a)
	}
	lines = append(lines, extra...)
	return strings.Join(lines, "\n") + "\n"
}

// freePort asks the kernel for a port that is free on ip right now.
func freePort(ctx context.Context, ip string) (int, error) {
	var lc net.ListenConfig
	l, err := lc.Listen(ctx, "tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitAccept dials addr until it accepts, sshd exits or ctx ends.
func waitAccept(ctx context.Context, addr string, p *process) error {
	var d net.Dialer
	for {
		conn, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("sshd exited before accepting on %s: %s", addr, strings.TrimSpace(p.stderr.String()))
		case <-ctx.Done():
			return fmt.Errorf("sshd did not accept on %s: %w (stderr: %s)", addr, ctx.Err(), strings.TrimSpace(p.stderr.String()))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// newKey generates an ed25519 key pair.
func newKey() (pemBytes []byte, pub ssh.PublicKey, signer ssh.Signer, err error) {
	pubRaw, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("generate key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("marshal key: %w", err)
	}
	pub, err = ssh.NewPublicKey(pubRaw)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("public key: %w", err)
	}
	signer, err = ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("signer: %w", err)
	}
	return pem.EncodeToMemory(block), pub, signer, nil
}

// lockedBuffer is a bounded, concurrency-safe buffer for sshd's stderr.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const maxStderr = 64 << 10

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := maxStderr - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
