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
// in the test environment and which command language its host speaks.
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
	// Dialect is the command language of the host. The zero value means
	// POSIX().
	Dialect Dialect
}

// Factory returns a new Communicator for one subtest; the suite closes it.
type Factory func(t *testing.T) remote.Communicator

// Run runs the conformance suite against the Communicators newComm returns.
func Run(t *testing.T, newComm Factory, caps Capabilities) {
	if caps.TempDir == nil {
		caps.TempDir = func(t *testing.T) string { return t.TempDir() }
	}
	if caps.Dialect.Name == "" {
		caps.Dialect = POSIX()
	}
	s := &suite{newComm: newComm, caps: caps, d: &caps.Dialect}
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
		{"UploadModes", s.testUploadModes},
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
	d       *Dialect
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

// run runs a copy of cmd with its output captured.
func run(ctx context.Context, c remote.Communicator, cmd remote.Cmd) result {
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := c.Run(ctx, &cmd)
	return result{stdout.String(), stderr.String(), err}
}

// mustRun runs cmd and fails the test unless it succeeds.
func mustRun(t *testing.T, c remote.Communicator, cmd remote.Cmd) string {
	t.Helper()
	r := run(t.Context(), c, cmd)
	if r.err != nil {
		t.Fatalf("Run(%q) = %v (stderr %q)", cmd.Command, r.err, r.stderr)
	}
	return r.stdout
}

func (s *suite) testStreams(t *testing.T) {
	c := s.comm(t)
	r := run(t.Context(), c, s.d.Streams("out", "err", "no newline"))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	nl := s.d.Newline
	if wantOut, wantErr := "out"+nl+"no newline", "err"+nl; r.stdout != wantOut || r.stderr != wantErr {
		t.Errorf("stdout %q stderr %q, want %q and %q", r.stdout, r.stderr, wantOut, wantErr)
	}
}

func (s *suite) testExitStatus(t *testing.T) {
	c := s.comm(t)
	for _, code := range []int{0, 1, 3, 42, 255} {
		r := run(t.Context(), c, s.d.EchoExit("before", code))
		if r.stdout != "before"+s.d.Newline {
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
	in := "line one\nline 'two' $HOME %PATH%\r\n\x00binary\xff"
	cmd := s.d.Cat
	cmd.Stdin = strings.NewReader(in)
	r := run(t.Context(), c, cmd)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.stdout != in {
		t.Errorf("stdin came back as %q, want %q", r.stdout, in)
	}
}

func (s *suite) testStdinNotRead(t *testing.T) {
	c := s.comm(t)
	cmd := s.d.True
	cmd.Stdin = bytes.NewReader(bytes.Repeat([]byte("unread input\n"), 1<<18))
	if err := c.Run(t.Context(), &cmd); err != nil {
		t.Errorf("Run of a command that ignores its input = %v, want nil", err)
	}
}

func (s *suite) testNilStreams(t *testing.T) {
	c := s.comm(t)
	// Output goes nowhere and reading stdin sees its end at once.
	for _, cmd := range []remote.Cmd{s.d.Streams("discarded", "discarded", "discarded"), s.d.Cat} {
		if err := c.Run(t.Context(), &cmd); err != nil {
			t.Fatalf("Run(%q) with nil streams: %v", cmd.Command, err)
		}
	}
}

func (s *suite) testLargeOutput(t *testing.T) {
	c := s.comm(t)
	const n = 3 << 20
	r := run(t.Context(), c, s.d.Zeros(s.caps.TempDir(t), n))
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if len(r.stdout) != n || len(r.stderr) != n {
		t.Errorf("got %d bytes of stdout and %d of stderr, want %d each", len(r.stdout), len(r.stderr), n)
	}
	if strings.Trim(r.stdout, "\x00") != "" || strings.Trim(r.stderr, "\x00") != "" {
		t.Errorf("output holds bytes other than zeros")
	}
}

func (s *suite) testDir(t *testing.T) {
	c := s.comm(t)
	dir := s.d.Join(s.caps.TempDir(t), "dir with spaces and 'quotes'")
	mustRun(t, c, s.d.Mkdir(dir))
	cmd := s.d.Pwd
	cmd.Dir = dir
	r := run(t.Context(), c, cmd)
	if r.err != nil {
		t.Fatalf("Run: %v", r.err)
	}
	if r.stdout != dir+s.d.Newline {
		t.Errorf("working directory %q, want %q", r.stdout, dir+s.d.Newline)
	}
}

func (s *suite) testMissingDir(t *testing.T) {
	c := s.comm(t)
	cmd := s.d.Echo("ran")
	cmd.Dir = s.d.Join(s.caps.TempDir(t), "missing")
	r := run(t.Context(), c, cmd)
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
			r := run(t.Context(), c, s.d.Echo(fmt.Sprint(i)))
			switch {
			case r.err != nil:
				errs[i] = r.err
			case r.stdout != fmt.Sprint(i)+s.d.Newline:
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

// uniqueSleep returns an id for Dialect.Sleep that nobody else uses, so
// that Dialect.Running finds only that process: a number of seconds far
// longer than any test.
func uniqueSleep(t *testing.T) string {
	t.Helper()
	n, err := rand.Int(rand.Reader, big.NewInt(1e9))
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(1e9 + n.Int64())
}

// waitGone polls the host until no process started by Sleep(id) runs.
func (s *suite) waitGone(t *testing.T, c remote.Communicator, id string) {
	t.Helper()
	for range 100 {
		if mustRun(t, c, s.d.Running(id)) == "" {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("the process of %q still runs after its command was cancelled", s.d.Sleep(id).Command)
}

func (s *suite) testCancelKills(t *testing.T) {
	c := s.comm(t)
	id := uniqueSleep(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	w := &signalWriter{started: make(chan struct{})}
	errc := make(chan error, 1)
	go func() {
		cmd := s.d.Sleep(id)
		cmd.Stdout = w
		errc <- c.Run(ctx, &cmd)
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
	s.waitGone(t, c, id)
}

func (s *suite) testDeadline(t *testing.T) {
	c := s.comm(t)
	id := uniqueSleep(t)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	cmd := s.d.Sleep(id)
	err := c.Run(ctx, &cmd)
	if !errors.Is(err, remote.ErrTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run past its deadline = %v, want remote.ErrTimeout and context.DeadlineExceeded", err)
	}
	s.waitGone(t, c, id)
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

// lines splits command output into its non-empty lines.
func lines(out string) []string {
	var ls []string
	for _, l := range strings.Split(out, "\n") {
		if l = strings.TrimRight(l, "\r"); l != "" {
			ls = append(ls, l)
		}
	}
	return ls
}

// list returns the directories and files the host has below dir, by
// slash-separated relative path.
func (s *suite) list(t *testing.T, c remote.Communicator, dir string) (dirs, files []string) {
	t.Helper()
	slash := func(p string) string { return strings.ReplaceAll(p, s.d.Separator, "/") }
	for _, p := range lines(mustRun(t, c, s.d.ListDirs(dir))) {
		dirs = append(dirs, slash(p))
	}
	for _, p := range lines(mustRun(t, c, s.d.ListFiles(dir))) {
		files = append(files, slash(p))
	}
	return dirs, files
}

// hostPath turns a slash-separated path relative to dir into a host path.
func (s *suite) hostPath(dir, rel string) string {
	return s.d.Join(dir, strings.ReplaceAll(rel, "/", s.d.Separator))
}

// contents describes what the host has under dir: "dir" for each
// directory and the SHA-256 of each file's content.
func (s *suite) contents(t *testing.T, c remote.Communicator, dir string) map[string]string {
	t.Helper()
	dirs, files := s.list(t, c, dir)
	got := make(map[string]string, len(dirs)+len(files))
	for _, d := range dirs {
		got[d] = "dir"
	}
	for _, f := range files {
		got[f] = sha256Hex(mustRun(t, c, s.d.ReadFile(s.hostPath(dir, f))))
	}
	return got
}

// modes gives the permission bits of everything under dir, in octal.
func (s *suite) modes(t *testing.T, c remote.Communicator, dir string) map[string]string {
	t.Helper()
	dirs, files := s.list(t, c, dir)
	got := make(map[string]string, len(dirs)+len(files))
	for _, p := range append(dirs, files...) {
		got[p] = s.mode(t, c, s.hostPath(dir, p))
	}
	return got
}

func (s *suite) mode(t *testing.T, c remote.Communicator, path string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, c, s.d.Mode(path)))
}

func (s *suite) exists(t *testing.T, c remote.Communicator, path string) bool {
	t.Helper()
	out := strings.TrimSpace(mustRun(t, c, s.d.Exists(path)))
	switch {
	case strings.EqualFold(out, "true"):
		return true
	case strings.EqualFold(out, "false"):
		return false
	}
	t.Fatalf("existence of %s: %q, want true or false", path, out)
	return false
}

func sha256Hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// wantContents is what contents should find for tree.
func wantContents(tree map[string]file) map[string]string {
	w := make(map[string]string, len(tree))
	for name, f := range tree {
		w[name] = "dir"
		if !f.dir {
			w[name] = sha256Hex(f.content)
		}
	}
	return w
}

// wantModes is what modes should find for tree.
func wantModes(tree map[string]file) map[string]string {
	w := make(map[string]string, len(tree))
	for name, f := range tree {
		w[name] = fmt.Sprintf("%o", f.mode)
	}
	return w
}

// changeFile rewrites one file of a local tree with new content and mode.
func changeFile(t *testing.T, root string, tree map[string]file, name string, f file) {
	t.Helper()
	tree[name] = f
	p := filepath.Join(root, name)
	if err := os.WriteFile(p, []byte(f.content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, f.mode); err != nil {
		t.Fatal(err)
	}
}

// removeLater removes path from the host when the test ends: trees with
// read-only directories would stop a local TempDir's own cleanup.
func (s *suite) removeLater(t *testing.T, c remote.Communicator, path string) {
	t.Cleanup(func() { _ = c.Remove(context.WithoutCancel(t.Context()), path) })
}

func (s *suite) testUploadTree(t *testing.T) {
	c := s.comm(t)
	tree := testTree()
	src := writeTree(t, tree)
	base := s.caps.TempDir(t)
	s.removeLater(t, c, s.d.Join(base, "new"))
	dst := s.d.Join(base, "new", "pkg dir")
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if diff := cmp.Diff(wantContents(tree), s.contents(t, c, dst)); diff != "" {
		t.Errorf("uploaded tree differs (-want +got):\n%s", diff)
	}
	// A second upload of changed content replaces the files.
	changeFile(t, src, tree, "package.manifest", file{mode: 0o644, content: "Name=y\n"})
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if diff := cmp.Diff(wantContents(tree), s.contents(t, c, dst)); diff != "" {
		t.Errorf("re-uploaded tree differs (-want +got):\n%s", diff)
	}
}

func (s *suite) testUploadModes(t *testing.T) {
	if !s.d.Modes {
		t.Skipf("by design: the %s dialect has no Unix modes (Dialect.Modes is false): uploads cannot keep them", s.d.Name)
	}
	c := s.comm(t)
	tree := testTree()
	src := writeTree(t, tree)
	base := s.caps.TempDir(t)
	s.removeLater(t, c, s.d.Join(base, "new"))
	dst := s.d.Join(base, "new", "pkg dir")
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if diff := cmp.Diff(wantModes(tree), s.modes(t, c, dst)); diff != "" {
		t.Errorf("uploaded modes differ (-want +got):\n%s", diff)
	}
	for _, d := range []string{dst, s.d.Join(base, "new")} {
		if mode := s.mode(t, c, d); mode != "700" {
			t.Errorf("new directory %s has mode %s, want 700", d, mode)
		}
	}
	// A second upload applies changed modes.
	changeFile(t, src, tree, "package.manifest", file{mode: 0o600, content: "Name=y\n"})
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("second Upload: %v", err)
	}
	if diff := cmp.Diff(wantModes(tree), s.modes(t, c, dst)); diff != "" {
		t.Errorf("re-uploaded modes differ (-want +got):\n%s", diff)
	}
	// An existing destination keeps its own mode.
	existing := s.d.Join(base, "existing")
	s.removeLater(t, c, existing)
	mustRun(t, c, s.d.Mkdir(existing))
	if err := c.Upload(t.Context(), src, existing); err != nil {
		t.Fatalf("Upload into an existing directory: %v", err)
	}
	if mode := s.mode(t, c, existing); mode != "755" {
		t.Errorf("existing directory changed mode to %s", mode)
	}
}

func (s *suite) testUploadIntoExisting(t *testing.T) {
	c := s.comm(t)
	tree := map[string]file{"a": {mode: 0o644, content: "a"}}
	src := writeTree(t, tree)
	dst := s.d.Join(s.caps.TempDir(t), "existing")
	mustRun(t, c, s.d.Mkdir(dst))
	if err := c.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if diff := cmp.Diff(wantContents(tree), s.contents(t, c, dst)); diff != "" {
		t.Errorf("uploaded tree differs (-want +got):\n%s", diff)
	}
}

func (s *suite) testUploadNotADirectory(t *testing.T) {
	c := s.comm(t)
	src := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Upload(t.Context(), src, s.d.Join(s.caps.TempDir(t), "dst")); err == nil {
		t.Error("Upload of a regular file succeeded, want an error")
	}
	if err := c.Upload(t.Context(), filepath.Join(t.TempDir(), "missing"), s.d.Join(s.caps.TempDir(t), "dst")); err == nil {
		t.Error("Upload of a missing directory succeeded, want an error")
	}
}

func (s *suite) testRemove(t *testing.T) {
	c := s.comm(t)
	// A read-only directory inside must not stop the removal.
	src := writeTree(t, map[string]file{
		"sub":   {mode: 0o555, dir: true},
		"sub/f": {mode: 0o444, content: "x"},
	})
	dir := s.d.Join(s.caps.TempDir(t), "to remove")
	s.removeLater(t, c, dir)
	if err := c.Upload(t.Context(), src, dir); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if !s.exists(t, c, s.d.Join(dir, "sub", "f")) {
		t.Fatalf("the tree to remove was not created")
	}
	if err := c.Remove(t.Context(), dir); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if s.exists(t, c, dir) {
		t.Errorf("%s exists after Remove", dir)
	}
}

func (s *suite) testRemoveMissing(t *testing.T) {
	c := s.comm(t)
	if err := c.Remove(t.Context(), s.d.Join(s.caps.TempDir(t), "never existed")); err != nil {
		t.Errorf("Remove of a missing path = %v, want nil", err)
	}
}

func (s *suite) testRemoveRefusesRoot(t *testing.T) {
	c := s.comm(t)
	for _, p := range s.d.RootPaths {
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
		if out := mustRun(t, c, s.d.Echo("back")); out != "back"+s.d.Newline {
			t.Errorf("after reboot: %q", out)
		}
	case s.caps.RebootUnsupported:
		c := s.comm(t)
		if err := c.Reboot(t.Context(), remote.RebootOptions{}); !errors.Is(err, remote.ErrUnsupported) {
			t.Errorf("Reboot = %v, want remote.ErrUnsupported", err)
		}
	default:
		t.Skip("by design: reboot is not possible against this host")
	}
}

func (s *suite) testCloseTwice(t *testing.T) {
	c := s.newComm(t)
	mustRun(t, c, s.d.True)
	if err := c.Close(); err != nil {
		t.Errorf("first Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
