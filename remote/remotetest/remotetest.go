package remotetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/remote"
)

// Capabilities tells the suite what the implementation under test can do
// in the test environment.
type Capabilities struct {
	// Reboot means Reboot works here (a simulated host); the suite reboots
	// and checks commands run afterwards.
	Reboot bool
	// RebootUnsupported means Reboot must fail with remote.ErrUnsupported.
	// With neither flag the reboot subtest is skipped.
	RebootUnsupported bool
	// TempDir returns a fresh directory on the host for one subtest.
	// Default t.TempDir(), right when the host is this machine.
	TempDir func(t *testing.T) string
}

// Factory returns a new Communicator for one subtest; the suite closes it.
type Factory func(t *testing.T) remote.Communicator

// Run runs the conformance suite against the Communicators newComm returns.
func Run(t *testing.T, newComm Factory, caps Capabilities) {
	if caps.TempDir == nil {
		caps.TempDir = func(t *testing.T) string { return t.TempDir() }
	}
	s := &suite{newComm: newComm, caps: caps}
	tests := []struct {
		name string
		fn   func(*testing.T)
	}{
		{"Streams", s.testStreams},
		{"ExitStatus", s.testExitStatus},
		{"Stdin", s.testStdin},
		{"StdinNotRead", s.testStdinNotRead},
		{"NilStreams", s.testNilStreams},
		{"LargeOutput", s.testLargeOutput},
		{"Dir", s.testDir},
		{"MissingDir", s.testMissingDir},
		{"Concurrent", s.testConcurrent},
		{"CancelKills", s.testCancelKills},
		{"DeadlineIsTimeout", s.testDeadline},
		{"UploadTree", s.testUploadTree},
		{"UploadIntoExisting", s.testUploadIntoExisting},
		{"UploadNotADirectory", s.testUploadNotADirectory},
		{"Remove", s.testRemove},
		{"RemoveMissing", s.testRemoveMissing},
		{"RemoveRefusesRoot", s.testRemoveRefusesRoot},
		{"Reboot", s.testReboot},
		{"CloseTwice", s.testCloseTwice},
	}
	for _, tc := range tests {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	newComm Factory
	caps    Capabilities
}

func (s *suite) comm(t *testing.T) remote.Communicator {
	t.Helper()
	c := s.newComm(t)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// result is what a command printed and how it ended.
type result struct {
	stdout, stderr string
	err            error
}

func run(ctx context.Context, c remote.Communicator, cmd *remote.Cmd) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := c.Run(ctx, cmd)
	return result{stdout.String(), stderr.String(), err}
}

// mustRun runs command and fails the test unless it succeeds.
func mustRun(t *testing.T, c remote.Communicator, command string) string {
	t.Helper()
	r := run(t.Context(), c, &remote.Cmd{Command: command})
	if r.err != nil {
		t.Fatalf("Run(%q) = %v (stderr %q)", command, r.err, r.stderr)
	}
	return r.stdout
}

func quote(s string) string { return remote.QuotePOSIX(s) }

func (s *suite) testStreams(t *testing.T) {
	c := s.comm(t)
	r := run(t.Context(), c, &remote.Cmd{Command: "echo out; echo err >&2; printf 'no newline'"})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.stdout != "out\nno newline" || r.stderr != "err\n" {
		t.Errorf("stdout %q stderr %q, want %q and %q", r.stdout, r.stderr, "out\nno newline", "err\n")
	}
}

func (s *suite) testExitStatus(t *testing.T) {
	c := s.comm(t)
	for _, code := range []int{0, 1, 3, 42, 255} {
		r := run(t.Context(), c, &remote.Cmd{Command: fmt.Sprintf("echo before; exit %d", code)})
		if r.stdout != "before\n" {
			t.Errorf("exit %d: stdout %q", code, r.stdout)
		}
		if code == 0 {
			if r.err != nil {
				t.Errorf("exit 0: Run = %v, want nil", r.err)
			}
			continue
		}
		var exit *remote.ExitError
		if !errors.As(r.err, &exit) || exit.Code != code {
			t.Errorf("exit %d: Run = %v, want *remote.ExitError{Code: %d}", code, r.err, code)
		}
	}
}

func (s *suite) testStdin(t *testing.T) {
	c := s.comm(t)
	in := "line one\nline 'two' $HOME\n\x00binary\xff"
	r := run(t.Context(), c, &remote.Cmd{Command: "cat", Stdin: strings.NewReader(in)})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.stdout != in {
		t.Errorf("cat echoed %q, want %q", r.stdout, in)
	}
}

func (s *suite) testStdinNotRead(t *testing.T) {
	c := s.comm(t)
	in := bytes.Repeat([]byte("unread input\n"), 1<<18)
	if err := c.Run(t.Context(), &remote.Cmd{Command: "true", Stdin: bytes.NewReader(in)}); err != nil {
		t.Errorf("Run of a command that ignores its input = %v, want nil", err)
	}
}

func (s *suite) testNilStreams(t *testing.T) {
	c := s.comm(t)
	if err := c.Run(t.Context(), &remote.Cmd{Command: "echo discarded; echo discarded >&2; cat"}); err != nil {
		t.Fatalf("Run with nil streams: %v", err)
	}
}

func (s *suite) testLargeOutput(t *testing.T) {
	c := s.comm(t)
	const n = 3 << 20
	r := run(t.Context(), c, &remote.Cmd{Command: fmt.Sprintf("head -c %d /dev/zero; head -c %d /dev/zero >&2", n, n)})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if len(r.stdout) != n || len(r.stderr) != n {
		t.Errorf("got %d bytes of stdout and %d of stderr, want %d each", len(r.stdout), len(r.stderr), n)
	}
}

func (s *suite) testDir(t *testing.T) {
	c := s.comm(t)
	dir := filepath.Join(s.caps.TempDir(t), "dir with spaces and 'quotes'")
	mustRun(t, c, "mkdir -p "+quote(dir))
	r := run(t.Context(), c, &remote.Cmd{Command: "pwd", Dir: dir})
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if got := strings.TrimSpace(r.stdout); got != dir {
		t.Errorf("pwd = %q, want %q", got, dir)
	}
}

func (s *suite) testMissingDir(t *testing.T) {
	c := s.comm(t)
	dir := filepath.Join(s.caps.TempDir(t), "missing")
	r := run(t.Context(), c, &remote.Cmd{Command: "echo ran", Dir: dir})
	if r.err == nil || strings.Contains(r.stdout, "ran") {
		t.Errorf("Run in a missing dir: err %v, stdout %q; want an error and no output", r.err, r.stdout)
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	c := s.comm(t)
	const n = 8
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := run(t.Context(), c, &remote.Cmd{Command: fmt.Sprintf("echo %d", i)})
			switch {
			case r.err != nil:
				errs[i] = r.err
			case r.stdout != fmt.Sprintf("%d\n", i):
				errs[i] = fmt.Errorf("command %d printed %q", i, r.stdout)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Error(err)
	}
}

// signalWriter closes started when it sees the word "started".
type signalWriter struct {
	once    sync.Once
	mu      sync.Mutex
	buf     bytes.Buffer
	started chan struct{}
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), "started") {
		w.once.Do(func() { close(w.started) })
	}
	return len(p), nil
}

// uniqueSleep returns a sleep duration nobody else uses, to find the process.
func uniqueSleep(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1e9))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(1e9 + n.Int64())
}

// waitGone polls the host until no process matches "sleep <n>".
func waitGone(t *testing.T, c remote.Communicator, n string) {
	t.Helper()
	// "[s]leep" matches the sleep process but not this command line.
	check := fmt.Sprintf("pgrep -f '[s]leep %s'", n)
	for range 100 {
		r := run(t.Context(), c, &remote.Cmd{Command: check})
		var exit *remote.ExitError
		if errors.As(r.err, &exit) && exit.Code == 1 {
			return
		}
		if r.err != nil && !errors.As(r.err, &exit) {
			t.Fatalf("pgrep: %v", r.err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("process 'sleep %s' still runs after its command was cancelled", n)
}

func (s *suite) testCancelKills(t *testing.T) {
	c := s.comm(t)
	n := uniqueSleep(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &signalWriter{started: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		// sleep runs as a child of the shell, so killing the shell alone is not enough.
		errc <- c.Run(ctx, &remote.Cmd{Command: "echo started; sleep " + n + "; echo never", Stdout: w})
	}()
	select {
	case <-w.started:
	case err := <-errc:
		t.Fatalf("Run ended before cancel: %v", err)
	}
	cancel()
	err := <-errc
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel = %v, want context.Canceled", err)
	}
	waitGone(t, c, n)
}

func (s *suite) testDeadline(t *testing.T) {
	c := s.comm(t)
	n := uniqueSleep(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := c.Run(ctx, &remote.Cmd{Command: "sleep " + n})
	if !errors.Is(err, remote.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run past its deadline = %v, want remote.ErrTimeout and context.DeadlineExceeded", err)
	}
	waitGone(t, c, n)
}

// file describes one regular file or directory of a test tree.
type file struct {
	mode    fs.FileMode
	content string // "" for directories
	dir     bool
}

func testTree() map[string]file {
	big := make([]byte, 1<<20+17)
	_, _ = rand.Read(big) // never fails (crypto/rand)
	return map[string]file{
		"run.sh":                     {mode: 0o755, content: "#!/bin/sh\necho hi\n"},
		"package.manifest":           {mode: 0o644, content: "Name=x\n"},
		"secret.key":                 {mode: 0o600, content: "k"},
		"readonly.txt":               {mode: 0o444, content: "ro"},
		"empty":                      {mode: 0o644},
		"big.bin":                    {mode: 0o640, content: string(big)},
		"lib":                        {mode: 0o750, dir: true},
		"lib/helper sh":              {mode: 0o700, content: "x"},
		"lib/deep":                   {mode: 0o755, dir: true},
		"lib/deep/data 'quoted'.txt": {mode: 0o664, content: "deep\n"},
		"locked":                     {mode: 0o555, dir: true},
		"locked/inside":              {mode: 0o644, content: "in a read-only dir"},
	}
}

// writeTree creates tree under a new local directory.
func writeTree(t *testing.T, tree map[string]file) string {
	t.Helper()
	root := t.TempDir()
	names := make([]string, 0, len(tree))
	for name := range tree {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		f, p := tree[name], filepath.Join(root, name)
		var err error
		if f.dir {
			err = os.MkdirAll(p, 0o755) //nolint:gosec // modes are set below, as the tree asks
		} else {
			err = os.WriteFile(p, []byte(f.content), 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	// Modes last, deepest first, so read-only directories can be filled.
	sort.Sort(sort.Reverse(sort.StringSlice(names)))
	for _, name := range names {
		if err := os.Chmod(filepath.Join(root, name), tree[name].mode); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { makeWritable(root) })
	return root
}

// makeWritable lets t.TempDir's cleanup remove read-only directories.
func makeWritable(root string) {
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755) //nolint:gosec // open for removal after the test
		}
		return nil
	})
}

// describe lists what the host has under dir: "mode path size sha256" lines.
func describe(t *testing.T, c remote.Communicator, dir string) map[string]string {
	t.Helper()
	out := mustRun(t, c, "cd "+quote(dir)+` && find . -mindepth 1 -print | while IFS= read -r p; do
  if [ -d "$p" ]; then printf '%s\t%s\tdir\n' "$p" "$(stat -c %a "$p")"
  else printf '%s\t%s\t%s\n' "$p" "$(stat -c %a "$p")" "$(sha256sum < "$p" | cut -c1-64)"; fi
done`)
	got := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		name, rest, _ := strings.Cut(line, "\t")
		got[strings.TrimPrefix(name, "./")] = rest
	}
	return got
}

func want(tree map[string]file) map[string]string {
	w := map[string]string{}
	for name, f := range tree {
		sum := "dir"
		if !f.dir {
			h := sha256.Sum256([]byte(f.content))
			sum = hex.EncodeToString(h[:])
		}
		w[name] = fmt.Sprintf("%o\t%s", f.mode, sum)
	}
	return w
}

func (s *suite) testUploadTree(t *testing.T) {
	c := s.comm(t)
	tree := testTree()
	src := writeTree(t, tree)
	base := s.caps.TempDir(t)
	t.Cleanup(func() { _ = c.Remove(context.WithoutCancel(t.Context()), base+"/new") })
	dst := filepath.Join(base, "new", "pkg dir")
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if diff := cmp.Diff(want(tree), describe(t, c, dst)); diff != "" {
		t.Errorf("uploaded tree differs (-want +got):\n%s", diff)
	}
	for _, d := range []string{dst, filepath.Join(base, "new")} {
		if mode := strings.TrimSpace(mustRun(t, c, "stat -c %a "+quote(d))); mode != "700" {
			t.Errorf("new directory %s has mode %s, want 700", d, mode)
		}
	}
	// A second upload of changed content replaces the files.
	tree["package.manifest"] = file{mode: 0o600, content: "Name=y\n"}
	if err := os.WriteFile(filepath.Join(src, "package.manifest"), []byte("Name=y\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(filepath.Join(src, "package.manifest"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if diff := cmp.Diff(want(tree), describe(t, c, dst)); diff != "" {
		t.Errorf("re-uploaded tree differs (-want +got):\n%s", diff)
	}
}

func (s *suite) testUploadIntoExisting(t *testing.T) {
	c := s.comm(t)
	tree := map[string]file{"a": {mode: 0o644, content: "a"}}
	src := writeTree(t, tree)
	dst := filepath.Join(s.caps.TempDir(t), "existing")
	mustRun(t, c, "mkdir -m 755 "+quote(dst))
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if diff := cmp.Diff(want(tree), describe(t, c, dst)); diff != "" {
		t.Errorf("uploaded tree differs (-want +got):\n%s", diff)
	}
	if mode := strings.TrimSpace(mustRun(t, c, "stat -c %a "+quote(dst))); mode != "755" {
		t.Errorf("existing directory changed mode to %s", mode)
	}
}

func (s *suite) testUploadNotADirectory(t *testing.T) {
	c := s.comm(t)
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(t.Context(), src, filepath.Join(s.caps.TempDir(t), "dst")); err == nil {
		t.Error("Upload of a regular file succeeded, want an error")
	}
	if err := c.Upload(t.Context(), filepath.Join(t.TempDir(), "missing"), filepath.Join(s.caps.TempDir(t), "dst")); err == nil {
		t.Error("Upload of a missing directory succeeded, want an error")
	}
}

func (s *suite) testRemove(t *testing.T) {
	c := s.comm(t)
	dir := filepath.Join(s.caps.TempDir(t), "to remove")
	mustRun(t, c, "mkdir -p "+quote(dir+"/sub")+" && echo x > "+quote(dir+"/sub/f")+" && chmod 555 "+quote(dir+"/sub"))
	if err := c.Remove(t.Context(), dir); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if out := mustRun(t, c, "test -e "+quote(dir)+" && echo exists || echo gone"); out != "gone\n" {
		t.Errorf("after Remove the path %s", out)
	}
}

func (s *suite) testRemoveMissing(t *testing.T) {
	c := s.comm(t)
	if err := c.Remove(t.Context(), filepath.Join(s.caps.TempDir(t), "never existed")); err != nil {
		t.Errorf("Remove of a missing path = %v, want nil", err)
	}
}

func (s *suite) testRemoveRefusesRoot(t *testing.T) {
	c := s.comm(t)
	for _, p := range []string{"", "/", "//", "/./"} {
		if err := c.Remove(t.Context(), p); err == nil {
			t.Errorf("Remove(%q) succeeded, want a refusal", p)
		}
	}
}

func (s *suite) testReboot(t *testing.T) {
	switch {
	case s.caps.Reboot:
		c := s.comm(t)
		if err := c.Reboot(t.Context(), remote.RebootOptions{Timeout: time.Minute}); err != nil {
			t.Fatalf("Reboot: %v", err)
		}
		if out := mustRun(t, c, "echo back"); out != "back\n" {
			t.Errorf("after reboot: %q", out)
		}
	case s.caps.RebootUnsupported:
		c := s.comm(t)
		if err := c.Reboot(t.Context(), remote.RebootOptions{}); !errors.Is(err, remote.ErrUnsupported) {
			t.Errorf("Reboot = %v, want remote.ErrUnsupported", err)
		}
	default:
		t.Skip("reboot is not possible against this host")
	}
}

func (s *suite) testCloseTwice(t *testing.T) {
	c := s.newComm(t)
	mustRun(t, c, "true")
	if err := c.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
