package winrmtest

import (
	"io"
	"sync"
)

// stdinBufferMax is how much stdin a command may have pending before a Send
// waits for the command to read: like the pipe buffer of a real process,
// it lets the client send the next chunk while the command works.
const stdinBufferMax = 4 << 20

// stdinPipe is a buffered pipe: Write returns once the data is queued
// (waiting only while stdinBufferMax bytes are pending), Read returns
// queued data or waits for more.
type stdinPipe struct {
	mu       sync.Mutex
	cond     *sync.Cond
	buf      []byte
	closed   bool  // the writer is done: Read returns io.EOF when drained
	readErr  error // the reader is gone: Write returns this
	consumed int   // bytes of buf already read
}

func newStdinPipe() *stdinPipe {
	p := &stdinPipe{}
	p.cond = sync.NewCond(&p.mu)
	return p
}

// Write queues b.
func (p *stdinPipe) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.readErr == nil && !p.closed && len(p.buf)-p.consumed >= stdinBufferMax {
		p.cond.Wait()
	}
	switch {
	case p.readErr != nil:
		return 0, p.readErr
	case p.closed:
		return 0, io.ErrClosedPipe
	}
	if p.consumed > 0 && p.consumed == len(p.buf) {
		p.buf, p.consumed = p.buf[:0], 0
	}
	p.buf = append(p.buf, b...)
	p.cond.Broadcast()
	return len(b), nil
}

// Read returns queued bytes.
func (p *stdinPipe) Read(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for len(p.buf) == p.consumed && !p.closed && p.readErr == nil {
		p.cond.Wait()
	}
	if p.readErr != nil {
		return 0, p.readErr
	}
	if len(p.buf) == p.consumed {
		return 0, io.EOF
	}
	n := copy(b, p.buf[p.consumed:])
	p.consumed += n
	if p.consumed == len(p.buf) {
		p.buf, p.consumed = p.buf[:0], 0
	}
	p.cond.Broadcast()
	return n, nil
}

// CloseWrite ends the input: the reader sees io.EOF once it drained it.
func (p *stdinPipe) CloseWrite() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	p.cond.Broadcast()
}

// CloseRead abandons the input: pending and later writes fail with err.
func (p *stdinPipe) CloseRead(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.readErr == nil {
		p.readErr = err
	}
	p.buf, p.consumed = nil, 0
	p.cond.Broadcast()
}
