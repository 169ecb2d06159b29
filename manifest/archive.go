package manifest

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
)

// CheckArchive checks a package archive (a .zip of size bytes read from r)
// against every archive rule and every manifest rule, reading each entry
// once while the archive's sha256 is computed alongside.
//
// Validation problems are in the Report (report.Err() wraps ErrInvalid);
// the error is for reading r and for ctx only, so callers can retry it. The
// Package is nil when the archive could not be read as a zip at all;
// otherwise it holds what was found even when the report has errors.
func CheckArchive(ctx context.Context, r io.ReaderAt, size int64, limits Limits) (*Package, Report, error) {
	if err := limits.Validate(); err != nil {
		return nil, Report{}, err
	}
	lim := limits.withDefaults()
	t := &tree{lim: lim}
	if size > lim.MaxArchiveSize {
		t.rep.errorf("", 0, RuleArchiveSize, "the archive has %d bytes, more than the limit of %d; make it smaller", size, lim.MaxArchiveSize)
		return nil, t.rep, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		sum     string
		hashErr error
	)
	wg.Go(func() { sum, hashErr = hashReaderAt(ctx, r, size) })
	pkg, err := checkZip(ctx, r, size, t)
	if err != nil {
		cancel()
	}
	wg.Wait()
	if err == nil && hashErr != nil {
		err = hashErr
	}
	if err != nil {
		return nil, Report{}, err
	}
	if pkg != nil {
		pkg.SHA256 = sum
	}
	return pkg, t.rep, nil
}

// ioTrap wraps a ReaderAt and remembers its first real error, so that a zip
// error caused by failing storage is told apart from a corrupt archive.
// Reads outside the archive, which only corrupt headers ask for, fail
// without being remembered.
type ioTrap struct {
	r    io.ReaderAt
	size int64
	mu   sync.Mutex
	err  error
}

var errOutside = errors.New("read outside the archive")

func (t *ioTrap) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 || off > t.size {
		return 0, errOutside
	}
	n, err := t.r.ReadAt(p, off)
	if err != nil && !errors.Is(err, io.EOF) {
		t.mu.Lock()
		if t.err == nil {
			t.err = err
		}
		t.mu.Unlock()
	}
	return n, err
}

func (t *ioTrap) failed() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func checkZip(ctx context.Context, r io.ReaderAt, size int64, t *tree) (*Package, error) {
	trap := &ioTrap{r: r, size: size}
	// archive/zip keeps a few hundred bytes per entry of the central
	// directory: count the entries first, from the end record and then
	// header by header, and refuse too many before it reads them.
	if dir, err := readZipDirectory(trap, size); err == nil {
		if dir.Entries > uint64(t.lim.MaxEntries) {
			t.rep.errorf("", 0, RuleArchiveEntries, "the archive declares %d entries, more than the limit of %d; remove files or bundle them",
				dir.Entries, t.lim.MaxEntries)
			return nil, nil
		}
		n, err := countDirHeaders(trap, size, dir, t.lim.MaxEntries)
		if ioErr := trap.failed(); ioErr != nil {
			return nil, fmt.Errorf("manifest: read archive: %w", ioErr)
		}
		if err == nil && n > t.lim.MaxEntries {
			t.rep.errorf("", 0, RuleArchiveEntries, "the archive's directory lists more than %d entries (its end record says %d); remove files or bundle them",
				t.lim.MaxEntries, dir.Entries)
			return nil, nil
		}
	} else if ioErr := trap.failed(); ioErr != nil {
		return nil, fmt.Errorf("manifest: read archive: %w", ioErr)
	}
	zr, err := zip.NewReader(trap, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		if ioErr := trap.failed(); ioErr != nil {
			return nil, fmt.Errorf("manifest: read archive: %w", ioErr)
		}
		t.rep.errorf("", 0, RuleArchiveFormat, "the file is not a readable zip archive (%v); packages must be .zip files", err)
		return nil, nil
	}
	if len(zr.File) > t.lim.MaxEntries {
		t.rep.errorf("", 0, RuleArchiveEntries, "the archive has %d entries, more than the limit of %d; remove files or bundle them",
			len(zr.File), t.lim.MaxEntries)
		return nil, nil
	}
	buf := make([]byte, 64<<10)
	var total int64
	for _, f := range zr.File {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("manifest: check archive: %w", err)
		}
		clean, ok := t.entryPath(f.Name)
		if !ok || !entryAllowed(t, f) {
			continue
		}
		if f.FileInfo().IsDir() {
			t.addDir(clean)
			continue
		}
		isManifest := t.addFile(clean, int64(f.UncompressedSize64), entryPerm(f))
		var keep *cappedBuffer
		var w io.Writer
		if isManifest {
			keep = &cappedBuffer{max: MaxManifestSize}
			w = keep
		}
		n, err := copyEntry(f, buf, w, t, total, size)
		total += n
		t.files[len(t.files)-1].Size = n
		if err != nil {
			if ioErr := trap.failed(); ioErr != nil {
				return nil, fmt.Errorf("manifest: read archive: %w", ioErr)
			}
			if errors.Is(err, errTotal) {
				break
			}
			continue
		}
		if isManifest {
			t.setManifest(keep.Bytes())
		}
	}
	m, err := t.finish(ctx)
	if err != nil {
		return nil, err
	}
	return &Package{Files: t.files, Size: size, Manifest: m}, nil
}

// entryAllowed applies the type rules: no links, devices, encryption or
// unknown compression.
func entryAllowed(t *tree, f *zip.File) bool {
	mode := f.Mode()
	switch {
	case mode&fs.ModeSymlink != 0:
		t.rep.errorf(f.Name, 0, RuleArchiveSymlink, "the entry is a symbolic link; packages cannot hold links, so zip the file itself")
		return false
	case mode&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe|fs.ModeSocket|fs.ModeIrregular) != 0:
		t.rep.errorf(f.Name, 0, RuleArchiveSpecial, "the entry is a device, pipe or socket; packages hold only files and folders")
		return false
	case f.Flags&0x1 != 0:
		t.rep.errorf(f.Name, 0, RuleArchiveUnsupported, "the entry is encrypted; zip the package without a password")
		return false
	case f.Method != zip.Store && f.Method != zip.Deflate:
		t.rep.errorf(f.Name, 0, RuleArchiveUnsupported,
			"the entry uses compression method %d; zip the package with deflate (the default of every zip tool)", f.Method)
		return false
	}
	return true
}

// entryPerm returns the permission bits an entry carries: those of a Unix
// creator, else 0o644 for files (archives made on Windows store none).
func entryPerm(f *zip.File) fs.FileMode {
	switch f.CreatorVersion >> 8 {
	case 3, 19: // Unix, macOS
		if f.ExternalAttrs>>16 != 0 {
			return f.Mode().Perm()
		}
	}
	return 0o644
}

var errTotal = errors.New("total size limit reached")

// writeError marks a failure of the destination rather than of the archive.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }
func (e *writeError) Unwrap() error { return e.err }

// copyEntry decompresses one entry into w (nil discards), enforcing the
// ratio and total size limits on the bytes actually produced, and reports
// archive problems in t. It returns the bytes produced and an error that is
// errTotal, errRatio, a *writeError, or the reason the entry is unreadable.
func copyEntry(f *zip.File, buf []byte, w io.Writer, t *tree, total, archiveSize int64) (int64, error) {
	rc, err := f.Open()
	if err != nil {
		t.rep.errorf(f.Name, 0, RuleArchiveUnsupported, "the entry cannot be opened (%v); re-create the zip", err)
		return 0, err
	}
	defer func() { _ = rc.Close() }() // read-only; the checksum is verified by Read at EOF
	var n int64
	limit := t.lim.MaxTotalSize - total
	compressed := min(int64(f.CompressedSize64), archiveSize)
	ratioAt := max(t.lim.RatioMinSize, compressed*t.lim.MaxRatio)
	for {
		k, err := rc.Read(buf)
		n += int64(k)
		switch {
		case n > limit:
			t.rep.errorf(f.Name, 0, RuleArchiveUncompressed,
				"the archive unpacks to more than %d bytes; make the package smaller", t.lim.MaxTotalSize)
			return n, errTotal
		case n > ratioAt:
			t.rep.errorf(f.Name, 0, RuleArchiveRatio,
				"the entry expands more than %d times its compressed size; this looks like a zip bomb, so store the file as it is", t.lim.MaxRatio)
			return n, errRatio
		}
		if w != nil && k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, &writeError{werr}
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			t.rep.errorf(f.Name, 0, RuleArchiveCorrupt, "the entry is damaged (%s); re-create the zip", corruptReason(err))
			return n, err
		}
	}
}

// cappedBuffer keeps at most max+1 bytes, enough to tell "too large".
type cappedBuffer struct {
	bytes.Buffer
	max int
}

func (c *cappedBuffer) Write(p []byte) (int, error) {
	if room := c.max + 1 - c.Len(); room > 0 {
		c.Buffer.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

var errRatio = errors.New("ratio limit reached")

func corruptReason(err error) string {
	var ce flate.CorruptInputError
	switch {
	case errors.Is(err, zip.ErrChecksum):
		return "checksum mismatch"
	case errors.As(err, &ce):
		return "bad compressed data"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "data ends early"
	}
	return err.Error()
}

// hashReaderAt returns the hex sha256 of the first size bytes of r.
func hashReaderAt(ctx context.Context, r io.ReaderAt, size int64) (string, error) {
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return "", fmt.Errorf("manifest: hash archive: %w", err)
		}
		want := min(int64(len(buf)), size-off)
		n, err := r.ReadAt(buf[:want], off)
		h.Write(buf[:n])
		off += int64(n)
		if err != nil && (!errors.Is(err, io.EOF) || off != size) {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return "", fmt.Errorf("manifest: hash archive: %w", err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
