package winrmtest

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Program is a canned program of a FakeHost: it runs one command and
// returns its exit code.
type Program func(ctx context.Context, inv *Invocation) int

// Invocation is what a Program gets.
type Invocation struct {
	// Shell is "cmd" or "powershell".
	Shell string
	// Dir is the working directory the command was started in ("" when
	// none was set).
	Dir string
	// Name is the program name (the first word of the command) and Args
	// the rest of the command text, verbatim.
	Name, Args string
	Stdin      io.Reader
	Stdout     io.Writer
	Stderr     io.Writer
	// Host is the host running the program.
	Host *FakeHost
}

// FakeHostOptions configure a FakeHost.
type FakeHostOptions struct {
	// Programs are added to (and override) the built-in programs, by
	// case-insensitive name.
	Programs map[string]Program
	// RebootDelay is how long after Restart-Computer returns the host goes
	// down (default 20ms).
	RebootDelay time.Duration
	// RebootDowntime is how long the host stays down (default 300ms).
	RebootDowntime time.Duration
	// IgnoreRestart makes Restart-Computer succeed without rebooting.
	IgnoreRestart bool
	// DelayedExpansion is the host's registry setting (Command Processor
	// DelayedExpansion=1): delayed expansion for every cmd.exe started
	// without /V:ON or /V:OFF, WinRM's own cmd.exe /c included.
	DelayedExpansion bool
}

// Upload describes one upload the FakeHost received.
type Upload struct {
	Destination string
	Sha256      string
	// ArchiveBytes is the size of the reassembled archive.
	ArchiveBytes int
	// Lines is the number of base64 lines read from stdin, MaxLine the
	// length of the longest one.
	Lines, MaxLine int
}

// FakeHost is a Handler emulating a Windows host for the scripts of
// packflow's WinRM communicator. It recognises them by their first line
// ("# packflow:<name>") and reads their parameters from the
// "$Name = '<literal>'" lines that follow.
//
// A cmd.exe line is interpreted as cmd.exe /c would: commands joined by
// &, && and ||, cd /d changing the working directory, redirections of a
// stream to the other one or to nul, input from nul, and exit. Each
// command, like the PowerShell wrapper's "#region command" block, runs the
// program named by its first word. Besides the communicator's needs the
// programs include echo, exit, type, cd, more, timeout, set /p, mkdir,
// fsutil file createnew, ping -n, Get-ChildItem -Name, Test-Path and a
// Win32_Process query by command line that reads the host's process table
// (see Processes and Killed).
//
// Paths are Windows paths compared without regard to case. Use Down as
// Options.Down so that a reboot drops the endpoint's connections.
type FakeHost struct {
	opts     FakeHostOptions
	programs map[string]Program

	mu        sync.Mutex
	files     map[string]fakeFile // key: lower-case path
	boots     int
	pending   bool // a reboot is scheduled at rebootAt
	rebootAt  time.Time
	downUntil time.Time
	uploads   []Upload
	procs     processTable
}

type fakeFile struct {
	path string
	dir  bool
	data []byte
}

// NewFakeHost returns a host with an empty file tree.
func NewFakeHost(opts FakeHostOptions) *FakeHost {
	if opts.RebootDelay <= 0 {
		opts.RebootDelay = 20 * time.Millisecond
	}
	if opts.RebootDowntime <= 0 {
		opts.RebootDowntime = 300 * time.Millisecond
	}
	h := &FakeHost{opts: opts, files: make(map[string]fakeFile), programs: builtinPrograms()}
	maps.Copy(h.programs, windowsPrograms())
	for name, p := range opts.Programs {
		h.programs[strings.ToLower(name)] = p
	}
	return h
}

var bootEpoch = time.Date(2026, 1, 1, 6, 0, 0, 0, time.UTC)

// BootTime returns the LastBootUpTime the host reports, in the round-trip
// format PowerShell's ToString('o') gives.
func (h *FakeHost) BootTime() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked()
	return bootEpoch.Add(time.Duration(h.boots) * time.Hour).Format("2006-01-02T15:04:05.0000000Z")
}

// Boots returns how many times the host rebooted.
func (h *FakeHost) Boots() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked()
	return h.boots
}

// Down reports whether the host is rebooting.
func (h *FakeHost) Down() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked()
	now := time.Now()
	return !now.Before(h.rebootAt) && now.Before(h.downUntil)
}

// Uploads returns the uploads received so far.
func (h *FakeHost) Uploads() []Upload {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]Upload(nil), h.uploads...)
}

// WriteFile stores a file, creating its parent directories.
func (h *FakeHost) WriteFile(p string, data []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.writeLocked(p, data)
}

func (h *FakeHost) writeLocked(p string, data []byte) {
	p = cleanPath(p)
	h.mkdirLocked(parentPath(p))
	h.files[strings.ToLower(p)] = fakeFile{path: p, data: bytes.Clone(data)}
}

func (h *FakeHost) mkdirLocked(p string) {
	for p != "" {
		key := strings.ToLower(p)
		if f, ok := h.files[key]; ok && f.dir {
			return
		}
		h.files[key] = fakeFile{path: p, dir: true}
		p = parentPath(p)
	}
}

// MkdirAll creates a directory and its missing parents.
func (h *FakeHost) MkdirAll(p string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mkdirLocked(cleanPath(p))
}

// ReadFile returns the content of a file.
func (h *FakeHost) ReadFile(p string) ([]byte, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f, ok := h.files[strings.ToLower(cleanPath(p))]
	if !ok || f.dir {
		return nil, false
	}
	return bytes.Clone(f.data), true
}

// Exists reports whether a file or directory exists.
func (h *FakeHost) Exists(p string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = cleanPath(p)
	_, ok := h.files[strings.ToLower(p)]
	return ok || isDriveRoot(p)
}

// isDir reports whether a directory exists.
func (h *FakeHost) isDir(p string) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	p = cleanPath(p)
	f, ok := h.files[strings.ToLower(p)]
	return (ok && f.dir) || isDriveRoot(p)
}

// resolve returns p as an absolute path, relative paths being taken from
// dir.
func (h *FakeHost) resolve(dir, p string) string {
	if isAbs(p) || dir == "" {
		return cleanPath(p)
	}
	return cleanPath(dir + `\` + p)
}

// Tree returns the files below dir by slash-separated relative path, and
// the directories (relative, ending in "/").
func (h *FakeHost) Tree(dir string) map[string][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	prefix := strings.ToLower(cleanPath(dir)) + `\`
	out := make(map[string][]byte)
	for key, f := range h.files {
		if !strings.HasPrefix(key, prefix) {
			continue
		}
		rel := strings.ReplaceAll(f.path[len(prefix):], `\`, "/")
		if f.dir {
			out[rel+"/"] = nil
			continue
		}
		out[rel] = bytes.Clone(f.data)
	}
	return out
}

// ServeCommand implements Handler. Each command runs as a cmd.exe
// process; a plain command line is interpreted as cmd.exe would (see
// runCmdLine).
func (h *FakeHost) ServeCommand(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int {
	line := strings.TrimSpace(strings.Join(append([]string{cmd.Line}, cmd.Args...), " "))
	process := line
	if !cmd.SkipCmdShell {
		process = "cmd.exe /c " + line
	}
	pid := h.start(process)
	defer func() { h.end(pid, ctx.Err() != nil) }()
	std := streams{stdin: cmd.Stdin, stdout: stdout, stderr: stderr}
	switch {
	case cmd.Script != "":
		return h.runScript(ctx, cmd, stdout, stderr)
	case !cmd.SkipCmdShell:
		return h.runCmdLine(ctx, line, h.opts.DelayedExpansion, std)
	}
	if c, ok := parseCmdExe(line, h.opts.DelayedExpansion); ok {
		if c.err != nil {
			say(stderr, "FakeHost: %v\r\n", c.err)
			return 1
		}
		return h.runCmdLine(ctx, c.line, c.delayed, std)
	}
	return h.runProgram(ctx, &Invocation{Shell: "cmd", Stdin: cmd.Stdin, Stdout: stdout, Stderr: stderr}, line)
}

var (
	scriptTag   = regexp.MustCompile(`^# packflow:([a-z]+)\n`)
	scriptParam = regexp.MustCompile(`(?m)^\$([A-Za-z0-9]+) = ('.*')$`)
	setLocation = regexp.MustCompile(`(?m)^\s*Set-Location -LiteralPath ('.*')$`)
)

func (h *FakeHost) runScript(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int {
	script := cmd.Script
	if m := scriptTag.FindStringSubmatch(script); m != nil {
		params := make(map[string]string)
		for _, pm := range scriptParam.FindAllStringSubmatch(script, -1) {
			v, err := unquotePowerShell(pm[2])
			if err != nil {
				say(stderr, "bad parameter $%s: %v\r\n", pm[1], err)
				return 1
			}
			params[pm[1]] = v
		}
		switch m[1] {
		case "upload":
			return h.upload(cmd.Stdin, params, stderr)
		case "remove":
			return h.remove(params["Path"])
		case "boottime":
			say(stdout, "%s\r\n", h.BootTime())
			return 0
		case "reboot":
			return h.reboot(ctx, script, cmd.Stdin, stdout, stderr)
		}
		say(stderr, "FakeHost: unknown script %q\r\n", m[1])
		return 1
	}
	start := strings.Index(script, "#region command\n")
	end := strings.LastIndex(script, "\n#endregion command")
	if start < 0 || end < start {
		say(stderr, "FakeHost: unrecognised PowerShell script:\r\n%s\r\n", script)
		return 1
	}
	dir := ""
	if m := setLocation.FindStringSubmatch(script[:start]); m != nil {
		d, err := unquotePowerShell(m[1])
		if err != nil {
			say(stderr, "bad Set-Location: %v\r\n", err)
			return 1
		}
		dir = d
		if !h.Exists(dir) {
			say(stderr, "Set-Location : Cannot find path '%s' because it does not exist.\r\n", dir)
			return 1
		}
	}
	body := script[start+len("#region command\n") : end]
	return h.runProgram(ctx, &Invocation{Shell: "powershell", Dir: dir, Stdin: cmd.Stdin, Stdout: stdout, Stderr: stderr},
		strings.TrimSpace(body))
}

func (h *FakeHost) runProgram(ctx context.Context, inv *Invocation, text string) int {
	inv.Host = h
	name, args, _ := strings.Cut(text, " ")
	inv.Name, inv.Args = name, args
	p, ok := h.programs[strings.ToLower(name)]
	if ok && isProcess(name) {
		pid := h.start(strings.TrimSpace(text))
		defer func() { h.end(pid, ctx.Err() != nil) }()
	}
	if !ok {
		if inv.Shell == "powershell" {
			say(inv.Stderr, "The term '%s' is not recognized as the name of a cmdlet, function, script file, or operable program.\r\n", name)
			return 1
		}
		say(inv.Stderr, "'%s' is not recognized as an internal or external command,\r\noperable program or batch file.\r\n", name)
		return 1
	}
	return p(ctx, inv)
}

// upload emulates the upload script: decode the base64 lines of stdin,
// check the SHA-256, expand the zip into Destination.
func (h *FakeHost) upload(stdin io.Reader, params map[string]string, stderr io.Writer) int {
	dst, want := params["Destination"], params["Sha256"]
	if dst == "" || want == "" {
		say(stderr, "upload script without $Destination or $Sha256\r\n")
		return 1
	}
	var archive bytes.Buffer
	rec := Upload{Destination: dst, Sha256: want}
	br := bufio.NewReaderSize(stdin, 64*1024)
	for {
		line, err := br.ReadBytes('\n')
		if trimmed := bytes.TrimRight(line, "\r\n"); len(trimmed) > 0 {
			rec.Lines++
			rec.MaxLine = max(rec.MaxLine, len(line))
			archive.Grow(base64.StdEncoding.DecodedLen(len(trimmed)))
			dec := archive.AvailableBuffer()[:base64.StdEncoding.DecodedLen(len(trimmed))]
			n, derr := base64.StdEncoding.Decode(dec, trimmed)
			if derr != nil {
				say(stderr, "Exception calling \"FromBase64String\": %v\r\n", derr)
				return 1
			}
			archive.Write(dec[:n])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			say(stderr, "read stdin: %v\r\n", err)
			return 1
		}
	}
	rec.ArchiveBytes = archive.Len()
	sum := sha256.Sum256(archive.Bytes())
	got := strings.ToUpper(hex.EncodeToString(sum[:]))
	h.mu.Lock()
	h.uploads = append(h.uploads, rec)
	h.mu.Unlock()
	if !strings.EqualFold(got, want) {
		say(stderr, "upload corrupted: archive SHA-256 is %s, expected %s\r\n", got, want)
		return 1
	}
	zr, err := zip.NewReader(bytes.NewReader(archive.Bytes()), int64(archive.Len()))
	if err != nil {
		say(stderr, "Expand-Archive : %v\r\n", err)
		return 1
	}
	files := make(map[string][]byte)
	var dirs []string
	for _, f := range zr.File {
		name := strings.TrimSuffix(f.Name, "/")
		if name == "" || strings.HasPrefix(name, "/") || strings.Contains(name, `\`) ||
			strings.Contains("/"+name+"/", "/../") || strings.Contains(name, ":") {
			say(stderr, "Expand-Archive : unsafe entry %q\r\n", f.Name)
			return 1
		}
		target := dst + `\` + strings.ReplaceAll(name, "/", `\`)
		if strings.HasSuffix(f.Name, "/") {
			dirs = append(dirs, target)
			continue
		}
		rc, err := f.Open()
		if err != nil {
			say(stderr, "Expand-Archive : %v\r\n", err)
			return 1
		}
		data, err := io.ReadAll(rc)
		_ = rc.Close()
		if err != nil {
			say(stderr, "Expand-Archive : %s: %v\r\n", f.Name, err)
			return 1
		}
		files[target] = data
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.mkdirLocked(cleanPath(dst))
	for _, d := range dirs {
		h.mkdirLocked(cleanPath(d))
	}
	for p, data := range files {
		h.writeLocked(p, data)
	}
	return 0
}

// remove emulates Remove-Item -Recurse -Force on an existing path.
func (h *FakeHost) remove(p string) int {
	if p == "" {
		return 1
	}
	key := strings.ToLower(cleanPath(p))
	h.mu.Lock()
	defer h.mu.Unlock()
	for k := range h.files {
		if k == key || strings.HasPrefix(k, key+`\`) {
			delete(h.files, k)
		}
	}
	return 0
}

// reboot schedules the restart: the host keeps answering for
// RebootDelay (so the command can return), then drops every connection for
// RebootDowntime and comes back with a new boot time.
//
// A reboot script whose command is not Restart-Computer runs that command
// as a program instead.
func (h *FakeHost) reboot(ctx context.Context, script string, stdin io.Reader, stdout, stderr io.Writer) int {
	_, body, _ := strings.Cut(script, "try {\n")
	command, _, _ := strings.Cut(strings.TrimSpace(body), "\n")
	if !strings.HasPrefix(command, "Restart-Computer") {
		return h.runProgram(ctx, &Invocation{Shell: "powershell", Stdin: stdin, Stdout: stdout, Stderr: stderr}, command)
	}
	if h.opts.IgnoreRestart {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.settleLocked()
	h.rebootAt = time.Now().Add(h.opts.RebootDelay)
	h.downUntil = h.rebootAt.Add(h.opts.RebootDowntime)
	h.pending = true
	return 0
}

// settleLocked applies a scheduled reboot whose time has come.
func (h *FakeHost) settleLocked() {
	if h.pending && !time.Now().Before(h.rebootAt) {
		h.boots++
		h.pending = false
	}
}

func builtinPrograms() map[string]Program {
	return map[string]Program{
		"echo": func(_ context.Context, inv *Invocation) int {
			say(inv.Stdout, "%s\r\n", inv.Args)
			return 0
		},
		"exit": func(_ context.Context, inv *Invocation) int {
			code, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(inv.Args), "/b ")))
			if err != nil {
				return 1
			}
			return code
		},
		"more": func(_ context.Context, inv *Invocation) int {
			if _, err := io.Copy(inv.Stdout, inv.Stdin); err != nil {
				return 1
			}
			return 0
		},
		"type": func(_ context.Context, inv *Invocation) int {
			p := strings.Trim(strings.TrimSpace(inv.Args), `"'`)
			if !isAbs(p) && inv.Dir != "" {
				p = inv.Dir + `\` + p
			}
			data, ok := inv.Host.ReadFile(p)
			if !ok {
				say(inv.Stderr, "The system cannot find the file specified.\r\n")
				return 1
			}
			_, _ = inv.Stdout.Write(data)
			return 0
		},
		"cd": func(_ context.Context, inv *Invocation) int {
			say(inv.Stdout, "%s\r\n", inv.Dir)
			return 0
		},
		"timeout": func(ctx context.Context, inv *Invocation) int {
			<-ctx.Done()
			return 1
		},
	}
}

// unquotePowerShell reverses QuotePowerShell for a single-quoted literal.
func unquotePowerShell(s string) (string, error) {
	if len(s) < 2 || s[0] != '\'' || s[len(s)-1] != '\'' {
		return "", fmt.Errorf("not a single-quoted literal: %s", s)
	}
	s = s[1 : len(s)-1]
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		b.WriteRune(r)
		i += size
		if !isSingleQuote(r) {
			continue
		}
		if i >= len(s) {
			return "", errors.New("lone quote inside a single-quoted literal")
		}
		r2, size2 := utf8.DecodeRuneInString(s[i:])
		if !isSingleQuote(r2) {
			return "", errors.New("lone quote inside a single-quoted literal")
		}
		i += size2
	}
	return b.String(), nil
}

func isSingleQuote(r rune) bool {
	switch r {
	case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
		return true
	}
	return false
}

func cleanPath(p string) string {
	p = strings.ReplaceAll(p, "/", `\`)
	return strings.TrimRight(p, `\`)
}

func parentPath(p string) string {
	i := strings.LastIndex(p, `\`)
	if i <= 2 { // "C:\x" → the drive root, which always exists
		return ""
	}
	return p[:i]
}

// isDriveRoot reports whether a cleaned path is a drive root ("C:"),
// which always exists.
func isDriveRoot(p string) bool {
	return len(p) == 2 && p[1] == ':' && (p[0] >= 'A' && p[0] <= 'Z' || p[0] >= 'a' && p[0] <= 'z')
}

func isAbs(p string) bool {
	return len(p) >= 3 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// say writes a message to a command's stream. The stream is the endpoint's
// buffer, which fails only after the command ended.
func say(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}
