package api

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/packflow/packflow/store"
)

// Why a subscription of the event hub ended.
var (
	// errFeedLagged: the subscriber did not keep up; it reads what it
	// missed from Redis and subscribes again.
	errFeedLagged = errors.New("api: event stream subscriber fell behind")
	// errFeedEnded: every server's run of the execution has ended and
	// every event was delivered.
	errFeedEnded = errors.New("api: execution ended")
	// errHubClosed: the server is shutting down.
	errHubClosed = errors.New("api: event hub closed")
)

// eventSource is what the hub needs from the store: the event stream of
// an execution, and whether the execution has ended.
type eventSource interface {
	Events(ctx context.Context, id, after string, count int64, block time.Duration) ([]store.Event, error)
	ExecutionEnded(ctx context.Context, id string) (bool, error)
}

// eventHub fans executions' event streams out to the SSE streams of this
// process. Each execution followed by at least one stream has one feed: a
// goroutine that reads the execution's Redis stream with one blocking
// read at a time and hands each batch to every subscriber's buffered
// channel. So N watchers of an execution cost one pooled Redis connection,
// not N.
//
// A subscriber that joins (or resumes with Last-Event-ID) is told the
// feed's position when it subscribes: it reads what lies between its own
// position and the feed's from Redis once, then takes the batches of the
// feed, skipping those it already sent. Since it subscribes before it
// reads, and the feed hands on every batch it reads after that moment,
// the two overlap and nothing is lost; the IDs, which only grow, weed out
// the overlap. A subscriber whose channel is full when a batch arrives is
// dropped (errFeedLagged) rather than slowing the others down; it catches
// up from Redis the same way and subscribes again.
//
// A feed whose last subscriber left stops after its current read, so a
// stream that reconnects at once finds it still running.
type eventHub struct {
	src    eventSource
	log    *slog.Logger
	block  time.Duration // longest blocking read
	batch  int64         // most events per read
	buffer int           // batches a subscriber may have waiting

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	feeds  map[string]*feed
	closed bool
}

// feed is one execution's shared reader. Its fields are guarded by the
// hub's mutex.
type feed struct {
	id   string
	pos  string // the ID of the last event read
	subs map[*subscription]struct{}
}

// subscription is one stream's place at a feed. C delivers batches in
// stream order; it is closed when the subscription ends, after err is set.
type subscription struct {
	C   chan []sseFrame
	err error
	hub *eventHub
	f   *feed
}

func newEventHub(src eventSource, log *slog.Logger) *eventHub {
	ctx, cancel := context.WithCancel(context.Background())
	return &eventHub{src: src, log: log, block: sseBlock, batch: sseBatch, buffer: 64,
		ctx: ctx, cancel: cancel, feeds: map[string]*feed{}}
}

// subscribe adds a subscriber to execution id's feed, starting the feed
// at after when none runs, and returns the feed's position: the events
// after it will arrive on the subscription's channel.
func (h *eventHub) subscribe(id, after string) (*subscription, string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, "", errHubClosed
	}
	f := h.feeds[id]
	if f == nil {
		f = &feed{id: id, pos: after, subs: map[*subscription]struct{}{}}
		h.feeds[id] = f
		h.wg.Add(1)
		go h.run(f)
	}
	sub := &subscription{C: make(chan []sseFrame, h.buffer), hub: h, f: f}
	f.subs[sub] = struct{}{}
	return sub, f.pos, nil
}

// cancel leaves the feed; the channel is not closed (nobody reads it).
func (sub *subscription) cancel() {
	sub.hub.mu.Lock()
	defer sub.hub.mu.Unlock()
	delete(sub.f.subs, sub)
}

// ended returns why the subscription's channel was closed.
func (sub *subscription) ended() error {
	sub.hub.mu.Lock()
	defer sub.hub.mu.Unlock()
	return sub.err
}

// close stops every feed; their subscribers see errHubClosed.
func (h *eventHub) close() {
	h.mu.Lock()
	h.closed = true
	h.mu.Unlock()
	h.cancel()
	h.wg.Wait()
}

// run is a feed's reader.
func (h *eventHub) run(f *feed) {
	defer h.wg.Done()
	for {
		h.mu.Lock()
		pos := f.pos
		if len(f.subs) == 0 {
			delete(h.feeds, f.id)
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		evs, err := h.src.Events(h.ctx, f.id, pos, h.batch, h.block)
		if err != nil {
			h.finish(f, h.readError(f, err))
			return
		}
		if len(evs) > 0 {
			h.publish(f, evs)
			continue
		}
		ended, err := h.src.ExecutionEnded(h.ctx, f.id)
		if err != nil {
			h.finish(f, h.readError(f, err))
			return
		}
		if ended {
			// Events written just before the last run ended are still
			// delivered before the end.
			if err := h.drain(f); err != nil {
				h.finish(f, h.readError(f, err))
				return
			}
			h.finish(f, errFeedEnded)
			return
		}
	}
}

// drain hands on the events after the feed's position without blocking.
func (h *eventHub) drain(f *feed) error {
	for {
		h.mu.Lock()
		pos := f.pos
		h.mu.Unlock()
		evs, err := h.src.Events(h.ctx, f.id, pos, h.batch, 0)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		h.publish(f, evs)
		if int64(len(evs)) < h.batch {
			return nil
		}
	}
}

func (h *eventHub) readError(f *feed, err error) error {
	if h.ctx.Err() != nil {
		return errHubClosed
	}
	h.log.Warn("follow execution events", "execution", f.id, "err", err)
	return fmt.Errorf("api: follow execution %s: %w", f.id, err)
}

// publish advances the feed to the last of evs and hands evs to every
// subscriber, dropping those whose channel is full.
func (h *eventHub) publish(f *feed, evs []store.Event) {
	// Each event is encoded once for every subscriber.
	frames := make([]sseFrame, 0, len(evs))
	for _, ev := range evs {
		fr, err := newSSEFrame(ev)
		if err != nil {
			h.log.Warn("encode an execution event", "execution", f.id, "err", err)
			continue
		}
		frames = append(frames, fr)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	f.pos = evs[len(evs)-1].ID
	for sub := range f.subs {
		select {
		case sub.C <- frames:
		default:
			delete(f.subs, sub)
			sub.err = errFeedLagged
			close(sub.C)
		}
	}
}

// finish ends the feed and every subscription with err.
func (h *eventHub) finish(f *feed, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.feeds[f.id] == f {
		delete(h.feeds, f.id)
	}
	for sub := range f.subs {
		delete(f.subs, sub)
		sub.err = err
		close(sub.C)
	}
}

// feedCount is the number of running feeds, for tests.
func (h *eventHub) feedCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.feeds)
}

// sseFrame is one event as written on a stream, with its ID.
type sseFrame struct {
	id streamID
	b  []byte
}

func newSSEFrame(ev store.Event) (sseFrame, error) {
	id, ok := parseStreamID(ev.ID)
	if !ok {
		return sseFrame{}, fmt.Errorf("api: event id %q is not a stream id", ev.ID)
	}
	var buf bytes.Buffer
	if err := writeSSE(&buf, ev.ID, ev.Kind, ev); err != nil {
		return sseFrame{}, err
	}
	return sseFrame{id: id, b: buf.Bytes()}, nil
}

// streamID is a parsed Redis stream ID, "ms-seq"; "ms" alone means
// "ms-0".
type streamID struct{ ms, seq uint64 }

func parseStreamID(s string) (streamID, bool) {
	ms, seq, ok := strings.Cut(s, "-")
	if !ok {
		seq = "0"
	}
	a, err1 := strconv.ParseUint(ms, 10, 64)
	b, err2 := strconv.ParseUint(seq, 10, 64)
	return streamID{a, b}, err1 == nil && err2 == nil
}

// after reports whether a comes after b in the stream.
func (a streamID) after(b streamID) bool {
	return a.ms > b.ms || (a.ms == b.ms && a.seq > b.seq)
}

func (a streamID) String() string { return fmt.Sprintf("%d-%d", a.ms, a.seq) }

// streamLimiter bounds the event streams each token holds open on this
// process.
type streamLimiter struct {
	max  int
	mu   sync.Mutex
	open map[string]int
}

// acquire takes a stream for key; false when key holds max already.
func (l *streamLimiter) acquire(key string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key] >= l.max {
		return false
	}
	if l.open == nil {
		l.open = map[string]int{}
	}
	l.open[key]++
	return true
}

// release gives back a stream taken by acquire.
func (l *streamLimiter) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[key]--; l.open[key] <= 0 {
		delete(l.open, key)
	}
}
