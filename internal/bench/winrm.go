package bench

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	mzwinrm "github.com/masterzen/winrm"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote/winrm"
)

// WinRMSuite measures packflow's WinRM upload (a zip streamed through one
// command's stdin in Sends sized to the envelope limit) against the way
// command-line tools upload over WinRM: one command per small chunk
// ("echo <base64> >> file", 2 KiB of data each), both against the same
// WS-Management test endpoint in the same run. The goal is 20 MB/s.
func WinRMSuite() Suite {
	return Suite{Name: "winrm", Run: runWinRM}
}

// winrmWorkload sizes the benchmark.
type winrmWorkload struct {
	files         int
	bytes         int // tree size, incompressible
	runs          int // packflow uploads; the median counts
	baselineBytes int // the baseline is slow: it moves a smaller sample
}

// winrmBaselineChunk is the data carried by one baseline command.
const winrmBaselineChunk = 2 << 10

func runWinRM(ctx context.Context, env *Env) ([]Result, error) {
	w := winrmWorkload{files: 20, bytes: 20 << 20, runs: 3, baselineBytes: 1 << 20}
	if env.Quick {
		w = winrmWorkload{files: 4, bytes: 1 << 20, runs: 1, baselineBytes: 32 << 10}
	}
	src := filepath.Join(env.Dir, "winrm-upload")
	if err := writeRandomTree(src, w.files, w.bytes); err != nil {
		return nil, fmt.Errorf("bench: winrm: %w", err)
	}

	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	// HTTPS, as the communicator always speaks; the baseline below too,
	// so that both pay the same TLS cost.
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: host, Down: host.Down, Logger: env.Log})
	defer srv.Close()
	c, err := winrm.Dial(ctx, winrm.Options{
		Host: srv.Host, Port: srv.Port, CACertPEM: srv.CACertPEM,
		User: winrmtest.DefaultUser, Password: winrmtest.DefaultPassword,
		Logger: env.Log,
	})
	if err != nil {
		return nil, fmt.Errorf("bench: winrm: dial: %w", err)
	}
	defer func() { _ = c.Close() }()

	var secs []float64
	for i := range w.runs {
		dst := fmt.Sprintf(`C:\bench\run%d`, i)
		start := time.Now()
		if err := c.Upload(ctx, src, dst); err != nil {
			return nil, fmt.Errorf("bench: winrm: upload: %w", err)
		}
		secs = append(secs, time.Since(start).Seconds())
		n := 0
		for name := range host.Tree(dst) {
			if !strings.HasSuffix(name, "/") {
				n++
			}
		}
		if n != w.files {
			return nil, fmt.Errorf("bench: winrm: upload left %d files on the host, want %d", n, w.files)
		}
	}
	slices.Sort(secs)
	packflowMBs := float64(w.bytes) / 1e6 / secs[len(secs)/2]

	baseMBs, err := smallChunkUpload(ctx, env, w.baselineBytes)
	if err != nil {
		return nil, fmt.Errorf("bench: winrm: baseline: %w", err)
	}
	st := srv.Stats()
	r := NewResult("winrm upload", "MB/s", packflowMBs, "2 KiB per command", baseMBs, Higher)
	r.Note = fmt.Sprintf("goal ≥ 20 MB/s; %d MiB incompressible tree of %d files, median of %d; largest request %d KiB; baseline moved %d KiB",
		w.bytes>>20, w.files, w.runs, st.MaxRequestBytes>>10, w.baselineBytes>>10)
	env.Log.Info("winrm upload", "mb_per_s", packflowMBs, "baseline_mb_per_s", baseMBs)
	return []Result{r}, nil
}

// writeRandomTree writes files of incompressible data totalling size bytes.
func writeRandomTree(root string, files, size int) error {
	rng := rand.New(rand.NewPCG(7, 7)) //nolint:gosec // reproducible test data, not secrets
	per := size / files
	for i := range files {
		dir := filepath.Join(root, fmt.Sprintf("d%d", i%4))
		if err := os.MkdirAll(dir, 0o750); err != nil {
			return err
		}
		b := make([]byte, per)
		for j := range b {
			b[j] = byte(rng.Uint32())
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%d.bin", i)), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// smallChunkUpload moves size bytes the way command-line tools do: one
// shell, then one "echo <base64> >> file" command per 2 KiB of data, and
// returns MB/s. The endpoint checks that the bytes arrive intact.
func smallChunkUpload(ctx context.Context, env *Env, size int) (float64, error) {
	data := make([]byte, size)
	rng := rand.New(rand.NewPCG(9, 9)) //nolint:gosec // reproducible test data, not secrets
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	var (
		mu       sync.Mutex
		received bytes.Buffer
	)
	handler := winrmtest.HandlerFunc(func(_ context.Context, cmd *winrmtest.Command, _, stderr io.Writer) int {
		rest, ok := strings.CutPrefix(cmd.Line, "echo ")
		chunk, _, ok2 := strings.Cut(rest, " >> ")
		if !ok || !ok2 {
			_, _ = fmt.Fprintf(stderr, "unexpected command %q", cmd.Line)
			return 1
		}
		b, err := base64.StdEncoding.DecodeString(chunk)
		if err != nil {
			_, _ = fmt.Fprint(stderr, err)
			return 1
		}
		mu.Lock()
		received.Write(b)
		mu.Unlock()
		return 0
	})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: handler, Logger: env.Log})
	defer srv.Close()
	ep := &mzwinrm.Endpoint{Host: srv.Host, Port: srv.Port, HTTPS: true, CACert: srv.CACertPEM, Timeout: time.Minute}
	client, err := mzwinrm.NewClient(ep, winrmtest.DefaultUser, winrmtest.DefaultPassword)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	shell, err := client.CreateShell()
	if err != nil {
		return 0, err
	}
	defer func() { _ = shell.Close() }()
	for off := 0; off < len(data); off += winrmBaselineChunk {
		chunk := data[off:min(off+winrmBaselineChunk, len(data))]
		line := "echo " + base64.StdEncoding.EncodeToString(chunk) + ` >> "%TEMP%\upload.b64"`
		cmd, err := shell.ExecuteWithContext(ctx, line)
		if err != nil {
			return 0, err
		}
		_, _ = io.Copy(io.Discard, cmd.Stdout)
		_, _ = io.Copy(io.Discard, cmd.Stderr)
		cmd.Wait()
		if code := cmd.ExitCode(); code != 0 {
			return 0, fmt.Errorf("chunk at %d: exit status %d", off, code)
		}
		_ = cmd.Close()
	}
	elapsed := time.Since(start).Seconds()
	mu.Lock()
	defer mu.Unlock()
	if !bytes.Equal(received.Bytes(), data) {
		return 0, fmt.Errorf("the endpoint received %d bytes that differ from the %d sent", received.Len(), len(data))
	}
	return float64(size) / 1e6 / elapsed, nil
}
