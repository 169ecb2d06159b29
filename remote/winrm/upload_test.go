package winrm

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
)

// writeTree creates files (relative slash paths → content; a name ending
// in "/" is an empty directory) below a new temporary directory.
func writeTree(t *testing.T, files map[string][]byte) string {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if strings.HasSuffix(name, "/") {
			if err := os.MkdirAll(p, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestUploadReassemblesTree(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	files := map[string][]byte{
		"package.manifest":      []byte("<Package/>"),
		"bin/install.cmd":       []byte("@echo off\r\necho installing\r\n"),
		"data/blob.bin":         randomBytes(700*1024, 1), // incompressible: three Sends
		"data/deeper/empty.txt": {},
		"logs/":                 nil,
	}
	src := writeTree(t, files)
	const dst = `C:\ProgramData\packflow\packages\a1b2\1.0.0`
	if err := b.client.Upload(t.Context(), src, dst); err != nil {
		t.Fatalf("Upload: %v", err)
	}

	want := map[string][]byte{"bin/": nil, "data/": nil, "data/deeper/": nil}
	for k, v := range files {
		want[k] = v
	}
	got := b.host.Tree(dst)
	if diff := cmp.Diff(want, got, cmp.Comparer(bytes.Equal)); diff != "" {
		t.Fatalf("tree on the host (-want +got):\n%s", diff)
	}

	ups := b.host.Uploads()
	if len(ups) != 1 {
		t.Fatalf("uploads = %d, want 1", len(ups))
	}
	up := ups[0]
	chunk := b.client.opts.stdinChunk()
	if up.Lines < 3 || up.MaxLine > chunk || up.MaxLine < chunk-4 {
		t.Errorf("upload came in %d lines of at most %d bytes; want ≥3 lines of nearly %d bytes", up.Lines, up.MaxLine, chunk)
	}
	st := b.srv.Stats()
	if st.MaxRequestBytes > DefaultMaxEnvelopeSize || st.MaxRequestBytes < DefaultMaxEnvelopeSize*9/10 {
		t.Errorf("largest request %d bytes; want close to but within the %d-byte envelope", st.MaxRequestBytes, DefaultMaxEnvelopeSize)
	}

	// The script the host ran names the destination and the archive hash
	// that the host verified.
	var script string
	for _, c := range b.srv.Commands() {
		if strings.HasPrefix(c.Script, "# packflow:upload\n") {
			script = c.Script
		}
	}
	head := "# packflow:upload\n$Destination = 'C:\\ProgramData\\packflow\\packages\\a1b2\\1.0.0'\n$Sha256 = '" + up.Sha256 + "'\n"
	if !strings.HasPrefix(script, head) || len(up.Sha256) != 64 {
		t.Errorf("upload script starts %q, want %q", script[:min(len(script), len(head))], head)
	}
	for _, step := range []string{"[Console]::In", "[Convert]::FromBase64String($line)",
		"Get-FileHash -LiteralPath $zip -Algorithm SHA256", "Expand-Archive -LiteralPath $zip -DestinationPath $Destination -Force",
		"Remove-Item -LiteralPath $zip"} {
		if !strings.Contains(script, step) {
			t.Errorf("upload script lacks %q", step)
		}
	}
}

func TestUploadChunksFollowEnvelopeOption(t *testing.T) {
	t.Parallel()
	const envelope = 32 * 1024
	b := setup(t, setupOpts{client: func(o *Options) { o.MaxEnvelopeSize = envelope }})
	src := writeTree(t, map[string][]byte{"a.bin": randomBytes(100*1024, 2)})
	if err := b.client.Upload(t.Context(), src, `C:\dst`); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	if got := b.srv.Stats().MaxRequestBytes; got > envelope {
		t.Errorf("largest request %d bytes exceeds the %d-byte envelope", got, envelope)
	}
	if up := b.host.Uploads()[0]; up.Lines < 4 {
		t.Errorf("upload came in %d lines, want ≥4 with a %d-byte envelope", up.Lines, envelope)
	}
	if got, _ := b.host.ReadFile(`C:\dst\a.bin`); !bytes.Equal(got, randomBytes(100*1024, 2)) {
		t.Errorf("a.bin differs after upload")
	}
}

// corrupt flips one byte of the uploaded archive on its way to the host.
type corrupt struct{ next winrmtest.Handler }

func (c corrupt) ServeCommand(ctx context.Context, cmd *winrmtest.Command, stdout, stderr io.Writer) int {
	if strings.HasPrefix(cmd.Script, "# packflow:upload") {
		in, _ := io.ReadAll(cmd.Stdin)
		line, rest, _ := bytes.Cut(in, []byte("\n"))
		raw, _ := base64.StdEncoding.DecodeString(string(line))
		raw[len(raw)/2] ^= 0xff
		in = append([]byte(base64.StdEncoding.EncodeToString(raw)+"\n"), rest...)
		cmd.Stdin = bytes.NewReader(in)
	}
	return c.next.ServeCommand(ctx, cmd, stdout, stderr)
}

func TestUploadDetectsCorruption(t *testing.T) {
	t.Parallel()
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: corrupt{host}})
	t.Cleanup(srv.Close)
	c, err := Dial(t.Context(), clientOptions(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	src := writeTree(t, map[string][]byte{"a.txt": []byte(strings.Repeat("payload ", 1000))})
	err = c.Upload(t.Context(), src, `C:\dst`)
	var exit *remote.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "upload corrupted") {
		t.Fatalf("err = %v, want an exit error reporting the corruption", err)
	}
	if host.Exists(`C:\dst`) {
		t.Errorf("a corrupted archive was expanded")
	}
}

func TestUploadIntoExistingReplacesFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.host.WriteFile(`C:\dst\keep.txt`, []byte("old keep"))
	b.host.WriteFile(`C:\dst\a.txt`, []byte("old a"))
	src := writeTree(t, map[string][]byte{"a.txt": []byte("new a")})
	if err := b.client.Upload(t.Context(), src, `C:\dst`); err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{"a.txt": []byte("new a"), "keep.txt": []byte("old keep")}
	if diff := cmp.Diff(want, b.host.Tree(`C:\dst`), cmp.Comparer(bytes.Equal)); diff != "" {
		t.Errorf("tree (-want +got):\n%s", diff)
	}
}

func TestUploadRefusals(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	linked := writeTree(t, map[string][]byte{"a.txt": []byte("a")})
	if err := os.Symlink("a.txt", filepath.Join(linked, "link")); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(writeTree(t, map[string][]byte{"f": nil}), "f")
	ok := writeTree(t, map[string][]byte{"a.txt": []byte("a")})

	tests := []struct {
		name, src, dst string
		unsafe         bool
	}{
		{name: "symlink", src: linked, dst: `C:\dst`},
		{name: "source not a directory", src: notDir, dst: `C:\dst`},
		{name: "missing source", src: filepath.Join(ok, "missing"), dst: `C:\dst`},
		{name: "drive root", src: ok, dst: `C:\`, unsafe: true},
		{name: "relative destination", src: ok, dst: `dst`, unsafe: true},
	}
	for _, tt := range tests {
		err := b.client.Upload(t.Context(), tt.src, tt.dst)
		if err == nil || errors.Is(err, remote.ErrUnsafeValue) != tt.unsafe {
			t.Errorf("%s: err = %v, want error (unsafe value: %v)", tt.name, err, tt.unsafe)
		}
	}
	if n := len(b.host.Uploads()); n != 0 {
		t.Errorf("%d uploads reached the host", n)
	}
}

func TestLineEncoder(t *testing.T) {
	t.Parallel()
	for _, n := range []int{0, 1, 2, 3, 299, 300, 301, 1000} {
		data := randomBytes(n, uint64(n))
		enc := newLineEncoder(bytes.NewReader(data), 101)
		var lines [][]byte
		buf := make([]byte, 101)
		for {
			k, err := enc.Read(buf)
			if k > 0 {
				lines = append(lines, bytes.Clone(buf[:k]))
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		var got []byte
		for _, l := range lines {
			if len(l) > 101 || l[len(l)-1] != '\n' {
				t.Fatalf("n=%d: line %q is not one whole line of ≤101 bytes", n, l)
			}
			raw, err := base64.StdEncoding.DecodeString(string(l[:len(l)-1]))
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, raw...)
		}
		if !bytes.Equal(got, data) {
			t.Errorf("n=%d: decoded %d bytes, want %d", n, len(got), len(data))
		}
	}
}

func TestUploadReportsEnvelopeTooSmallOnHost(t *testing.T) {
	t.Parallel()
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: host, MaxEnvelopeSize: 64 * 1024})
	t.Cleanup(srv.Close)
	c, err := Dial(t.Context(), clientOptions(t, srv)) // assumes the default 500 KiB
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	src := writeTree(t, map[string][]byte{"a.bin": randomBytes(200*1024, 3)})
	err = c.Upload(t.Context(), src, `C:\dst`)
	var exit *remote.ExitError
	if !errors.As(err, &exit) || !strings.Contains(err.Error(), "MaxEnvelopeSize") {
		t.Fatalf("err = %v, want a failed upload naming the envelope limit", err)
	}
	if host.Exists(`C:\dst`) {
		t.Errorf("a truncated archive was expanded")
	}
}

func TestZipTreeStoresIncompressibleFiles(t *testing.T) {
	t.Parallel()
	src := writeTree(t, map[string][]byte{
		"random.bin": randomBytes(200<<10, 4),
		"text.txt":   bytes.Repeat([]byte("install step\r\n"), 20<<10),
		"tiny.txt":   []byte("x"),
	})
	var buf bytes.Buffer
	if _, _, err := zipTree(t.Context(), src, &buf); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint16{}
	for _, f := range zr.File {
		got[f.Name] = f.Method
	}
	want := map[string]uint16{"random.bin": zip.Store, "text.txt": zip.Deflate, "tiny.txt": zip.Deflate}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("methods (-want +got):\n%s", diff)
	}
}

// cancelOnUpload cancels the client's context once the upload script
// starts on the host.
type cancelOnUpload struct {
	next   winrmtest.Handler
	cancel context.CancelFunc
}

func (c cancelOnUpload) ServeCommand(ctx context.Context, cmd *winrmtest.Command, stdout, stderr io.Writer) int {
	if strings.HasPrefix(cmd.Script, "# packflow:upload") {
		c.cancel()
	}
	return c.next.ServeCommand(ctx, cmd, stdout, stderr)
}

func TestUploadCancelledMidway(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: cancelOnUpload{host, cancel}})
	t.Cleanup(srv.Close)
	c, err := Dial(t.Context(), clientOptions(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	src := writeTree(t, map[string][]byte{"a.bin": randomBytes(1<<20, 5)})
	if err := c.Upload(ctx, src, `C:\dst`); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if host.Exists(`C:\dst`) {
		t.Errorf("a cancelled upload was expanded")
	}
	if n := srv.OpenShells(); n != 0 {
		t.Errorf("%d shells left open", n)
	}
}
