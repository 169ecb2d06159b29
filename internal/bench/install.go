package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/packflow/packflow/worker/cache"
)

// InstallSuite measures a node install (copy while hashing, sha256 check,
// safe extraction, marker, atomic rename: cache.Install) of a 15 MiB
// package of 1,000 files into a fresh cache against `unzip -q -d` of the
// same archive into a fresh directory, in the same run. The goal is at
// most 1.5× unzip's time.
func InstallSuite() Suite {
	return Suite{Name: "install", Run: runInstall}
}

func runInstall(ctx context.Context, env *Env) ([]Result, error) {
	w := validateWorkload{files: 1000, bytes: 15 << 20, runs: 5}
	if env.Quick {
		w = validateWorkload{files: 50, bytes: 512 << 10, runs: 1}
	}
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		return nil, fmt.Errorf("bench: install: the baseline needs unzip: %w", err)
	}
	dir := filepath.Join(env.Dir, "install")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("bench: install: %w", err)
	}
	path := filepath.Join(dir, "install-bench.zip")
	if err := writeBenchPackage(path, w); err != nil {
		return nil, err
	}
	sum, size, err := digest(path)
	if err != nil {
		return nil, fmt.Errorf("bench: install: %w", err)
	}
	const uuid = "3b1f8a52-7c1e-4d2a-9f60-1e2d3c4b5a69"
	req := cache.Request{UUID: uuid, Version: "1.0.0", SHA256: sum, Size: size,
		Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }}

	run := 0
	fresh := func(kind string) string {
		run++
		return filepath.Join(dir, fmt.Sprintf("%s-%d", kind, run))
	}
	install := func() (d time.Duration, err error) {
		root := fresh("cache")
		defer func() { err = errors.Join(err, os.RemoveAll(root)) }()
		c, err := cache.Open(root, cache.Options{Logger: env.Log})
		if err != nil {
			return 0, err
		}
		defer func() { err = errors.Join(err, c.Close()) }()
		runtime.GC()
		start := time.Now()
		res, err := c.Install(ctx, req)
		d = time.Since(start)
		if err == nil && res.AlreadyInstalled {
			err = fmt.Errorf("a fresh cache found %s installed", res.Path)
		}
		return d, err
	}
	unzipD := func() (d time.Duration, err error) {
		out := fresh("unzip")
		defer func() { err = errors.Join(err, os.RemoveAll(out)) }()
		start := time.Now()
		b, err := exec.CommandContext(ctx, unzip, "-q", "-d", out, path).CombinedOutput()
		d = time.Since(start)
		if err != nil {
			return d, fmt.Errorf("%w: %s", err, b)
		}
		return d, nil
	}
	// Warm the page cache and check that both succeed before timing.
	if _, err := install(); err != nil {
		return nil, fmt.Errorf("bench: install: packflow: %w", err)
	}
	if _, err := unzipD(); err != nil {
		return nil, fmt.Errorf("bench: install: unzip: %w", err)
	}
	var best, baseline time.Duration
	for range w.runs {
		d, err := install()
		if err != nil {
			return nil, fmt.Errorf("bench: install: packflow: %w", err)
		}
		best = minPositive(best, d)
		b, err := unzipD()
		if err != nil {
			return nil, fmt.Errorf("bench: install: unzip: %w", err)
		}
		baseline = minPositive(baseline, b)
	}
	r := NewResult(fmt.Sprintf("install %.0f MiB, %d files", float64(size)/(1<<20), w.files+2), "s",
		best.Seconds(), "unzip -d", baseline.Seconds(), Lower)
	r.Goal = 1 / 1.5
	r.Note = fmt.Sprintf("packflow %.0f MB/s, unzip %.0f MB/s (best of %d; packflow also copies and hashes the archive)",
		float64(size)/1e6/best.Seconds(), float64(size)/1e6/baseline.Seconds(), w.runs)
	env.Log.Info("install benchmark", "archive_bytes", size, "packflow", best, "unzip", baseline)
	return []Result{r}, nil
}

// digest returns the sha256 and size of the file at path.
func digest(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = f.Close() }()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}
