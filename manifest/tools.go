package manifest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Validate checks the package at path, a .zip file or an unpacked package
// directory, as `packflow validate PATH` does: CheckDir for a directory,
// CheckArchive for a file. Print the report with Report.Format and exit
// non-zero when !report.OK().
func Validate(ctx context.Context, path string, limits Limits) (*Package, Report, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, Report{}, fmt.Errorf("manifest: validate: %w", err)
	}
	if fi.IsDir() {
		return CheckDir(ctx, path, limits)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, Report{}, fmt.Errorf("manifest: validate: %w", err)
	}
	defer func() { _ = f.Close() }() // read-only
	return CheckArchive(ctx, f, fi.Size(), limits)
}

// PackFile packs dir into the zip file out, as `packflow pack DIR -o
// FILE.zip` does. The archive is written to a temporary file next to out
// and renamed into place when complete, so a failed pack leaves no partial
// archive; when out lies inside dir it is left out of the archive.
func PackFile(ctx context.Context, dir, out string) (err error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	absOut, err := filepath.Abs(out)
	if err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(absOut), "."+filepath.Base(absOut)+".*.tmp")
	if err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	defer func() {
		if err != nil {
			// The pack error is the one to report; the temporary file is
			// discarded, and it may already be closed.
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	skip := map[string]bool{}
	for _, p := range []string{absOut, tmp.Name()} {
		if rel, err := filepath.Rel(absDir, p); err == nil && !strings.HasPrefix(rel, "..") {
			skip[filepath.ToSlash(rel)] = true
		}
	}
	if err := pack(ctx, dir, tmp, skip); err != nil {
		return err
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil { //nolint:gosec // an archive to share and upload, with the mode os.Create gives, not CreateTemp's 0o600
		return fmt.Errorf("manifest: pack: %w", err)
	}
	if err := os.Rename(tmp.Name(), absOut); err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	return nil
}
