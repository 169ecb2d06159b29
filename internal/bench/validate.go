package bench

import (
	"archive/zip"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"time"

	"github.com/packflow/packflow/manifest"
)

// ValidateSuite measures packflow's whole package check (archive rules,
// manifest, sha256) on a 15 MiB archive of 1,000 files against `unzip -t`
// (which decompresses and checksums every entry) on the same file, in the
// same run. The goal is at most 1.5× unzip's time.
func ValidateSuite() Suite {
	return Suite{Name: "validate", Run: runValidate}
}

// validateWorkload sizes the benchmark package.
type validateWorkload struct {
	files int
	bytes int64 // target archive size
	runs  int
}

func runValidate(ctx context.Context, env *Env) ([]Result, error) {
	w := validateWorkload{files: 1000, bytes: 15 << 20, runs: 5}
	if env.Quick {
		w = validateWorkload{files: 50, bytes: 512 << 10, runs: 1}
	}
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		return nil, fmt.Errorf("bench: validate: the baseline needs unzip: %w", err)
	}
	path := filepath.Join(env.Dir, "validate-bench.zip")
	if err := writeBenchPackage(path, w); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("bench: validate: %w", err)
	}
	size := fi.Size()

	check := func() error {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer func() { _ = f.Close() }() // read-only
		_, rep, err := manifest.CheckArchive(ctx, f, size, manifest.Limits{})
		if err != nil {
			return err
		}
		return rep.Err()
	}
	unzipT := func() error {
		out, err := exec.CommandContext(ctx, unzip, "-tqq", path).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	// Warm the page cache and check that both succeed before timing.
	if err := check(); err != nil {
		return nil, fmt.Errorf("bench: validate: packflow check: %w", err)
	}
	if err := unzipT(); err != nil {
		return nil, fmt.Errorf("bench: validate: unzip -t: %w", err)
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	if err := check(); err != nil {
		return nil, fmt.Errorf("bench: validate: packflow check: %w", err)
	}
	runtime.ReadMemStats(&ms1)
	allocs := ms1.Mallocs - ms0.Mallocs

	var best, baseline time.Duration
	for range w.runs {
		runtime.GC()
		d, err := timed(check)
		if err != nil {
			return nil, fmt.Errorf("bench: validate: packflow check: %w", err)
		}
		best = minPositive(best, d)
		b, err := timed(unzipT)
		if err != nil {
			return nil, fmt.Errorf("bench: validate: unzip -t: %w", err)
		}
		baseline = minPositive(baseline, b)
	}
	r := NewResult(fmt.Sprintf("validate %.0f MiB, %d files", float64(size)/(1<<20), w.files+2), "s",
		best.Seconds(), "unzip -t", baseline.Seconds(), Lower)
	r.Goal = 1 / 1.5
	r.Note = fmt.Sprintf("packflow %.0f MB/s, unzip %.0f MB/s, %d allocs/op (best of %d)",
		float64(size)/1e6/best.Seconds(), float64(size)/1e6/baseline.Seconds(), allocs, w.runs)
	env.Log.Info("validate benchmark", "archive_bytes", size, "packflow", best, "unzip", baseline, "allocs", allocs)
	return []Result{r}, nil
}

func timed(fn func() error) (time.Duration, error) {
	start := time.Now()
	err := fn()
	return time.Since(start), err
}

func minPositive(a, b time.Duration) time.Duration {
	if a == 0 || b < a {
		return b
	}
	return a
}

// writeBenchPackage writes a valid package of w.files files whose archive
// is about w.bytes long: two thirds random binary (stored incompressible by
// deflate) and one third text-like data compressing about 3:1, the mix of a
// typical installer package.
func writeBenchPackage(path string, w validateWorkload) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: validate: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("bench: validate: %w", cerr)
		}
	}()
	zw := zip.NewWriter(f)
	add := func(name string, mode fs.FileMode, body []byte) error {
		h := &zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		h.SetMode(mode)
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return err
		}
		_, err = fw.Write(body)
		return err
	}
	manifestXML := `<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata>
    <UUID>3b1f8a52-7c1e-4d2a-9f60-1e2d3c4b5a69</UUID>
    <Name>Benchmark package</Name>
    <Description>A package of many files for the validation benchmark</Description>
    <Version>1.0.0</Version>
  </Metadata>
  <Parameters>
    <Parameter Name="Port" Type="Numeric" Variable="Port" Default="8080"/>
  </Parameters>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>./install.sh ${Port}</Command>
  </Execution>
</Manifest>
`
	if err := add(manifest.ManifestName, 0o644, []byte(manifestXML)); err != nil {
		return fmt.Errorf("bench: validate: %w", err)
	}
	if err := add("install.sh", 0o755, []byte("#!/bin/sh\necho installing on port \"$1\"\n")); err != nil {
		return fmt.Errorf("bench: validate: %w", err)
	}
	rng := rand.New(rand.NewPCG(1, 2)) //nolint:gosec // seeded on purpose: every run times the same bytes
	per := int(w.bytes / int64(w.files))
	words := []string{"package", "install", "server", "config", "value", "error", "retry", "node", "queue", "task ", "\n", "=", "0", "1", "true"}
	buf := make([]byte, 0, 4*per)
	for i := range w.files {
		buf = buf[:0]
		name := fmt.Sprintf("data/%03d/file-%04d.bin", i/100, i)
		if i%3 == 0 {
			name = fmt.Sprintf("data/%03d/file-%04d.txt", i/100, i)
			for len(buf) < 3*per {
				buf = append(buf, words[rng.IntN(len(words))]...)
				buf = append(buf, ' ')
				if rng.IntN(4) == 0 {
					buf = fmt.Appendf(buf, "%d ", rng.Uint32())
				}
			}
		} else {
			for len(buf) < per {
				buf = append(buf, byte(rng.Uint32()))
			}
		}
		if err := add(name, 0o644, buf); err != nil {
			return fmt.Errorf("bench: validate: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("bench: validate: %w", err)
	}
	return nil
}
