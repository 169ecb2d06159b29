package remote

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// fuzzShells maps the fuzzer's shell byte to a shell.
var fuzzShells = [...]Shell{ShellPOSIX, ShellPowerShell, ShellCmd}

// expectedWords returns what the rendered command must hold, token by
// token: operators as written for the shell and words as the program
// receives them. It follows the rules of the package comment.
func expectedWords(template string, opts RenderOptions) []string {
	toks, _ := lex(template, opts.Shell, true)
	cmds, _ := parse(toks, opts.Shell)
	var out []string
	for _, c := range cmds {
		for _, it := range c.items {
			if it.role == roleOp {
				out = append(out, it.tok.op)
				continue
			}
			var b strings.Builder
			for _, seg := range it.tok.segs {
				if seg.variable {
					b.WriteString(opts.Values[seg.text].Text)
				} else {
					b.WriteString(seg.text)
				}
			}
			text := b.String()
			if it.role == roleProgram {
				if rel, ok := packagePath(text, opts.Shell, opts.IsPackageFile); ok {
					text = packageCommand(rel, opts.Shell)
				}
				if opts.Shell == ShellPowerShell {
					out = append(out, "&")
				}
			}
			out = append(out, text)
		}
		switch {
		case c.sep.op == ";" && opts.Shell == ShellCmd:
			out = append(out, "&")
		case c.sep.op != "":
			out = append(out, c.sep.op)
		}
	}
	return out
}

// shWords splits a rendered sh command as sh does (for the subset Render
// writes: bare words, single quotes, backslashes, operators).
func shWords(s string) ([]string, bool) {
	toks, problems := lex(s, ShellPOSIX, false)
	if len(problems) > 0 {
		return nil, false
	}
	var out []string
	for _, t := range toks {
		if t.op != "" {
			out = append(out, t.op)
			continue
		}
		var b strings.Builder
		for _, seg := range t.segs {
			b.WriteString(seg.text)
		}
		out = append(out, b.String())
	}
	return out, true
}

// psWords splits a rendered PowerShell command at the spaces outside
// single-quoted strings and decodes the strings. It reports false when a
// string is not closed or a bare word holds a character PowerShell would
// give a meaning.
func psWords(s string) ([]string, bool) {
	var out []string
	for len(s) > 0 {
		if s[0] == ' ' {
			s = s[1:]
			continue
		}
		r, size := utf8.DecodeRuneInString(s)
		if !isPowerShellSingleQuote(r) {
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			word := s[:end]
			if !isOperator(word, ShellPowerShell) && word != "&" && (!bareSafe(word, ShellPowerShell) || numericLike(word)) {
				return nil, false
			}
			out = append(out, word)
			s = s[end:]
			continue
		}
		var b strings.Builder
		closed := false
		for i := size; i < len(s); {
			r, n := utf8.DecodeRuneInString(s[i:])
			if isPowerShellSingleQuote(r) {
				r2, n2 := utf8.DecodeRuneInString(s[i+n:])
				if i+n < len(s) && isPowerShellSingleQuote(r2) {
					b.WriteString(s[i+n : i+n+n2])
					i += n + n2
					continue
				}
				s, closed = s[i+n:], true
				break
			}
			b.WriteString(s[i : i+n])
			i += n
		}
		if !closed {
			return nil, false
		}
		out = append(out, b.String())
	}
	return out, true
}

// cmdWords splits a rendered cmd.exe command at the spaces outside double
// quotes and removes the quotes. It reports false when quotes are not
// balanced or a bare word holds a character cmd.exe would give a meaning.
func cmdWords(s string) ([]string, bool) {
	var out []string
	for len(s) > 0 {
		switch s[0] {
		case ' ':
			s = s[1:]
		case '"':
			end := strings.IndexByte(s[1:], '"')
			if end < 0 {
				return nil, false
			}
			out = append(out, s[1:1+end])
			s = s[2+end:]
			if s != "" && s[0] != ' ' {
				return nil, false
			}
		default:
			end := strings.IndexByte(s, ' ')
			if end < 0 {
				end = len(s)
			}
			word := s[:end]
			if !isOperator(word, ShellCmd) && word != "&" && !bareSafe(word, ShellCmd) {
				return nil, false
			}
			out = append(out, word)
			s = s[end:]
		}
	}
	return out, true
}

// isOperator reports whether word is an operator of the template language.
func isOperator(word string, sh Shell) bool {
	for _, op := range operators {
		if op == word {
			return !unsupported(op, sh)
		}
	}
	return false
}

func FuzzRender(f *testing.F) {
	for _, tt := range hostileTests {
		for sh := range fuzzShells {
			f.Add(`args.sh -x ${V} "${V}" '${V}'`, tt.value, false, byte(sh))
		}
	}
	f.Add(`/dir/my.cmd ${V} > log.txt 2>&1; echo done`, "a b", true, byte(2))
	f.Add(`a && b || c | d < e >> f 2>> g >&2`, "", false, byte(0))
	f.Add(`x \${V} "\"" 'it''s' ${`, "v", false, byte(0))
	f.Fuzz(func(t *testing.T, template, value string, secret bool, shell byte) {
		sh := fuzzShells[int(shell)%len(fuzzShells)]
		vals := map[string]Value{"V": {Text: value, Secret: secret}}
		names, _ := Variables(template)
		for _, n := range names {
			vals[n] = Value{Text: value, Secret: secret}
		}
		opts := RenderOptions{Shell: sh, Values: vals}
		r, err := Render(template, opts)
		if err != nil {
			var re *RenderError
			if !errors.As(err, &re) || len(re.Problems) == 0 {
				t.Fatalf("Render error %v is not a *RenderError with problems", err)
			}
			return
		}
		if secret && value != "" && !strings.Contains(value, "*") && strings.Contains(r.Masked, value) {
			t.Fatalf("Masked %q holds the secret %q", r.Masked, value)
		}
		if strings.IndexByte(r.Command, 0) >= 0 {
			t.Fatalf("Command %q holds NUL", r.Command)
		}
		var got []string
		var ok bool
		switch sh {
		case ShellPOSIX:
			got, ok = shWords(r.Command)
		case ShellPowerShell:
			got, ok = psWords(r.Command)
		case ShellCmd:
			if len(names) > 0 && strings.ContainsAny(value, cmdRefused) {
				t.Fatalf("cmd.exe render accepted value %q: %s", value, r.Command)
			}
			if strings.ContainsAny(r.Command, "\r\n\x00") {
				t.Fatalf("cmd.exe command %q holds a line break", r.Command)
			}
			got, ok = cmdWords(r.Command)
		}
		if !ok {
			t.Fatalf("%s command %q does not split back into words", sh, r.Command)
		}
		want := expectedWords(template, opts)
		if sh == ShellCmd {
			// Trailing backslashes of arguments may be doubled.
			for i := range min(len(got), len(want)) {
				if got[i] != want[i] && got[i] == doubleTrailingBackslashes(want[i]) {
					got[i] = want[i]
				}
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("%s: template %q value %q rendered %s (-want +got):\n%s", sh, template, value, r.Command, diff)
		}
	})
}
