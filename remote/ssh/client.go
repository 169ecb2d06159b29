package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"regexp"
	"strings"
	"sync/atomic"

	"golang.org/x/crypto/ssh"

	"github.com/packflow/packflow/remote"
)

// Client is a remote.Communicator for one host over SSH. It is safe for
// concurrent use; its sessions share one connection.
type Client struct {
	h      *hostConn
	pooled bool // the connection belongs to a Pool; Close only ends this handle
	closed atomic.Bool
}

var _ remote.Communicator = (*Client)(nil)

// Dial connects to the host described by opts and returns a Client owning
// that connection. Refused credentials wrap remote.ErrAuth, a host key that
// does not match wraps remote.ErrHostKeyMismatch, and an unreachable host
// wraps remote.ErrDisconnected.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	h, err := newHostConn(opts)
	if err != nil {
		return nil, err
	}
	if _, err := h.acquire(ctx); err != nil {
		_ = h.close()
		return nil, err
	}
	h.release()
	return &Client{h: h}, nil
}

// HostKey returns the key the host presented, as an authorized_keys line.
func (c *Client) HostKey() string { return c.h.keys.key() }

// Close ends the Client. A Client from Dial closes its connection; one from
// a Pool leaves the shared connection to the Pool. Close is safe to call
// more than once.
func (c *Client) Close() error {
	if c.closed.Swap(true) || c.pooled {
		return nil
	}
	return c.h.close()
}

// acquire returns the live connection for one operation.
func (c *Client) acquire(ctx context.Context) (*conn, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, ctxErr(ctx, "start")
	}
	return c.h.acquire(ctx)
}

// session opens a session for one operation; the caller releases the
// connection and closes the session. A connection that turns out dead when
// the session opens (nothing ran yet) is replaced once.
func (c *Client) session(ctx context.Context) (*conn, *ssh.Session, error) {
	for attempt := 0; ; attempt++ {
		cn, err := c.acquire(ctx)
		if err != nil {
			return nil, nil, err
		}
		sess, err := c.h.newSession(ctx, cn)
		if err == nil {
			return cn, sess, nil
		}
		c.h.release()
		if ctx.Err() != nil || attempt > 0 {
			return nil, nil, err
		}
		c.h.opts.Logger.Debug("ssh: replacing dead connection", "addr", c.h.opts.Addr, "err", err)
		c.h.drop(cn)
	}
}

// output runs command as is (no wrapper, no sudo) and returns its standard
// output. It serves short internal commands; cancelling closes the session.
func (c *Client) output(ctx context.Context, command string) (string, error) {
	cn, sess, err := c.session(ctx)
	if err != nil {
		return "", err
	}
	defer c.h.release()
	defer func() { _ = sess.Close() }()
	var stdout, stderr bytes.Buffer
	sess.Stdout, sess.Stderr = &stdout, &stderr
	if err := sess.Start(command); err != nil {
		return "", connErr(ctx, "start "+command, err)
	}
	done := make(chan error, 1)
	go func() { done <- sess.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = sess.Close()
		return "", ctxErr(ctx, command)
	}
	if err != nil {
		if ctx.Err() != nil {
			return "", ctxErr(ctx, command)
		}
		if werr := waitErr(cn, err); werr != nil {
			return "", fmt.Errorf("ssh: %s: %w (stderr: %s)", command, werr, strings.TrimSpace(stderr.String()))
		}
	}
	return stdout.String(), nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$`)

func checkName(what, name string) error {
	if !nameRE.MatchString(name) {
		return fmt.Errorf("ssh: %s %q: want letters, digits, '.', '_' or '-'", what, name)
	}
	return nil
}

// StagingDir creates a new private directory (mode 0700) named after name
// under the staging base and returns its path. It is made by the login user.
func (c *Client) StagingDir(ctx context.Context, name string) (string, error) {
	if err := checkName("staging name", name); err != nil {
		return "", err
	}
	base := c.h.opts.StagingBase
	script := fmt.Sprintf("umask 077 && mkdir -p -- %s && mktemp -d -- %s", remote.QuotePOSIX(base), remote.QuotePOSIX(path.Join(base, name+".XXXXXXXX")))
	var stdout, stderr bytes.Buffer
	if err := c.runAs(ctx, &remote.Cmd{Command: script, Stdout: &stdout, Stderr: &stderr}, false); err != nil {
		return "", fmt.Errorf("ssh: create staging dir: %w (stderr: %s)", err, strings.TrimSpace(stderr.String()))
	}
	dir := strings.TrimSpace(stdout.String())
	if !strings.HasPrefix(dir, base+"/") {
		return "", fmt.Errorf("ssh: create staging dir: unexpected output %q", dir)
	}
	return dir, nil
}

// PersistentDir returns the stable path of a persistent package,
// <PersistentBase>/<uuid>/<version>. It does not touch the host; Upload
// creates the directory.
func (c *Client) PersistentDir(uuid, version string) (string, error) {
	if err := checkName("package uuid", uuid); err != nil {
		return "", err
	}
	if err := checkName("package version", version); err != nil {
		return "", err
	}
	return path.Join(c.h.opts.PersistentBase, uuid, version), nil
}

// Remove deletes path and everything below it ("rm -rf"), through sudo when
// the options ask for it. It refuses an empty path and the root directory.
func (c *Client) Remove(ctx context.Context, p string) error {
	if err := checkRemovable(p); err != nil {
		return err
	}
	var stderr bytes.Buffer
	err := c.Run(ctx, &remote.Cmd{Command: "rm -rf -- " + remote.QuotePOSIX(p), Stderr: &stderr})
	if err != nil {
		return fmt.Errorf("ssh: remove %s: %w (stderr: %s)", p, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// checkRemovable refuses paths whose removal would be a disaster.
func checkRemovable(p string) error {
	if strings.TrimSpace(p) == "" {
		return errors.New("ssh: remove: empty path")
	}
	switch path.Clean(p) {
	case "/", ".", "..":
		return fmt.Errorf("ssh: remove: refusing to remove %q", p)
	}
	return nil
}
