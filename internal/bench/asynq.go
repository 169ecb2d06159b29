package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// AsynqSuite measures packflow's task path against bare asynq on the same
// redis-server, in the same run: enqueue throughput (packflow's client,
// which also writes its task record, against asynq's client), processing
// throughput of a no-op handler at concurrency 64 (packflow's worker with
// all its wiring — middleware, logging, metrics, node registry — against a
// bare asynq server serving the same queues; goal ≥ 0.9×), and the
// submit-to-start latency on an idle worker with packflow's defaults
// against asynq's defaults (goal: p99 ≤ 25 ms).
func AsynqSuite() Suite {
	return asynqSuiteOn(asynqBenchDB)
}

// asynqBenchDB is the database of the bench's own redis-server the suite
// uses; it is flushed between measurements.
const asynqBenchDB = 1

// asynqSuiteOn runs the suite on database db (tests pass a leased one).
func asynqSuiteOn(db int) Suite {
	return Suite{Name: "asynq", Run: func(ctx context.Context, env *Env) ([]Result, error) {
		return runAsynq(ctx, env, db)
	}}
}

// asynqWorkload sizes the suite.
type asynqWorkload struct {
	enqueue      int           // tasks per enqueue run
	process      int           // tasks per processing run
	rounds       int           // alternating runs of each side; the best counts
	latency      int           // packflow latency samples
	latencyAsynq int           // asynq-defaults latency samples (about 1 s each)
	enqueueProcs int           // concurrent enqueuers
	concurrency  int           // worker concurrency in the processing runs
	idleWindow   time.Duration // window of the idle-load count
}

const (
	benchNoop  = "bench:noop"
	benchStart = "bench:start"
	// latencyGoal is the p99 submit-to-start an idle worker must reach.
	latencyGoal = 25 * time.Millisecond
)

func runAsynq(ctx context.Context, env *Env, db int) ([]Result, error) {
	w := asynqWorkload{enqueue: 20000, process: 15000, rounds: 3, latency: 300, latencyAsynq: 40,
		enqueueProcs: 16, concurrency: 64, idleWindow: 3 * time.Second}
	if env.Quick {
		w = asynqWorkload{enqueue: 300, process: 300, rounds: 1, latency: 10, latencyAsynq: 3,
			enqueueProcs: 16, concurrency: 64, idleWindow: 2 * time.Second}
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr, DB: db, DisableIdentity: true, PoolSize: 80})
	defer func() { _ = rdb.Close() }()
	if err := rdb.Ping(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: asynq: redis at %s: %w", env.RedisAddr, err)
	}
	b := &asynqBench{rdb: rdb, w: w, log: env.Log}

	var results []Result
	enq, err := b.enqueueRow(ctx)
	if err != nil {
		return nil, err
	}
	results = append(results, enq)
	proc, err := b.processingRows(ctx)
	if err != nil {
		return results, err
	}
	results = append(results, proc...)
	lat, err := b.latencyRows(ctx)
	if err != nil {
		return results, err
	}
	results = append(results, lat...)
	idle, err := b.idleLoadRow(ctx)
	if err != nil {
		return results, err
	}
	return append(results, idle), rdb.FlushDB(context.WithoutCancel(ctx)).Err()
}

type asynqBench struct {
	rdb *redis.Client
	w   asynqWorkload
	log *slog.Logger
}

// enqueueRow compares enqueue throughput, alternating the two clients.
func (b *asynqBench) enqueueRow(ctx context.Context) (Result, error) {
	bare := asynq.NewClientFromRedisClient(b.rdb)
	pf := tasks.NewClient(b.rdb, store.New(b.rdb, store.Options{}), nil)
	payload := []byte(`{"package":"bench","version":"1.0.0"}`)
	var bestBare, bestPF float64
	for range b.w.rounds {
		v, err := b.enqueueRate(ctx, func(ctx context.Context) error {
			_, err := bare.EnqueueContext(ctx, asynq.NewTask(benchNoop, payload))
			return err
		})
		if err != nil {
			return Result{}, fmt.Errorf("bench: asynq: bare enqueue: %w", err)
		}
		bestBare = max(bestBare, v)
		v, err = b.enqueueRate(ctx, func(ctx context.Context) error {
			_, err := pf.Enqueue(ctx, "bench", asynq.NewTask(benchNoop, payload))
			return err
		})
		if err != nil {
			return Result{}, fmt.Errorf("bench: asynq: packflow enqueue: %w", err)
		}
		bestPF = max(bestPF, v)
	}
	r := NewResult("enqueue throughput", "tasks/s", bestPF, "bare asynq client", bestBare, Higher)
	r.Note = fmt.Sprintf("%d tasks from %d goroutines; packflow also records owner and queue", b.w.enqueue, b.w.enqueueProcs)
	return r, nil
}

// enqueueRate runs enqueue w.enqueue times from w.enqueueProcs goroutines
// on a flushed database and returns tasks per second.
func (b *asynqBench) enqueueRate(ctx context.Context, enqueue func(context.Context) error) (float64, error) {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return 0, err
	}
	start := time.Now()
	if err := parallel(ctx, b.w.enqueue, b.w.enqueueProcs, enqueue); err != nil {
		return 0, err
	}
	return float64(b.w.enqueue) / time.Since(start).Seconds(), nil
}

// parallel calls fn n times from procs goroutines and returns the first
// error.
func parallel(ctx context.Context, n, procs int, fn func(context.Context) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, procs)
	for range procs {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := fn(ctx); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// processingRows compares how fast a no-op backlog drains, alternating
// bare asynq and packflow's worker, both serving the same queues.
func (b *asynqBench) processingRows(ctx context.Context) ([]Result, error) {
	var queues map[string]int
	var bestBare, bestPF float64
	packflow := func() error {
		v, q, err := b.drainRate(ctx, b.servePackflow)
		if err != nil {
			return fmt.Errorf("bench: asynq: packflow worker: %w", err)
		}
		bestPF, queues = max(bestPF, v), q
		return nil
	}
	bare := func() error {
		v, _, err := b.drainRate(ctx, func(_ context.Context, h asynq.Handler) (func(), map[string]int, error) {
			return b.serveBare(h, queues)
		})
		if err != nil {
			return fmt.Errorf("bench: asynq: bare server: %w", err)
		}
		bestBare = max(bestBare, v)
		return nil
	}
	// The first packflow run learns the queues the bare server must serve;
	// after it the two alternate, so that neither always runs first.
	if err := packflow(); err != nil {
		return nil, err
	}
	for i := range 2*b.w.rounds - 1 {
		run := bare
		if i%2 == 1 {
			run = packflow
		}
		if err := run(); err != nil {
			return nil, err
		}
	}
	var bestSingle float64
	for range b.w.rounds {
		v, _, err := b.drainRate(ctx, func(_ context.Context, h asynq.Handler) (func(), map[string]int, error) {
			return b.serveBare(h, nil)
		})
		if err != nil {
			return nil, fmt.Errorf("bench: asynq: bare server, default queue: %w", err)
		}
		bestSingle = max(bestSingle, v)
	}
	name := fmt.Sprintf("processing throughput, no-op, concurrency %d", b.w.concurrency)
	same := NewResult(name, "tasks/s", bestPF, "bare asynq server, same queues", bestBare, Higher)
	same.Goal = 0.9
	same.Note = fmt.Sprintf("%d tasks, best of %d; both serve %d queues: the cost of packflow's middleware, logging, metrics, node registry",
		b.w.process, b.w.rounds, len(queues))
	one := NewResult(name+", vs one queue", "tasks/s", bestPF, "bare asynq server, one queue", bestSingle, Higher)
	one.Note = fmt.Sprintf("asynq tries a worker's queues one round trip each per dequeue: %d queues cost this much", len(queues))
	return []Result{same, one}, nil
}

// serveFunc starts a server running h and returns its stop function and
// the queues it serves.
type serveFunc func(ctx context.Context, h asynq.Handler) (stop func(), queues map[string]int, err error)

// drainRate fills a flushed database with w.process no-op tasks on the
// default queue, starts serve and returns tasks per second until the last
// one ran.
func (b *asynqBench) drainRate(ctx context.Context, serve serveFunc) (float64, map[string]int, error) {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return 0, nil, err
	}
	client := asynq.NewClientFromRedisClient(b.rdb)
	task := asynq.NewTask(benchNoop, nil)
	if err := parallel(ctx, b.w.process, b.w.enqueueProcs, func(ctx context.Context) error {
		_, err := client.EnqueueContext(ctx, task)
		return err
	}); err != nil {
		return 0, nil, fmt.Errorf("fill queue: %w", err)
	}
	var done atomic.Int64
	all := make(chan struct{})
	n := int64(b.w.process)
	h := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		if done.Add(1) == n {
			close(all)
		}
		return nil
	})
	start := time.Now()
	stop, queues, err := serve(ctx, h)
	if err != nil {
		return 0, nil, err
	}
	defer stop()
	select {
	case <-all:
	case <-ctx.Done():
		return 0, nil, ctx.Err()
	case <-time.After(5 * time.Minute):
		return 0, nil, fmt.Errorf("only %d of %d tasks ran in 5 minutes", done.Load(), n)
	}
	return float64(n) / time.Since(start).Seconds(), queues, nil
}

// servePackflow runs h as packflow's worker does in production: full
// middleware, logging at info level (to io.Discard), metrics on a
// registry, node heartbeat.
func (b *asynqBench) servePackflow(ctx context.Context, h asynq.Handler) (func(), map[string]int, error) {
	return b.startPackflow(ctx, map[string]asynq.Handler{benchNoop: h, benchStart: h}, b.w.concurrency)
}

func (b *asynqBench) startPackflow(ctx context.Context, handlers map[string]asynq.Handler, concurrency int) (func(), map[string]int, error) {
	w, err := worker.New(worker.Options{
		Redis:       b.rdb,
		NodeID:      "bench-node",
		Concurrency: concurrency,
		Handlers:    handlers,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Metrics:     prometheus.NewRegistry(),
	})
	if err != nil {
		return nil, nil, err
	}
	if err := w.Start(ctx); err != nil {
		return nil, nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if err := w.Shutdown(ctx); err != nil {
			b.log.Warn("bench: packflow worker shutdown", "error", err)
		}
	}
	return stop, w.Queues(), nil
}

// serveBare runs h on a bare asynq server: no middleware, no logging,
// no metrics. Nil queues means asynq's default (one "default" queue).
func (b *asynqBench) serveBare(h asynq.Handler, queues map[string]int) (func(), map[string]int, error) {
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{
		Concurrency: b.w.concurrency,
		Queues:      queues,
		Logger:      quietAsynqLogger{},
	})
	if err := srv.Start(h); err != nil {
		return nil, nil, err
	}
	return srv.Shutdown, queues, nil
}

// quietAsynqLogger drops asynq's own log lines.
type quietAsynqLogger struct{}

func (quietAsynqLogger) Debug(...any) {}
func (quietAsynqLogger) Info(...any)  {}
func (quietAsynqLogger) Warn(...any)  {}
func (quietAsynqLogger) Error(...any) {}
func (quietAsynqLogger) Fatal(...any) {}

// latencyRows measures submit-to-start on an idle worker: packflow's
// defaults (packflow client, packflow worker) against asynq's defaults
// (asynq client, asynq server with its default config).
func (b *asynqBench) latencyRows(ctx context.Context) ([]Result, error) {
	// packflow: default Options apart from the handler.
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	startedAt := make(chan time.Time, 1)
	mark := asynq.HandlerFunc(func(context.Context, *asynq.Task) error {
		startedAt <- time.Now()
		return nil
	})
	stop, _, err := b.startPackflow(ctx, map[string]asynq.Handler{benchStart: mark}, 0)
	if err != nil {
		return nil, fmt.Errorf("bench: asynq: packflow worker: %w", err)
	}
	pf := tasks.NewClient(b.rdb, store.New(b.rdb, store.Options{}), nil)
	pfLat, err := sampleLatency(ctx, b.w.latency, 10*time.Millisecond, 40*time.Millisecond, startedAt, func(ctx context.Context) error {
		_, err := pf.Enqueue(ctx, "bench", asynq.NewTask(benchStart, nil))
		return err
	})
	stop()
	if err != nil {
		return nil, fmt.Errorf("bench: asynq: packflow latency: %w", err)
	}

	// asynq: its default Config (TaskCheckInterval 1s) and client.
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return nil, err
	}
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{Logger: quietAsynqLogger{}})
	if err := srv.Start(mark); err != nil {
		return nil, fmt.Errorf("bench: asynq: default server: %w", err)
	}
	bare := asynq.NewClientFromRedisClient(b.rdb)
	asynqLat, err := sampleLatency(ctx, b.w.latencyAsynq, 0, 300*time.Millisecond, startedAt, func(ctx context.Context) error {
		_, err := bare.EnqueueContext(ctx, asynq.NewTask(benchStart, nil))
		return err
	})
	srv.Shutdown()
	if err != nil {
		return nil, fmt.Errorf("bench: asynq: default latency: %w", err)
	}

	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	p50 := NewResult("submit-to-start p50, idle worker", "ms", ms(percentile(pfLat, 0.50)),
		"asynq defaults", ms(percentile(asynqLat, 0.50)), Lower)
	p99v := percentile(pfLat, 0.99)
	p99 := NewResult("submit-to-start p99, idle worker", "ms", ms(p99v),
		"asynq defaults", ms(percentile(asynqLat, 0.99)), Lower)
	verdict := "ok"
	if p99v > latencyGoal {
		verdict = "MISSED"
	}
	p50.Note = fmt.Sprintf("%d samples vs %d", len(pfLat), len(asynqLat))
	p99.Note = fmt.Sprintf("goal ≤ %d ms: %s; %d samples vs %d", latencyGoal.Milliseconds(), verdict, len(pfLat), len(asynqLat))
	return []Result{p50, p99}, nil
}

// idleLoadRow measures the commands per second an idle worker sends to
// Redis: packflow's defaults against asynq's. It counts every command the
// server processes, so it is only meaningful on the bench's own
// redis-server.
func (b *asynqBench) idleLoadRow(ctx context.Context) (Result, error) {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return Result{}, err
	}
	noop := asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return nil })
	stop, queues, err := b.startPackflow(ctx, map[string]asynq.Handler{benchNoop: noop}, 0)
	if err != nil {
		return Result{}, fmt.Errorf("bench: asynq: packflow worker: %w", err)
	}
	pf, err := b.commandRate(ctx)
	stop()
	if err != nil {
		return Result{}, fmt.Errorf("bench: asynq: idle load: %w", err)
	}
	srv := asynq.NewServerFromRedisClient(b.rdb, asynq.Config{Logger: quietAsynqLogger{}})
	if err := srv.Start(noop); err != nil {
		return Result{}, fmt.Errorf("bench: asynq: default server: %w", err)
	}
	base, err := b.commandRate(ctx)
	srv.Shutdown()
	if err != nil {
		return Result{}, fmt.Errorf("bench: asynq: idle load: %w", err)
	}
	r := NewResult("idle Redis load per worker", "commands/s", pf, "asynq defaults", base, Lower)
	r.Note = fmt.Sprintf("the price of fast pickup: polls every %v over %d queues vs every 1s over 1 queue",
		worker.DefaultTaskCheckInterval, len(queues))
	return r, nil
}

// commandRate lets the worker settle, then counts the commands the server
// processes during w.idleWindow.
func (b *asynqBench) commandRate(ctx context.Context) (float64, error) {
	select {
	case <-time.After(b.w.idleWindow / 2):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	before, err := b.commandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	select {
	case <-time.After(b.w.idleWindow):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	after, err := b.commandsProcessed(ctx)
	if err != nil {
		return 0, err
	}
	// One of the counted commands is our own INFO.
	return float64(after-before-1) / time.Since(start).Seconds(), nil
}

func (b *asynqBench) commandsProcessed(ctx context.Context) (int64, error) {
	info, err := b.rdb.Info(ctx, "stats").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_commands_processed:"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, errors.New("INFO stats has no total_commands_processed")
}

// sampleLatency submits n tasks one at a time, each after an idle gap
// drawn from [gapMin, gapMax] (so submissions land at random points of the
// worker's poll cycle), and returns the time from submit to handler start.
// One extra sample first warms the path up and is dropped.
func sampleLatency(ctx context.Context, n int, gapMin, gapMax time.Duration, startedAt <-chan time.Time, submit func(context.Context) error) ([]time.Duration, error) {
	rnd := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7)) //nolint:gosec // spacing samples needs no secret randomness
	out := make([]time.Duration, 0, n)
	for i := range n + 1 {
		gap := gapMin + time.Duration(rnd.Int64N(int64(gapMax-gapMin)+1))
		select {
		case <-time.After(gap):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		t0 := time.Now()
		if err := submit(ctx); err != nil {
			return nil, err
		}
		select {
		case t := <-startedAt:
			if i > 0 {
				out = append(out, t.Sub(t0))
			}
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(30 * time.Second):
			return nil, errors.New("a task did not start within 30s")
		}
	}
	return out, nil
}

// percentile returns the p-quantile (nearest rank) of ds.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p+0.999999) - 1
	return s[max(0, min(i, len(s)-1))]
}
