package pkgtest

import (
	"os"
	"path/filepath"
	"testing"
)

func TestRealCaseStandIns(t *testing.T) {
	t.Parallel()
	c := RealCase{Name: "x", Manifest: []byte("<Manifest/>"), Files: []CorpusFile{
		{Path: "install.sh", Mode: 0o755, Size: 100}, {Path: "lib/data.bin", Mode: 0o644, Size: 3000}}}
	dir := t.TempDir()
	c.WriteDir(t, dir)
	for _, f := range c.Files {
		fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(f.Path)))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() != int64(f.Size) || fi.Mode().Perm() != f.Mode {
			t.Errorf("%s: size %d mode %v, want %d %v", f.Path, fi.Size(), fi.Mode().Perm(), f.Size, f.Mode)
		}
	}
	if string(standIn("a.sh", 20)) != string(standIn("a.sh", 20)) || string(standIn("a.sh", 20)[:10]) != "#!/bin/sh\n" {
		t.Error("stand-ins are not deterministic scripts")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "package.manifest")); err != nil || string(b) != "<Manifest/>" {
		t.Errorf("manifest %q, %v", b, err)
	}
}
