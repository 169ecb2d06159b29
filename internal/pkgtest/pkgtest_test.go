package pkgtest

import (
	"archive/zip"
	"bytes"
	"io"
	"io/fs"
	"testing"
)

func TestZipKeepsNamesBodiesModesAndOrder(t *testing.T) {
	t.Parallel()
	b := Zip(t, File{Name: "package.manifest", Body: "<Manifest/>"}, File{Name: "run.sh", Body: "#!/bin/sh\n", Mode: 0o755})
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, body string
		mode       fs.FileMode
	}{{"package.manifest", "<Manifest/>", 0o644}, {"run.sh", "#!/bin/sh\n", 0o755}}
	if len(zr.File) != len(want) {
		t.Fatalf("%d entries, want %d", len(zr.File), len(want))
	}
	for i, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name != want[i].name || string(body) != want[i].body || f.Mode().Perm() != want[i].mode {
			t.Errorf("entry %d = %s %q %v, want %s %q %v", i, f.Name, body, f.Mode().Perm(), want[i].name, want[i].body, want[i].mode)
		}
	}
}
