package manifest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func writeTree(t *testing.T, files map[string]string, modes map[string]os.FileMode) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		p := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := modes[name]
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestPack(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{
		ManifestName: validManifest, "install.sh": "#!/bin/sh\n", "a/b/c.txt": "c", "z.txt": "z",
	}, map[string]os.FileMode{"install.sh": 0o755, "a/b/c.txt": 0o600})
	var one, two bytes.Buffer
	if err := Pack(context.Background(), dir, &one); err != nil {
		t.Fatal(err)
	}
	if err := Pack(context.Background(), dir, &two); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(one.Bytes(), two.Bytes()) {
		t.Error("packing the same tree twice gave different archives")
	}
	zr, err := zip.NewReader(bytes.NewReader(one.Bytes()), int64(one.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	modes := map[string]os.FileMode{}
	for _, f := range zr.File {
		names = append(names, f.Name)
		modes[f.Name] = f.Mode()
	}
	want := []string{ManifestName, "a/", "a/b/", "a/b/c.txt", "install.sh", "z.txt"}
	if len(names) != len(want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	for i := range want {
		if names[i] != want[i] {
			t.Fatalf("entries %v, want %v", names, want)
		}
	}
	if modes["install.sh"].Perm() != 0o755 || modes["a/b/c.txt"].Perm() != 0o600 || !modes["a/"].IsDir() {
		t.Errorf("modes not kept: %v", modes)
	}
	_, rep, err := CheckArchive(context.Background(), bytes.NewReader(one.Bytes()), int64(one.Len()), Limits{})
	if err != nil || !rep.OK() || len(rep.Warnings) > 0 {
		t.Errorf("packed archive does not check clean: %v %+v", err, rep)
	}
}

func TestPackRefuses(t *testing.T) {
	t.Parallel()
	noManifest := writeTree(t, map[string]string{"install.sh": "x", "sub/package.manifest": validManifest}, nil)
	withLink := writeTree(t, map[string]string{ManifestName: validManifest, "install.sh": "x"}, nil)
	if err := os.Symlink("install.sh", filepath.Join(withLink, "link.sh")); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		dir  string
		rule string
	}{
		"no manifest": {noManifest, RuleManifestMissing},
		"symlink":     {withLink, RuleArchiveSymlink},
	} {
		var buf bytes.Buffer
		err := Pack(context.Background(), tc.dir, &buf)
		var ie *InvalidError
		if !errors.As(err, &ie) || !ie.Report.Has(tc.rule) {
			t.Errorf("%s: err = %v, want rule %s", name, err, tc.rule)
		}
	}
	if err := Pack(context.Background(), filepath.Join(noManifest, "missing"), &bytes.Buffer{}); err == nil || errors.Is(err, ErrInvalid) {
		t.Errorf("missing dir: err = %v, want an I/O error", err)
	}
}

func TestCheckDirSymlink(t *testing.T) {
	t.Parallel()
	dir := writeTree(t, map[string]string{ManifestName: validManifest, "install.sh": "#!/bin/sh\n"}, map[string]os.FileMode{"install.sh": 0o755})
	if err := os.Symlink("/etc/passwd", filepath.Join(dir, "passwd")); err != nil {
		t.Fatal(err)
	}
	_, rep, err := CheckDir(context.Background(), dir, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if errs, _ := rep.Rules(); len(errs) != 1 || errs[0] != RuleArchiveSymlink {
		t.Errorf("rules %v, want [%s]", errs, RuleArchiveSymlink)
	}
}
