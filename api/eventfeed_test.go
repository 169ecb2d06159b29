package api

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

// realSetup is setup on the real Redis.
func realSetup(t *testing.T, mod ...func(*Options)) *bundle {
	t.Helper()
	r := testenv.RealRedis(t)
	// A pool larger than the streams of these tests, so that they measure
	// the connections the streams take, not the waits for a free one.
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr, DB: r.DB, PoolSize: 64, DisableIdentity: true})
	t.Cleanup(func() { _ = rdb.Close() })
	st := store.New(rdb, store.Options{})
	opts := Options{Store: st, Logger: testLogger(t), AdminToken: testAdminToken}
	for _, m := range mod {
		m(&opts)
	}
	srv, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := srv.Bootstrap(context.Background()); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		srv.events.close()
	})
	return &bundle{srv: srv, store: st, rdb: r.Client, http: hs}
}

// runningExecution records an execution of the root account with one
// queued server run.
func runningExecution(t *testing.T, st *store.Store) (store.Execution, store.ServerRun) {
	t.Helper()
	run := store.ServerRun{ServerID: "s1", Name: "web1", Run: 1, Status: store.StatusQueued, Steps: []store.StepRun{{Status: store.StatusPending}}}
	e, err := st.CreateExecution(t.Context(), store.Execution{AccountID: store.RootAccountID, ServerIDs: []string{"s1"},
		Steps: []store.ExecStep{{Package: "p", Version: "1"}}}, []store.ServerRun{run}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e, run
}

// logLines appends n log events to e, one pipeline each.
func logLines(t testing.TB, st *store.Store, e store.Execution, from, n int) {
	evs := make([]store.Event, n)
	for i := range evs {
		evs[i] = store.Event{Kind: store.EventLog, Server: "web1", Stream: "stdout", Line: fmt.Sprintf("line %d", from+i), Time: time.Now().UTC()}
	}
	if err := st.AppendLog(context.Background(), e, evs); err != nil {
		t.Error(err)
	}
}

// sseClient is an open event stream: events arrive on C, which is closed
// when the stream ends.
type sseClient struct {
	status int
	header http.Header
	C      chan sseEvent
	cancel context.CancelFunc
}

func openSSE(t *testing.T, b *bundle, path, lastID, token string) *sseClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := b.http.Client().Do(req)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	c := &sseClient{status: res.StatusCode, header: res.Header, C: make(chan sseEvent, 1024), cancel: cancel}
	go func() {
		defer close(c.C)
		defer func() { _ = res.Body.Close() }()
		var cur sseEvent
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "":
				if cur.event != "" {
					c.C <- cur
				}
				cur = sseEvent{}
			case strings.HasPrefix(line, "id: "):
				cur.id = line[4:]
			case strings.HasPrefix(line, "event: "):
				cur.event = line[7:]
			case strings.HasPrefix(line, "data: "):
				cur.data = line[6:]
			}
		}
	}()
	return c
}

// until reads events until one satisfies ok, and returns those read.
func (c *sseClient) until(t *testing.T, ok func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	for ev := range c.C {
		out = append(out, ev)
		if ok(ev) {
			return out
		}
	}
	t.Fatalf("stream ended after %d events without the one awaited", len(out))
	return nil
}

// blockedReaders counts the clients of db blocked in XREAD.
func blockedReaders(t *testing.T, b *bundle, db int) int {
	t.Helper()
	list, err := b.rdb.ClientList(t.Context()).Result()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for line := range strings.SplitSeq(list, "\n") {
		fields := map[string]string{}
		for f := range strings.FieldsSeq(line) {
			k, v, _ := strings.Cut(f, "=")
			fields[k] = v
		}
		if fields["db"] == fmt.Sprint(db) && fields["cmd"] == "xread" && strings.Contains(fields["flags"], "b") {
			n++
		}
	}
	return n
}

// Many streams of one execution hold one Redis connection between them,
// not one each: they leave the pool to the other requests.
func TestEventStreamsShareOneRedisReader(t *testing.T) {
	b := realSetup(t, func(o *Options) { o.EventStreamsPerToken = 100 })
	db := b.rdb.Options().DB
	e, _ := runningExecution(t, b.store)
	const streams = 40
	clients := make([]*sseClient, streams)
	for i := range clients {
		clients[i] = openSSE(t, b, "/api/v1/executions/"+e.ID+"/events", "", testAdminToken)
		defer clients[i].cancel()
		if clients[i].status != http.StatusOK {
			t.Fatalf("stream %d: status %d", i, clients[i].status)
		}
	}
	// Every stream follows: each sees a line written now.
	logLines(t, b.store, e, 0, 1)
	for i, c := range clients {
		evs := c.until(t, func(ev sseEvent) bool { return ev.event == store.EventLog })
		if !strings.Contains(evs[len(evs)-1].data, "line 0") {
			t.Fatalf("stream %d: %+v", i, evs)
		}
	}
	if n := blockedReaders(t, b, db); n > 1 {
		t.Errorf("%d connections blocked reading the events of %d streams of one execution, want at most 1", n, streams)
	}
	if n := b.srv.events.feedCount(); n != 1 {
		t.Errorf("%d feeds for one execution", n)
	}
	// Every page request still answers while the streams are open.
	b.do(t, http.MethodGet, "/api/v1/packages", testAdminToken, nil).mustStatus(t, http.StatusOK)
}

// Streams that join, resume or fall behind while an execution writes its
// log see every event after their start exactly once, in order, then
// "end".
func TestEventStreamsResumeWithoutGapsOrDuplicates(t *testing.T) {
	b := realSetup(t, func(o *Options) { o.EventStreamsPerToken = 100 })
	// A tiny buffer makes subscribers fall behind and catch up often.
	b.srv.events.buffer = 1
	e, run := runningExecution(t, b.store)
	const total, chunk = 3000, 10
	var mu sync.Mutex
	written := 0
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		for i := 0; i < total; i += chunk {
			logLines(t, b.store, e, i, chunk)
			mu.Lock()
			written += chunk
			mu.Unlock()
		}
		run.Status = store.StatusSucceeded
		if err := b.store.PutServerRun(context.Background(), e, run, -1); err != nil {
			t.Error(err)
		}
	}()

	type result struct {
		start string
		ids   []string
		end   bool
	}
	results := make(chan result, 16)
	var wg sync.WaitGroup
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	for i := range 12 {
		// Join at some point of the run, from the start or from an event
		// already written.
		mu.Lock()
		w := written
		mu.Unlock()
		start := ""
		if i%2 == 1 && w > 0 {
			evs, err := b.store.Events(t.Context(), e.ID, "0", int64(rnd.IntN(w)+1), 0)
			if err != nil {
				t.Fatal(err)
			}
			start = evs[len(evs)-1].ID
		}
		c := openSSE(t, b, "/api/v1/executions/"+e.ID+"/events", start, testAdminToken)
		defer c.cancel()
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := result{start: start}
			for ev := range c.C {
				if ev.event == "end" {
					r.end = true
					break
				}
				r.ids = append(r.ids, ev.id)
			}
			results <- r
		}()
		time.Sleep(time.Duration(rnd.IntN(20)) * time.Millisecond)
	}
	<-writerDone
	wg.Wait()
	close(results)
	all, err := b.store.Events(t.Context(), e.ID, "0", 10*total, 0)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(all))
	for i, ev := range all {
		ids[i] = ev.ID
	}
	for r := range results {
		from := 0
		if r.start != "" {
			from = slices.Index(ids, r.start) + 1
		}
		if !r.end {
			t.Errorf("stream from %q ended without an end event", r.start)
		}
		if !slices.Equal(r.ids, ids[from:]) {
			t.Errorf("stream from %q got %d events, want the %d after it (first difference at %d)", r.start, len(r.ids), len(ids)-from, firstDiff(r.ids, ids[from:]))
		}
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// A token holds a bounded number of streams: past it, 429 with
// Retry-After; a stream that closes frees its place.
func TestEventStreamsPerTokenLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, func(o *Options) { o.EventStreamsPerToken = 2 })
	t.Cleanup(b.srv.events.close) // before the Redis it reads goes
	e, _ := runningExecution(t, b.store)
	path := "/api/v1/executions/" + e.ID + "/events"
	first := openSSE(t, b, path, "", testAdminToken)
	second := openSSE(t, b, path, "", testAdminToken)
	defer second.cancel()
	if first.status != http.StatusOK || second.status != http.StatusOK {
		t.Fatalf("statuses %d %d", first.status, second.status)
	}
	over := openSSE(t, b, path, "", testAdminToken)
	over.cancel()
	if over.status != http.StatusTooManyRequests {
		t.Fatalf("a third stream of the token: status %d, want 429", over.status)
	}
	if over.header.Get("Retry-After") == "" {
		t.Errorf("429 without Retry-After: %v", over.header)
	}
	if !strings.HasPrefix(over.header.Get("Content-Type"), problemContentType) {
		t.Errorf("429 content type %q", over.header.Get("Content-Type"))
	}
	// Another token is not counted against this one.
	other := b.mintToken(t, store.RootAccountID, "viewer-2", store.RoleViewer).Token
	third := openSSE(t, b, path, "", other)
	defer third.cancel()
	if third.status != http.StatusOK {
		t.Errorf("another token's stream: status %d", third.status)
	}
	first.cancel()
	for range first.C { //nolint:revive // drain until the stream is closed
	}
	// The server notices the closed stream when its request ends.
	deadline := time.Now().Add(time.Minute)
	for {
		c := openSSE(t, b, path, "", testAdminToken)
		c.cancel()
		if c.status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a closed stream never freed its place: status %d", c.status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
