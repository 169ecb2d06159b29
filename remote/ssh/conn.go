package ssh

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pkg/sftp"
	"golang.org/x/crypto/ssh"

	"github.com/packflow/packflow/remote"
)

// ErrClosed is returned by a Client used after Close.
var ErrClosed = errors.New("ssh: client closed")

// conn is one SSH connection; done is closed once it ended.
type conn struct {
	client  *ssh.Client
	done    chan struct{}
	closing atomic.Bool // closed by us; done follows shortly
}

func (c *conn) dead() bool {
	if c.closing.Load() {
		return true
	}
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

// close closes the connection and marks it dead at once, so that no new
// session is opened on it while it winds down.
func (c *conn) close() error {
	c.closing.Store(true)
	return c.client.Close()
}

// hostConn owns the connection to one host: it dials lazily, shares the
// connection between sessions, keeps it alive, closes it when idle and
// replaces it when it died.
type hostConn struct {
	opts  Options
	auth  []ssh.AuthMethod
	keys  *hostKeys
	dialC chan struct{} // one dial at a time

	mu     sync.Mutex
	cur    *conn
	active int
	idle   *time.Timer
	closed bool

	wg sync.WaitGroup // goroutines of every connection
}

func newHostConn(opts Options) (*hostConn, error) {
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	auth, err := authMethods(opts.Auth)
	if err != nil {
		return nil, err
	}
	keys, err := newHostKeys(opts.HostKey)
	if err != nil {
		return nil, err
	}
	return &hostConn{opts: opts, auth: auth, keys: keys, dialC: make(chan struct{}, 1)}, nil
}

// acquire returns a live connection, dialling when there is none, and
// counts one user of it until release.
func (h *hostConn) acquire(ctx context.Context) (*conn, error) {
	for {
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return nil, ErrClosed
		}
		if c := h.cur; c != nil && !c.dead() {
			h.active++
			if h.idle != nil {
				h.idle.Stop()
			}
			h.mu.Unlock()
			return c, nil
		}
		h.mu.Unlock()

		select {
		case h.dialC <- struct{}{}:
		case <-ctx.Done():
			return nil, ctxErr(ctx, "connect")
		}
		h.mu.Lock()
		fresh := h.cur != nil && !h.cur.dead()
		closed := h.closed
		h.mu.Unlock()
		if fresh || closed {
			<-h.dialC
			continue
		}
		c, err := h.dial(ctx)
		if err != nil {
			<-h.dialC
			return nil, err
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			<-h.dialC
			_ = c.close()
			return nil, ErrClosed
		}
		// Published before the next dialler may look.
		h.cur = c
		h.mu.Unlock()
		<-h.dialC
	}
}

// release ends one use of c and arms the idle timer when nobody uses it.
func (h *hostConn) release() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.active--
	if h.active > 0 || h.opts.IdleTimeout < 0 || h.closed {
		return
	}
	if h.idle == nil {
		h.idle = time.AfterFunc(h.opts.IdleTimeout, h.closeIdle)
		return
	}
	h.idle.Reset(h.opts.IdleTimeout)
}

func (h *hostConn) closeIdle() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.active > 0 || h.cur == nil {
		return
	}
	h.opts.Logger.Debug("ssh: closing idle connection", "addr", h.opts.Addr)
	_ = h.cur.close()
	h.cur = nil
}

// drop closes c when it is still the current connection, so that the next
// acquire dials again.
func (h *hostConn) drop(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.cur == c {
		h.cur = nil
	}
	_ = c.close()
}

// close closes the connection for good and waits for its goroutines.
func (h *hostConn) close() error {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return nil
	}
	h.closed = true
	if h.idle != nil {
		h.idle.Stop()
	}
	var err error
	if h.cur != nil {
		if cerr := h.cur.close(); cerr != nil && !errors.Is(cerr, net.ErrClosed) {
			err = fmt.Errorf("ssh: close %s: %w", h.opts.Addr, cerr)
		}
		h.cur = nil
	}
	h.mu.Unlock()
	h.wg.Wait()
	return err
}

// dial connects and authenticates, bounded by ctx and ConnectTimeout.
func (h *hostConn) dial(ctx context.Context) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, h.opts.ConnectTimeout)
	defer cancel()
	c, err := h.handshake(ctx)
	if errors.Is(err, errRetryAlgorithms) {
		c, err = h.handshake(ctx)
	}
	if err != nil {
		return nil, err
	}
	h.opts.Logger.Debug("ssh: connected", "addr", h.opts.Addr, "user", h.opts.User)
	h.wg.Add(2)
	go func() {
		defer h.wg.Done()
		_ = c.client.Wait()
		close(c.done)
	}()
	go func() {
		defer h.wg.Done()
		h.keepalive(c)
	}()
	return c, nil
}

func (h *hostConn) handshake(ctx context.Context) (*conn, error) {
	nc, err := h.opts.Dialer(ctx, "tcp", h.opts.Addr)
	if err != nil {
		return nil, connErr(ctx, "dial "+h.opts.Addr, err)
	}
	if deadline, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { _ = nc.Close() })
	cfg := &ssh.ClientConfig{
		User:              h.opts.User,
		Auth:              h.auth,
		HostKeyCallback:   h.keys.check,
		HostKeyAlgorithms: h.keys.algorithms(),
	}
	sc, chans, reqs, err := ssh.NewClientConn(nc, h.opts.Addr, cfg)
	if !stop() || err != nil {
		_ = nc.Close()
		if err == nil {
			err = ctx.Err()
		}
		return nil, connErr(ctx, "handshake with "+h.opts.Addr, err)
	}
	_ = nc.SetDeadline(time.Time{})
	return &conn{client: ssh.NewClient(sc, chans, reqs), done: make(chan struct{})}, nil
}

// keepalive sends keepalive requests and closes c when too many go
// unanswered, so that users of a dead connection fail instead of hanging.
func (h *hostConn) keepalive(c *conn) {
	if h.opts.Keepalive < 0 {
		return
	}
	t := time.NewTicker(h.opts.Keepalive)
	defer t.Stop()
	missed := 0
	replies := make(chan error, 1)
	pending := false
	for {
		select {
		case <-c.done:
			return
		case err := <-replies:
			pending = false
			if err != nil {
				_ = c.close()
				return
			}
			missed = 0
			continue
		case <-t.C:
		}
		if pending {
			missed++
			if missed >= h.opts.KeepaliveMax {
				h.opts.Logger.Warn("ssh: keepalives unanswered, closing connection", "addr", h.opts.Addr, "missed", missed)
				_ = c.close()
				return
			}
			continue
		}
		pending = true
		h.wg.Add(1)
		go func() {
			defer h.wg.Done()
			_, _, err := c.client.SendRequest("keepalive@openssh.com", true, nil)
			replies <- err
		}()
	}
}

// newSession opens a session on c, giving up when ctx or the connection
// ends. x/crypto can leave the opening goroutine waiting for ever when the
// connection dies at that very moment, so it is not waited for on close; a
// session that opens late is closed.
func (h *hostConn) newSession(ctx context.Context, c *conn) (*ssh.Session, error) {
	type result struct {
		s   *ssh.Session
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.client.NewSession()
		ch <- result{s, err}
	}()
	closeLate := func() {
		go func() {
			if r := <-ch; r.s != nil {
				_ = r.s.Close()
			}
		}()
	}
	select {
	case r := <-ch:
		if r.err != nil {
			return nil, connErr(ctx, "open session", r.err)
		}
		return r.s, nil
	case <-c.done:
		closeLate()
		return nil, connErr(ctx, "open session", errConnEnded)
	case <-ctx.Done():
		closeLate()
		return nil, ctxErr(ctx, "open session")
	}
}

// errConnEnded reports a connection that ended under an operation.
var errConnEnded = errors.New("connection ended")

// ctxErr reports the end of ctx: remote.ErrTimeout for a deadline.
func ctxErr(ctx context.Context, op string) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("ssh: %s: %w: %w", op, remote.ErrTimeout, ctx.Err())
	}
	return fmt.Errorf("ssh: %s: %w", op, ctx.Err())
}

// connErr maps a connection-level failure to the remote sentinels: the end
// of ctx, refused credentials, a host key mismatch, or a lost connection.
func connErr(ctx context.Context, op string, err error) error {
	switch {
	case errors.Is(err, remote.ErrHostKeyMismatch), errors.Is(err, remote.ErrAuth):
		return fmt.Errorf("ssh: %s: %w", op, err)
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", ctxErr(ctx, op), err)
	case strings.Contains(err.Error(), "unable to authenticate"):
		return fmt.Errorf("ssh: %s: %w: %w", op, remote.ErrAuth, err)
	case isTimeout(err):
		return fmt.Errorf("ssh: %s: %w: %w", op, remote.ErrTimeout, err)
	default:
		return fmt.Errorf("ssh: %s: %w: %w", op, remote.ErrDisconnected, err)
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isConnLoss reports errors that mean the connection or channel went away.
func isConnLoss(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.As(err, &ne)
}
