package remotetest

import (
	"fmt"
	"strings"

	"github.com/packflow/packflow/remote"
)

// Dialect is the command language the suite speaks to a host: one command
// for each thing a subtest needs the host to do, so that the same
// subtests run against POSIX and Windows hosts. Every function returns a
// command with Command and Shell set; the suite adds Dir and the streams.
//
// Text and id arguments are plain words (letters, digits and spaces);
// paths are absolute paths of the host, quoted by the dialect.
type Dialect struct {
	// Name names the dialect in skip messages.
	Name string
	// Newline ends the lines Echo, Streams and Pwd print.
	Newline string
	// Separator separates the elements of a host path.
	Separator string
	// Modes means the host keeps Unix modes; Mode is nil without them.
	Modes bool
	// RootPaths are paths Remove must refuse: empty and root-like paths.
	RootPaths []string

	// Echo prints text and a newline to stdout.
	Echo func(text string) remote.Cmd
	// Streams prints out and a newline to stdout, errText and a newline
	// to stderr, then tail to stdout without a newline, and succeeds.
	Streams func(out, errText, tail string) remote.Cmd
	// EchoExit prints text and a newline to stdout, then exits with code.
	EchoExit func(text string, code int) remote.Cmd
	// True succeeds without reading stdin.
	True remote.Cmd
	// Cat copies stdin to stdout byte for byte.
	Cat remote.Cmd
	// Zeros writes n zero bytes to stdout, then n to stderr. It may keep
	// a scratch file in the existing directory dir.
	Zeros func(dir string, n int) remote.Cmd
	// Pwd prints the working directory and a newline.
	Pwd remote.Cmd
	// Mkdir creates the directory path and its missing parents. The new
	// directory has mode 0755 where the host has modes.
	Mkdir func(path string) remote.Cmd

	// Sleep prints "started" and a newline, then runs a process that is
	// told apart from every other by id, for at least id seconds, then
	// prints "never".
	Sleep func(id string) remote.Cmd
	// Running succeeds and prints something while a process started by
	// Sleep(id) still runs, and succeeds printing nothing once none does.
	Running func(id string) remote.Cmd

	// ListDirs and ListFiles print, one per line, the paths of the
	// directories (or regular files) anywhere below dir relative to dir,
	// with Separator between their elements. They print nothing when there
	// are none.
	ListDirs, ListFiles func(dir string) remote.Cmd
	// ReadFile prints the bytes of the file path.
	ReadFile func(path string) remote.Cmd
	// Mode prints the permission bits of path in octal ("755").
	Mode func(path string) remote.Cmd
	// Exists prints "true" when path exists and "false" when it does not,
	// in any case, followed by a newline.
	Exists func(path string) remote.Cmd
}

// Join joins path elements with the dialect's separator.
func (d *Dialect) Join(elem ...string) string {
	return strings.Join(elem, d.Separator)
}

// POSIX returns the dialect of Linux and other POSIX hosts: /bin/sh with
// GNU coreutils, findutils and procps. It is the default.
func POSIX() Dialect {
	sh := func(format string, args ...any) remote.Cmd {
		return remote.Cmd{Shell: remote.ShellPOSIX, Command: fmt.Sprintf(format, args...)}
	}
	q := remote.QuotePOSIX
	return Dialect{
		Name:      "posix",
		Newline:   "\n",
		Separator: "/",
		Modes:     true,
		RootPaths: []string{"", "/", "//", "/./"},
		Echo:      func(text string) remote.Cmd { return sh("echo %s", q(text)) },
		Streams: func(out, errText, tail string) remote.Cmd {
			return sh("echo %s; echo %s >&2; printf %%s %s", q(out), q(errText), q(tail))
		},
		EchoExit: func(text string, code int) remote.Cmd { return sh("echo %s; exit %d", q(text), code) },
		True:     sh("true"),
		Cat:      sh("cat"),
		Zeros: func(_ string, n int) remote.Cmd {
			return sh("head -c %d /dev/zero; head -c %d /dev/zero >&2", n, n)
		},
		Pwd:   sh("pwd"),
		Mkdir: func(path string) remote.Cmd { return sh("mkdir -p -m 755 %s", q(path)) },
		// sleep runs as a child of the shell, so killing the shell alone
		// is not enough.
		Sleep: func(id string) remote.Cmd { return sh("echo started; sleep %s; echo never", id) },
		// "[s]leep" matches the sleep process but not this command line;
		// pgrep exits 1 when nothing matches and above 1 on errors.
		Running: func(id string) remote.Cmd {
			return sh("pgrep -f %s; [ $? -le 1 ]", q("[s]leep "+id))
		},
		ListDirs:  func(dir string) remote.Cmd { return sh(`find %s -mindepth 1 -type d -printf '%%P\n'`, q(dir)) },
		ListFiles: func(dir string) remote.Cmd { return sh(`find %s -mindepth 1 -type f -printf '%%P\n'`, q(dir)) },
		ReadFile:  func(path string) remote.Cmd { return sh("cat %s", q(path)) },
		Mode:      func(path string) remote.Cmd { return sh("stat -c %%a %s", q(path)) },
		Exists:    func(path string) remote.Cmd { return sh("test -e %s && echo true || echo false", q(path)) },
	}
}

// Windows returns the dialect of Windows hosts: cmd.exe built-ins and
// programs every Windows has (ping, fsutil), and Windows PowerShell 5.1
// where cmd.exe has no faithful equivalent (copying binary stdin,
// querying processes, listing trees). Windows has no Unix modes.
//
// Paths must be ones cmd.exe can quote: without " % ! or ^.
func Windows() Dialect {
	cmd := func(format string, args ...any) remote.Cmd {
		return remote.Cmd{Shell: remote.ShellCmd, Command: fmt.Sprintf(format, args...)}
	}
	ps := func(format string, args ...any) remote.Cmd {
		return remote.Cmd{Shell: remote.ShellPowerShell, Command: fmt.Sprintf(format, args...)}
	}
	psq := remote.QuotePowerShell
	return Dialect{
		Name:      "windows",
		Newline:   "\r\n",
		Separator: `\`,
		RootPaths: []string{"", `C:`, `C:\`, `c:/`, `\`, `/`},
		Echo:      func(text string) remote.Cmd { return cmd("echo %s", text) },
		// No space before "&": echo would print it. A redirection goes in
		// front for the same reason. "set /p" prompts without a newline
		// and fails on empty input, hence the explicit status.
		Streams: func(out, errText, tail string) remote.Cmd {
			return cmd(`echo %s& 1>&2 echo %s& <nul set /p "=%s"& exit /b 0`, out, errText, tail)
		},
		EchoExit: func(text string, code int) remote.Cmd { return cmd("echo %s& exit /b %d", text, code) },
		True:     cmd("exit /b 0"),
		// more and findstr rewrite text; a .NET stream copy keeps bytes.
		Cat: ps("[Console]::OpenStandardInput().CopyTo([Console]::OpenStandardOutput())"),
		Zeros: func(dir string, n int) remote.Cmd {
			f := quoteCmd(dir + `\zeros`)
			return cmd("fsutil file createnew %s %d >nul&& type %s&& 1>&2 type %s", f, n, f, f)
		},
		Pwd:   cmd("cd"),
		Mkdir: func(path string) remote.Cmd { return cmd("mkdir %s", quoteCmd(path)) },
		// timeout refuses to run with redirected stdin, as every WinRM
		// command has; ping -n N waits N-1 seconds.
		Sleep: func(id string) remote.Cmd {
			return cmd("echo started& ping -n %s 127.0.0.1 >nul& echo never", id)
		},
		// The query runs inside powershell.exe -EncodedCommand, whose own
		// command line does not match.
		Running: func(id string) remote.Cmd {
			return ps(`Get-CimInstance Win32_Process -Filter "CommandLine LIKE '%%ping -n %s %%'" | Select-Object -ExpandProperty ProcessId`, id)
		},
		ListDirs: func(dir string) remote.Cmd {
			return ps("Get-ChildItem -LiteralPath %s -Recurse -Force -Directory -Name", psq(dir))
		},
		ListFiles: func(dir string) remote.Cmd {
			return ps("Get-ChildItem -LiteralPath %s -Recurse -Force -File -Name", psq(dir))
		},
		// type copies a file's bytes as they are.
		ReadFile: func(path string) remote.Cmd { return cmd("type %s", quoteCmd(path)) },
		Exists:   func(path string) remote.Cmd { return ps("Test-Path -LiteralPath %s", psq(path)) },
	}
}

// quoteCmd encloses a path in double quotes for cmd.exe, which carries
// everything inside them literally but " % ! and ^; the suite's paths hold
// none of those.
func quoteCmd(path string) string { return `"` + path + `"` }
