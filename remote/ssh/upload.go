package ssh

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sync"

	"github.com/pkg/sftp"
)

// Tuning of SFTP transfers. Every server takes 32 KiB writes; OpenSSH
// (which advertises limits@openssh.com) takes up to 255 KiB, and 128 KiB
// writes move a tree about 1.5× faster than 32 KiB ones. Each file keeps
// about 2 MiB of writes in flight.
const (
	sftpPacket      = 32 << 10
	sftpLargePacket = 128 << 10
	sftpInFlight    = 2 << 20
)

// keptModes are the mode bits Upload carries over.
const keptModes = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

// entry is one item of the local tree; rel uses forward slashes.
type entry struct {
	rel    string
	mode   fs.FileMode
	target string // symlinks
}

// tree is a local directory tree to upload, parents before children.
type tree struct {
	dirs, files, links []entry
}

func scanTree(src string) (*tree, error) {
	info, err := os.Stat(src)
	if err != nil {
		return nil, fmt.Errorf("ssh: upload: %w", err)
	}
	if !info.IsDir() {
		return nil, fmt.Errorf("ssh: upload: %s is not a directory", src)
	}
	t := &tree{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == src {
			return nil
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{rel: filepath.ToSlash(rel), mode: info.Mode() & keptModes}
		switch {
		case d.IsDir():
			t.dirs = append(t.dirs, e)
		case d.Type().IsRegular():
			t.files = append(t.files, e)
		case d.Type()&fs.ModeSymlink != 0:
			if e.target, err = os.Readlink(p); err != nil {
				return err
			}
			t.links = append(t.links, e)
		default:
			return fmt.Errorf("%s: unsupported file type %s", p, d.Type())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ssh: upload: scan %s: %w", src, err)
	}
	return t, nil
}

// Upload copies the local tree src into dst over SFTP: dst (and missing
// parents) are created with mode 0700, files are written with concurrent
// requests, several at a time, and keep their Unix modes; directories get
// their modes last so that read-only ones can still be filled.
func (c *Client) Upload(ctx context.Context, src, dst string) error {
	if dst == "" {
		return errors.New("ssh: upload: empty destination")
	}
	t, err := scanTree(src)
	if err != nil {
		return err
	}
	sc, cn, done, err := c.startSFTP(ctx, sftpPacket)
	if err != nil {
		return err
	}
	if _, ok := sc.HasExtension("limits@openssh.com"); ok {
		done()
		if sc, cn, done, err = c.startSFTP(ctx, sftpLargePacket); err != nil {
			return err
		}
	}
	defer done()
	if err := c.uploadTree(ctx, sc, t, src, dst); err != nil {
		return c.uploadErr(ctx, cn, "", err)
	}
	return nil
}

// startSFTP opens an SFTP session writing packet bytes per request;
// cancelling ctx closes it. done releases everything.
func (c *Client) startSFTP(ctx context.Context, packet int) (sc *sftp.Client, cn *conn, done func(), err error) {
	cn, sess, err := c.session(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	// Cancelling ctx closes the session, which fails every pending request.
	stop := context.AfterFunc(ctx, func() { _ = sess.Close() })
	fail := func(op string, err error) (*sftp.Client, *conn, func(), error) {
		stop()
		_ = sess.Close()
		c.h.release()
		return nil, nil, nil, c.uploadErr(ctx, cn, op, err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		return fail("start sftp", err)
	}
	w, err := sess.StdinPipe()
	if err != nil {
		return fail("start sftp", err)
	}
	r, err := sess.StdoutPipe()
	if err != nil {
		return fail("start sftp", err)
	}
	sc, err = sftp.NewClientPipe(r, w,
		sftp.MaxPacketUnchecked(packet),
		sftp.MaxConcurrentRequestsPerFile(sftpInFlight/packet),
		sftp.UseConcurrentWrites(true),
	)
	if err != nil {
		return fail("start sftp", err)
	}
	return sc, cn, func() {
		_ = sc.Close()
		stop()
		_ = sess.Close()
		c.h.release()
	}, nil
}

func (c *Client) uploadErr(ctx context.Context, cn *conn, op string, err error) error {
	if op != "" {
		op = ": " + op
	}
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%w (%w)", ctxErr(ctx, "upload"+op), err)
	case cn.dead() || isConnLoss(err):
		return connErr(ctx, "upload"+op, err)
	default:
		return fmt.Errorf("ssh: upload%s: %w", op, err)
	}
}

func (c *Client) uploadTree(ctx context.Context, sc *sftp.Client, t *tree, src, dst string) error {
	if err := mkdirPrivate(sc, dst); err != nil {
		return err
	}
	for _, d := range t.dirs {
		p := path.Join(dst, d.rel)
		if err := sc.Mkdir(p); err != nil {
			if info, serr := sc.Stat(p); serr != nil || !info.IsDir() {
				return fmt.Errorf("mkdir %s: %w", p, err)
			}
		}
		// Writable until the end, whatever the final mode.
		if err := sc.Chmod(p, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	if err := c.uploadFiles(ctx, sc, t.files, src, dst); err != nil {
		return err
	}
	for _, l := range t.links {
		p := path.Join(dst, l.rel)
		_ = sc.Remove(p)
		if err := sc.Symlink(l.target, p); err != nil {
			return fmt.Errorf("symlink %s: %w", p, err)
		}
	}
	for _, d := range slices.Backward(t.dirs) {
		p := path.Join(dst, d.rel)
		if err := sc.Chmod(p, d.mode); err != nil {
			return fmt.Errorf("chmod %s: %w", p, err)
		}
	}
	return nil
}

// mkdirPrivate creates dir and its missing parents with mode 0700; an
// existing directory is left as it is.
func mkdirPrivate(sc *sftp.Client, dir string) error {
	info, err := sc.Stat(dir)
	if err == nil {
		if !info.IsDir() {
			return fmt.Errorf("%s exists and is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("stat %s: %w", dir, err)
	}
	if parent := path.Dir(dir); parent != dir {
		if err := mkdirPrivate(sc, parent); err != nil {
			return err
		}
	}
	if err := sc.Mkdir(dir); err != nil {
		return fmt.Errorf("mkdir %s: %w", dir, err)
	}
	if err := sc.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("chmod %s: %w", dir, err)
	}
	return nil
}

// uploadFiles sends files with UploadFiles workers; the first error stops
// the others.
func (c *Client) uploadFiles(ctx context.Context, sc *sftp.Client, files []entry, src, dst string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan entry)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		firstErr error
	)
	for range min(c.h.opts.UploadFiles, len(files)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				if err := uploadFile(sc, filepath.Join(src, filepath.FromSlash(e.rel)), path.Join(dst, e.rel), e.mode); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel()
				}
			}
		}()
	}
feed:
	for _, e := range files {
		select {
		case jobs <- e:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}

func uploadFile(sc *sftp.Client, local, remote string, mode fs.FileMode) error {
	in, err := os.Open(local)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := sc.OpenFile(remote, os.O_WRONLY|os.O_CREATE|os.O_TRUNC)
	if err != nil {
		return fmt.Errorf("create %s: %w", remote, err)
	}
	if _, err := out.ReadFrom(in); err != nil {
		_ = out.Close()
		return fmt.Errorf("write %s: %w", remote, err)
	}
	if err := out.Chmod(mode); err != nil {
		_ = out.Close()
		return fmt.Errorf("chmod %s: %w", remote, err)
	}
	if err := out.Close(); err != nil {
		return fmt.Errorf("close %s: %w", remote, err)
	}
	return nil
}
