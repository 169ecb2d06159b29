package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/api"
	"github.com/packflow/packflow/store"
)

// streamsBenchDB is the database of the bench's redis-server the streams
// suite uses; it is flushed before and after.
const streamsBenchDB = 4

// streamsToken is the admin token of the API the suite starts.
const streamsToken = "bench-streams-admin-token"

// StreamsSuite measures what live event streams cost the rest of the API:
// the p99 of GET /api/v1/packages while 1,000 clients follow the event
// stream of one chatty execution (1,000 log lines a second),
// against its p99 on the same API with no stream open, in the same run.
// The API is packflow's own, on the bench's redis-server with go-redis's
// default pool, as `packflow api` runs it. Goal: the loaded p99 stays
// within 2× the idle one (ratio ≥ 0.5).
func StreamsSuite() Suite { return streamsSuiteOn(streamsBenchDB) }

func streamsSuiteOn(db int) Suite {
	return Suite{Name: "streams", Run: func(ctx context.Context, env *Env) ([]Result, error) {
		return runStreams(ctx, env, db)
	}}
}

// streamsWorkload sizes the suite.
type streamsWorkload struct {
	watchers int // open event streams
	requests int // GET /packages per measurement
}

func runStreams(ctx context.Context, env *Env, db int) (results []Result, err error) {
	w := streamsWorkload{watchers: 1000, requests: 1000}
	if env.Quick {
		w = streamsWorkload{watchers: 50, requests: 50}
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr, DB: db, DisableIdentity: true})
	defer func() { _ = rdb.Close() }()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: streams: redis at %s: %w", env.RedisAddr, err)
	}
	defer func() { err = errors.Join(err, rdb.FlushDB(context.WithoutCancel(ctx)).Err()) }()
	st := store.New(rdb, store.Options{})
	srv, err := api.New(api.Options{Store: st, Logger: env.Log, AdminToken: streamsToken, Listen: "127.0.0.1:0",
		EventStreamsPerToken: w.watchers + 10})
	if err != nil {
		return nil, fmt.Errorf("bench: streams: %w", err)
	}
	if err := srv.Start(ctx); err != nil {
		return nil, fmt.Errorf("bench: streams: %w", err)
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		err = errors.Join(err, srv.Shutdown(sctx))
	}()
	base := "http://" + srv.Addr().String() + "/api/v1"
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer client.CloseIdleConnections()

	run := store.ServerRun{ServerID: "bench", Name: "bench", Run: 1, Status: store.StatusRunning, Steps: []store.StepRun{{Status: store.StatusRunning}}}
	e, err := st.CreateExecution(ctx, store.Execution{AccountID: store.RootAccountID, ServerIDs: []string{"bench"},
		Steps: []store.ExecStep{{Package: "bench", Version: "1"}}}, []store.ServerRun{run}, nil)
	if err != nil {
		return nil, fmt.Errorf("bench: streams: %w", err)
	}

	idle, err := packagesLatencies(ctx, client, base, w.requests)
	if err != nil {
		return nil, err
	}

	// The chatty execution.
	wctx, stopWriter := context.WithCancel(ctx)
	writerDone := make(chan error, 1)
	go func() { writerDone <- chatter(wctx, st, e) }()
	defer func() {
		stopWriter()
		err = errors.Join(err, <-writerDone)
	}()

	sctx, closeStreams := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		closeStreams()
		wg.Wait()
	}()
	ready := make(chan error, w.watchers)
	for range w.watchers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			watch(sctx, base+"/executions/"+e.ID+"/events", ready)
		}()
	}
	for range w.watchers {
		if err := <-ready; err != nil {
			return nil, err
		}
	}
	loaded, err := packagesLatencies(ctx, client, base, w.requests)
	if err != nil {
		return nil, err
	}
	closeStreams()

	idleP99, loadedP99 := percentile(idle, 0.99), percentile(loaded, 0.99)
	r := NewResult(fmt.Sprintf("GET /packages p99 while %d clients follow one chatty execution's events", w.watchers),
		"ms", ms(loadedP99), "the same API with no stream open", ms(idleP99), Lower)
	r.Goal = 0.5
	r.Note = fmt.Sprintf("p50 %.3g ms loaded, %.3g ms idle; %d requests each", ms(percentile(loaded, 0.5)), ms(percentile(idle, 0.5)), w.requests)
	env.Log.Info("streams benchmark", "idle_p99", idleP99, "loaded_p99", loadedP99)
	return []Result{r}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// packagesLatencies times n sequential GET /packages.
func packagesLatencies(ctx context.Context, client *http.Client, base string, n int) ([]time.Duration, error) {
	out := make([]time.Duration, 0, n)
	for range n {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/packages", nil)
		if err != nil {
			return nil, fmt.Errorf("bench: streams: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+streamsToken)
		start := time.Now()
		res, err := client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("bench: streams: GET /packages: %w", err)
		}
		_, err = io.Copy(io.Discard, res.Body)
		_ = res.Body.Close()
		if err != nil || res.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("bench: streams: GET /packages: status %d, %v", res.StatusCode, err)
		}
		out = append(out, time.Since(start))
	}
	return out, nil
}

// chatter writes e's log until ctx ends: 1,000 lines a second, in
// batches of 20 every 20 ms, as the executor's log sinks write them (each
// server's output is flushed in batches).
func chatter(ctx context.Context, st *store.Store, e store.Execution) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		evs := make([]store.Event, 20)
		for j := range evs {
			evs[j] = store.Event{Kind: store.EventLog, Server: "bench", Stream: "stdout", Line: fmt.Sprintf("line %d of a chatty run", i*len(evs)+j), Time: time.Now().UTC()}
		}
		if err := st.AppendLog(ctx, e, evs); err != nil && ctx.Err() == nil {
			return fmt.Errorf("bench: streams: write the log: %w", err)
		}
	}
}

// watch follows url until ctx ends, reporting on ready once the first
// log event arrived (or the stream failed).
func watch(ctx context.Context, url string, ready chan<- error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		ready <- fmt.Errorf("bench: streams: %w", err)
		return
	}
	req.Header.Set("Authorization", "Bearer "+streamsToken)
	// One connection per stream, as separate clients have.
	tr := &http.Transport{DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	res, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		ready <- fmt.Errorf("bench: streams: open a stream: %w", err)
		return
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode != http.StatusOK {
		ready <- fmt.Errorf("bench: streams: open a stream: status %d", res.StatusCode)
		return
	}
	sc := bufio.NewScanner(res.Body)
	reported := false
	for sc.Scan() {
		if !reported && sc.Text() == "event: log" {
			ready <- nil
			reported = true
		}
	}
	if !reported {
		ready <- fmt.Errorf("bench: streams: a stream ended before its first event: %v", sc.Err())
	}
}
