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
func (c *Client) Run(ctx context.Context, cmd *remote.Cmd) error {
	line, err := commandLine(cmd)
	if err != nil {
		return err
	}
	return c.runLine(ctx, line, cmd.Stdin, cmd.Stdout, cmd.Stderr)
}

// runScript runs one of the communicator's own PowerShell scripts. Its
// stderr is kept (bounded) for the error of a failed run.
func (c *Client) runScript(ctx context.Context, op, script string, stdin io.Reader, stdout io.Writer) error {
	line := encodePowerShell(script)
	if err := checkLine(line); err != nil {
		return fmt.Errorf("winrm: %s: %w", op, err)
	}
	var stderr tailBuffer
	err := c.runLine(ctx, line, stdin, stdout, &stderr)
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
func (c *Client) runLine(ctx context.Context, line string, stdin io.Reader, stdout, stderr io.Writer) (err error) {
	if err := ctx.Err(); err != nil {
		return classify(ctx, err)
	}
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
		if derr := shell.Close(); derr != nil && err == nil {
			c.log.Debug("winrm delete shell failed", "err", derr)
		}
		s.end()
	}()
	wcmd, err := shell.ExecuteWithContext(ctx, line)
	if err != nil {
		return s.fail("start command", err)
	}

	// stdin goes out in chunks that fit one Send each. Without input the
	// stream is closed at once, so that a command reading stdin sees EOF.
	stdinDone := make(chan error, 1)
	go func() {
		stdinDone <- c.feed(wcmd.Stdin, stdin)
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
	wg.Wait()

	if ctx.Err() != nil {
		// Terminate the process on the host; the shell is deleted on return.
		s.detach()
		if serr := wcmd.Close(); serr != nil {
			c.log.Debug("winrm terminate failed", "err", serr)
		}
		return classify(ctx, ctx.Err())
	}
	// A stdin reader that never ends must not hold Run: it is left to its
	// goroutine, whose next Send fails once the shell is gone.
	select {
	case ferr := <-stdinDone:
		if ferr != nil && !errors.Is(ferr, io.ErrClosedPipe) {
			if first := s.tr.firstErr(); first != nil {
				return s.fail("send stdin", first)
			}
			return fmt.Errorf("winrm: send stdin: %w", ferr)
		}
	default:
	}
	if first := s.tr.firstErr(); first != nil {
		return s.fail("run command", first)
	}
	for _, e := range []error{outErr, errErr} {
		if e != nil {
			return s.fail("read output", e)
		}
	}
	if code := wcmd.ExitCode(); code != 0 {
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
// of stdinChunk bytes, then closes the stream.
func (c *Client) feed(w stdinWriter, r io.Reader) error {
	if r != nil {
		buf := make([]byte, c.opts.stdinChunk())
		for {
			n, rerr := r.Read(buf)
			if n > 0 {
				if _, err := w.Write(buf[:n]); err != nil {
					return err
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
	return w.Close()
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
