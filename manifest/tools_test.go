package manifest

import (
	"archive/zip"
	"context"
	"os"
	"path/filepath"
	"testing"
)

func TestPackFileAndValidate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := writeTree(t, map[string]string{ManifestName: validManifest, "install.sh": "#!/bin/sh\n"},
		map[string]os.FileMode{"install.sh": 0o755})
	out := filepath.Join(dir, "dist", "agent.zip") // inside the package: must be left out
	if err := os.Mkdir(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second run must not pack the first archive
		if err := PackFile(ctx, dir, out); err != nil {
			t.Fatalf("PackFile: %v", err)
		}
	}
	zr, err := zip.OpenReader(out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = zr.Close() })
	for _, f := range zr.File {
		if filepath.Ext(f.Name) == ".zip" || filepath.Ext(f.Name) == ".tmp" {
			t.Errorf("archive holds %s", f.Name)
		}
	}
	leftovers, _ := filepath.Glob(filepath.Join(dir, "dist", ".*"))
	if len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	for _, path := range []string{out, dir} {
		pkg, rep, err := Validate(ctx, path, Limits{})
		if err != nil || !rep.OK() || pkg.Manifest.Metadata.Name != "Agent" {
			t.Errorf("Validate(%s): %v %+v", path, err, rep)
		}
	}
	if _, _, err := Validate(ctx, filepath.Join(dir, "nope.zip"), Limits{}); err == nil {
		t.Error("Validate of a missing path gave no error")
	}
}
