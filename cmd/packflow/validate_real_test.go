package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/pkgtest"
)

// TestValidateRealManifests runs packflow validate on every case of the
// corpus of real manifests, as a directory and as a .zip: exit 0 for what
// the original platform published, 1 for what it rejected; a file of
// another format is told so in the first line, with no other error.
func TestValidateRealManifests(t *testing.T) {
	t.Parallel()
	for _, c := range pkgtest.RealManifests(t) {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), c.Name)
			c.WriteDir(t, dir)
			zip := filepath.Join(t.TempDir(), c.Name+".zip")
			if err := os.WriteFile(zip, c.Zip(t), 0o644); err != nil {
				t.Fatal(err)
			}
			want := exitOK
			if !c.Published {
				want = exitError
			}
			for _, path := range []string{dir, zip} {
				var stdout, stderr bytes.Buffer
				code := run(context.Background(), []string{"validate", path}, mapEnv(nil), &stdout, &stderr)
				if code != want {
					t.Errorf("validate %s: exit %d, want %d (%s)\n%s%s", filepath.Base(path), code, want, c.Why, stdout.String(), stderr.String())
				}
				if strings.HasPrefix(c.Name, "neg-") {
					lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
					if len(lines) != 2 || !strings.Contains(lines[0], "error [manifest.format]") || !strings.Contains(lines[0], "not a Blueprint package.manifest") {
						t.Errorf("validate %s: want one error saying what the file is:\n%s", filepath.Base(path), stdout.String())
					}
				}
			}
		})
	}
}
