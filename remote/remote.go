package remote

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Shell names the command language a rendered command is written in.
type Shell string

// The shells a package command can target.
const (
	// ShellPOSIX is /bin/sh on Linux hosts (manifest Mode "Ssh").
	ShellPOSIX Shell = "sh"
	// ShellCmd is cmd.exe on Windows hosts (manifest Mode "Command").
	ShellCmd Shell = "cmd"
	// ShellPowerShell is Windows PowerShell (manifest Mode "PowerShell").
	ShellPowerShell Shell = "powershell"
)

// Cmd is one command to run on a host.
type Cmd struct {
	// Command is the command line, already rendered and quoted for Shell.
	Command string
	// Shell is the language Command is written in.
	Shell Shell
	// Dir is the working directory the command starts in (the package
	// root). Empty means the login directory.
	Dir string
	// Stdin, Stdout and Stderr are the streams of the process; nil means
	// empty input or discarded output.
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
}

// RebootOptions tunes Reboot.
type RebootOptions struct {
	// Command overrides the reboot command (default: "shutdown -r now" on
	// Linux, via "sudo -n" when not root; Restart-Computer -Force on Windows).
	Command string
	// Timeout bounds the whole reboot, from issuing the command to the
	// first command that runs after the host came back. Default 15 minutes.
	Timeout time.Duration
}

// Communicator talks to one host: it runs commands, uploads trees, removes
// paths and reboots. Every method honours ctx: cancelling it stops the
// remote process and the transfer. Implementations are safe for concurrent
// use by several goroutines.
type Communicator interface {
	// Run starts cmd, streams its output and waits for it to end. A
	// non-zero exit status is returned as *ExitError.
	Run(ctx context.Context, cmd *Cmd) error
	// Upload copies the local directory tree src into the remote directory
	// dst, creating dst (mode 0700 when it is new) and keeping the Unix
	// modes of the files where the host has them.
	Upload(ctx context.Context, src, dst string) error
	// Remove deletes the remote path and everything below it. A path that
	// does not exist is not an error.
	Remove(ctx context.Context, path string) error
	// Reboot restarts the host and returns once it runs commands again
	// after a boot that really happened (the boot identity changed).
	Reboot(ctx context.Context, opts RebootOptions) error
	// Close releases the connection. It is safe to call more than once.
	Close() error
}

// Sentinel errors callers branch on with errors.Is.
var (
	// ErrDisconnected means the connection dropped or could not be made;
	// retrying may help.
	ErrDisconnected = errors.New("remote: disconnected")
	// ErrHostKeyMismatch means the host presented an identity (SSH host
	// key, TLS certificate) other than the one pinned; retrying cannot help.
	ErrHostKeyMismatch = errors.New("remote: host identity mismatch")
	// ErrAuth means the host refused the credentials; retrying cannot help.
	ErrAuth = errors.New("remote: authentication failed")
	// ErrTimeout means an operation ran past its deadline.
	ErrTimeout = errors.New("remote: timeout")
	// ErrUnsafeValue means a parameter value cannot be carried safely by the
	// target shell; retrying cannot help.
	ErrUnsafeValue = errors.New("remote: value cannot be carried safely")
	// ErrUnsupported means the implementation cannot do what was asked
	// (a reboot of the local host, a shell it does not speak); retrying
	// cannot help.
	ErrUnsupported = errors.New("remote: unsupported")
)

// ExitError reports a command that ran and ended with a non-zero status.
type ExitError struct {
	// Code is the exit status; -1 when the process was killed by a signal.
	Code int
	// Signal names the signal that ended the process, if any.
	Signal string
}

func (e *ExitError) Error() string {
	if e.Signal != "" {
		return fmt.Sprintf("remote: command killed by signal %s", e.Signal)
	}
	return fmt.Sprintf("remote: command exited with status %d", e.Code)
}

// Permanent reports whether err can never succeed by retrying: a host
// identity mismatch, refused credentials, an unsafe value, an invalid
// command template or an unsupported operation.
func Permanent(err error) bool {
	return errors.Is(err, ErrHostKeyMismatch) || errors.Is(err, ErrAuth) || errors.Is(err, ErrUnsafeValue) ||
		errors.Is(err, ErrInvalidTemplate) || errors.Is(err, ErrUnsupported)
}
