package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
	"github.com/packflow/packflow/worker/cache"
)

// fleetBenchDB is the database of the bench's redis-server the fleet suite
// uses; it is flushed before and after.
const fleetBenchDB = 2

// fleetNodes is how many worker nodes the fleet suite installs on.
const fleetNodes = 3

// fleetUUID is the package the fleet suite installs.
const fleetUUID = "7d2e9c41-5a8b-4f03-8e6d-2b1c0a9f8e71"

// FleetSuite measures activate-install across three worker nodes (in this
// process, each with its own cache, on the bench's Redis): the time from
// enqueueing package:activate-install of the 15 MiB, 1,000-file package
// until all three nodes have recorded it installed. The baseline is one
// cache.Install of the same archive alone, in the same run: the ratio
// shows what the fan-out, the queues and the records cost on top of three
// installs sharing the machine's cores.
func FleetSuite() Suite { return fleetSuiteOn(fleetBenchDB) }

func fleetSuiteOn(db int) Suite {
	return Suite{Name: "fleet", Run: func(ctx context.Context, env *Env) ([]Result, error) {
		return runFleet(ctx, env, db)
	}}
}

func runFleet(ctx context.Context, env *Env, db int) (results []Result, err error) {
	w := validateWorkload{files: 1000, bytes: 15 << 20, runs: 5}
	if env.Quick {
		w = validateWorkload{files: 50, bytes: 512 << 10, runs: 1}
	}
	rdb := redis.NewClient(&redis.Options{Addr: env.RedisAddr, DB: db, DisableIdentity: true})
	defer func() { _ = rdb.Close() }()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return nil, fmt.Errorf("bench: fleet: redis at %s: %w", env.RedisAddr, err)
	}
	defer func() { err = errors.Join(err, rdb.FlushDB(context.WithoutCancel(ctx)).Err()) }()
	dir := filepath.Join(env.Dir, "fleet")
	defer func() { err = errors.Join(err, os.RemoveAll(dir)) }()
	bs, err := blob.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(dir, "blobs")))
	if err != nil {
		return nil, fmt.Errorf("bench: fleet: %w", err)
	}
	st := store.New(rdb, store.Options{})
	archive := filepath.Join(dir, "fleet-bench.zip")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bench: fleet: %w", err)
	}
	if err := writeBenchPackage(archive, w); err != nil {
		return nil, err
	}
	v, err := publishBench(ctx, st, bs, archive)
	if err != nil {
		return nil, err
	}

	client := tasks.NewClient(rdb, st, env.Log)
	stop, err := startBenchFleet(ctx, env, dir, rdb, st, bs, client)
	if err != nil {
		return nil, err
	}
	defer func() { err = errors.Join(err, stop()) }()

	// The baseline, one install alone, runs between the fleet's runs so
	// that both see the machine alike.
	req := cache.Request{UUID: v.PackageID, Version: v.Version, SHA256: v.SHA256, Size: v.Size,
		Open: func(ctx context.Context) (io.ReadCloser, error) { return bs.Open(ctx, v.BlobKey) }}
	if _, err := installAlone(ctx, env, filepath.Join(dir, "alone-warm"), req); err != nil { // warms the page cache
		return nil, err
	}
	var best, alone time.Duration
	for i := range w.runs {
		// Every run after the first re-installs (force), as the first
		// installed the version everywhere.
		d, err := activateAndWait(ctx, st, client, v, i > 0)
		if err != nil {
			return nil, err
		}
		best = minPositive(best, d)
		a, err := installAlone(ctx, env, filepath.Join(dir, fmt.Sprintf("alone-%d", i)), req)
		if err != nil {
			return nil, err
		}
		alone = minPositive(alone, a)
	}
	r := NewResult(fmt.Sprintf("fleet install %.0f MiB, %d files: until %d nodes report installed", float64(v.Size)/(1<<20), w.files+2, fleetNodes),
		"s", best.Seconds(), "one node's install alone", alone.Seconds(), Lower)
	r.Note = fmt.Sprintf("%d workers sharing this machine's cores; from enqueueing activate-install to %d installed records, best of %d", fleetNodes, fleetNodes, w.runs)
	env.Log.Info("fleet benchmark", "fleet", best, "alone", alone)
	return []Result{r}, nil
}

// publishBench records the archive at path as version 1.0.0 of fleetUUID.
func publishBench(ctx context.Context, st *store.Store, bs *blob.Store, path string) (store.Version, error) {
	f, err := os.Open(path)
	if err != nil {
		return store.Version{}, fmt.Errorf("bench: fleet: %w", err)
	}
	defer func() { _ = f.Close() }()
	info, err := bs.Put(ctx, blob.PackageKey(fleetUUID, "bench"), f)
	if err != nil {
		return store.Version{}, fmt.Errorf("bench: fleet: %w", err)
	}
	opts := store.PublishOptions{Category: "software", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate}
	if _, err := st.CreateUpload(ctx, store.Upload{ID: "bench", AccountID: store.RootAccountID, BlobKey: blob.UploadKey("bench"), SHA256: info.SHA256, Size: info.Size}); err != nil {
		return store.Version{}, fmt.Errorf("bench: fleet: %w", err)
	}
	u, err := st.BeginPublish(ctx, "bench", opts)
	if err != nil {
		return store.Version{}, fmt.Errorf("bench: fleet: %w", err)
	}
	res, err := st.Publish(ctx, store.PublishRequest{UploadID: "bench", TaskID: u.TaskID, AccountID: store.RootAccountID,
		ID: fleetUUID, Name: "fleet-bench", Options: opts, Version: "1.0.0", Manifest: []byte(`{}`),
		SHA256: info.SHA256, Size: info.Size, BlobKey: info.Key})
	if err != nil {
		return store.Version{}, fmt.Errorf("bench: fleet: %w", err)
	}
	return res.Version, nil
}

func installAlone(ctx context.Context, env *Env, root string, req cache.Request) (d time.Duration, err error) {
	defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
	c, err := cache.Open(root, cache.Options{Logger: env.Log})
	if err != nil {
		return 0, fmt.Errorf("bench: fleet: %w", err)
	}
	defer func() { err = errors.Join(err, c.Close()) }()
	start := time.Now()
	if _, err := c.Install(ctx, req); err != nil {
		return 0, fmt.Errorf("bench: fleet: install alone: %w", err)
	}
	return time.Since(start), nil
}

// startBenchFleet starts fleetNodes workers with their own caches; stop
// shuts them down and closes the caches.
func startBenchFleet(ctx context.Context, env *Env, dir string, rdb *redis.Client, st *store.Store, bs *blob.Store, client *tasks.Client) (stop func() error, err error) {
	var stops []func() error
	stop = func() error {
		var errs []error
		for i := len(stops) - 1; i >= 0; i-- {
			errs = append(errs, stops[i]())
		}
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, stop())
		}
	}()
	for i := range fleetNodes {
		node := fmt.Sprintf("bench-%d", i+1)
		c, err := cache.Open(filepath.Join(dir, node), cache.Options{Logger: env.Log})
		if err != nil {
			return nil, fmt.Errorf("bench: fleet: %w", err)
		}
		stops = append(stops, c.Close)
		in, err := tasks.NewInstaller(tasks.InstallerOptions{Store: st, Blob: bs, Cache: c, NodeID: node, Enqueuer: client, Logger: env.Log})
		if err != nil {
			return nil, fmt.Errorf("bench: fleet: %w", err)
		}
		wk, err := worker.New(worker.Options{Redis: rdb, Store: st, NodeID: node, Concurrency: 4, Logger: env.Log,
			Handlers: tasks.Handlers(tasks.Deps{Store: st, NodeID: node, Logger: env.Log, Blob: bs, Enqueuer: client, Installer: in})})
		if err != nil {
			return nil, fmt.Errorf("bench: fleet: %w", err)
		}
		if err := wk.Start(ctx); err != nil {
			return nil, fmt.Errorf("bench: fleet: %w", err)
		}
		stops = append(stops, func() error {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			return wk.Shutdown(sctx)
		})
	}
	return stop, nil
}

// activateAndWait enqueues the activation of v and waits until every node
// recorded it installed, returning the time it took.
func activateAndWait(ctx context.Context, st *store.Store, client *tasks.Client, v store.Version, force bool) (time.Duration, error) {
	task, p, opts, err := tasks.NewActivateTask(tasks.ActivateRequest{PackageID: v.PackageID, Version: v.Version, Force: force, AccountID: store.RootAccountID})
	if err != nil {
		return 0, fmt.Errorf("bench: fleet: %w", err)
	}
	start := time.Now()
	if _, err := client.Enqueue(ctx, store.RootAccountID, task, opts...); err != nil {
		return 0, fmt.Errorf("bench: fleet: %w", err)
	}
	deadline := start.Add(5 * time.Minute)
	for {
		recs, err := st.NodeInstalls(ctx, v.PackageID)
		if err != nil {
			return 0, fmt.Errorf("bench: fleet: %w", err)
		}
		done := 0
		for _, r := range recs {
			switch {
			case r.Activation != p.ID:
			case r.State == store.InstallInstalled:
				done++
			case r.State == store.InstallFailed:
				return 0, fmt.Errorf("bench: fleet: install on %s failed: %s", r.Node, r.Error)
			}
		}
		if done == fleetNodes {
			return time.Since(start), nil
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("bench: fleet: %d of %d nodes installed after %v", done, fleetNodes, time.Since(start))
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("bench: fleet: %w", ctx.Err())
		case <-time.After(2 * time.Millisecond):
		}
	}
}
