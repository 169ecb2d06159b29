package manifest

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// CheckDir checks an unpacked package in dir with the same rules as
// CheckArchive, so authors can validate before zipping. Compression rules
// do not apply; symbolic links, devices and the entry and size limits do.
// The error is for reading the directory and for ctx only.
func CheckDir(ctx context.Context, dir string, limits Limits) (*Package, Report, error) {
	if err := limits.Validate(); err != nil {
		return nil, Report{}, err
	}
	t := &tree{lim: limits.withDefaults()}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, Report{}, fmt.Errorf("manifest: open %s: %w", dir, err)
	}
	defer func() { _ = root.Close() }() // a directory handle opened for reading
	var total int64
	count := 0
	walkErr := fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == "." {
			return nil
		}
		count++
		if count > t.lim.MaxEntries {
			t.rep.errorf("", 0, RuleArchiveEntries, "the package has more than %d files and folders; remove files or bundle them", t.lim.MaxEntries)
			return fs.SkipAll
		}
		clean, ok := t.entryPath(p)
		if !ok {
			return nil
		}
		switch typ := d.Type(); {
		case typ&fs.ModeSymlink != 0:
			t.rep.errorf(p, 0, RuleArchiveSymlink, "this is a symbolic link; packages cannot hold links, so copy the file itself")
			return nil
		case d.IsDir():
			t.addDir(clean)
			return nil
		case !typ.IsRegular():
			t.rep.errorf(p, 0, RuleArchiveSpecial, "this is a device, pipe or socket; packages hold only files and folders")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		total += info.Size()
		if total > t.lim.MaxTotalSize {
			t.rep.errorf(p, 0, RuleArchiveUncompressed, "the package holds more than %d bytes; make it smaller", t.lim.MaxTotalSize)
			return fs.SkipAll
		}
		if t.addFile(clean, info.Size(), info.Mode().Perm()) {
			b, err := readLimited(root, p, MaxManifestSize+1)
			if err != nil {
				return err
			}
			t.setManifest(b)
		}
		return nil
	})
	if walkErr != nil {
		return nil, Report{}, fmt.Errorf("manifest: check %s: %w", dir, walkErr)
	}
	m, err := t.finish(ctx)
	if err != nil {
		return nil, Report{}, err
	}
	return &Package{Files: t.files, Size: total, Manifest: m}, t.rep, nil
}

func readLimited(root *os.Root, name string, n int64) ([]byte, error) {
	f, err := root.Open(filepath.FromSlash(name))
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }() // read-only
	b, err := io.ReadAll(io.LimitReader(f, n))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return b, nil
}
