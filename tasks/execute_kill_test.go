package tasks_test

import (
	"bufio"
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

// Environment of the worker child process.
const (
	envChildRedis = "PACKFLOW_TEST_EXEC_CHILD_REDIS"
	envChildBlob  = "PACKFLOW_TEST_EXEC_CHILD_BLOB"
	envChildFleet = "PACKFLOW_TEST_EXEC_CHILD_FLEET"
)

// TestExecWorkerChild is not a test: TestExecutionSurvivesKilledWorker
// runs the test binary with it as a worker process, which it then kills.
func TestExecWorkerChild(t *testing.T) {
	url := os.Getenv(envChildRedis)
	if url == "" {
		return
	}
	ctx := context.Background()
	rdb, err := redisconn.Open(url)
	if err != nil {
		t.Fatal(err)
	}
	box, _ := secretbox.New(bytes.Repeat([]byte{0x5a}, 32))
	st := store.New(rdb, store.Options{Secrets: box})
	bs, err := blob.Open(ctx, os.Getenv(envChildBlob))
	if err != nil {
		t.Fatal(err)
	}
	f := &fleet{dir: os.Getenv(envChildFleet)}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	conn, _ := tasks.NewConnector(tasks.ConnectorOptions{Store: st, TuneSSH: f.tune, Logger: log})
	ex, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: st, Connector: conn, LeaseTTL: 2 * time.Second,
		Stager: &tasks.BlobStager{Blob: bs, Dir: filepath.Join(f.dir, "child-stage")}, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{Redis: rdb, Store: st, NodeID: "doomed", Concurrency: 8, Datacenters: []string{"default"},
		Retry:    tasks.Backoff{Base: time.Second, Cap: time.Second},
		Handlers: tasks.Handlers(tasks.Deps{Store: st, Logger: log, Blob: bs, Executor: ex}), Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	_, _ = os.Stdout.WriteString("worker ready\n")
	select {} // until killed
}

func TestExecutionSurvivesKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("waits about a minute for asynq to recover the dead worker's tasks")
	}
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.41", "127.0.3.42"})
	count := func(step string) string {
		return "#!/bin/sh\nd='" + f.markers + "'\necho run >> \"$d/$1." + step + ".count\"\n"
	}
	one := b.publish(t, simpleManifest("0b8f5e0e-8888-4c2a-9a55-0c1d2e3f4a08", "One", "./one.sh ${T3.Server.Name}", false),
		file{"one.sh", count("one"), 0o755})
	// The second step takes long on its first run, long enough to be
	// killed in the middle of it.
	two := b.publish(t, simpleManifest("0b8f5e0e-9999-4c2a-9a55-0c1d2e3f4a09", "Two", "./two.sh ${T3.Server.Name}", false),
		file{"two.sh", count("two") + "if [ ! -e \"$d/$1.two.slow\" ]; then touch \"$d/$1.two.slow\"; sleep 300; fi\n", 0o755})
	three := b.publish(t, simpleManifest("0b8f5e0e-aaaa-4c2a-9a55-0c1d2e3f4a0a", "Three", "./three.sh ${T3.Server.Name}", false),
		file{"three.sh", count("three"), 0o755})

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	child := exec.Command(exe, "-test.run=^TestExecWorkerChild$", "-test.count=1")
	child.Env = append(os.Environ(), envChildRedis+"="+b.redis.URL, envChildBlob+"="+b.blobURL, envChildFleet+"="+f.dir)
	out, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = tWriter{t}
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = child.Process.Kill(); _ = child.Wait() })
	sc := bufio.NewScanner(out)
	if !sc.Scan() || sc.Text() != "worker ready" {
		t.Fatalf("child: %q", sc.Text())
	}

	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: one.PackageID, Version: one.Version}, {Package: two.PackageID, Version: two.Version},
			{Package: three.PackageID, Version: three.Version}},
		Servers: f.servers, Visible: f.servers, Retry: &tasks.Retry{Max: tasks.Retries(5), Backoff: tasks.Duration(time.Second)}})
	if err != nil {
		t.Fatal(err)
	}
	for _, sv := range f.servers {
		waitFor(t, sv.Name+" in step two", func() bool {
			_, err := os.Stat(filepath.Join(f.markers, sv.Name+".two.slow"))
			return err == nil
		})
	}
	if err := child.Process.Kill(); err != nil { // SIGKILL: no cleanup at all
		t.Fatal(err)
	}
	_ = child.Wait()
	// asynq hands the task of a dead worker on 30 seconds after its
	// lease expired (its allowance for clock skew); a worker's recoverer
	// looks at start, then every minute.
	waitFor(t, "the dead worker's task leases to expire", func() bool {
		zs, err := b.rdb.ZRangeWithScores(ctx, "asynq:{exec:default}:lease", 0, -1).Result()
		if err != nil {
			return false
		}
		for _, z := range zs {
			if int64(z.Score) >= time.Now().Add(-31*time.Second).Unix() {
				return false
			}
		}
		return true
	})
	b.startWorker(t, workerOpts{tuneSSH: f.tune, leaseTTL: 2 * time.Second, nodeID: "survivor"})
	_, runs := b.waitFinal(t, e.ID)
	for _, r := range runs {
		if r.Status != store.StatusSucceeded {
			t.Fatalf("run %s: %+v", r.Name, r)
		}
		for step, want := range map[string]int{"one": 1, "two": 2, "three": 1} {
			got := strings.Count(readFile(t, filepath.Join(f.markers, r.Name+"."+step+".count")), "run")
			if got != want {
				t.Errorf("%s: step %s ran %d times, want %d", r.Name, step, got, want)
			}
		}
	}
}
