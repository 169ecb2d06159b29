package winrmtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// cmdStep is one command of a cmd.exe line and the operator before it.
type cmdStep struct {
	// op is "" for the first command, else "&", "&&" or "||".
	op   string
	text string
}

// errPipe reports a pipe, which the line interpreter does not emulate.
var errPipe = errors.New("pipes between programs are not emulated")

// splitCmdLine splits a cmd.exe line at the operators &, && and ||
// outside double quotes, as cmd.exe does. A caret outside quotes escapes
// the next character; an & right after > or < belongs to a redirection
// such as 1>&2.
func splitCmdLine(line string) ([]cmdStep, error) {
	var steps []cmdStep
	var cur strings.Builder
	op := ""
	quoted := false
	flush := func(next string) {
		steps = append(steps, cmdStep{op: op, text: cur.String()})
		cur.Reset()
		op = next
	}
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case c == '"':
			quoted = !quoted
			cur.WriteByte(c)
		case quoted:
			cur.WriteByte(c)
		case c == '^' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
		case c == '&' && i > 0 && (line[i-1] == '>' || line[i-1] == '<'):
			cur.WriteByte(c)
		case c == '&' && i+1 < len(line) && line[i+1] == '&':
			i++
			flush("&&")
		case c == '&':
			flush("&")
		case c == '|' && i+1 < len(line) && line[i+1] == '|':
			i++
			flush("||")
		case c == '|':
			return nil, errPipe
		default:
			cur.WriteByte(c)
		}
	}
	flush("")
	return steps, nil
}

// redirection matches the redirections the interpreter emulates, at a
// position outside quotes: a stream sent to the other one or to nul, and
// input from nul.
var redirection = regexp.MustCompile(`^(?i)(?:([12]?)>(&[12]|nul\b)|<nul\b)`)

// streams are the standard streams of one command.
type streams struct {
	stdin          io.Reader
	stdout, stderr io.Writer
}

// redirect removes the redirections from a command's text, left to right
// as cmd.exe applies them, and returns the text and the streams they
// leave. Spaces around a redirection stay, as they do in cmd.exe.
func redirect(text string, s streams) (string, streams, error) {
	var out strings.Builder
	quoted := false
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '"' {
			quoted = !quoted
		}
		wordStart := i == 0 || text[i-1] == ' ' || text[i-1] == '\t'
		if quoted || (c != '>' && c != '<' && !wordStart) {
			out.WriteByte(c)
			continue
		}
		m := redirection.FindStringSubmatch(text[i:])
		switch {
		case m == nil && (c == '>' || c == '<'):
			return "", s, fmt.Errorf("redirection in %q is not emulated", strings.TrimSpace(text))
		case m == nil:
			out.WriteByte(c)
			continue
		case strings.EqualFold(m[0], "<nul"):
			s.stdin = strings.NewReader("")
		case m[1] == "2" && m[2] == "&1":
			s.stderr = s.stdout
		case m[1] == "2" && m[2] == "&2":
			// 2>&2 changes nothing.
		case m[1] == "2":
			s.stderr = io.Discard
		case m[2] == "&2":
			s.stdout = s.stderr
		case m[2] == "&1":
			// 1>&1 changes nothing.
		default:
			s.stdout = io.Discard
		}
		i += len(m[0]) - 1
	}
	return out.String(), s, nil
}

// delayedExpansion emulates cmd.exe's delayed expansion phase on one
// command, which runs only when the command holds a '!': a caret makes
// the next character literal and is removed, inside double quotes too;
// !NAME! is replaced by the variable NAME, and a '!' without a partner is
// removed. The host has no variables, so every !NAME! expands to nothing,
// as an undefined variable does in a batch file.
func delayedExpansion(text string) string {
	if !strings.Contains(text, "!") {
		return text
	}
	var out strings.Builder
	for i := 0; i < len(text); i++ {
		switch c := text[i]; c {
		case '^':
			if i+1 < len(text) {
				i++
				out.WriteByte(text[i])
			}
		case '!':
			if j := strings.IndexByte(text[i+1:], '!'); j >= 0 {
				i += j + 1 // !NAME! is undefined: nothing
			}
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

// cmdExe is a cmd.exe process command line, parsed.
type cmdExe struct {
	line    string // the command after /c, outer quotes removed as cmd.exe does
	delayed bool
	err     error
}

// parseCmdExe recognises a process command line that starts cmd.exe and
// reads its switches: /d, /q, /s, /v:on, /v:off (else the registry's
// setting, defaultDelayed), then /c and the command. With /s exactly the
// first and the last double quote of the command are removed. Without
// /s the quotes stay when there are exactly two (the case of a quoted
// program name); otherwise the first and last are removed.
func parseCmdExe(line string, defaultDelayed bool) (cmdExe, bool) {
	name, rest, _ := strings.Cut(line, " ")
	base := strings.ToLower(strings.Trim(name, `"`))
	base = base[strings.LastIndexAny(base, `\/`)+1:]
	if base != "cmd.exe" && base != "cmd" {
		return cmdExe{}, false
	}
	c := cmdExe{delayed: defaultDelayed}
	strip := false
	for {
		rest = strings.TrimLeft(rest, " \t")
		sw, after, _ := strings.Cut(rest, " ")
		switch strings.ToLower(sw) {
		case "/d", "/q":
		case "/s":
			strip = true
		case "/v:on":
			c.delayed = true
		case "/v:off":
			c.delayed = false
		case "/c":
			c.line = after
			if n := strings.Count(after, `"`); strip || (n != 2 && n > 0) {
				if i := strings.IndexByte(after, '"'); i >= 0 {
					after = after[:i] + after[i+1:]
				}
				if i := strings.LastIndexByte(after, '"'); i >= 0 {
					after = after[:i] + after[i+1:]
				}
				c.line = after
			}
			return c, true
		default:
			c.err = fmt.Errorf("cmd.exe switch %q is not emulated", sw)
			return c, true
		}
		rest = after
	}
}

// runCmdLine emulates cmd.exe /c line: the commands joined by & (always
// run the next), && (run it after success) and || (after failure), each
// with its redirections, in a working directory that cd /d changes. The
// status is the last command's; exit ends the line at once. Nothing more
// runs once ctx ends: the process was terminated.
func (h *FakeHost) runCmdLine(ctx context.Context, line string, delayed bool, std streams) int {
	steps, err := splitCmdLine(line)
	if err != nil {
		say(std.stderr, "FakeHost: %v\r\n", err)
		return 1
	}
	dir, code := "", 0
	for _, st := range steps {
		if ctx.Err() != nil {
			return 1
		}
		if (st.op == "&&" && code != 0) || (st.op == "||" && code == 0) {
			continue
		}
		text := st.text
		if delayed {
			text = delayedExpansion(text)
		}
		text, s, err := redirect(text, std)
		if err != nil {
			say(std.stderr, "FakeHost: %v\r\n", err)
			return 1
		}
		text = strings.TrimLeft(text, " \t")
		name, args, _ := strings.Cut(text, " ")
		if strings.EqualFold(name, "cd") && strings.TrimSpace(args) != "" {
			code = h.chdir(&dir, args, s.stderr)
			continue
		}
		code = h.runProgram(ctx, &Invocation{Shell: "cmd", Dir: dir, Stdin: s.stdin, Stdout: s.stdout, Stderr: s.stderr}, text)
		if strings.EqualFold(name, "exit") {
			return code
		}
	}
	return code
}

// chdir emulates cd [/d] <dir>: the directory must exist.
func (h *FakeHost) chdir(dir *string, args string, stderr io.Writer) int {
	args = strings.TrimSpace(args)
	if len(args) >= 2 && strings.EqualFold(args[:2], "/d") {
		args = strings.TrimSpace(args[2:])
	}
	p := h.resolve(*dir, strings.Trim(args, `"`))
	if !h.isDir(p) {
		say(stderr, "The system cannot find the path specified.\r\n")
		return 1
	}
	*dir = p
	return 0
}
