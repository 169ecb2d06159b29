// Package remote runs package commands on servers: it defines the
// Communicator contract that remote/ssh, remote/winrm and remote/local
// implement, and renders package command templates into command lines
// that carry parameter values safely to the target shell.
//
// # Communicators
//
// A Communicator talks to one host. Run starts a Cmd (a command line
// already rendered for its Shell, a working directory and three streams),
// waits for it and reports a non-zero exit status as *ExitError. Upload
// copies a local tree to the host, Remove deletes a remote path, Reboot
// restarts the host and returns once it runs commands again after a boot
// that really happened. Every method takes the caller's context and stops
// the remote work when it is cancelled. Errors wrap the sentinel errors of
// this package (ErrDisconnected, ErrAuth, ErrHostKeyMismatch, ErrTimeout,
// ErrUnsafeValue, ErrInvalidTemplate, ErrUnsupported) so callers can
// decide on retries; Permanent says which
// ones retrying cannot fix.
//
// # Environment
//
// A command never inherits the worker's environment, which holds the
// worker's secrets (PACKFLOW_SECRET_KEY, PACKFLOW_REDIS_URL,
// PACKFLOW_ADMIN_TOKEN). remote/ssh sends no "env" requests and
// remote/winrm sets no shell variables, so a command gets the login
// environment the host gives the account. remote/local gives a clean,
// fixed environment: PATH, HOME and LANG (see local.DefaultEnv). Values
// reach commands only through the rendered command line.
//
// # Reboot detection
//
// A reboot counts only when the host really booted again, never merely
// because the connection dropped. Before rebooting, the communicator reads
// the host's boot identity: /proc/sys/kernel/random/boot_id on Linux, the
// operating system's LastBootUpTime on Windows. It then issues the reboot
// (default "shutdown -r now", through "sudo -n" for a non-root login, or
// Restart-Computer -Force), waits for the connection to drop, and
// reconnects with capped exponential backoff. Reboot returns nil only once
// the identity differs from the one read before and a command ran on the
// new connection; a host that answers with the old identity has not
// rebooted yet and is waited for. The whole wait is bounded by
// RebootOptions.Timeout (default 15 minutes), after which it fails with
// ErrTimeout. Host identity is checked on every reconnection: an SSH host
// key or TLS certificate that changed across the reboot fails with
// ErrHostKeyMismatch. The local communicator never reboots its own host
// (ErrUnsupported).
//
// # Command templates
//
// A package's Execution Command is a template such as
//
//	install.sh -p ${Port} --name "${Name}"
//	/dir/my.cmd ${My.Custom.Value}
//
// Render turns it into a command line for one of three shells: POSIX sh
// (manifest Mode "Ssh"), cmd.exe ("Command") and Windows PowerShell
// ("PowerShell"). Parameter values are data, never code: whatever a value
// holds, the program receives it as literal text inside the one word the
// template placed it in, or the value is refused.
//
// Rendering happens in three steps.
//
//  1. The template is split into words and operators. Spaces, tabs and
//     line breaks separate words. Single and double quotes group text into
//     one word and are removed; an empty pair of quotes is an empty word.
//     For sh only, a backslash outside quotes makes the next character
//     literal, and inside double quotes it does so before \ " $ and `.
//     For cmd.exe and PowerShell a backslash is plain text (a path
//     separator) and there is no escape character: write a quote inside
//     the other kind of quotes. The operators are ; && || | > >> < 2> 2>>
//     2>&1 and >&2, and for cmd.exe also a single &, recognised outside
//     quotes only (inside quotes they are text); 2> and its kin only at
//     the start of a word. Everything else, including $, `, *, ~, # and,
//     for sh and PowerShell, a single &, is text: templates do not expand
//     variables, globs or subshells of the target shell, with one
//     exception for cmd.exe described below.
//  2. Each ${Name} is replaced by the value of Name as literal text.
//     Names hold letters, digits, '_', '.' and '-'; spaces around the
//     name inside the braces are ignored. References are found
//     everywhere in the template, inside single and double quotes too, as
//     users of the original package format expect; a backslash cannot
//     escape one. The value stays inside the word it was placed in and is
//     never split or re-read for operators: "a; rm -rf /" stays one word.
//     A MultiSelect value is its items joined with "," (ListValue).
//  3. Each word is quoted for the target shell. A word that holds no
//     value and only characters the shell treats as plain text (letters,
//     digits and a few of _ - . / : + and, per shell, = , @ % \) stays
//     bare, so flags stay flags; every other word is quoted.
//
// Operators are written back with a space on either side. A trailing ;
// is dropped. An operator with no command before or after it, or a
// redirection without a file, is an error.
//
// # The program
//
// A command runs from the package root. When the first word of a simple
// command (the program) names a file of the package, it is rewritten so
// that the shell runs that file from the working directory and never
// looks it up on PATH. A leading / means the package root, as in the
// original format: /dir/my.cmd is the file dir/my.cmd of the package.
// RenderOptions.IsPackageFile decides what is a package file; without it a
// program holding a slash (on Windows a slash or backslash) is a package
// path and a bare name such as bash or python3 is looked up on PATH.
// Programs with a drive letter or a UNC prefix are never package paths.
//
//	sh          ./install.sh    ./dir/my.cmd
//	PowerShell  & '.\install.ps1'    & '.\dir\my.ps1'
//	cmd.exe     ".\install.cmd"      "dir\my.cmd"
//
// # POSIX sh
//
// A quoted word is enclosed in single quotes; a single quote inside closes
// the quotes, is escaped with a backslash and reopens them (QuotePOSIX):
//
//	it's  ->  'it'\''s'
//
// Inside single quotes sh gives no character any meaning, so every byte
// arrives as it was, newlines included. Only NUL
// cannot be carried: a value holding NUL is refused. The command suits sh
// -c and bash -c alike.
//
// # PowerShell
//
// A quoted word is a single-quoted string with each single quote doubled
// (QuotePowerShell); PowerShell also reads the typographic quotes U+2018
// to U+201B as single quotes, and they are doubled too. The program of
// every command is invoked with the call operator: & 'program' args. A
// template may write the call operator (& or .) before its program
// itself; it is taken as that one call operator.
// Bare words that PowerShell could read as numbers (1kb is 1024) are
// quoted. A value holding NUL is refused. Windows PowerShell 5.1 lacks
// && and || and reserves <; templates using them for PowerShell are
// refused (use ; or move the logic into the script). The command should
// reach PowerShell through -EncodedCommand, so no other layer of quoting
// applies.
//
// When the program is a batch file (.cmd or .bat), Windows starts it in
// cmd.exe, and PowerShell writes arguments without spaces onto that
// command line unquoted. Values passed from PowerShell to a batch file or
// to cmd.exe itself are therefore refused when they hold any of " % ! ^
// & | < > ( ) CR LF or NUL.
//
// Known limit of Windows PowerShell 5.1 with native programs (.exe):
// when it builds the program's command line it wraps an argument holding
// spaces in double quotes without escaping a " inside it or a trailing
// backslash, and it drops empty arguments. PowerShell itself is never
// confused (nothing a value holds runs as code), but such a program may
// split such a value differently. PowerShell scripts (.ps1) receive every
// value exactly.
//
// # cmd.exe
//
// A quoted word is enclosed in double quotes (QuoteCmd). Commands run
// under cmd.exe with delayed expansion off (/V:OFF), whatever the host's
// registry says, so ! is plain text; inside double quotes cmd.exe also
// reads ^ & | < > ( ) and spaces as plain text, so values may hold all of
// them (a password such as P@ss^w0rd! arrives intact). Nothing can
// protect " (it ends the quotes), % (it expands variables even inside
// quotes), CR and LF (they end the command) or NUL: a value holding any
// of them is refused with an error wrapping ErrUnsafeValue that names the
// parameter (and never quotes a secret). Template text may not hold "
// inside a word either, but it may use %VAR%, which cmd.exe expands as
// usual: this is the one place where a template reaches a feature of its
// shell, because cmd.exe offers no way to write % literally on a command
// line. The ; operator is written as &, which runs commands in turn.
//
// A batch file receives a quoted value with its quotes: it should read it
// as %~1, and quote it again wherever it passes it on. Other programs
// split their command line with the Microsoft C runtime rules, where a
// backslash before a quote escapes it; for them, trailing backslashes of
// a quoted argument are doubled so that "C:\dir\\" arrives as C:\dir\.
//
// cmd.exe must receive the command as cmd.exe /d /v:off /s /c
// "<Command>", started directly and not through another cmd.exe: /v:off
// keeps ! plain text, and /s makes it strip exactly the outer pair of
// quotes, where otherwise a command starting with a quote may lose its
// first and last quote.
//
// # Secrets
//
// A Value marked Secret (a Password parameter) is replaced by MaskText in
// Rendered.Masked, and Rendered.Secrets lists it with every other spelling
// it takes inside Command. Messages of errors never hold a secret value.
// NewMasker builds a Masker from such a list; its Writer masks streamed
// output, including a secret split across writes, so execution logs and
// events never show one.
package remote
