package winrm

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/packflow/packflow/remote"
)

// Upload copies the local tree src into the remote directory dst (an
// absolute Windows path), creating dst. The tree is zipped into a
// temporary file, streamed through the stdin of one PowerShell command in
// Sends sized to the envelope limit, checked with SHA-256 on the host and
// expanded there. Unix modes have no meaning on Windows and are not
// applied. Symbolic links and special files are refused.
func (c *Client) Upload(ctx context.Context, src, dst string) error {
	if err := checkRemovable(dst); err != nil {
		return fmt.Errorf("winrm: upload destination: %w", err)
	}
	tmp, err := os.CreateTemp("", "packflow-winrm-*.zip")
	if err != nil {
		return fmt.Errorf("winrm: upload: temporary archive: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	sum, size, err := zipTree(ctx, src, tmp)
	if err != nil {
		return fmt.Errorf("winrm: upload %s: %w", src, err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("winrm: upload: rewind archive: %w", err)
	}
	c.log.Debug("winrm upload", "src", src, "dst", dst, "archive_bytes", size, "sha256", sum)
	lines := newLineEncoder(bufio.NewReaderSize(tmp, 1<<20), c.opts.stdinChunk())
	return c.runScript(ctx, "upload to "+dst, uploadScript(dst, sum), lines, nil)
}

// zipTree writes the tree below root as a zip archive to w and returns its
// SHA-256 (hex) and size. Files are deflated at the fastest level (the
// link, not the CPU, should be the bottleneck), or stored when deflate
// cannot shrink them.
func zipTree(ctx context.Context, root string, w io.Writer) (string, int64, error) {
	info, err := os.Stat(root)
	if err != nil {
		return "", 0, fmt.Errorf("stat source: %w", err)
	}
	if !info.IsDir() {
		return "", 0, fmt.Errorf("source %s is not a directory", root)
	}
	h := sha256.New()
	cw := &countWriter{w: io.MultiWriter(w, h)}
	zw := zip.NewWriter(cw)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, flate.BestSpeed)
	})
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if p == root {
			return nil
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		if strings.ContainsAny(name, `\:*?"<>|`) {
			return fmt.Errorf("%w: %q cannot be a Windows file name", remote.ErrUnsafeValue, name)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case fi.IsDir():
			hdr, err := zip.FileInfoHeader(fi)
			if err != nil {
				return err
			}
			hdr.Name = name + "/"
			_, err = zw.CreateHeader(hdr)
			return err
		case fi.Mode().IsRegular():
			return addFile(zw, p, name, fi)
		default:
			return fmt.Errorf("%s: %s files cannot be uploaded to Windows", name, fi.Mode().Type())
		}
	})
	if err != nil {
		return "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, fmt.Errorf("finish archive: %w", err)
	}
	return hex.EncodeToString(h.Sum(nil)), cw.n, nil
}

// addFile archives one file. Data that deflate cannot shrink (installers,
// archives, media) is stored: compressing it costs more time than the
// bytes it saves, judged on a sample from the start of the file.
func addFile(zw *zip.Writer, p, name string, fi fs.FileInfo) error {
	hdr, err := zip.FileInfoHeader(fi)
	if err != nil {
		return err
	}
	hdr.Name = name
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }() // read-only: nothing to lose
	sample := make([]byte, compressSample)
	n, err := io.ReadFull(f, sample)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	sample = sample[:n]
	hdr.Method = zip.Deflate
	if !compressible(sample) {
		hdr.Method = zip.Store
	}
	fw, err := zw.CreateHeader(hdr)
	if err != nil {
		return err
	}
	if _, err := io.Copy(fw, io.MultiReader(bytes.NewReader(sample), f)); err != nil {
		return fmt.Errorf("archive %s: %w", name, err)
	}
	return nil
}

// compressSample is how much of a file decides whether it is deflated.
const compressSample = 64 << 10

// compressible reports whether deflate shrinks sample by at least 10%.
// Small samples are always deflated: trying costs next to nothing.
func compressible(sample []byte) bool {
	if len(sample) < 4<<10 {
		return true
	}
	var cw countWriter
	cw.w = io.Discard
	fw, err := flate.NewWriter(&cw, flate.BestSpeed)
	if err != nil {
		return true
	}
	_, _ = fw.Write(sample)
	_ = fw.Close()
	return cw.n < int64(len(sample))*9/10
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// lineEncoder turns a byte stream into base64 lines ("...\n"), each at
// most lineMax bytes long, and hands out one whole line per Read when p can
// hold it, so that each Send carries exactly one line.
type lineEncoder struct {
	r       io.Reader
	raw     []byte
	enc     []byte
	pending []byte
	err     error
}

func newLineEncoder(r io.Reader, lineMax int) *lineEncoder {
	rawMax := (lineMax - 1) / 4 * 3
	if rawMax < 3 {
		rawMax = 3
	}
	return &lineEncoder{r: r, raw: make([]byte, rawMax), enc: make([]byte, base64.StdEncoding.EncodedLen(rawMax)+1)}
}

func (e *lineEncoder) Read(p []byte) (int, error) {
	if len(e.pending) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := io.ReadFull(e.r, e.raw)
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = io.EOF
		}
		e.err = err
		if n == 0 {
			return 0, e.err
		}
		line := e.enc[:base64.StdEncoding.EncodedLen(n)+1]
		base64.StdEncoding.Encode(line, e.raw[:n])
		line[len(line)-1] = '\n'
		e.pending = line
	}
	n := copy(p, e.pending)
	e.pending = e.pending[n:]
	return n, nil
}
