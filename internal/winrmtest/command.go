package winrmtest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"sync"
)

// shell is an open remote shell and its commands.
type shell struct {
	id       string
	mu       sync.Mutex
	closed   bool
	commands map[string]*runningCommand
}

func (sh *shell) add(rc *runningCommand) bool {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.closed {
		return false
	}
	sh.commands[rc.id] = rc
	return true
}

func (sh *shell) get(id string) *runningCommand {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return sh.commands[id]
}

func (sh *shell) terminate() {
	sh.mu.Lock()
	sh.closed = true
	cmds := make([]*runningCommand, 0, len(sh.commands))
	for _, rc := range sh.commands {
		cmds = append(cmds, rc)
	}
	sh.mu.Unlock()
	for _, rc := range cmds {
		rc.terminate()
	}
}

// runningCommand is the endpoint's side of one command: its stdin pipe,
// buffered output and final state.
type runningCommand struct {
	id     string
	cancel context.CancelFunc
	stdin  *stdinPipe

	mu       sync.Mutex
	stdout   bytes.Buffer
	stderr   bytes.Buffer
	done     bool
	exitCode int
	changed  chan struct{} // closed and replaced on every change
}

func (rc *runningCommand) run(ctx context.Context, h Handler, cmd *Command) {
	code := h.ServeCommand(ctx, cmd, streamWriter{rc, &rc.stdout}, streamWriter{rc, &rc.stderr})
	rc.stdin.CloseRead(io.ErrClosedPipe)
	rc.cancel()
	rc.mu.Lock()
	rc.done = true
	rc.exitCode = code
	rc.notifyLocked()
	rc.mu.Unlock()
}

func (rc *runningCommand) terminate() {
	rc.cancel()
	rc.stdin.CloseWrite()
}

func (rc *runningCommand) notifyLocked() {
	close(rc.changed)
	rc.changed = make(chan struct{})
}

// take removes up to limit bytes of buffered output. done is reported only
// once every byte was taken.
func (rc *runningCommand) take(limit int) (stdout, stderr []byte, done bool, code int, changed <-chan struct{}) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	stdout = bytes.Clone(rc.stdout.Next(limit))
	stderr = bytes.Clone(rc.stderr.Next(limit - len(stdout)))
	done = rc.done && rc.stdout.Len() == 0 && rc.stderr.Len() == 0
	return stdout, stderr, done, rc.exitCode, rc.changed
}

// streamWriter appends a command's output to one of its buffers.
type streamWriter struct {
	rc  *runningCommand
	buf *bytes.Buffer
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.rc.mu.Lock()
	defer w.rc.mu.Unlock()
	if w.rc.done {
		return 0, errors.New("winrmtest: write after the command ended")
	}
	w.buf.Write(p)
	w.rc.notifyLocked()
	return len(p), nil
}
