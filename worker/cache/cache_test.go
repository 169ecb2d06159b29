package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/manifest"
)

func TestOpenRecovers(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := sample(t, "x")
	{
		c := openCache(t, dir, Options{})
		if _, err := c.Install(context.Background(), a.request(uuidA, "1.0.0")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Install(context.Background(), a.request(uuidA, "2.0.0")); err != nil {
			t.Fatal(err)
		}
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// What crashes and strangers leave: a stale session with a half tree,
	// a stray file in the work space, a tree without a marker, a tree whose
	// marker names another version, and things the cache does not own.
	mustWrite(t, filepath.Join(dir, ".tmp", "s-crashed", "in-1", "tree", "half.txt"), "half")
	mustWrite(t, filepath.Join(dir, ".tmp", "stray"), "x")
	mustWrite(t, filepath.Join(dir, uuidB, "3.0.0", "file.txt"), "no marker")
	if err := os.Rename(filepath.Join(dir, uuidA, "2.0.0"), filepath.Join(dir, uuidA, "2.0.1")); err != nil {
		t.Fatal(err)
	}
	mustWrite(t, filepath.Join(dir, "README"), "not ours")
	mustWrite(t, filepath.Join(dir, uuidA, "notes", "n.txt"), "not a version")

	// A live cache on the same directory keeps its work space.
	live := openCache(t, dir, Options{})
	mustWrite(t, filepath.Join(live.sess.dir, "in-live", "f"), "working")

	c := openCache(t, dir, Options{})
	want := []string{
		".tmp/",
		".tmp/" + filepath.Base(c.sess.dir) + "/",
		".tmp/" + filepath.Base(live.sess.dir) + "/",
		".tmp/" + filepath.Base(live.sess.dir) + "/in-live/",
		".tmp/" + filepath.Base(live.sess.dir) + "/in-live/f",
		"README",
		uuidA + "/",
		uuidA + "/1.0.0/",
		uuidA + "/1.0.0/" + MarkerName,
		uuidA + "/1.0.0/data/",
		uuidA + "/1.0.0/data/value.txt",
		uuidA + "/1.0.0/install.sh",
		uuidA + "/1.0.0/package.manifest",
		uuidA + "/notes/",
		uuidA + "/notes/n.txt",
		uuidB + "/",
	}
	got := tree(t, dir)
	if diff := cmp.Diff(sortedCopy(want), got); diff != "" {
		t.Errorf("cache after Open (-want +got):\n%s", diff)
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Version != "1.0.0" {
		t.Errorf("List = %+v, want 1.0.0 only", list)
	}
	// The live cache still installs.
	if _, err := live.Install(context.Background(), a.request(uuidA, "2.0.0")); err != nil {
		t.Errorf("live cache install: %v", err)
	}
}

func TestOpenValidates(t *testing.T) {
	t.Parallel()
	if _, err := Open("", Options{}); err == nil {
		t.Error("Open with no directory succeeded")
	}
	dir := t.TempDir()
	mustWrite(t, filepath.Join(dir, "file"), "x")
	if _, err := Open(filepath.Join(dir, "file"), Options{}); err == nil {
		t.Error("Open on a file succeeded")
	}
	if _, err := Open(t.TempDir(), Options{Limits: manifest.Limits{MaxEntries: -1}}); err == nil {
		t.Error("Open with negative limits succeeded")
	}
}

func TestList(t *testing.T) {
	t.Parallel()
	c := openCache(t, "", Options{})
	a := sample(t, "x")
	for _, ref := range [][2]string{{uuidB, "1"}, {uuidA, "10.0.0"}, {uuidA, "2.0.0"}, {uuidB, "10"}, {uuidB, "2"}, {uuidA, "2.0.0-rc.1"}} {
		if _, err := c.Install(context.Background(), a.request(ref[0], ref[1])); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.List()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range list {
		got = append(got, e.UUID[:2]+"@"+e.Version)
		if e.Path != filepath.Join(c.Dir(), e.UUID, e.Version) || e.SHA256 != a.sha256 {
			t.Errorf("entry %+v", e)
		}
	}
	want := []string{"3b@2.0.0-rc.1", "3b@2.0.0", "3b@10.0.0", "9d@1", "9d@2", "9d@10"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("List order (-want +got):\n%s", diff)
	}
}

func TestKeyLocks(t *testing.T) {
	t.Parallel()
	var k keyLocks
	unlock, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := k.lock(ctx, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("second lock of a held key: %v", err)
	}
	other, err := k.lock(context.Background(), "b")
	if err != nil {
		t.Fatalf("another key: %v", err)
	}
	other()
	unlock()
	again, err := k.lock(context.Background(), "a")
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	again()
	if len(k.m) != 0 {
		t.Errorf("%d locks kept after release", len(k.m))
	}
}

func TestSwapByRenames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	mustWrite(t, filepath.Join(a, "f"), "from a")
	mustWrite(t, filepath.Join(b, "f"), "from b")
	for name, swap := range map[string]func(a, b, spare string) error{"renames": swapByRenames, "exchange": exchange} {
		if err := swap(a, b, filepath.Join(dir, "spare")); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := readFile(t, filepath.Join(b, "f")); got != "from a" {
			t.Errorf("%s: b holds %q", name, got)
		}
		// Swap back for the next one.
		if err := swapByRenames(a, b, filepath.Join(dir, "spare")); err != nil {
			t.Fatal(err)
		}
	}
	if err := swapByRenames(filepath.Join(dir, "missing"), b, filepath.Join(dir, "spare")); err == nil {
		t.Error("swap with a missing directory succeeded")
	}
	if got := readFile(t, filepath.Join(b, "f")); got != "from b" {
		t.Errorf("a failed swap did not put b back: %q", got)
	}
}

func mustWrite(t testing.TB, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func sortedCopy(s []string) []string {
	out := append([]string(nil), s...)
	slices.Sort(out)
	return out
}
