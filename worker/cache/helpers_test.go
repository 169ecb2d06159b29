package cache

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

const (
	uuidA = "3b1f8a52-7c1e-4d2a-9f60-1e2d3c4b5a69"
	uuidB = "9d0c2e41-5b6a-4f38-8e17-2a3b4c5d6e7f"
)

// file is one archive entry; a name ending in "/" is a directory.
type file struct {
	name string
	body string
	mode fs.FileMode
}

// archive is a zip in memory with its digest.
type archive struct {
	data   []byte
	sha256 string
	opens  atomic.Int32
}

func newArchive(t testing.TB, files ...file) *archive {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}
		mode := f.mode
		if mode == 0 {
			mode = 0o644
		}
		if strings.HasSuffix(f.name, "/") {
			mode |= fs.ModeDir
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(w, f.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return &archive{data: buf.Bytes(), sha256: hashOf(buf.Bytes())}
}

func hashOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// open is a Request.Open that counts its calls.
func (a *archive) open(context.Context) (io.ReadCloser, error) {
	a.opens.Add(1)
	return io.NopCloser(bytes.NewReader(a.data)), nil
}

func (a *archive) request(uuid, version string) Request {
	return Request{UUID: uuid, Version: version, SHA256: a.sha256, Size: int64(len(a.data)), Open: a.open}
}

// sample is a small valid package.
func sample(t testing.TB, content string) *archive {
	return newArchive(t,
		file{name: "package.manifest", body: "<Manifest/>"},
		file{name: "install.sh", body: "#!/bin/sh\necho " + content + "\n", mode: 0o755},
		file{name: "data/", mode: 0o755},
		file{name: "data/value.txt", body: content},
	)
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// openCache opens a cache in a fresh directory, closed at the end of the
// test.
func openCache(t testing.TB, dir string, opts Options) *Cache {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	c, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

// tree lists every path under dir (slash-separated, directories with a
// trailing slash), sorted.
func tree(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			rel += "/"
		}
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	sort.Strings(out)
	return out
}

// workspace lists what the cache's own session holds.
func workspace(t testing.TB, c *Cache) []string {
	t.Helper()
	return tree(t, c.sess.dir)
}

func readFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
