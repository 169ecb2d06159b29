package cache

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/packflow/packflow/manifest"
)

// DefaultKeep is how many inactive versions of a package Prune keeps when
// Options.Keep is zero.
const DefaultKeep = 2

// tmpName is the work space directory under the cache root.
const tmpName = ".tmp"

// Errors callers branch on.
var (
	// ErrInvalidRef means a UUID, version or sha256 is not in the strict
	// form the cache accepts; nothing was touched.
	ErrInvalidRef = errors.New("cache: invalid package reference")
	// ErrClosed means the cache was closed.
	ErrClosed = errors.New("cache: closed")
)

// Options configure a Cache. The zero value is usable.
type Options struct {
	// Logger receives install and prune events; nil discards them.
	Logger *slog.Logger
	// Limits bound what an archive may unpack to (manifest's defaults for
	// zero fields). MaxArchiveSize also bounds how much of a blob is read
	// when a Request gives no Size.
	Limits manifest.Limits
	// Keep is how many inactive versions of each package Prune keeps,
	// besides the versions it is told to keep: DefaultKeep (2) when zero,
	// none when negative.
	Keep int
	// Now tells the time written into completion markers; time.Now when
	// nil.
	Now func() time.Time
}

func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch {
	case o.Keep == 0:
		o.Keep = DefaultKeep
	case o.Keep < 0:
		o.Keep = 0
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// Entry is one installed package version.
type Entry struct {
	UUID    string `json:"uuid"`
	Version string `json:"version"`
	// SHA256 is the hex digest of the archive the tree was unpacked from.
	SHA256 string `json:"sha256"`
	// Size is the archive's size in bytes.
	Size        int64     `json:"size"`
	InstalledAt time.Time `json:"installed_at"`
	// Path is the root of the unpacked tree.
	Path string `json:"path"`
}

// Cache is a node's install cache in one directory. Its methods are safe
// for concurrent use.
type Cache struct {
	dir  string
	opts Options
	log  *slog.Logger
	keys keyLocks
	sess *session

	mu      sync.Mutex
	closed  bool
	running sync.WaitGroup
}

// Open opens (creating it when missing) the cache in dir. It clears what
// interrupted installs of processes that are gone left in the work space,
// and removes version trees that have no valid completion marker.
func Open(dir string, opts Options) (*Cache, error) {
	if err := opts.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	if dir == "" {
		return nil, errors.New("cache: no directory given")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("cache: %w", err)
	}
	opts = opts.withDefaults()
	c := &Cache{dir: abs, opts: opts, log: opts.Logger.With("cache", abs)}
	tmp := filepath.Join(abs, tmpName)
	if err := os.MkdirAll(tmp, 0o755); err != nil { //nolint:gosec // trees are read by other users, as Extract makes them
		return nil, fmt.Errorf("cache: %w", err)
	}
	if err := c.clearStaleSessions(tmp); err != nil {
		return nil, err
	}
	c.sess, err = newSession(tmp)
	if err != nil {
		return nil, err
	}
	if err := c.removeUnmarked(); err != nil {
		_ = c.sess.close()
		return nil, err
	}
	return c, nil
}

// Dir is the cache's root directory (absolute).
func (c *Cache) Dir() string { return c.dir }

// Close releases the cache's work space after the installs and prunes in
// progress end. It does not remove installed trees.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	c.mu.Unlock()
	c.running.Wait()
	return c.sess.close()
}

// begin registers an operation; the caller calls the returned func when
// done.
func (c *Cache) begin() (func(), error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	c.running.Add(1)
	return c.running.Done, nil
}

// clearStaleSessions removes the work space of every session no live
// process holds.
func (c *Cache) clearStaleSessions(tmp string) error {
	root, err := os.OpenRoot(tmp)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	defer func() { _ = root.Close() }()
	ents, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.IsDir() {
			if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return fmt.Errorf("cache: clear stale work space: %w", err)
			}
			continue
		}
		f, err := root.Open(name)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		l, ok, err := tryLock(f)
		if err != nil {
			return fmt.Errorf("cache: %w", err)
		}
		if !ok {
			continue // a live process works there
		}
		err = root.RemoveAll(name)
		l.release()
		if err != nil {
			return fmt.Errorf("cache: clear stale work space: %w", err)
		}
		c.log.Info("cleared the work space of an interrupted session", "path", filepath.Join(tmp, name))
	}
	return nil
}

// removeUnmarked removes version trees without a valid marker. Installs
// only ever rename whole, marked trees into place, so such a tree was not
// made by a finished install.
func (c *Cache) removeUnmarked() error {
	return c.walk(func(uuid, version, path string) error {
		_, err := readMarker(path, uuid, version)
		if err == nil {
			return nil
		}
		c.log.Warn("removing a tree without a valid completion marker", "path", path, "reason", err)
		if err := c.discard(path); err != nil {
			return fmt.Errorf("cache: remove untrusted tree: %w", err)
		}
		return nil
	})
}

// walk calls fn for every <uuid>/<version> directory whose names are
// valid. Other entries of the cache are left alone.
func (c *Cache) walk(fn func(uuid, version, path string) error) error {
	pkgs, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("cache: %w", err)
	}
	for _, p := range pkgs {
		if !p.IsDir() || !validUUID(p.Name()) {
			continue
		}
		pdir := filepath.Join(c.dir, p.Name())
		vers, err := os.ReadDir(pdir)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return fmt.Errorf("cache: %w", err)
		}
		for _, v := range vers {
			if !v.IsDir() || !validVersion(v.Name()) {
				continue
			}
			if err := fn(p.Name(), v.Name(), filepath.Join(pdir, v.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// discard moves a tree out of sight at once, then removes it.
func (c *Cache) discard(path string) error {
	work, err := c.sess.workDir("rm-")
	if err != nil {
		return err
	}
	err = os.Rename(path, filepath.Join(work, "tree"))
	if rerr := os.RemoveAll(work); rerr != nil {
		// Out of sight already; the next Open retries.
		c.log.Warn("could not remove a discarded tree", "path", work, "err", rerr)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (c *Cache) versionDir(uuid, version string) string {
	return filepath.Join(c.dir, uuid, version)
}

// Path returns the root of the installed tree of uuid at version, and
// whether that version is installed.
func (c *Cache) Path(uuid, version string) (string, bool) {
	e, ok := c.Lookup(uuid, version)
	return e.Path, ok
}

// Lookup returns the installed version uuid@version, and whether it is
// installed (with a valid completion marker).
func (c *Cache) Lookup(uuid, version string) (Entry, bool) {
	if !validUUID(uuid) || !validVersion(version) {
		return Entry{}, false
	}
	path := c.versionDir(uuid, version)
	m, err := readMarker(path, uuid, version)
	if err != nil {
		return Entry{}, false
	}
	return m.entry(path), true
}

// List returns every installed version, by UUID and then oldest version
// first.
func (c *Cache) List() ([]Entry, error) {
	var out []Entry
	err := c.walk(func(uuid, version, path string) error {
		if m, err := readMarker(path, uuid, version); err == nil {
			out = append(out, m.entry(path))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Entry) int {
		return cmp.Or(cmp.Compare(a.UUID, b.UUID), compareEntries(a, b))
	})
	return out, nil
}

// lockKey serializes work on one version inside the process.
func (c *Cache) lockKey(ctx context.Context, uuid, version string) (func(), error) {
	return c.keys.lock(ctx, uuid+"/"+version)
}
