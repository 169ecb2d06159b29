package ssh

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/packflow/packflow/remote"
)

// killTimeout bounds killing a cancelled command and collecting its end.
const killTimeout = 10 * time.Second

// Run runs cmd under /bin/sh on the host (through "sudo -n" when the
// options ask for it) and waits for it. A non-zero exit is *remote.ExitError;
// a lost connection wraps remote.ErrDisconnected. When ctx ends the remote
// process group is killed and the error wraps ctx's error (and
// remote.ErrTimeout for a deadline).
func (c *Client) Run(ctx context.Context, cmd *remote.Cmd) error {
	return c.runAs(ctx, cmd, c.h.opts.Sudo)
}

func (c *Client) runAs(ctx context.Context, cmd *remote.Cmd, sudo bool) error {
	if cmd == nil {
		return errors.New("ssh: run: nil command")
	}
	if cmd.Shell != "" && cmd.Shell != remote.ShellPOSIX {
		return fmt.Errorf("ssh: run: %w: shell %q", remote.ErrUnsupported, cmd.Shell)
	}
	cn, sess, err := c.session(ctx)
	if err != nil {
		return err
	}
	defer c.h.release()
	defer func() { _ = sess.Close() }()

	stdout := &pidWriter{next: cmd.Stdout}
	stderr := &gateWriter{next: cmd.Stderr}
	// Writes after Run returned (a session that would not die) are dropped.
	defer stdout.close()
	defer stderr.close()
	sess.Stdout, sess.Stderr = stdout, stderr
	var stdin io.WriteCloser
	if cmd.Stdin != nil {
		// Fed by Run itself: a command that exits without reading all of
		// its input is no error.
		if stdin, err = sess.StdinPipe(); err != nil {
			return fmt.Errorf("ssh: run: %w", err)
		}
	}
	if err := sess.Start(wrap(cmd, sudo)); err != nil {
		return connErr(ctx, "run: start", err)
	}
	var fed chan error
	if stdin != nil {
		fed = make(chan error, 1)
		go func() {
			err := feed(stdin, cmd.Stdin)
			_ = stdin.Close()
			fed <- err
		}()
	}
	done := make(chan error, 1)
	c.h.wg.Add(1)
	go func() {
		defer c.h.wg.Done()
		done <- sess.Wait()
	}()
	select {
	case err := <-done:
		if fed != nil {
			// The channel is closed: feeding ends at its next write, or when
			// the reader returns, whichever comes first.
			select {
			case ferr := <-fed:
				if err == nil && ferr != nil {
					return fmt.Errorf("ssh: run: read stdin: %w", ferr)
				}
			case <-ctx.Done():
				return ctxErr(ctx, "run: read stdin")
			}
		}
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctxErr(ctx, "run")
		}
		return fmt.Errorf("ssh: run: %w", waitErr(cn, err))
	case <-ctx.Done():
	}
	kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), killTimeout)
	defer cancel()
	if pid := stdout.pid(); pid > 1 {
		c.kill(kctx, pid, sudo)
	}
	_ = sess.Close()
	select {
	case werr := <-done:
		c.h.opts.Logger.Debug("ssh: cancelled command ended", "addr", c.h.opts.Addr, "end", werr)
	case <-kctx.Done():
		c.h.opts.Logger.Warn("ssh: cancelled command did not end", "addr", c.h.opts.Addr)
	}
	return ctxErr(ctx, "run")
}

// feed copies r to w until r ends or w refuses more (the command exited or
// closed its input); only read errors of r are reported.
func feed(w io.Writer, r io.Reader) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			if _, werr := w.Write(buf[:n]); werr != nil {
				return nil
			}
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// wrap renders the command line sent to sshd: report the process id of the
// session leader (the process group Run kills on cancel), then replace the
// login shell with /bin/sh running the command in its directory.
func wrap(cmd *remote.Cmd, sudo bool) string {
	inner := cmd.Command
	if cmd.Dir != "" {
		inner = "cd " + remote.QuotePOSIX(cmd.Dir) + " || exit\n" + inner
	}
	prefix := "exec "
	if sudo {
		prefix = "exec sudo -n "
	}
	return `printf '%d\n' "$$"; ` + prefix + "/bin/sh -c " + remote.QuotePOSIX(inner)
}

// kill kills the process group pid on the host.
func (c *Client) kill(ctx context.Context, pid int, sudo bool) {
	// The kill programs disagree on negative ids: procps, util-linux and
	// bash want "--" before them, dash's builtin refuses "--" and wants
	// "kill -KILL -<pgid>" (which procps accepts and silently ignores).
	command := fmt.Sprintf("kill -s KILL -- -%d 2>/dev/null || kill -KILL -%d", pid, pid)
	if sudo {
		command = fmt.Sprintf("sudo -n kill -s KILL -- -%d", pid)
	}
	if _, err := c.output(ctx, command); err != nil {
		c.h.opts.Logger.Debug("ssh: kill cancelled command", "addr", c.h.opts.Addr, "pid", pid, "err", err)
	}
}

// waitErr maps the end of a session to remote errors.
func waitErr(cn *conn, err error) error {
	var exit *ssh.ExitError
	if errors.As(err, &exit) {
		if sig := exit.Signal(); sig != "" {
			return &remote.ExitError{Code: -1, Signal: sig}
		}
		return &remote.ExitError{Code: exit.ExitStatus()}
	}
	var missing *ssh.ExitMissingError
	if errors.As(err, &missing) || cn.dead() || isConnLoss(err) {
		return fmt.Errorf("%w: %w", remote.ErrDisconnected, err)
	}
	return err
}

// pidWriter takes the wrapper's first output line (the process id) and
// passes the rest on.
type pidWriter struct {
	mu     sync.Mutex
	next   io.Writer
	head   []byte
	id     int
	got    bool
	closed bool
}

func (w *pidWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(p)
	if w.closed {
		return n, nil
	}
	if !w.got {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			w.head = append(w.head, p...)
			if len(w.head) > 20 {
				return 0, errors.New("ssh: run: command wrapper did not report its process id")
			}
			return n, nil
		}
		w.head = append(w.head, p[:i]...)
		id, err := strconv.Atoi(string(w.head))
		if err != nil {
			return 0, fmt.Errorf("ssh: run: command wrapper reported %q as process id", w.head)
		}
		w.id, w.got, p = id, true, p[i+1:]
	}
	if w.next != nil && len(p) > 0 {
		if _, err := w.next.Write(p); err != nil {
			return 0, err
		}
	}
	return n, nil
}

func (w *pidWriter) pid() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.id
}

func (w *pidWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}

// gateWriter passes writes on until closed.
type gateWriter struct {
	mu     sync.Mutex
	next   io.Writer
	closed bool
}

func (w *gateWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || w.next == nil {
		return len(p), nil
	}
	return w.next.Write(p)
}

func (w *gateWriter) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.closed = true
}
