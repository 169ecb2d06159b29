package manifest

import (
	"archive/zip"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"
)

// packTime is the modification time written for every entry, so that the
// same tree always packs to the same bytes.
var packTime = time.Date(1980, time.January, 1, 0, 0, 0, 0, time.UTC)

// Pack writes the package in dir as a zip archive to w: package.manifest
// first, then every folder and file in lexical order, with slash-separated
// names relative to dir, Unix permission bits kept, deflate compression and
// a fixed timestamp, so the same tree always gives the same archive.
// Symbolic links and special files are refused (an error wrapping
// ErrInvalid), as is a directory without package.manifest at its root. Pack
// does not validate the manifest: run CheckDir first. The archive being
// written must not be inside dir.
func Pack(ctx context.Context, dir string, w io.Writer) error {
	return pack(ctx, dir, w, nil)
}

// pack is Pack leaving out the slash-separated paths in skip.
func pack(ctx context.Context, dir string, w io.Writer, skip map[string]bool) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	defer func() { _ = root.Close() }() // a directory handle opened for reading
	fsys := root.FS()
	type item struct {
		name string
		info fs.FileInfo
	}
	var items []item
	var rep Report
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == "." || skip[p] {
			return nil
		}
		typ := d.Type()
		switch {
		case typ&fs.ModeSymlink != 0:
			rep.errorf(p, 0, RuleArchiveSymlink, "this is a symbolic link; packages cannot hold links, so copy the file itself")
			return nil
		case !d.IsDir() && !typ.IsRegular():
			rep.errorf(p, 0, RuleArchiveSpecial, "this is a device, pipe or socket; packages hold only files and folders")
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		items = append(items, item{p, info})
		return nil
	})
	if err != nil {
		return fmt.Errorf("manifest: pack %s: %w", dir, err)
	}
	first := -1
	for i, it := range items {
		if it.name == ManifestName && it.info.Mode().IsRegular() {
			first = i
		}
	}
	if first < 0 {
		rep.errorf("", 0, RuleManifestMissing, "%s has no package.manifest at its root; pack the folder that holds it", dir)
	}
	if err := rep.Err(); err != nil {
		return err
	}
	items = append([]item{items[first]}, append(items[:first:first], items[first+1:]...)...)

	zw := zip.NewWriter(w)
	for _, it := range items {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("manifest: pack: %w", err)
		}
		h := &zip.FileHeader{Name: it.name, Method: zip.Deflate, Modified: packTime}
		h.SetMode(it.info.Mode())
		if it.info.IsDir() {
			h.Name += "/"
			h.Method = zip.Store
		}
		fw, err := zw.CreateHeader(h)
		if err != nil {
			return fmt.Errorf("manifest: pack %s: %w", it.name, err)
		}
		if it.info.IsDir() {
			continue
		}
		if err := copyFile(fsys, it.name, fw); err != nil {
			return fmt.Errorf("manifest: pack %s: %w", it.name, err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("manifest: pack: %w", err)
	}
	return nil
}

func copyFile(fsys fs.FS, name string, w io.Writer) error {
	f, err := fsys.Open(path.Clean(name))
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only
	_, err = io.Copy(w, f)
	return err
}
