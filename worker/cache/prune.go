package cache

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/packflow/packflow/manifest"
)

// Prune removes inactive versions from the cache. keep maps a package UUID
// to the versions that must stay (the active versions and their
// dependency closures); of every package's other versions, the
// Options.Keep newest stay and the rest are removed. It returns what it
// removed, also when it stops on an error.
func (c *Cache) Prune(ctx context.Context, keep map[string][]string) ([]Entry, error) {
	done, err := c.begin()
	if err != nil {
		return nil, err
	}
	defer done()
	entries, err := c.List() // by UUID, then oldest first
	if err != nil {
		return nil, err
	}
	var removed []Entry
	for pkg := range chunkByUUID(entries) {
		var inactive []Entry
		for _, e := range pkg {
			if !slices.Contains(keep[e.UUID], e.Version) {
				inactive = append(inactive, e)
			}
		}
		excess := len(inactive) - c.opts.Keep
		for _, e := range inactive[:max(excess, 0)] {
			ok, err := c.remove(ctx, e)
			if err != nil {
				return removed, fmt.Errorf("cache: prune %s@%s: %w", e.UUID, e.Version, err)
			}
			if ok {
				removed = append(removed, e)
				c.log.Info("pruned", "uuid", e.UUID, "version", e.Version, "installed_at", e.InstalledAt)
			}
		}
	}
	return removed, nil
}

// chunkByUUID yields runs of entries with the same UUID.
func chunkByUUID(entries []Entry) func(func([]Entry) bool) {
	return func(yield func([]Entry) bool) {
		for len(entries) > 0 {
			n := 1
			for n < len(entries) && entries[n].UUID == entries[0].UUID {
				n++
			}
			if !yield(entries[:n]) {
				return
			}
			entries = entries[n:]
		}
	}
}

// remove takes e out of the cache unless an install replaced it since it
// was listed. It tells whether it removed it.
func (c *Cache) remove(ctx context.Context, e Entry) (bool, error) {
	unlock, err := c.lockKey(ctx, e.UUID, e.Version)
	if err != nil {
		return false, err
	}
	defer unlock()
	m, err := readMarker(e.Path, e.UUID, e.Version)
	if err != nil || m.SHA256 != e.SHA256 || !m.InstalledAt.Equal(e.InstalledAt) {
		return false, nil
	}
	if err := c.discard(e.Path); err != nil {
		return false, err
	}
	return true, nil
}

// compareEntries orders two entries of a package oldest first: by
// version, then by install time, then by the version strings, so that the
// order is total.
func compareEntries(a, b Entry) int {
	return cmp.Or(compareVersions(a.Version, b.Version), a.InstalledAt.Compare(b.InstalledAt),
		strings.Compare(a.Version, b.Version))
}

// compareVersions orders revision numbers numerically and before semantic
// versions, and semantic versions by precedence (build metadata aside).
func compareVersions(a, b string) int {
	ra, rb := isRevision(a), isRevision(b)
	switch {
	case ra && rb:
		x, _ := strconv.ParseUint(a, 10, 64)
		y, _ := strconv.ParseUint(b, 10, 64)
		return cmp.Compare(x, y)
	case ra:
		return -1
	case rb:
		return 1
	}
	va, errA := manifest.ParseVersion(a)
	vb, errB := manifest.ParseVersion(b)
	if errA != nil || errB != nil {
		return strings.Compare(a, b) // not reached with validated names
	}
	return va.Compare(vb)
}
