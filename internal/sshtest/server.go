package sshtest

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"
)

// Commands the server answers itself.
const (
	BootIDCommand        = "cat /proc/sys/kernel/random/boot_id"
	DefaultRebootCommand = "shutdown -r now"
	DefaultHangMarker    = "sshtest-hang"
)

// Options configures a Server.
type Options struct {
	// Addr is the loopback address to listen on; default 127.0.0.1:0.
	Addr string
	// Password, when set, is accepted for password authentication.
	Password string
	// AuthorizedKeys are accepted besides the generated client key.
	AuthorizedKeys []ssh.PublicKey
	// RebootCommand is the exec command that simulates a reboot; default
	// DefaultRebootCommand (and the same through "sudo -n").
	RebootCommand string
	// RebootDown is how long connections are refused during a reboot;
	// default 200 ms.
	RebootDown time.Duration
	// KeepBootID makes a simulated reboot come back with the same boot id,
	// as a host whose reboot failed.
	KeepBootID bool
	// Env is added to the environment of the commands the server runs
	// (for example a PATH with fake tools first).
	Env []string
	// HangMarker: exec commands containing it are accepted and never
	// answered. Default DefaultHangMarker.
	HangMarker string
	// Logger receives server events; default discards.
	Logger *slog.Logger
}

// Server is an in-process SSH server on loopback.
type Server struct {
	// User is the name to log in with (any name is accepted).
	User string
	// ClientKeyPEM is an unencrypted private key the server accepts.
	ClientKeyPEM []byte

	opts      Options
	clientKey ssh.PublicKey

	mu        sync.Mutex
	addr      string
	hostKey   ssh.Signer
	extraKeys []ssh.Signer // presented too, as a host with several key types
	bootID    string
	listener  net.Listener
	conns     map[*ssh.ServerConn]struct{}
	closed    bool
	reboots   int
	dropAfter int64 // SFTP bytes after which the connection drops; 0 never

	accepted atomic.Int64
	envReqs  atomic.Int64
	wg       sync.WaitGroup
	stop     chan struct{}
	life     context.Context // ends at Close, killing the commands still running
	end      context.CancelFunc
}

// Start starts a Server for a test and closes it when the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s, err := New(opts)
	if err != nil {
		t.Fatalf("sshtest: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("sshtest: close: %v", err)
		}
	})
	return s
}

// New starts a Server; the caller must Close it.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	if host, _, err := net.SplitHostPort(opts.Addr); err != nil || !net.ParseIP(host).IsLoopback() {
		return nil, fmt.Errorf("address %q is not a loopback address", opts.Addr)
	}
	if opts.RebootCommand == "" {
		opts.RebootCommand = DefaultRebootCommand
	}
	if opts.RebootDown <= 0 {
		opts.RebootDown = 200 * time.Millisecond
	}
	if opts.HangMarker == "" {
		opts.HangMarker = DefaultHangMarker
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	hostKey, err := NewSigner()
	if err != nil {
		return nil, err
	}
	clientPub, clientPriv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate client key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(clientPriv, "")
	if err != nil {
		return nil, fmt.Errorf("marshal client key: %w", err)
	}
	clientKey, err := ssh.NewPublicKey(clientPub)
	if err != nil {
		return nil, fmt.Errorf("client public key: %w", err)
	}
	s := &Server{
		User:         "tester",
		ClientKeyPEM: pem.EncodeToMemory(block),
		opts:         opts,
		clientKey:    clientKey,
		hostKey:      hostKey,
		bootID:       newBootID(),
		conns:        map[*ssh.ServerConn]struct{}{},
		stop:         make(chan struct{}),
	}
	s.life, s.end = context.WithCancel(context.Background())
	var lc net.ListenConfig
	l, err := lc.Listen(context.Background(), "tcp", opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	return s, nil
}

// NewSigner generates an ed25519 host key.
func NewSigner() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("host key: %w", err)
	}
	return signer, nil
}

func newBootID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// Addr returns host:port of the server.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// HostKey returns the current host key as an authorized_keys line.
func (s *Server) HostKey() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(s.hostKey.PublicKey())))
}

// ChangeHostKey makes new connections see a new host key and returns it as
// an authorized_keys line. Existing connections are kept.
func (s *Server) ChangeHostKey() (string, error) {
	signer, err := NewSigner()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.hostKey = signer
	s.mu.Unlock()
	return s.HostKey(), nil
}

// AddHostKey makes new connections offer signer besides the main host
// key, as real hosts offer one key per type (ed25519, ecdsa, rsa).
func (s *Server) AddHostKey(signer ssh.Signer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.extraKeys = append(s.extraKeys, signer)
}

// BootID returns the current simulated boot id.
func (s *Server) BootID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bootID
}

// Reboots returns how many simulated reboots happened.
func (s *Server) Reboots() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reboots
}

// Accepted returns how many SSH connections completed their handshake.
func (s *Server) Accepted() int64 { return s.accepted.Load() }

// Conns returns how many SSH connections are open.
func (s *Server) Conns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// DropConnections closes every open connection abruptly.
func (s *Server) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		_ = c.Close()
	}
}

// DropUploadsAfter makes the server drop a connection once an SFTP session
// of it received more than n bytes; 0 turns it off.
func (s *Server) DropUploadsAfter(n int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropAfter = n
}

// Close stops the server, drops connections, kills the processes it
// started and waits for its goroutines.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.stop)
	s.end()
	if s.listener != nil {
		_ = s.listener.Close()
	}
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return nil
}

func (s *Server) config() *ssh.ServerConfig {
	s.mu.Lock()
	hostKeys := append([]ssh.Signer{s.hostKey}, s.extraKeys...)
	s.mu.Unlock()
	cfg := &ssh.ServerConfig{
		PublicKeyCallback: func(_ ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
			for _, k := range append([]ssh.PublicKey{s.clientKey}, s.opts.AuthorizedKeys...) {
				if string(key.Marshal()) == string(k.Marshal()) {
					return &ssh.Permissions{}, nil
				}
			}
			return nil, errors.New("unknown public key")
		},
	}
	if s.opts.Password != "" {
		cfg.PasswordCallback = func(_ ssh.ConnMetadata, password []byte) (*ssh.Permissions, error) {
			if string(password) == s.opts.Password {
				return &ssh.Permissions{}, nil
			}
			return nil, errors.New("wrong password")
		}
	}
	for _, k := range hostKeys {
		cfg.AddHostKey(k)
	}
	return cfg
}

// serve accepts connections on l until it is closed.
func (s *Server) serve(l net.Listener) {
	s.mu.Lock()
	s.listener = l
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			nc, err := l.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				s.handleConn(nc)
			}()
		}
	}()
}

func (s *Server) handleConn(nc net.Conn) {
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	sc, chans, reqs, err := ssh.NewServerConn(nc, s.config())
	if err != nil {
		_ = nc.Close()
		return
	}
	_ = nc.SetDeadline(time.Time{})
	s.mu.Lock()
	if s.closed || s.listener == nil {
		s.mu.Unlock()
		_ = sc.Close()
		return
	}
	s.conns[sc] = struct{}{}
	s.mu.Unlock()
	s.accepted.Add(1)
	defer func() {
		s.mu.Lock()
		delete(s.conns, sc)
		s.mu.Unlock()
		_ = sc.Close()
	}()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for req := range reqs {
			// keepalive@openssh.com and the like: answer like OpenSSH.
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}()
	for nch := range chans {
		if nch.ChannelType() != "session" {
			_ = nch.Reject(ssh.UnknownChannelType, "only sessions")
			continue
		}
		ch, chReqs, err := nch.Accept()
		if err != nil {
			continue
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.handleSession(sc, ch, chReqs)
		}()
	}
}

// handleSession serves one session channel: the first exec or subsystem
// request decides what it does.
func (s *Server) handleSession(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request) {
	defer func() { _ = ch.Close() }()
	for req := range reqs {
		switch req.Type {
		case "exec":
			var p struct{ Command string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.exec(sc, ch, reqs, p.Command)
			return
		case "subsystem":
			var p struct{ Name string }
			if err := ssh.Unmarshal(req.Payload, &p); err != nil || p.Name != "sftp" {
				_ = req.Reply(false, nil)
				continue
			}
			_ = req.Reply(true, nil)
			s.discard(reqs)
			s.sftp(sc, ch)
			return
		default:
			if req.Type == "env" {
				s.envReqs.Add(1)
			}
			if req.WantReply {
				_ = req.Reply(false, nil)
			}
		}
	}
}

// EnvRequests returns how many "env" requests (variables a client asked
// to set) sessions received; they are refused.
func (s *Server) EnvRequests() int64 { return s.envReqs.Load() }

func (s *Server) exec(sc *ssh.ServerConn, ch ssh.Channel, reqs <-chan *ssh.Request, command string) {
	trimmed := strings.TrimSpace(command)
	switch {
	case strings.Contains(command, s.opts.HangMarker):
		// Accepted, never answered: wait for the client to give up.
		ssh.DiscardRequests(reqs)
	case trimmed == BootIDCommand:
		s.discard(reqs)
		_, _ = io.WriteString(ch, s.BootID()+"\n")
		sendExit(ch, 0)
	case trimmed == s.opts.RebootCommand || trimmed == "sudo -n "+s.opts.RebootCommand:
		s.discard(reqs)
		sendExit(ch, 0)
		_ = ch.Close()
		s.reboot()
	default:
		s.discard(reqs)
		s.runShell(ch, command)
	}
}

// discard answers the remaining requests of a session in the background.
func (s *Server) discard(reqs <-chan *ssh.Request) {
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		ssh.DiscardRequests(reqs)
	}()
}

// runShell runs command under /bin/sh as the session leader of a new
// session, like sshd, and reports its exit.
func (s *Server) runShell(ch ssh.Channel, command string) {
	cmd := exec.CommandContext(s.life, "/bin/sh", "-c", command)
	// Like sshd, the shell leads a new session; Close kills the whole group.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.Stdout, cmd.Stderr = ch, ch.Stderr()
	if len(s.opts.Env) > 0 {
		cmd.Env = append(os.Environ(), s.opts.Env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		sendExit(ch, 127)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if err := cmd.Start(); err != nil {
		s.mu.Unlock()
		_, _ = fmt.Fprintf(ch.Stderr(), "sshtest: %v\n", err)
		sendExit(ch, 127)
		return
	}
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_, _ = io.Copy(stdin, ch)
		_ = stdin.Close()
	}()
	err = cmd.Wait()
	var exit *exec.ExitError
	switch {
	case err == nil:
		sendExit(ch, 0)
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			sig := strings.TrimPrefix(unix(ws.Signal()), "SIG")
			_, _ = ch.SendRequest("exit-signal", false, ssh.Marshal(struct {
				Signal     string
				CoreDumped bool
				Error      string
				Lang       string
			}{Signal: sig}))
			return
		}
		sendExit(ch, exit.ExitCode())
	default:
		sendExit(ch, 255)
	}
}

// unix names a signal the way SSH does ("KILL", "TERM").
func unix(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGKILL:
		return "KILL"
	case syscall.SIGTERM:
		return "TERM"
	case syscall.SIGINT:
		return "INT"
	case syscall.SIGHUP:
		return "HUP"
	case syscall.SIGPIPE:
		return "PIPE"
	}
	return fmt.Sprint(int(sig))
}

func sendExit(ch ssh.Channel, code int) {
	_, _ = ch.SendRequest("exit-status", false, ssh.Marshal(struct{ Status uint32 }{uint32(code)}))
}

// sftp serves the real file system, dropping the connection once the
// upload limit is crossed.
func (s *Server) sftp(sc *ssh.ServerConn, ch ssh.Channel) {
	s.mu.Lock()
	limit := s.dropAfter
	s.mu.Unlock()
	rw := io.ReadWriteCloser(ch)
	if limit > 0 {
		rw = &dropper{Channel: ch, conn: sc, limit: limit}
	}
	srv, err := sftp.NewServer(rw)
	if err != nil {
		return
	}
	_ = srv.Serve()
	_ = srv.Close()
}

// dropper closes the whole connection after limit bytes were read.
type dropper struct {
	ssh.Channel
	conn  *ssh.ServerConn
	limit int64
	n     int64
}

func (d *dropper) Read(p []byte) (int, error) {
	n, err := d.Channel.Read(p)
	d.n += int64(n)
	if d.n > d.limit {
		_ = d.conn.Close()
		return 0, io.ErrUnexpectedEOF
	}
	return n, err
}

// reboot simulates a reboot: stop listening, drop every connection, stay
// down for RebootDown, come back on the same address with a new boot id.
func (s *Server) reboot() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.reboots++
	l := s.listener
	s.listener = nil
	_ = l.Close()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.opts.Logger.Info("sshtest: rebooting", "down", s.opts.RebootDown)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		select {
		case <-time.After(s.opts.RebootDown):
		case <-s.stop:
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var lc net.ListenConfig
		var nl net.Listener
		for {
			var err error
			if nl, err = lc.Listen(ctx, "tcp", s.Addr()); err == nil {
				break
			}
			select {
			case <-time.After(20 * time.Millisecond):
			case <-s.stop:
				return
			case <-ctx.Done():
				s.opts.Logger.Error("sshtest: cannot listen again after reboot", "err", err)
				return
			}
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			_ = nl.Close()
			return
		}
		if !s.opts.KeepBootID {
			s.bootID = newBootID()
		}
		s.mu.Unlock()
		s.serve(nl)
	}()
}
