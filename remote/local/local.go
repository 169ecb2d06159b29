package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/packflow/packflow/remote"
)

// DefaultWaitDelay is how long Run waits for output pipes after killing a
// cancelled command.
const DefaultWaitDelay = 5 * time.Second

// Options configures a Communicator.
type Options struct {
	// Shell is the POSIX shell commands run under; default /bin/sh.
	Shell string
	// WaitDelay bounds waiting for output after a cancelled command was
	// killed; default DefaultWaitDelay.
	WaitDelay time.Duration
	// Logger receives events; default discards.
	Logger *slog.Logger
	// Env is the whole environment of every command, as "KEY=value"
	// entries; default DefaultEnv(). The worker's own environment (which
	// holds its secrets) is never passed on.
	Env []string
}

// DefaultPath is the PATH commands run with.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// DefaultEnv is the environment commands get unless Options.Env says
// otherwise: PATH=DefaultPath, HOME (the home directory of the worker's
// user, from the user database, "/" when unknown) and LANG=C.UTF-8.
// Nothing is taken from the worker's own environment.
func DefaultEnv() []string {
	home := "/"
	if u, err := user.Current(); err == nil && u.HomeDir != "" {
		home = u.HomeDir
	}
	return []string{"PATH=" + DefaultPath, "HOME=" + home, "LANG=C.UTF-8"}
}

// Communicator runs commands on the local host. It is safe for concurrent
// use.
type Communicator struct {
	opts   Options
	closed atomic.Bool
}

var _ remote.Communicator = (*Communicator)(nil)

// ErrClosed is returned by a Communicator used after Close.
var ErrClosed = errors.New("local: communicator closed")

// New returns a Communicator for the local host. Only call it when the
// configuration allows local execution (PACKFLOW_ALLOW_LOCAL=true).
func New(opts Options) *Communicator {
	if opts.Shell == "" {
		opts.Shell = "/bin/sh"
	}
	if opts.WaitDelay <= 0 {
		opts.WaitDelay = DefaultWaitDelay
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Env == nil {
		opts.Env = DefaultEnv()
	}
	opts.Env = slices.Clone(opts.Env)
	return &Communicator{opts: opts}
}

func (c *Communicator) check(ctx context.Context, op string) error {
	if c.closed.Load() {
		return ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return ctxErr(op, err)
	}
	return nil
}

func ctxErr(op string, err error) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("local: %s: %w: %w", op, remote.ErrTimeout, err)
	}
	return fmt.Errorf("local: %s: %w", op, err)
}

// Run runs cmd under the shell in its own process group and waits for it.
// Cancelling ctx kills the whole group.
func (c *Communicator) Run(ctx context.Context, cmd *remote.Cmd) error {
	if cmd == nil {
		return errors.New("local: run: nil command")
	}
	if cmd.Shell != "" && cmd.Shell != remote.ShellPOSIX {
		return fmt.Errorf("local: run: %w: shell %q", remote.ErrUnsupported, cmd.Shell)
	}
	if err := c.check(ctx, "run"); err != nil {
		return err
	}
	p := exec.CommandContext(ctx, c.opts.Shell, "-c", cmd.Command)
	p.Dir = cmd.Dir
	// Never the worker's environment: it holds PACKFLOW_SECRET_KEY and
	// the like. A non-nil empty slice would mean "no variables" too.
	p.Env = slices.Clone(c.opts.Env)
	p.Stdin, p.Stdout, p.Stderr = cmd.Stdin, cmd.Stdout, cmd.Stderr
	p.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// Cancelling kills the whole process group, not just the shell.
	p.Cancel = func() error { return syscall.Kill(-p.Process.Pid, syscall.SIGKILL) }
	p.WaitDelay = c.opts.WaitDelay
	err := p.Run()
	if err != nil && ctx.Err() != nil {
		return ctxErr("run", ctx.Err())
	}
	var exit *exec.ExitError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &exit):
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return &remote.ExitError{Code: -1, Signal: strings.TrimPrefix(unix.SignalName(ws.Signal()), "SIG")}
		}
		return &remote.ExitError{Code: exit.ExitCode()}
	default:
		return fmt.Errorf("local: run: %w", err)
	}
}

// Upload copies the tree src into dst, creating dst (and missing parents)
// with mode 0700 and keeping the modes of files and directories. Both trees
// are walked through os.Root, so a symlink swapped in under either cannot
// lead the copy outside of them.
func (c *Communicator) Upload(ctx context.Context, src, dst string) error {
	if err := c.check(ctx, "upload"); err != nil {
		return err
	}
	if dst == "" {
		return errors.New("local: upload: empty destination")
	}
	info, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("local: upload: %w", err)
	}
	if !info.IsDir() {
		return fmt.Errorf("local: upload: %s is not a directory", src)
	}
	if err := os.MkdirAll(dst, 0o700); err != nil {
		return fmt.Errorf("local: upload: %w", err)
	}
	from, err := os.OpenRoot(src)
	if err != nil {
		return fmt.Errorf("local: upload: %w", err)
	}
	defer func() { _ = from.Close() }()
	to, err := os.OpenRoot(dst)
	if err != nil {
		return fmt.Errorf("local: upload: %w", err)
	}
	defer func() { _ = to.Close() }()
	if err := copyTree(ctx, from, to); err != nil {
		if ctx.Err() != nil {
			return ctxErr("upload", ctx.Err())
		}
		return fmt.Errorf("local: upload: %w", err)
	}
	return nil
}

// keptModes are the mode bits Upload carries over.
const keptModes = fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky

func copyTree(ctx context.Context, from, to *os.Root) error {
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	err := fs.WalkDir(from.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if name == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		mode := info.Mode() & keptModes
		switch {
		case d.IsDir():
			if err := to.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
			// Writable until the end, whatever the final mode.
			dirs = append(dirs, dirMode{name, mode})
			return to.Chmod(name, 0o700) //nolint:gosec // a directory: 0700 is owner-only
		case d.Type().IsRegular():
			return copyFile(from, to, name, mode)
		case d.Type()&fs.ModeSymlink != 0:
			link, err := from.Readlink(name)
			if err != nil {
				return err
			}
			if err := to.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return err
			}
			return to.Symlink(link, name)
		default:
			return fmt.Errorf("%s: unsupported file type %s", name, d.Type())
		}
	})
	if err != nil {
		return err
	}
	for _, d := range slices.Backward(dirs) {
		if err := to.Chmod(d.name, d.mode); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to *os.Root, name string, mode fs.FileMode) error {
	in, err := from.Open(name)
	if err != nil {
		return err
	}
	defer func() { _ = in.Close() }()
	out, err := to.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		_ = out.Close()
		return err
	}
	if err := out.Chmod(mode); err != nil {
		_ = out.Close()
		return err
	}
	return out.Close()
}

// Remove deletes path and everything below it, read-only directories
// included. It refuses an empty path and the root directory.
func (c *Communicator) Remove(ctx context.Context, path string) error {
	if err := c.check(ctx, "remove"); err != nil {
		return err
	}
	if path == "" {
		return errors.New("local: remove: empty path")
	}
	switch filepath.Clean(path) {
	case "/", ".", "..":
		return fmt.Errorf("local: remove: refusing to remove %q", path)
	}
	err := os.RemoveAll(path)
	if err != nil && errors.Is(err, fs.ErrPermission) {
		// Open read-only directories, then try again.
		_ = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o700) //nolint:gosec // a directory: 0700 is owner-only
			}
			return nil
		})
		err = os.RemoveAll(path)
	}
	if err != nil {
		return fmt.Errorf("local: remove: %w", err)
	}
	return nil
}

// Reboot is not supported on the local host.
func (c *Communicator) Reboot(context.Context, remote.RebootOptions) error {
	return fmt.Errorf("local: reboot: %w: packflow does not reboot the worker's own host", remote.ErrUnsupported)
}

// Close marks the Communicator closed; later calls fail with ErrClosed. It
// is safe to call more than once.
func (c *Communicator) Close() error {
	c.closed.Store(true)
	return nil
}
