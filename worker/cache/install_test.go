package cache

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/manifest"
)

func TestInstall(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	c := openCache(t, "", Options{Now: func() time.Time { return now }})
	a := sample(t, "one")

	res, err := c.Install(context.Background(), a.request(uuidA, "1.2.0"))
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	want := filepath.Join(c.Dir(), uuidA, "1.2.0")
	if res.Path != want || res.AlreadyInstalled || res.Replaced {
		t.Errorf("result %+v, want a fresh install at %s", res, want)
	}
	if diff := cmp.Diff([]string{MarkerName, "data/", "data/value.txt", "install.sh", "package.manifest"}, tree(t, res.Path)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
	if got := readFile(t, filepath.Join(res.Path, "data", "value.txt")); got != "one" {
		t.Errorf("data/value.txt = %q", got)
	}
	fi, err := os.Stat(filepath.Join(res.Path, "install.sh"))
	if err != nil || fi.Mode().Perm()&0o111 == 0 {
		t.Errorf("install.sh lost its execute bit: %v %v", fi.Mode(), err)
	}
	entry := Entry{UUID: uuidA, Version: "1.2.0", SHA256: a.sha256, Size: int64(len(a.data)), InstalledAt: now, Path: want}
	if diff := cmp.Diff(entry, res.Entry); diff != "" {
		t.Errorf("entry (-want +got):\n%s", diff)
	}
	if got, ok := c.Lookup(uuidA, "1.2.0"); !ok || !cmp.Equal(got, entry) {
		t.Errorf("Lookup = %+v, %v", got, ok)
	}
	if p, ok := c.Path(uuidA, "1.2.0"); !ok || p != want {
		t.Errorf("Path = %q, %v", p, ok)
	}
	if _, ok := c.Path(uuidA, "1.3.0"); ok {
		t.Error("Path found a version never installed")
	}
	if ws := workspace(t, c); len(ws) != 0 {
		t.Errorf("work space left: %v", ws)
	}

	again, err := c.Install(context.Background(), a.request(uuidA, "1.2.0"))
	if err != nil {
		t.Fatalf("second Install: %v", err)
	}
	if !again.AlreadyInstalled || again.Path != want {
		t.Errorf("second install %+v, want AlreadyInstalled", again)
	}
	if n := a.opens.Load(); n != 1 {
		t.Errorf("archive opened %d times, want 1", n)
	}
}

func TestInstallRejects(t *testing.T) {
	t.Parallel()
	good := sample(t, "x")
	other := sample(t, "y")
	traversal := newArchive(t, file{name: "../escape.txt", body: "x"})
	reserved := newArchive(t, file{name: "install.sh", body: "x"}, file{name: MarkerName, body: "{}"})
	notZip := &archive{data: []byte("this is not a zip archive at all")}
	notZip.sha256 = hashOf(notZip.data)

	tests := []struct {
		name     string
		req      Request
		checksum *ChecksumError // nil: expect manifest.ErrInvalid
	}{
		{
			name:     "wrong sha256",
			req:      Request{UUID: uuidA, Version: "1.0.0", SHA256: other.sha256, Size: int64(len(good.data)), Open: good.open},
			checksum: &ChecksumError{UUID: uuidA, Version: "1.0.0", WantSHA256: other.sha256, GotSHA256: good.sha256, WantSize: int64(len(good.data)), GotSize: int64(len(good.data))},
		},
		{
			name:     "shorter than its size",
			req:      Request{UUID: uuidA, Version: "1.0.0", SHA256: good.sha256, Size: int64(len(good.data)) + 1, Open: good.open},
			checksum: &ChecksumError{UUID: uuidA, Version: "1.0.0", WantSHA256: good.sha256, GotSHA256: good.sha256, WantSize: int64(len(good.data)) + 1, GotSize: int64(len(good.data))},
		},
		{
			name:     "longer than its size",
			req:      Request{UUID: uuidA, Version: "1.0.0", SHA256: good.sha256, Size: 10, Open: good.open},
			checksum: &ChecksumError{UUID: uuidA, Version: "1.0.0", WantSHA256: good.sha256, WantSize: 10, GotSize: 11},
		},
		{name: "path traversal", req: traversal.request(uuidA, "1.0.0")},
		{name: "reserved marker name", req: reserved.request(uuidA, "1.0.0")},
		{name: "not a zip", req: notZip.request(uuidA, "1.0.0")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := openCache(t, "", Options{})
			_, err := c.Install(context.Background(), tt.req)
			if tt.checksum != nil {
				var ce *ChecksumError
				if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) {
					t.Fatalf("err = %v, want a *ChecksumError", err)
				}
				if diff := cmp.Diff(tt.checksum, ce); diff != "" {
					t.Errorf("checksum error (-want +got):\n%s", diff)
				}
				for _, s := range []string{tt.checksum.WantSHA256, tt.checksum.GotSHA256} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("message %q does not name %s", err, s)
					}
				}
			} else if !errors.Is(err, manifest.ErrInvalid) {
				t.Fatalf("err = %v, want manifest.ErrInvalid", err)
			}
			if got := tree(t, c.Dir()); !cmp.Equal(got, []string{".tmp/", ".tmp/" + filepath.Base(c.sess.dir) + "/"}) {
				t.Errorf("left behind: %v", got)
			}
			if _, ok := c.Path(uuidA, "1.0.0"); ok {
				t.Error("a rejected archive counts as installed")
			}
		})
	}
}

func TestInstallLimitsUnknownSize(t *testing.T) {
	t.Parallel()
	a := sample(t, "x")
	c := openCache(t, "", Options{Limits: manifest.Limits{MaxArchiveSize: int64(len(a.data)) - 1}})
	req := a.request(uuidA, "1.0.0")
	req.Size = 0
	_, err := c.Install(context.Background(), req)
	if !errors.Is(err, manifest.ErrInvalid) {
		t.Fatalf("err = %v, want manifest.ErrInvalid for an archive over MaxArchiveSize", err)
	}
	if ws := workspace(t, c); len(ws) != 0 {
		t.Errorf("work space left: %v", ws)
	}
}

func TestInstallInvalidRef(t *testing.T) {
	t.Parallel()
	a := sample(t, "x")
	c := openCache(t, "", Options{})
	tests := []struct {
		name, uuid, version, sha string
	}{
		{"traversal version", uuidA, "../1.0.0", a.sha256},
		{"dot version", uuidA, "..", a.sha256},
		{"partial version", uuidA, "1.0", a.sha256},
		{"v prefix", uuidA, "v1.0.0", a.sha256},
		{"leading zero revision", uuidA, "01", a.sha256},
		{"empty version", uuidA, "", a.sha256},
		{"slash in version", uuidA, "1.0.0/x", a.sha256},
		{"upper-case uuid", strings.ToUpper(uuidA), "1.0.0", a.sha256},
		{"braced uuid", "{" + uuidA + "}", "1.0.0", a.sha256},
		{"traversal uuid", "../" + uuidA[3:], "1.0.0", a.sha256},
		{"short sha256", uuidA, "1.0.0", a.sha256[:63]},
		{"upper-case sha256", uuidA, "1.0.0", strings.ToUpper(a.sha256)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.Install(context.Background(), Request{UUID: tt.uuid, Version: tt.version, SHA256: tt.sha, Open: a.open})
			if !errors.Is(err, ErrInvalidRef) {
				t.Errorf("err = %v, want ErrInvalidRef", err)
			}
		})
	}
	if n := a.opens.Load(); n != 0 {
		t.Errorf("archive opened %d times for invalid requests", n)
	}
	for _, v := range []string{"1", "42", "1.0.0", "2.0.0-rc.1", "1.0.0+build.5"} {
		if !validVersion(v) {
			t.Errorf("validVersion(%q) = false", v)
		}
	}
}

func TestInstallReplaces(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		force bool
		same  bool // re-install the same archive
	}{
		{name: "forced, same archive", force: true, same: true},
		{name: "forced, new archive", force: true},
		{name: "republished archive, not forced"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := openCache(t, "", Options{})
			old := newArchive(t, file{name: "old.txt", body: "old"}, file{name: "value.txt", body: "old"})
			if _, err := c.Install(context.Background(), old.request(uuidA, "1.0.0")); err != nil {
				t.Fatal(err)
			}
			next := newArchive(t, file{name: "value.txt", body: "new"})
			if tt.same {
				next = old
			}
			req := next.request(uuidA, "1.0.0")
			req.Force = tt.force
			res, err := c.Install(context.Background(), req)
			if err != nil {
				t.Fatalf("Install: %v", err)
			}
			if !res.Replaced || res.AlreadyInstalled || res.SHA256 != next.sha256 {
				t.Errorf("result %+v, want Replaced with sha256 %s", res, next.sha256)
			}
			want := []string{MarkerName, "value.txt"}
			if tt.same {
				want = []string{MarkerName, "old.txt", "value.txt"}
			}
			if diff := cmp.Diff(want, tree(t, res.Path)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			if e, ok := c.Lookup(uuidA, "1.0.0"); !ok || e.SHA256 != next.sha256 {
				t.Errorf("Lookup = %+v, %v", e, ok)
			}
			if ws := workspace(t, c); len(ws) != 0 {
				t.Errorf("old tree left in the work space: %v", ws)
			}
		})
	}
}

func TestInstallConcurrentSameVersion(t *testing.T) {
	t.Parallel()
	c := openCache(t, "", Options{})
	a := sample(t, "x")
	const n = 8
	results := make([]Result, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { results[i], errs[i] = c.Install(context.Background(), a.request(uuidA, "1.0.0")) })
	}
	wg.Wait()
	fresh := 0
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("install %d: %v", i, errs[i])
		}
		if !results[i].AlreadyInstalled {
			fresh++
		}
	}
	if fresh != 1 || a.opens.Load() != 1 {
		t.Errorf("%d fresh installs and %d opens, want 1 and 1", fresh, a.opens.Load())
	}
}

func TestInstallRaceWithAnotherProcess(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	first := openCache(t, dir, Options{})
	second := openCache(t, dir, Options{})
	a := sample(t, "x")

	// While the second cache fetches, the first installs the same version:
	// the second's rename then finds a finished tree.
	req := a.request(uuidA, "1.0.0")
	req.Open = func(ctx context.Context) (io.ReadCloser, error) {
		if _, err := first.Install(ctx, a.request(uuidA, "1.0.0")); err != nil {
			return nil, err
		}
		return a.open(ctx)
	}
	res, err := second.Install(context.Background(), req)
	if err != nil {
		t.Fatalf("Install: %v", err)
	}
	if !res.AlreadyInstalled || res.Replaced {
		t.Errorf("result %+v, want AlreadyInstalled", res)
	}
	if ws := workspace(t, second); len(ws) != 0 {
		t.Errorf("work space left: %v", ws)
	}
}

func TestInstallOpenFails(t *testing.T) {
	t.Parallel()
	c := openCache(t, "", Options{})
	a := sample(t, "x")
	boom := errors.New("blob store down")
	req := a.request(uuidA, "1.0.0")
	req.Open = func(context.Context) (io.ReadCloser, error) { return nil, boom }
	if _, err := c.Install(context.Background(), req); !errors.Is(err, boom) {
		t.Errorf("err = %v, want it to wrap the opener's error", err)
	}

	// The blob store fails half way through the archive.
	req.Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(a.data[:len(a.data)/2]), iotest.ErrReader(boom))), nil
	}
	if _, err := c.Install(context.Background(), req); !errors.Is(err, boom) {
		t.Errorf("read failing half way: err = %v, want it to wrap the reader's error", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Install(ctx, a.request(uuidA, "1.0.0")); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled install: err = %v", err)
	}
	if got := tree(t, c.Dir()); len(got) != 2 {
		t.Errorf("left behind: %v", got)
	}
}

func TestInstallAfterClose(t *testing.T) {
	t.Parallel()
	c, err := Open(t.TempDir(), Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.sess.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("session directory after Close: %v", err)
	}
	a := sample(t, "x")
	if _, err := c.Install(context.Background(), a.request(uuidA, "1.0.0")); !errors.Is(err, ErrClosed) {
		t.Errorf("err = %v, want ErrClosed", err)
	}
}
