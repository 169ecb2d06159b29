package cache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/packflow/packflow/manifest"
)

// ErrChecksum means an archive's sha256 or size is not the one expected.
// The archive was not unpacked and nothing was left behind.
var ErrChecksum = errors.New("cache: archive checksum mismatch")

// ChecksumError tells which archive did not match and how. It wraps
// ErrChecksum.
type ChecksumError struct {
	UUID, Version string
	// WantSHA256 and GotSHA256 are hex digests; GotSHA256 is empty when
	// the archive was longer than expected and was not read to its end.
	WantSHA256, GotSHA256 string
	// WantSize is the expected size (0 when unknown); GotSize is how many
	// bytes were read.
	WantSize, GotSize int64
}

func (e *ChecksumError) Error() string {
	if e.GotSHA256 == "" {
		return fmt.Sprintf("cache: archive of %s@%s has more than the %d bytes expected (sha256 %s)",
			e.UUID, e.Version, e.WantSize, e.WantSHA256)
	}
	return fmt.Sprintf("cache: archive of %s@%s has sha256 %s and %d bytes, want sha256 %s and %s",
		e.UUID, e.Version, e.GotSHA256, e.GotSize, e.WantSHA256, wantSize(e.WantSize))
}

func wantSize(n int64) string {
	if n == 0 {
		return "any size"
	}
	return fmt.Sprintf("%d bytes", n)
}

// Unwrap returns ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// Request asks for one package version to be installed.
type Request struct {
	UUID    string
	Version string
	// SHA256 is the archive's hex digest, as the library recorded it.
	SHA256 string
	// Size is the archive's size in bytes; 0 means unknown, and then at
	// most Limits.MaxArchiveSize bytes are read.
	Size int64
	// Open opens the archive for reading; Install closes it.
	Open func(ctx context.Context) (io.ReadCloser, error)
	// Force installs again a version already installed; the new tree
	// replaces the old one in one swap.
	Force bool
}

func (r Request) validate() error {
	if err := checkRef(r.UUID, r.Version); err != nil {
		return err
	}
	switch {
	case !validSHA256(r.SHA256):
		return fmt.Errorf("%w: sha256 %q is not 64 lower-case hex digits", ErrInvalidRef, r.SHA256)
	case r.Size < 0:
		return fmt.Errorf("%w: size %d is negative", ErrInvalidRef, r.Size)
	case r.Open == nil:
		return errors.New("cache: install: the request has no Open")
	}
	return nil
}

// Result is what an install did.
type Result struct {
	// Entry is the installed version; Entry.Path is its tree.
	Entry
	// AlreadyInstalled is set when the version was already installed from
	// the same archive and nothing was done.
	AlreadyInstalled bool
	// Replaced is set when an installed tree was swapped for the new one
	// (Force, or an installed tree from another archive).
	Replaced bool
}

// Install installs the package version req names, unless it is already
// installed from the same archive (and req.Force is not set). See the
// package comment for the steps and what a failure leaves.
//
// Errors wrapping ErrChecksum or manifest.ErrInvalid (the archive breaks an
// archive rule) will fail again with the same archive; others (I/O, ctx)
// may not.
func (c *Cache) Install(ctx context.Context, req Request) (Result, error) {
	if err := req.validate(); err != nil {
		return Result{}, err
	}
	ref := req.UUID + "@" + req.Version
	done, err := c.begin()
	if err != nil {
		return Result{}, err
	}
	defer done()
	unlock, err := c.lockKey(ctx, req.UUID, req.Version)
	if err != nil {
		return Result{}, fmt.Errorf("cache: install %s: %w", ref, err)
	}
	defer unlock()

	final := c.versionDir(req.UUID, req.Version)
	if !req.Force {
		if m, err := readMarker(final, req.UUID, req.Version); err == nil && m.SHA256 == req.SHA256 {
			return Result{Entry: m.entry(final), AlreadyInstalled: true}, nil
		}
	}
	log := c.log.With("uuid", req.UUID, "version", req.Version)
	start := time.Now()
	work, err := c.sess.workDir("in-")
	if err != nil {
		return Result{}, fmt.Errorf("cache: install %s: %w", ref, err)
	}
	defer func() {
		if err := os.RemoveAll(work); err != nil {
			log.Warn("could not remove the install work space", "path", work, "err", err)
		}
	}()

	tree, m, err := c.build(ctx, req, work)
	if err != nil {
		return Result{}, fmt.Errorf("cache: install %s: %w", ref, err)
	}
	res, err := c.place(tree, final, work, m, req.Force)
	if err != nil {
		return Result{}, fmt.Errorf("cache: install %s: %w", ref, err)
	}
	log.Info("installed", "path", final, "bytes", m.Size, "already", res.AlreadyInstalled,
		"replaced", res.Replaced, "took", time.Since(start))
	return res, nil
}

// build fetches and checks the archive and unpacks it, with its marker,
// into work/tree.
func (c *Cache) build(ctx context.Context, req Request, work string) (string, marker, error) {
	f, size, err := c.fetch(ctx, req, filepath.Join(work, "archive.zip"))
	if err != nil {
		return "", marker{}, err
	}
	defer func() { _ = f.Close() }() // read only from here on
	tree := filepath.Join(work, "tree")
	if err := manifest.Extract(ctx, f, size, tree, c.opts.Limits); err != nil {
		return "", marker{}, err
	}
	m := marker{UUID: req.UUID, Version: req.Version, SHA256: req.SHA256, Size: size, InstalledAt: c.opts.Now().UTC()}
	if err := writeMarker(tree, m); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return "", marker{}, fmt.Errorf("the package has a file named %s, which the install cache reserves: %w",
				MarkerName, manifest.ErrInvalid)
		}
		return "", marker{}, fmt.Errorf("write marker: %w", err)
	}
	return tree, m, nil
}

// fetch copies the archive to path while hashing it and checks its digest
// and size. It returns the copy, open for reading.
func (c *Cache) fetch(ctx context.Context, req Request, path string) (f *os.File, n int64, err error) {
	rc, err := req.Open(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("open archive: %w", err)
	}
	defer func() { _ = rc.Close() }()
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	limit := req.Size
	if limit == 0 {
		limit = c.maxArchiveSize()
	}
	h := sha256.New()
	buf := make([]byte, 256<<10)
	for n <= limit {
		if err := ctx.Err(); err != nil {
			return nil, n, err
		}
		k, rerr := rc.Read(buf[:min(int64(len(buf)), limit+1-n)])
		if k > 0 {
			h.Write(buf[:k])
			if _, err := f.Write(buf[:k]); err != nil {
				return nil, n, fmt.Errorf("copy archive: %w", err)
			}
			n += int64(k)
		}
		if errors.Is(rerr, io.EOF) {
			break
		}
		if rerr != nil {
			return nil, n, fmt.Errorf("read archive: %w", rerr)
		}
	}
	switch {
	case n > limit && req.Size > 0:
		return nil, n, &ChecksumError{UUID: req.UUID, Version: req.Version, WantSHA256: req.SHA256, WantSize: req.Size, GotSize: n}
	case n > limit:
		return nil, n, fmt.Errorf("the archive has more than %d bytes, the limit: %w", limit, manifest.ErrInvalid)
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != req.SHA256 || (req.Size > 0 && n != req.Size) {
		return nil, n, &ChecksumError{UUID: req.UUID, Version: req.Version,
			WantSHA256: req.SHA256, GotSHA256: got, WantSize: req.Size, GotSize: n}
	}
	return f, n, nil
}

func (c *Cache) maxArchiveSize() int64 {
	if c.opts.Limits.MaxArchiveSize > 0 {
		return c.opts.Limits.MaxArchiveSize
	}
	return manifest.DefaultMaxArchiveSize
}

// place renames the finished tree to final. When a tree is there already,
// it counts as installed if its marker names the same archive and force is
// off; otherwise the two are swapped and the old tree, now in work, goes
// with the work space.
func (c *Cache) place(tree, final, work string, m marker, force bool) (Result, error) {
	if err := os.MkdirAll(filepath.Dir(final), 0o755); err != nil { //nolint:gosec // trees are read by other users, as Extract makes them
		return Result{}, err
	}
	err := os.Rename(tree, final)
	if err == nil {
		return Result{Entry: m.entry(final)}, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return Result{}, err
	}
	if !force {
		// Another process installed it between our check and our rename.
		if cur, err := readMarker(final, m.UUID, m.Version); err == nil && cur.SHA256 == m.SHA256 {
			return Result{Entry: cur.entry(final), AlreadyInstalled: true}, nil
		}
	}
	if err := exchange(tree, final, filepath.Join(work, "old")); err != nil {
		return Result{}, fmt.Errorf("replace the installed tree: %w", err)
	}
	return Result{Entry: m.entry(final), Replaced: true}, nil
}
