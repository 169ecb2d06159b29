package manifest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse feeds arbitrary bytes to the manifest parser: it must never
// panic, and what it reports must be well-formed.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "cases", "*", "pkg", ManifestName))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, rep := ParseBytes(b)
		for _, p := range append(append([]Problem{}, rep.Errors...), rep.Warnings...) {
			if p.Rule == "" || p.Message == "" {
				t.Fatalf("problem without rule or message: %+v", p)
			}
		}
		if rep.OK() {
			if m == nil {
				t.Fatal("no error and no manifest")
			}
			_ = m.Form()
			for _, p := range m.Parameters {
				if p.Default != "" {
					if err := p.CheckValue(p.Default); err != nil {
						t.Fatalf("valid manifest with an invalid default: %v", err)
					}
				}
			}
		}
	})
}

// FuzzCheckArchive feeds arbitrary bytes to the archive checker: it must
// never panic nor fail with anything but a validation report, and whatever
// it accepts must extract.
func FuzzCheckArchive(f *testing.F) {
	f.Add(buildZip(f, manifestEnt(), scriptEnt()))
	f.Add(buildZip(f, manifestEnt(), scriptEnt(), zent{name: "../x", body: []byte("x")}))
	f.Add(buildZip(f, zent{name: "a/package.manifest", body: []byte(validManifest)}))
	f.Add([]byte("PK\x05\x06\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	lim := Limits{MaxTotalSize: 1 << 20, RatioMinSize: 4 << 10}
	f.Fuzz(func(t *testing.T, b []byte) {
		pkg, rep, err := CheckArchive(context.Background(), bytes.NewReader(b), int64(len(b)), lim)
		if err != nil {
			t.Fatalf("error on an in-memory archive: %v", err)
		}
		if !rep.OK() {
			return
		}
		if pkg == nil || pkg.Manifest == nil {
			t.Fatal("valid archive without package or manifest")
		}
		if err := Extract(context.Background(), bytes.NewReader(b), int64(len(b)), t.TempDir(), lim); err != nil && errors.Is(err, ErrInvalid) {
			t.Fatalf("CheckArchive accepted what Extract refuses: %v", err)
		}
	})
}
