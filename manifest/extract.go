package manifest

import (
	"archive/zip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
)

// Extract unpacks the archive into dst, re-applying every archive rule
// while it writes: names stay inside dst (writes go through an os.Root),
// links and devices are refused, and the entry, total size and ratio limits
// are counted on bytes actually decompressed. dst is created when missing
// and must not already hold the package's files: existing files are never
// overwritten.
//
// Files keep their permission bits (made readable and writable by the
// owner); directories get 0o755. An archive that breaks a rule gives an
// error wrapping ErrInvalid (an *InvalidError); other errors are I/O or ctx
// errors. On any error dst may hold part of the package: extract into a
// fresh directory and rename it into place on success.
func Extract(ctx context.Context, r io.ReaderAt, size int64, dst string, limits Limits) error {
	if err := limits.Validate(); err != nil {
		return err
	}
	t := &tree{lim: limits.withDefaults()}
	if size > t.lim.MaxArchiveSize {
		t.rep.errorf("", 0, RuleArchiveSize, "the archive has %d bytes, more than the limit of %d", size, t.lim.MaxArchiveSize)
		return t.rep.Err()
	}
	trap := &ioTrap{r: r, size: size}
	zr, err := zip.NewReader(trap, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if ioErr := trap.failed(); ioErr != nil {
			return fmt.Errorf("manifest: extract: read archive: %w", ioErr)
		}
		t.rep.errorf("", 0, RuleArchiveFormat, "the file is not a readable zip archive (%v)", err)
		return t.rep.Err()
	}
	if len(zr.File) > t.lim.MaxEntries {
		t.rep.errorf("", 0, RuleArchiveEntries, "the archive has %d entries, more than the limit of %d", len(zr.File), t.lim.MaxEntries)
		return t.rep.Err()
	}
	// Check every name and type before writing anything.
	names := make([]string, len(zr.File))
	for i, f := range zr.File {
		clean, ok := t.entryPath(f.Name)
		if !ok || !entryAllowed(t, f) {
			continue
		}
		names[i] = clean
		if f.FileInfo().IsDir() {
			t.addDir(clean)
		} else {
			t.addFile(clean, 0, 0)
		}
	}
	t.duplicates(false)
	if err := t.rep.Err(); err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil { //nolint:gosec // documented: packages are run, possibly by another user, so their folders must be traversable
		return fmt.Errorf("manifest: extract: %w", err)
	}
	root, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("manifest: extract: %w", err)
	}
	defer func() { _ = root.Close() }() // only a directory handle: each file written is closed and checked in extractFile
	buf := make([]byte, 256<<10)
	var total int64
	for i, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("manifest: extract: %w", err)
		}
		name := names[i]
		if f.FileInfo().IsDir() {
			if err := root.MkdirAll(name, 0o755); err != nil {
				return fmt.Errorf("manifest: extract: %w", err)
			}
			continue
		}
		n, err := extractFile(root, f, name, buf, t, total, size)
		total += n
		if err != nil {
			var we *writeError
			switch {
			case errors.As(err, &we):
				return fmt.Errorf("manifest: extract %s: %w", name, we.err)
			case trap.failed() != nil:
				return fmt.Errorf("manifest: extract: read archive: %w", trap.failed())
			}
			return t.rep.Err()
		}
	}
	return nil
}

func extractFile(root *os.Root, f *zip.File, name string, buf []byte, t *tree, total, size int64) (int64, error) {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return 0, &writeError{err}
		}
	}
	perm := entryPerm(f) | 0o600
	out, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return 0, &writeError{err}
	}
	// OpenFile's mode passed through the umask; set the bits asked for.
	if err := out.Chmod(perm); err != nil {
		_ = out.Close() // nothing was written; the Chmod error is the one to report
		return 0, &writeError{err}
	}
	n, err := copyEntry(f, buf, out, t, total, size)
	if cerr := out.Close(); err == nil && cerr != nil {
		err = &writeError{cerr}
	}
	return n, err
}
