package ssh_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packflow/packflow/internal/sshtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/remotetest"
	rssh "github.com/packflow/packflow/remote/ssh"
)

func faultOptions(t *testing.T, s *sshtest.Server) rssh.Options {
	return rssh.Options{
		Addr:             s.Addr(),
		User:             s.User,
		Auth:             rssh.Auth{PrivateKeyPEM: s.ClientKeyPEM},
		HostKey:          rssh.HostKeyPolicy{Pinned: s.HostKey()},
		StagingBase:      t.TempDir(),
		ReconnectInitial: 20 * time.Millisecond,
		ReconnectMax:     200 * time.Millisecond,
		Logger:           testLogger(t),
	}
}

func TestConformanceFaultServer(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{Logger: testLogger(t)})
	remotetest.Run(t, func(t *testing.T) remote.Communicator {
		c, err := rssh.Dial(t.Context(), faultOptions(t, s))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		return c
	}, remotetest.Capabilities{Reboot: true})
}

func TestRebootWaitsForNewBootID(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{RebootDown: 300 * time.Millisecond})
	c := dial(t, faultOptions(t, s))
	before := s.BootID()
	if err := c.Reboot(t.Context(), remote.RebootOptions{Timeout: time.Minute}); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if s.Reboots() != 1 || s.BootID() == before {
		t.Errorf("reboots=%d boot id %s -> %s, want one reboot and a new id", s.Reboots(), before, s.BootID())
	}
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Errorf("Run after reboot: %v", err)
	}
}

func TestRebootCustomCommand(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{RebootCommand: "systemctl reboot"})
	c := dial(t, faultOptions(t, s))
	if err := c.Reboot(t.Context(), remote.RebootOptions{Command: "systemctl reboot", Timeout: time.Minute}); err != nil {
		t.Fatalf("Reboot: %v", err)
	}
	if s.Reboots() != 1 {
		t.Errorf("reboots = %d, want 1", s.Reboots())
	}
}

func TestRebootWithoutNewBootIDTimesOut(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{KeepBootID: true})
	c := dial(t, faultOptions(t, s))
	err := c.Reboot(t.Context(), remote.RebootOptions{Timeout: 2 * time.Second})
	if !errors.Is(err, remote.ErrTimeout) {
		t.Errorf("Reboot of a host that kept its boot id = %v, want remote.ErrTimeout", err)
	}
	if s.Reboots() != 1 {
		t.Errorf("reboots = %d, want 1", s.Reboots())
	}
}

func TestRebootCommandFailure(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	err := c.Reboot(t.Context(), remote.RebootOptions{Command: "echo no >&2; exit 1", Timeout: time.Minute})
	var exit *remote.ExitError
	if !errors.As(err, &exit) || exit.Code != 1 {
		t.Errorf("Reboot with a failing command = %v, want exit status 1", err)
	}
}

func TestHostKeyChangedAcrossReboot(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	if _, err := s.ChangeHostKey(); err != nil {
		t.Fatal(err)
	}
	err := c.Reboot(t.Context(), remote.RebootOptions{Timeout: time.Minute})
	if !errors.Is(err, remote.ErrHostKeyMismatch) {
		t.Errorf("Reboot onto a new host key = %v, want remote.ErrHostKeyMismatch", err)
	}
}

func TestChangedHostKey(t *testing.T) {
	tests := []struct {
		name   string
		policy func(s *sshtest.Server, recorded *[]string) rssh.HostKeyPolicy
	}{
		{"pinned", func(s *sshtest.Server, _ *[]string) rssh.HostKeyPolicy {
			return rssh.HostKeyPolicy{Pinned: s.HostKey()}
		}},
		{"known_hosts", func(s *sshtest.Server, _ *[]string) rssh.HostKeyPolicy {
			return rssh.HostKeyPolicy{KnownHostsFile: writeKnownHosts(t, s.Addr(), s.HostKey())}
		}},
		{"trust on first use", func(_ *sshtest.Server, recorded *[]string) rssh.HostKeyPolicy {
			return rssh.HostKeyPolicy{TrustOnFirstUse: true, OnFirstKey: func(key string) error {
				*recorded = append(*recorded, key)
				return nil
			}}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := sshtest.Start(t, sshtest.Options{})
			var recorded []string
			opts := faultOptions(t, s)
			opts.HostKey = tc.policy(s, &recorded)
			c := dial(t, opts)
			if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
				t.Fatalf("Run: %v", err)
			}
			if opts.HostKey.TrustOnFirstUse && (len(recorded) != 1 || recorded[0] != s.HostKey()) {
				t.Errorf("recorded %q, want the host key %q once", recorded, s.HostKey())
			}
			if _, err := s.ChangeHostKey(); err != nil {
				t.Fatal(err)
			}
			s.DropConnections()
			marker := filepath.Join(t.TempDir(), "ran")
			err := c.Run(t.Context(), &remote.Cmd{Command: "touch " + marker})
			if !errors.Is(err, remote.ErrHostKeyMismatch) || !remote.Permanent(err) {
				t.Errorf("Run after the host key changed = %v, want remote.ErrHostKeyMismatch", err)
			}
			if _, serr := os.Stat(marker); serr == nil {
				t.Error("the command ran on a host with a changed key")
			}
			if len(recorded) > 1 {
				t.Errorf("trust on first use recorded a second key: %q", recorded)
			}
		})
	}
}

func writeKnownHosts(t *testing.T, addr, key string) string {
	host, port, _ := strings.Cut(addr, ":")
	p := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(p, []byte("["+host+"]:"+port+" "+key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestTrustOnFirstUseRecordFailureRefuses(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := faultOptions(t, s)
	opts.HostKey = rssh.HostKeyPolicy{TrustOnFirstUse: true, OnFirstKey: func(string) error {
		return errors.New("store down")
	}}
	if _, err := rssh.Dial(t.Context(), opts); err == nil || !strings.Contains(err.Error(), "store down") {
		t.Errorf("Dial when the key cannot be recorded = %v, want the record error", err)
	}
}

func TestHostKeyPolicyRequired(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := faultOptions(t, s)
	opts.HostKey = rssh.HostKeyPolicy{}
	if _, err := rssh.Dial(t.Context(), opts); err == nil {
		t.Error("Dial without a host key policy succeeded")
	}
	opts.HostKey = rssh.HostKeyPolicy{TrustOnFirstUse: true}
	if _, err := rssh.Dial(t.Context(), opts); err == nil {
		t.Error("Dial with trust on first use but nowhere to record the key succeeded")
	}
}

func TestHangingCommandTimesOut(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := c.Run(ctx, &remote.Cmd{Command: "echo " + sshtest.DefaultHangMarker})
	if !errors.Is(err, remote.ErrTimeout) {
		t.Errorf("Run of a hanging command = %v, want remote.ErrTimeout", err)
	}
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Errorf("Run after a hanging command: %v", err)
	}
}

func TestDroppedMidRunIsDisconnected(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(t.Context(), &remote.Cmd{Command: "echo started; sleep 30", Stdout: writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(started) })
			return len(p), nil
		})})
	}()
	<-started
	s.DropConnections()
	if err := <-errc; !errors.Is(err, remote.ErrDisconnected) || remote.Permanent(err) {
		t.Errorf("Run on a dropped connection = %v, want remote.ErrDisconnected", err)
	}
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Errorf("Run after the drop (a new connection): %v", err)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestDroppedMidUploadIsDisconnected(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	src := t.TempDir()
	for _, name := range []string{"a", "b", "c", "d"} {
		if err := os.WriteFile(filepath.Join(src, name), make([]byte, 1<<20), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.DropUploadsAfter(1 << 20)
	err := c.Upload(t.Context(), src, filepath.Join(t.TempDir(), "dst"))
	if !errors.Is(err, remote.ErrDisconnected) {
		t.Errorf("Upload over a dropped connection = %v, want remote.ErrDisconnected", err)
	}
	s.DropUploadsAfter(0)
	if err := c.Upload(t.Context(), src, filepath.Join(t.TempDir(), "dst")); err != nil {
		t.Errorf("Upload after reconnecting: %v", err)
	}
}

func TestUploadCancelled(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	c := dial(t, faultOptions(t, s))
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "a"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := c.Upload(ctx, src, filepath.Join(t.TempDir(), "dst")); !errors.Is(err, context.Canceled) {
		t.Errorf("Upload with a cancelled ctx = %v, want context.Canceled", err)
	}
}

func TestIdleConnectionIsClosedAndReplaced(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	opts := faultOptions(t, s)
	opts.IdleTimeout = 50 * time.Millisecond
	c := dial(t, opts)
	// The server sees the connection, then sees it closed by the client.
	for s.Accepted() != 1 {
		time.Sleep(10 * time.Millisecond)
	}
	for s.Conns() != 0 {
		time.Sleep(10 * time.Millisecond)
	}
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Fatalf("Run after the idle close: %v", err)
	}
	if got := s.Accepted(); got != 2 {
		t.Errorf("server accepted %d connections, want 2 (the first closed when idle)", got)
	}
}

func TestPoolSharesOneConnectionPerHost(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	other := sshtest.Start(t, sshtest.Options{})
	pool := rssh.NewPool(rssh.PoolOptions{Logger: testLogger(t)})
	defer func() { _ = pool.Close() }()
	var wg sync.WaitGroup
	errs := make([]error, 10)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := pool.Get(t.Context(), faultOptions(t, s))
			if err != nil {
				errs[i] = err
				return
			}
			defer func() { _ = c.Close() }()
			errs[i] = c.Run(t.Context(), &remote.Cmd{Command: "true"})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if got := s.Accepted(); got != 1 {
		t.Errorf("10 clients made %d connections, want 1", got)
	}
	c, err := pool.Get(t.Context(), faultOptions(t, other))
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	if pool.Len() != 2 {
		t.Errorf("pool holds %d hosts, want 2", pool.Len())
	}
	// A dead connection is replaced on the next use.
	s.DropConnections()
	c, err = pool.Get(t.Context(), faultOptions(t, s))
	if err != nil {
		t.Fatalf("Get after the connection died: %v", err)
	}
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Errorf("Run on the replaced connection: %v", err)
	}
	_ = pool.Close()
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); !errors.Is(err, rssh.ErrClosed) {
		t.Errorf("Run after Pool.Close = %v, want ssh.ErrClosed", err)
	}
}

func TestPasswordAuth(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{Password: "s3cret"})
	opts := faultOptions(t, s)
	opts.Auth = rssh.Auth{Password: "s3cret"}
	c := dial(t, opts)
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	opts.Auth = rssh.Auth{Password: "wrong"}
	if _, err := rssh.Dial(t.Context(), opts); !errors.Is(err, remote.ErrAuth) {
		t.Errorf("Dial with a wrong password = %v, want remote.ErrAuth", err)
	}
}

// testdata/encrypted_ed25519 was made with
// ssh-keygen -t ed25519 -a 1 -N 'open sesame' (one KDF round keeps it quick).
func TestEncryptedKey(t *testing.T) {
	encrypted, err := os.ReadFile("testdata/encrypted_ed25519")
	if err != nil {
		t.Fatal(err)
	}
	pubLine, err := os.ReadFile("testdata/encrypted_ed25519.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(pubLine)
	if err != nil {
		t.Fatal(err)
	}
	s := sshtest.Start(t, sshtest.Options{AuthorizedKeys: []ssh.PublicKey{pub}})
	tests := []struct {
		name       string
		passphrase string
		wantErr    error
	}{
		{"right passphrase", "open sesame", nil},
		{"wrong passphrase", "nope", remote.ErrAuth},
		{"no passphrase", "", remote.ErrAuth},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := faultOptions(t, s)
			opts.Auth = rssh.Auth{PrivateKeyPEM: encrypted, Passphrase: tc.passphrase}
			c, err := rssh.Dial(t.Context(), opts)
			if c != nil {
				defer func() { _ = c.Close() }()
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr != nil && err == nil) {
				t.Errorf("Dial = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// freezer hands out connections that can be frozen: writes vanish and
// reads never return, as with a peer that silently went away.
type freezer struct {
	mu     sync.Mutex
	conns  []*frozenConn
	frozen bool
}

func (f *freezer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	fc := &frozenConn{Conn: c, f: f, closed: make(chan struct{})}
	f.mu.Lock()
	f.conns = append(f.conns, fc)
	f.mu.Unlock()
	return fc, nil
}

func (f *freezer) freeze(on bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.frozen = on
}

func (f *freezer) isFrozen() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.frozen
}

type frozenConn struct {
	net.Conn
	f         *freezer
	closeOnce sync.Once
	closed    chan struct{}
}

func (c *frozenConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.f.isFrozen() {
		<-c.closed
		return 0, net.ErrClosed
	}
	return n, err
}

func (c *frozenConn) Write(p []byte) (int, error) {
	if c.f.isFrozen() {
		return len(p), nil
	}
	return c.Conn.Write(p)
}

func (c *frozenConn) Close() error {
	c.closeOnce.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func TestKeepaliveDetectsSilentPeer(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	f := &freezer{}
	opts := faultOptions(t, s)
	opts.Dialer = f.dial
	opts.Keepalive = 20 * time.Millisecond
	opts.KeepaliveMax = 2
	c := dial(t, opts)
	started := make(chan struct{})
	var once sync.Once
	errc := make(chan error, 1)
	go func() {
		errc <- c.Run(t.Context(), &remote.Cmd{Command: "echo started; sleep 30", Stdout: writerFunc(func(p []byte) (int, error) {
			once.Do(func() { close(started) })
			return len(p), nil
		})})
	}()
	<-started
	f.freeze(true)
	if err := <-errc; !errors.Is(err, remote.ErrDisconnected) {
		t.Errorf("Run on a silent connection = %v, want remote.ErrDisconnected", err)
	}
	f.freeze(false)
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Errorf("Run on a new connection: %v", err)
	}
}

// A host offers several key types; the one on record is not the type the
// client would prefer. The client must ask for the recorded type.
func TestHostWithSeveralKeyTypes(t *testing.T) {
	s := sshtest.Start(t, sshtest.Options{})
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	s.AddHostKey(signer)
	ecdsaLine := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(signer.PublicKey())))
	// x/crypto prefers ecdsa to ed25519, so a recorded ed25519 key is the
	// case where the client must ask for another type than it would.
	for _, recorded := range []string{s.HostKey(), ecdsaLine} {
		policies := map[string]rssh.HostKeyPolicy{
			"pinned":      {Pinned: recorded},
			"known_hosts": {KnownHostsFile: writeKnownHosts(t, s.Addr(), recorded)},
		}
		for name, policy := range policies {
			t.Run(strings.Fields(recorded)[0]+"/"+name, func(t *testing.T) {
				opts := faultOptions(t, s)
				opts.HostKey = policy
				c := dial(t, opts)
				if c.HostKey() != recorded {
					t.Errorf("HostKey() = %q, want the recorded key %q", c.HostKey(), recorded)
				}
				if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
					t.Errorf("Run: %v", err)
				}
			})
		}
	}
}

// TestSendsNoEnvironment checks that no session asks the host to set a
// variable: the worker's environment (which holds its secrets) stays
// on the worker.
func TestSendsNoEnvironment(t *testing.T) {
	t.Setenv("PACKFLOW_SECRET_KEY", "worker-secret-must-not-leak")
	t.Setenv("LANG", "C.UTF-8")
	s := sshtest.Start(t, sshtest.Options{Logger: testLogger(t)})
	c, err := rssh.Dial(t.Context(), faultOptions(t, s))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true"}); err != nil {
		t.Fatal(err)
	}
	src := t.TempDir()
	if err := os.WriteFile(filepath.Join(src, "f"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "dst")
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatal(err)
	}
	if n := s.EnvRequests(); n != 0 {
		t.Errorf("sessions sent %d env requests, want none", n)
	}
}
