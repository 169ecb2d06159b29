package winrm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"

	"github.com/packflow/packflow/remote"
)

// Run runs cmd and waits for it to end. A non-zero exit status is returned
// as *remote.ExitError. Cancelling ctx aborts the requests in flight,
// terminates the remote process and deletes its shell.
//
// Stdin is sent in Sends sized to the envelope limit and closed at its
// end (at once when nil). Run returns when the command ended, even if
// cmd.Stdin still blocks in Read; input the command did not take is not an
// error, as with os/exec.
func (c *Client) Run(ctx context.Context, cmd *remote.Cmd) error {
	if cmd == nil {
		return errors.New("winrm: Run needs a command")
	}
	line, err := commandLine(cmd)
	if err != nil {
		return err
	}
	return c.runLine(ctx, job{line: line, stdin: cmd.Stdin, stdout: cmd.Stdout, stderr: cmd.Stderr, waitStdin: cmd.Stdin == nil})
}

// job is one command line to run and its streams.
type job struct {
	line           string
	stdin          io.Reader
	stdout, stderr io.Writer
	// waitStdin makes runLine wait until stdin was sent before returning:
	// for readers known to end.
	waitStdin bool
}

// runScript runs one of the communicator's own PowerShell scripts. Its
// stderr is kept (bounded) for the error of a failed run.
func (c *Client) runScript(ctx context.Context, op, script string, stdin io.Reader, stdout io.Writer) error {
	line := encodePowerShell(script)
	if err := checkLine(line); err != nil {
		return fmt.Errorf("winrm: %s: %w", op, err)
	}
	var stderr tailBuffer
	err := c.runLine(ctx, job{line: line, stdin: stdin, stdout: stdout, stderr: &stderr, waitStdin: true})
	var exit *remote.ExitError
	if errors.As(err, &exit) {
		return fmt.Errorf("winrm: %s: %w: %s", op, err, strings.TrimSpace(stderr.String()))
	}
	if err != nil {
		return fmt.Errorf("winrm: %s: %w", op, err)
	}
	return nil
}

// runLine runs one command line in a shell of its own.
func (c *Client) runLine(ctx context.Context, j job) error {
	if err := ctx.Err(); err != nil {
		return classify(ctx, err)
	}
	stdout, stderr := j.stdout, j.stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil {
		stderr = io.Discard
	}
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	shell, err := s.wc.CreateShell()
	if err != nil {
		return s.fail("open shell", err)
	}
	defer func() {
		s.detach()
		if derr := shell.Close(); derr != nil {
			c.log.Debug("winrm delete shell failed", "err", derr)
		}
		s.end()
	}()
	wcmd, err := shell.ExecuteWithContext(ctx, j.line)
	if err != nil {
		return s.fail("start command", err)
	}

	// stdin goes out in chunks that fit one Send each. Without input the
	// stream is closed at once, so that a command reading stdin sees EOF.
	stdinDone := make(chan error, 1)
	ended := make(chan struct{})
	go func() {
		stdinDone <- c.feed(wcmd.Stdin, j.stdin, ended)
	}()

	var wg sync.WaitGroup
	var outErr, errErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		_, outErr = io.Copy(stdout, wcmd.Stdout)
	}()
	go func() {
		defer wg.Done()
		_, errErr = io.Copy(stderr, wcmd.Stderr)
	}()
	wcmd.Wait()
	close(ended)
	wg.Wait()

	if ctx.Err() != nil {
		// Terminate the process on the host; the shell is deleted on return.
		s.detach()
		if serr := wcmd.Close(); serr != nil {
			c.log.Debug("winrm terminate failed", "err", serr)
		}
		return classify(ctx, ctx.Err())
	}
	if first := s.tr.firstErr(); first != nil {
		return s.fail("run command", first)
	}
	for _, e := range []error{outErr, errErr} {
		if e != nil {
			return s.fail("read output", e)
		}
	}
	// The feeder is waited for when its reader is known to end; a caller's
	// reader that never ends must not hold Run, so it is left to its
	// goroutine, whose next Send fails once the shell is gone.
	var stdinErr error
	if j.waitStdin {
		stdinErr = <-stdinDone
	} else {
		select {
		case stdinErr = <-stdinDone:
		default:
		}
	}
	code := wcmd.ExitCode()
	if sendErr := s.tr.firstSendErr(); code != 0 && sendErr != nil {
		// A refused Send is recorded before the feeder closes the stream,
		// so before the command can see EOF and exit: it is known here
		// even when the feeder saw the exit first and kept quiet, or has
		// not returned yet. The library reports it as a short write only.
		stdinErr = fmt.Errorf("send stdin: %w", sendErr)
	}
	if stdinErr != nil {
		// Like os/exec with EPIPE: a command that ended without taking all
		// its input decided so. Only a failed command reports why its
		// input stopped.
		c.log.Debug("winrm stdin failed", "err", stdinErr, "exit_code", code)
		if code != 0 {
			return fmt.Errorf("%w (stdin: %w)", &remote.ExitError{Code: code}, stdinErr)
		}
	}
	if code != 0 {
		return &remote.ExitError{Code: code}
	}
	return nil
}

// stdinWriter is the masterzen command's stdin.
type stdinWriter interface {
	io.Writer
	io.Closer
}

// feed copies r to the command's stdin, each Read becoming at most one Send
// of stdinChunk bytes, then closes the stream. Once ended is closed it
// stops, and failures no longer count: input for a command that ended is
// lost anyway, and the host may refuse it.
func (c *Client) feed(w stdinWriter, r io.Reader, ended <-chan struct{}) error {
	unlessEnded := func(err error) error {
		if closed(ended) {
			return nil
		}
		return err
	}
	if r != nil {
		buf := make([]byte, c.opts.stdinChunk())
		for {
			n, rerr := r.Read(buf)
			if closed(ended) {
				return nil
			}
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					// End the stream so that the command sees EOF
					// instead of waiting for the rest.
					_ = w.Close()
					return unlessEnded(err)
				}
			}
			if errors.Is(rerr, io.EOF) {
				break
			}
			if rerr != nil {
				_ = w.Close()
				return fmt.Errorf("read stdin: %w", rerr)
			}
		}
	}
	return unlessEnded(w.Close())
}

// closed reports whether ch is closed.
func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// tailBuffer keeps the last 4 KiB written to it: enough of a failed
// script's stderr for an error message.
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

const tailMax = 4 * 1024

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(p)
	if t.buf.Len() > tailMax {
		t.buf.Next(t.buf.Len() - tailMax)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
