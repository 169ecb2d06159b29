// Package pkgtest builds package archives in memory for tests: a zip of
// named files with their Unix modes, in the order given.
package pkgtest

import (
	"archive/zip"
	"bytes"
	"io/fs"
	"testing"
)

// File is one entry of a test archive.
type File struct {
	Name string
	Body string
	// Mode is the entry's Unix mode; 0 means 0644.
	Mode fs.FileMode
}

// Zip returns a zip archive holding files, deflated, in the order given.
func Zip(t testing.TB, files ...File) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.Name, Method: zip.Deflate}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		h.SetMode(mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatalf("pkgtest: add %s: %v", f.Name, err)
		}
		if _, err := w.Write([]byte(f.Body)); err != nil {
			t.Fatalf("pkgtest: write %s: %v", f.Name, err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatalf("pkgtest: close: %v", err)
	}
	return buf.Bytes()
}
