package manifest

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestExtract(t *testing.T) {
	t.Parallel()
	z := buildZip(t, manifestEnt(), scriptEnt(), zent{name: "lib/", mode: fs.ModeDir | 0o755},
		zent{name: `lib\data.txt`, body: []byte("data"), mode: 0o640}, zent{name: "win.txt", body: []byte("w")})
	dst := filepath.Join(t.TempDir(), "pkg")
	if err := Extract(context.Background(), bytes.NewReader(z), int64(len(z)), dst, Limits{}); err != nil {
		t.Fatalf("Extract: %v", err)
	}
	for name, want := range map[string]struct {
		body string
		mode fs.FileMode
	}{
		"install.sh":   {"#!/bin/sh\necho ok\n", 0o755},
		"lib/data.txt": {"data", 0o640},
		"win.txt":      {"w", 0o644},
		ManifestName:   {validManifest, 0o644},
	} {
		p := filepath.Join(dst, filepath.FromSlash(name))
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want.body {
			t.Errorf("%s: %q, %v", name, b, err)
			continue
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm() != want.mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode().Perm(), want.mode)
		}
	}
}

func TestExtractRefuses(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 8<<20)
	tests := []struct {
		name   string
		zip    []byte
		limits Limits
		rule   string
	}{
		{"traversal", buildZip(t, scriptEnt(), zent{name: "../escape.sh", body: []byte("x")}), Limits{}, RulePathTraversal},
		{"absolute", buildZip(t, zent{name: "/tmp/escape.sh", body: []byte("x")}), Limits{}, RulePathAbsolute},
		{"symlink", buildZip(t, zent{name: "l", body: []byte("/etc"), mode: fs.ModeSymlink | 0o777}), Limits{}, RuleArchiveSymlink},
		{"duplicate", buildZip(t, scriptEnt(), scriptEnt()), Limits{}, RulePathDuplicate},
		{"bomb", buildZip(t, zent{name: "zeros", body: zeros}), Limits{}, RuleArchiveRatio},
		{"total", buildZip(t, zent{name: "a", body: make([]byte, 3000)}), Limits{MaxTotalSize: 1000}, RuleArchiveUncompressed},
		{"entries", buildZip(t, scriptEnt(), manifestEnt()), Limits{MaxEntries: 1}, RuleArchiveEntries},
		{"size", buildZip(t, scriptEnt()), Limits{MaxArchiveSize: 10}, RuleArchiveSize},
		{"not zip", []byte("nope"), Limits{}, RuleArchiveFormat},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			base := t.TempDir()
			dst := filepath.Join(base, "a", "b")
			err := Extract(context.Background(), bytes.NewReader(tt.zip), int64(len(tt.zip)), dst, tt.limits)
			var ie *InvalidError
			if !errors.As(err, &ie) || !errors.Is(err, ErrInvalid) || !ie.Report.Has(tt.rule) {
				t.Fatalf("err = %v, want ErrInvalid with rule %s", err, tt.rule)
			}
			for _, p := range []string{filepath.Join(base, "escape.sh"), filepath.Join(base, "a", "escape.sh")} {
				if _, err := os.Lstat(p); err == nil {
					t.Errorf("%s was written outside the destination", p)
				}
			}
		})
	}
}

func TestExtractNeverOverwrites(t *testing.T) {
	t.Parallel()
	z := buildZip(t, scriptEnt())
	dst := t.TempDir()
	if err := os.WriteFile(filepath.Join(dst, "install.sh"), []byte("mine"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := Extract(context.Background(), bytes.NewReader(z), int64(len(z)), dst, Limits{})
	if err == nil || errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want an I/O error", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "install.sh")); string(b) != "mine" {
		t.Errorf("existing file overwritten: %q", b)
	}
}
