package remote

import (
	"errors"
	"testing"
)

// hostile lists values that try to escape their word. Each names what
// the three quoting functions must make of it; refused means QuoteCmd and
// a cmd.exe render must refuse it.
var hostileTests = []struct {
	name    string
	value   string
	posix   string
	ps      string
	cmd     string // empty: refused
	cmdExe  string // the word Render writes for an .exe argument, when not cmd
	nulDrop bool   // NUL: no shell can carry it
}{
	{name: "command substitution", value: "$(id)", posix: `'$(id)'`, ps: `'$(id)'`, cmd: `"$(id)"`},
	{name: "backticks", value: "`id`", posix: "'`id`'", ps: "'`id`'", cmd: "\"`id`\""},
	{name: "command separator", value: ";rm -rf /", posix: `';rm -rf /'`, ps: `';rm -rf /'`, cmd: `";rm -rf /"`},
	{name: "and or pipe", value: "a && b || c | d", posix: `'a && b || c | d'`, ps: `'a && b || c | d'`, cmd: `"a && b || c | d"`},
	{name: "single quote", value: "it's", posix: `'it'\''s'`, ps: `'it''s'`, cmd: `"it's"`},
	{name: "double quote", value: `say "hi"`, posix: `'say "hi"'`, ps: `'say "hi"'`},
	{name: "both quotes", value: `'"`, posix: `''\''"'`, ps: `'''"'`},
	{name: "quote breakout", value: `'; id; '`, posix: `''\''; id; '\'''`, ps: `'''; id; '''`, cmd: `"'; id; '"`},
	{name: "newline", value: "a\nb", posix: "'a\nb'", ps: "'a\nb'"},
	{name: "carriage return", value: "a\r\nid", posix: "'a\r\nid'", ps: "'a\r\nid'"},
	{name: "tab", value: "a\tb", posix: "'a\tb'", ps: "'a\tb'", cmd: "\"a\tb\""},
	{name: "unicode", value: "héllo wörld ✓ 日本", posix: "'héllo wörld ✓ 日本'", ps: "'héllo wörld ✓ 日本'", cmd: "\"héllo wörld ✓ 日本\""},
	{name: "typographic quotes", value: "\u2018x\u2019\u201a\u201b", posix: "'\u2018x\u2019\u201a\u201b'",
		ps: "'\u2018\u2018x\u2019\u2019\u201a\u201a\u201b\u201b'", cmd: "\"\u2018x\u2019\u201a\u201b\""},
	{name: "empty", value: "", posix: `''`, ps: `''`, cmd: `""`},
	{name: "leading dash", value: "-rf", posix: `'-rf'`, ps: `'-rf'`, cmd: `"-rf"`},
	{name: "reference", value: "${HOME}", posix: `'${HOME}'`, ps: `'${HOME}'`, cmd: `"${HOME}"`},
	{name: "powershell variable", value: "$env:PATH", posix: `'$env:PATH'`, ps: `'$env:PATH'`, cmd: `"$env:PATH"`},
	{name: "cmd variable", value: "%PATH%", posix: `'%PATH%'`, ps: `'%PATH%'`},
	{name: "delayed expansion", value: "!x!", posix: `'!x!'`, ps: `'!x!'`, cmd: `"!x!"`},
	{name: "caret", value: "a^&b", posix: `'a^&b'`, ps: `'a^&b'`, cmd: `"a^&b"`},
	{name: "cmd metacharacters", value: "a & b | c > d < e (f)", posix: `'a & b | c > d < e (f)'`,
		ps: `'a & b | c > d < e (f)'`, cmd: `"a & b | c > d < e (f)"`},
	{name: "trailing backslash", value: `C:\dir\`, posix: `'C:\dir\'`, ps: `'C:\dir\'`, cmd: `"C:\dir\"`, cmdExe: `"C:\dir\\"`},
	{name: "glob and tilde", value: "~/* ?[a]", posix: `'~/* ?[a]'`, ps: `'~/* ?[a]'`, cmd: `"~/* ?[a]"`},
	{name: "backslash escapes", value: `\'\"\\`, posix: `'\'\''\"\\'`, ps: `'\''\"\\'`},
	{name: "nul", value: "a\x00b", posix: "'a\x00b'", ps: "'a\x00b'", nulDrop: true},
}

func TestQuotePOSIX(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileTests {
		if got := QuotePOSIX(tt.value); got != tt.posix {
			t.Errorf("%s: QuotePOSIX(%q) = %q, want %q", tt.name, tt.value, got, tt.posix)
		}
	}
}

func TestQuotePowerShell(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileTests {
		if got := QuotePowerShell(tt.value); got != tt.ps {
			t.Errorf("%s: QuotePowerShell(%q) = %q, want %q", tt.name, tt.value, got, tt.ps)
		}
	}
	// Invalid UTF-8 passes through byte for byte.
	if got, want := QuotePowerShell("a\xffb"), "'a\xffb'"; got != want {
		t.Errorf("QuotePowerShell(invalid UTF-8) = %q, want %q", got, want)
	}
}

func TestQuoteCmd(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileTests {
		got, err := QuoteCmd(tt.value)
		if tt.cmd == "" {
			if !errors.Is(err, ErrUnsafeValue) {
				t.Errorf("%s: QuoteCmd(%q) = %q, %v; want ErrUnsafeValue", tt.name, tt.value, got, err)
			}
			continue
		}
		if err != nil || got != tt.cmd {
			t.Errorf("%s: QuoteCmd(%q) = %q, %v; want %q", tt.name, tt.value, got, err, tt.cmd)
		}
	}
}

// TestRenderHostile checks that Render quotes each hostile value as the
// quoting functions do, and refuses what cannot be carried.
func TestRenderHostile(t *testing.T) {
	t.Parallel()
	for _, tt := range hostileTests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vals := map[string]Value{"V": {Text: tt.value}}
			cases := []struct {
				shell  Shell
				prefix string
				want   string // empty: refused
			}{
				{ShellPOSIX, "prog ", tt.posix},
				{ShellPowerShell, "& 'prog' ", tt.ps},
				{ShellCmd, "prog.exe ", tt.cmd},
			}
			if tt.cmdExe != "" {
				cases[2].want = tt.cmdExe
			}
			for _, c := range cases {
				program := "prog"
				if c.shell == ShellCmd {
					program = "prog.exe"
				}
				got, err := Render(program+" ${V}", RenderOptions{Shell: c.shell, Values: vals})
				if c.want == "" || tt.nulDrop {
					if !errors.Is(err, ErrUnsafeValue) {
						t.Errorf("%s: Render = %q, %v; want ErrUnsafeValue", c.shell, got.Command, err)
					}
					continue
				}
				if err != nil || got.Command != c.prefix+c.want {
					t.Errorf("%s: Render = %q, %v; want %q", c.shell, got.Command, err, c.prefix+c.want)
				}
			}
		})
	}
}

func TestBareSafe(t *testing.T) {
	t.Parallel()
	tests := []struct {
		word           string
		posix, ps, cmd bool
	}{
		{"", false, false, false},
		{"install.sh", true, true, true},
		{"--name=x", true, true, false},
		{"a,b", true, false, false},
		{"@file", true, false, false},
		{"50%", true, false, false},
		{`dir\x`, false, true, true},
		{"a b", false, false, false},
		{"$x", false, false, false},
		{"*", false, false, false},
		{"é", false, false, false},
	}
	for _, tt := range tests {
		for sh, want := range map[Shell]bool{ShellPOSIX: tt.posix, ShellPowerShell: tt.ps, ShellCmd: tt.cmd} {
			if got := bareSafe(tt.word, sh); got != want {
				t.Errorf("bareSafe(%q, %s) = %v, want %v", tt.word, sh, got, want)
			}
		}
	}
}
