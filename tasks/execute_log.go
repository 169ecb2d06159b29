package tasks

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/packflow/packflow/store"
)

// Log batching: lines are sent to the execution's stream in batches, at
// most logFlushEvery apart, so a chatty command costs few round trips.
const (
	logFlushEvery = 200 * time.Millisecond
	logBatchMax   = 256
	// maxLineBytes cuts overlong lines; the rest follows as a new line.
	maxLineBytes = 16 << 10
)

// logSink batches the log events of one server's run into the store.
type logSink struct {
	st     *store.Store
	exec   store.Execution
	server string
	log    *slog.Logger

	mu      sync.Mutex
	pending []store.Event
	// flushMu keeps batches in order when a flush from the loop and one
	// from sync overlap.
	flushMu   sync.Mutex
	wake      chan struct{}
	done      chan struct{}
	stopped   chan struct{}
	closeOnce sync.Once
}

func newLogSink(ctx context.Context, st *store.Store, e store.Execution, server string, log *slog.Logger) *logSink {
	s := &logSink{st: st, exec: e, server: server, log: log,
		wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	// The log outlives the task's context: it is written even when the
	// task was cancelled.
	go s.loop(context.WithoutCancel(ctx))
	return s
}

func (s *logSink) loop(ctx context.Context) {
	defer close(s.stopped)
	t := time.NewTicker(logFlushEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			s.flush(ctx)
			return
		case <-t.C:
		case <-s.wake:
		}
		s.flush(ctx)
	}
}

func (s *logSink) flush(ctx context.Context) {
	s.flushMu.Lock()
	defer s.flushMu.Unlock()
	s.mu.Lock()
	batch := s.pending
	s.pending = nil
	s.mu.Unlock()
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.st.AppendLog(ctx, s.exec, batch); err != nil {
		s.log.Warn("execution log lost", "lines", len(batch), "err", err)
	}
}

// sync writes the lines queued so far, so that a state change recorded
// next follows them in the stream.
func (s *logSink) sync(ctx context.Context) { s.flush(context.WithoutCancel(ctx)) }

// add queues one line.
func (s *logSink) add(step int, stream, line string) {
	s.mu.Lock()
	s.pending = append(s.pending, store.Event{Kind: store.EventLog, Server: s.server, Step: store.StepNumber(step),
		Stream: stream, Line: line, Time: time.Now().UTC()})
	full := len(s.pending) >= logBatchMax
	s.mu.Unlock()
	if full {
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// close flushes what is left and stops the loop. Only the first call
// does anything, so that a deferred close may follow an explicit one.
func (s *logSink) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		<-s.stopped
	})
}

// lineWriter splits a stream into lines for the sink.
type lineWriter struct {
	sink   *logSink
	step   int
	stream string
	buf    []byte
}

func (s *logSink) writer(step int, stream string) *lineWriter {
	return &lineWriter{sink: s, step: step, stream: stream}
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.sink.add(w.step, w.stream, string(bytes.TrimSuffix(w.buf[:i], []byte("\r"))))
		w.buf = w.buf[i+1:]
	}
	for len(w.buf) > maxLineBytes {
		w.sink.add(w.step, w.stream, string(w.buf[:maxLineBytes]))
		w.buf = w.buf[maxLineBytes:]
	}
	return len(p), nil
}

// Close sends the last, unterminated line.
func (w *lineWriter) Close() error {
	if len(w.buf) > 0 {
		w.sink.add(w.step, w.stream, string(w.buf))
		w.buf = nil
	}
	return nil
}

var _ io.WriteCloser = (*lineWriter)(nil)
