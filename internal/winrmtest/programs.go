package winrmtest

import (
	"bufio"
	"context"
	"errors"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// windowsPrograms are the canned programs that emulate the Windows
// commands a conformance suite needs, each with the behaviour of the real
// one for the arguments it accepts, and an error for the rest.
func windowsPrograms() map[string]Program {
	return map[string]Program{
		"set":             setPrompt,
		"mkdir":           mkdir,
		"md":              mkdir,
		"fsutil":          fsutilCreateNew,
		"ping":            ping,
		"get-ciminstance": getProcesses,
		"get-childitem":   getChildItemNames,
		"test-path":       testPath,
		copyStdinExpr:     copyStdin,
	}
}

// notEmulated reports arguments a program does not emulate.
func notEmulated(inv *Invocation) int {
	say(inv.Stderr, "FakeHost: %s %s is not emulated\r\n", inv.Name, inv.Args)
	return 1
}

// cmdArgs splits cmd.exe arguments at spaces outside double quotes and
// removes the quotes.
func cmdArgs(s string) []string {
	var args []string
	var cur strings.Builder
	quoted, inWord := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			quoted, inWord = !quoted, true
		case (c == ' ' || c == '\t') && !quoted:
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
			}
			inWord = false
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args
}

// setPrompt emulates set /p "=prompt": print the prompt without a
// newline, then read a line of input into the (empty) variable. Like
// cmd.exe it fails when there is no input.
func setPrompt(_ context.Context, inv *Invocation) int {
	args := strings.TrimSpace(inv.Args)
	rest, ok := strings.CutPrefix(args, "/p ")
	if !ok && !strings.HasPrefix(args, "/P ") {
		return notEmulated(inv)
	}
	if !ok {
		rest = args[3:]
	}
	rest = strings.TrimSpace(rest)
	if len(rest) >= 2 && rest[0] == '"' && rest[len(rest)-1] == '"' {
		rest = rest[1 : len(rest)-1]
	}
	prompt, ok := strings.CutPrefix(rest, "=")
	if !ok {
		return notEmulated(inv) // setting a named variable
	}
	say(inv.Stdout, "%s", prompt)
	if inv.Stdin == nil {
		return 1
	}
	line, err := bufio.NewReader(inv.Stdin).ReadString('\n')
	if line == "" && err != nil {
		return 1
	}
	return 0
}

// mkdir emulates mkdir <dir>, which creates missing parents (command
// extensions are on by default) and fails when the path exists.
func mkdir(_ context.Context, inv *Invocation) int {
	args := cmdArgs(inv.Args)
	if len(args) != 1 {
		return notEmulated(inv)
	}
	p := inv.Host.resolve(inv.Dir, args[0])
	if inv.Host.Exists(p) {
		say(inv.Stderr, "A subdirectory or file %s already exists.\r\n", args[0])
		return 1
	}
	inv.Host.MkdirAll(p)
	return 0
}

// fsutilCreateNew emulates fsutil file createnew <file> <length>: a new
// file of length zero bytes.
func fsutilCreateNew(_ context.Context, inv *Invocation) int {
	args := cmdArgs(inv.Args)
	if len(args) != 4 || !strings.EqualFold(args[0], "file") || !strings.EqualFold(args[1], "createnew") {
		return notEmulated(inv)
	}
	n, err := strconv.ParseUint(args[3], 10, 31)
	if err != nil {
		say(inv.Stderr, "Error:  The parameter is incorrect.\r\n")
		return 1
	}
	p := inv.Host.resolve(inv.Dir, args[2])
	if inv.Host.Exists(p) {
		say(inv.Stderr, "Error:  The file exists.\r\n")
		return 1
	}
	if !inv.Host.isDir(parentPath(p)) {
		say(inv.Stderr, "Error:  The system cannot find the path specified.\r\n")
		return 1
	}
	inv.Host.WriteFile(p, make([]byte, n))
	say(inv.Stdout, "File %s is created\r\n", p)
	return 0
}

// ping emulates ping -n <count> <host> for a host that answers: count
// replies one second apart, so that it waits count-1 seconds, or until
// the process is killed.
func ping(ctx context.Context, inv *Invocation) int {
	args := cmdArgs(inv.Args)
	count := uint64(4)
	if len(args) == 3 && args[0] == "-n" {
		n, err := strconv.ParseUint(args[1], 10, 32)
		if err != nil || n == 0 {
			say(inv.Stdout, "Bad value for option -n, valid range is from 1 to 4294967295.\r\n")
			return 1
		}
		count, args = n, args[2:]
	}
	if len(args) != 1 {
		return notEmulated(inv)
	}
	target := args[0]
	say(inv.Stdout, "\r\nPinging %s with 32 bytes of data:\r\n", target)
	for i := range count {
		if i > 0 {
			select {
			case <-ctx.Done():
				return 1
			case <-time.After(time.Second):
			}
		}
		say(inv.Stdout, "Reply from %s: bytes=32 time<1ms TTL=128\r\n", target)
	}
	return 0
}

// processQuery is the one Win32_Process query the host answers: the
// processes whose command line matches a WQL LIKE pattern, one property
// each.
var processQuery = regexp.MustCompile(`^Win32_Process -Filter "CommandLine LIKE '([^']*)'" \| Select-Object -ExpandProperty (ProcessId|CommandLine)$`)

// getProcesses emulates
//
//	Get-CimInstance Win32_Process -Filter "CommandLine LIKE '<pattern>'" | Select-Object -ExpandProperty ProcessId
//
// (or CommandLine) against the host's process table.
func getProcesses(_ context.Context, inv *Invocation) int {
	m := processQuery.FindStringSubmatch(strings.TrimSpace(inv.Args))
	if inv.Shell != "powershell" || m == nil {
		return notEmulated(inv)
	}
	like := wqlLike(m[1])
	for _, p := range inv.Host.Processes() {
		if !like.MatchString(p.CommandLine) {
			continue
		}
		if m[2] == "ProcessId" {
			say(inv.Stdout, "%d\r\n", p.PID)
		} else {
			say(inv.Stdout, "%s\r\n", p.CommandLine)
		}
	}
	return 0
}

// wqlLike compiles a WQL LIKE pattern: % is any run of characters, _ one
// character, and the comparison ignores case.
func wqlLike(pattern string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString(`(?is)^`)
	for _, r := range pattern {
		switch r {
		case '%':
			b.WriteString(".*")
		case '_':
			b.WriteString(".")
		default:
			b.WriteString(regexp.QuoteMeta(string(r)))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// literalPathArgs matches -LiteralPath '<literal>' and the switches after it.
var literalPathArgs = regexp.MustCompile(`^-LiteralPath ('(?:[^']|'')*')((?: -[A-Za-z]+)*)$`)

// literalPath parses -LiteralPath '<literal>' [-Switch ...].
func literalPath(args string) (string, []string, error) {
	m := literalPathArgs.FindStringSubmatch(strings.TrimSpace(args))
	if m == nil {
		return "", nil, errors.New("arguments not emulated")
	}
	p, err := unquotePowerShell(m[1])
	if err != nil {
		return "", nil, err
	}
	var switches []string
	for _, s := range strings.Fields(m[2]) {
		switches = append(switches, strings.ToLower(s))
	}
	return p, switches, nil
}

// getChildItemNames emulates Get-ChildItem -LiteralPath <dir> -Name, with
// -Recurse, -Force, -Directory or -File: the paths below dir relative to
// it, sorted. Every file counts as visible (-Force).
func getChildItemNames(_ context.Context, inv *Invocation) int {
	dir, switches, err := literalPath(inv.Args)
	if inv.Shell != "powershell" || err != nil || !slices.Contains(switches, "-name") {
		return notEmulated(inv)
	}
	for _, s := range switches {
		if !slices.Contains([]string{"-name", "-recurse", "-force", "-directory", "-file"}, s) {
			return notEmulated(inv)
		}
	}
	if !inv.Host.isDir(dir) {
		say(inv.Stderr, "Get-ChildItem : Cannot find path '%s' because it does not exist.\r\n", dir)
		return 1
	}
	recurse := slices.Contains(switches, "-recurse")
	var names []string
	for rel := range inv.Host.Tree(dir) {
		isDir := strings.HasSuffix(rel, "/")
		rel = strings.TrimSuffix(rel, "/")
		if (!recurse && strings.Contains(rel, "/")) ||
			(isDir && slices.Contains(switches, "-file")) || (!isDir && slices.Contains(switches, "-directory")) {
			continue
		}
		names = append(names, strings.ReplaceAll(rel, "/", `\`))
	}
	slices.Sort(names)
	for _, n := range names {
		say(inv.Stdout, "%s\r\n", n)
	}
	return 0
}

// testPath emulates Test-Path -LiteralPath <path>.
func testPath(_ context.Context, inv *Invocation) int {
	p, switches, err := literalPath(inv.Args)
	if inv.Shell != "powershell" || err != nil || len(switches) != 0 {
		return notEmulated(inv)
	}
	if inv.Host.Exists(p) {
		say(inv.Stdout, "True\r\n")
	} else {
		say(inv.Stdout, "False\r\n")
	}
	return 0
}

// copyStdinExpr is the PowerShell statement that copies stdin to stdout
// byte for byte, as a program name: it holds no space.
const copyStdinExpr = "[console]::openstandardinput().copyto([console]::openstandardoutput())"

func copyStdin(_ context.Context, inv *Invocation) int {
	if inv.Shell != "powershell" {
		return notEmulated(inv)
	}
	if _, err := io.Copy(inv.Stdout, inv.Stdin); err != nil {
		say(inv.Stderr, "Exception calling \"CopyTo\": %v\r\n", err)
		return 1
	}
	return 0
}
