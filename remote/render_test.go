package remote

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// files returns an IsPackageFile that knows exactly names.
func files(names ...string) func(string) bool {
	return func(rel string) bool {
		for _, n := range names {
			if n == rel {
				return true
			}
		}
		return false
	}
}

func TestRender(t *testing.T) {
	t.Parallel()
	vals := map[string]Value{
		"Port":  {Text: "8080"},
		"Name":  {Text: "web 1"},
		"Quote": {Text: "it's"},
		"Sub":   {Text: "$(id)"},
		"Multi": ListValue("a", "b c"),
		"Pass":  {Text: "p'w", Secret: true},
		"Dir":   {Text: `C:\Program Files\App\`},
		"Meta":  {Text: "a & b | c <d> (e)"},
		"Smart": {Text: "\u2018x\u2019"},
		"Calc":  {Text: "$(calc)"},
	}
	tests := []struct {
		name     string
		shell    Shell
		template string
		isFile   func(string) bool
		want     string
	}{
		// POSIX sh.
		{"sh bare program stays on PATH", ShellPOSIX, `install.sh -p ${Port} --name "${Name}"`, nil,
			`install.sh -p '8080' --name 'web 1'`},
		{"sh package program", ShellPOSIX, `install.sh -p ${Port} --name "${Name}"`, files("install.sh"),
			`./install.sh -p '8080' --name 'web 1'`},
		{"sh leading slash is package root", ShellPOSIX, `/dir/my.cmd ${Port}`, nil, `./dir/my.cmd '8080'`},
		{"sh dot slash program", ShellPOSIX, `./run.sh`, files("run.sh"), `./run.sh`},
		{"sh absolute program not in package", ShellPOSIX, `/usr/bin/env python3 run.py`, files("run.py"),
			`/usr/bin/env python3 run.py`},
		{"sh path lookup with callback", ShellPOSIX, `bash -c 'echo hi; exit 3'`, files("x"), `bash -c 'echo hi; exit 3'`},
		{"sh operators", ShellPOSIX, `a && b || c | tee log > out 2>&1 < in ; d >> l 2> e 2>> f >&2;`, nil,
			`a && b || c | tee log > out 2>&1 < in ; d >> l 2> e 2>> f >&2`},
		{"sh operators without spaces", ShellPOSIX, `a;b|c>d`, nil, `a ; b | c > d`},
		{"sh 2> only at word start", ShellPOSIX, `echo x2>y 2>z`, nil, `echo x2 > y 2> z`},
		{"sh quoted operators are text", ShellPOSIX, `echo "a;b" 'c|d' e\&\&f`, nil, `echo 'a;b' 'c|d' 'e&&f'`},
		{"sh shell syntax is text", ShellPOSIX, `echo $HOME *.txt ~ #c & x`, nil, `echo '$HOME' '*.txt' '~' '#c' '&' x`},
		{"sh empty word", ShellPOSIX, `echo '' ""`, nil, `echo '' ''`},
		{"sh value inside a word", ShellPOSIX, `echo x${Name}y`, nil, `echo 'xweb 1y'`},
		{"sh value in single quotes", ShellPOSIX, `echo '${Sub}'`, nil, `echo '$(id)'`},
		{"sh value in double quotes", ShellPOSIX, `echo "n=${Quote}"`, nil, `echo 'n=it'\''s'`},
		{"sh escapes", ShellPOSIX, `echo a\ b "q\"\$\\" 'x\y'`, nil, `echo 'a b' 'q"$\' 'x\y'`},
		{"sh multiselect", ShellPOSIX, `echo ${Multi}`, nil, `echo 'a,b c'`},
		{"sh newlines separate words", ShellPOSIX, "echo a\n\tb\r\n", nil, `echo a b`},
		{"sh plain punctuation stays bare", ShellPOSIX, `x --a=b,c@d:e+f%g`, nil, `x --a=b,c@d:e+f%g`},

		// PowerShell.
		{"ps package script", ShellPowerShell, `/dir/my.ps1 -Name ${Name} -Count 3`, nil,
			`& '.\dir\my.ps1' -Name 'web 1' -Count '3'`},
		{"ps package script by callback", ShellPowerShell, `setup.ps1 ${Quote}`, files("setup.ps1"),
			`& '.\setup.ps1' 'it''s'`},
		{"ps backslash path", ShellPowerShell, `dir\my.ps1`, nil, `& '.\dir\my.ps1'`},
		{"ps drive letter is not a package path", ShellPowerShell, `C:\tools\x.exe ${Port}`, nil,
			`& 'C:\tools\x.exe' '8080'`},
		{"ps every command invoked", ShellPowerShell, `a.ps1 ${Calc}; Get-Date | Out-File log.txt 2>&1`, files("a.ps1"),
			`& '.\a.ps1' '$(calc)' ; & 'Get-Date' | & 'Out-File' log.txt 2>&1`},
		{"ps typographic quotes doubled", ShellPowerShell, `x ${Smart}`, nil, "& 'x' '\u2018\u2018x\u2019\u2019'"},
		{"ps numbers quoted", ShellPowerShell, `x 1kb -1 .5 0x10 v1`, nil, `& 'x' '1kb' '-1' '.5' '0x10' v1`},
		{"ps special characters quoted", ShellPowerShell, `x a,b @c $d`, nil, `& 'x' 'a,b' '@c' '$d'`},
		{"ps multiselect", ShellPowerShell, `x ${Multi}`, nil, `& 'x' 'a,b c'`},
		{"ps call operator in template", ShellPowerShell, `& .\setup.ps1 ${Quote}; . /x.ps1`, nil,
			`& '.\setup.ps1' 'it''s' ; & '.\x.ps1'`},
		{"ps spaces inside braces", ShellPowerShell, `x ${ Port }`, nil, `& 'x' '8080'`},

		// cmd.exe.
		{"cmd package script", ShellCmd, `/dir/my.cmd ${Port}`, nil, `"dir\my.cmd" "8080"`},
		{"cmd root script", ShellCmd, `install.cmd /S /D=${Dir}`, files("install.cmd"),
			`".\install.cmd" /S "/D=C:\Program Files\App\"`},
		{"cmd exe doubles trailing backslashes", ShellCmd, `tool.exe ${Dir}`, nil, `tool.exe "C:\Program Files\App\\"`},
		{"cmd metacharacters inside quotes", ShellCmd, `tool.exe ${Meta}`, nil, `tool.exe "a & b | c <d> (e)"`},
		{"cmd semicolon runs in turn", ShellCmd, `a.cmd ; b.cmd && c || d | e > f >> g < h 2> i 2>&1`, nil,
			`a.cmd & b.cmd && c || d | e > f >> g < h 2> i 2>&1`},
		{"cmd delimiters quoted", ShellCmd, `echo a=b,c x;y`, nil, `echo "a=b,c" x & y`},
		{"cmd template percent kept", ShellCmd, `echo %TEMP%`, nil, `echo "%TEMP%"`},
		{"cmd single quote value", ShellCmd, `echo ${Quote}`, nil, `echo "it's"`},
		{"cmd multiselect", ShellCmd, `echo ${Multi}`, nil, `echo "a,b c"`},
		{"cmd ampersand runs in turn", ShellCmd, `a.cmd & b.cmd&c &`, nil, `a.cmd & b.cmd & c`},
		{"sh ampersand is text", ShellPOSIX, `a & b&c`, nil, `a '&' 'b&c'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.template, RenderOptions{Shell: tt.shell, Values: vals, IsPackageFile: tt.isFile})
			if err != nil {
				t.Fatalf("Render(%q): %v", tt.template, err)
			}
			if got.Command != tt.want {
				t.Errorf("Render(%q).Command\n got %s\nwant %s", tt.template, got.Command, tt.want)
			}
			if got.Masked != got.Command {
				t.Errorf("Masked = %s, want it equal to Command when no secret is used", got.Masked)
			}
		})
	}
}

func TestRenderSecrets(t *testing.T) {
	t.Parallel()
	vals := map[string]Value{
		"User":   {Text: "admin"},
		"Pass":   {Text: "p'w", Secret: true},
		"Unused": {Text: "zzz", Secret: true},
		"Empty":  {Text: "", Secret: true},
	}
	tests := []struct {
		shell       Shell
		template    string
		wantCommand string
		wantMasked  string
		wantSecrets []string
	}{
		{ShellPOSIX, `login ${User} --pass=${Pass} "${Empty}"`,
			`login 'admin' '--pass=p'\''w' ''`, `login 'admin' '--pass=********' ''`,
			[]string{"p'\\''w", "p'w", "zzz"}},
		{ShellPowerShell, `login ${User} ${Pass}`,
			`& 'login' 'admin' 'p''w'`, `& 'login' 'admin' '********'`,
			[]string{"p''w", "p'w", "zzz"}},
		{ShellCmd, `login ${User} ${Pass}`,
			`login "admin" "p'w"`, `login "admin" "********"`,
			[]string{"p'w", "zzz"}},
		// A secret that also appears as template text is masked there too.
		{ShellPOSIX, `echo zzz ${User}`, `echo zzz 'admin'`, `echo ******** 'admin'`,
			[]string{"p'\\''w", "p'w", "zzz"}},
	}
	for _, tt := range tests {
		got, err := Render(tt.template, RenderOptions{Shell: tt.shell, Values: vals})
		if err != nil {
			t.Fatalf("Render(%q, %s): %v", tt.template, tt.shell, err)
		}
		want := Rendered{Command: tt.wantCommand, Masked: tt.wantMasked, Secrets: tt.wantSecrets}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Render(%q, %s) (-want +got):\n%s", tt.template, tt.shell, diff)
		}
		masked := NewMasker(got.Secrets...).Mask(got.Command)
		if strings.Contains(masked, "p'") {
			t.Errorf("masking Command with Secrets leaves %s", masked)
		}
	}
}

// problemKey is what TestRenderErrors compares of a RenderProblem.
type problemKey struct{ Rule, Variable string }

func keys(err error) []problemKey {
	var re *RenderError
	if !errors.As(err, &re) {
		return nil
	}
	var out []problemKey
	for _, p := range re.Problems {
		out = append(out, problemKey{p.Rule, p.Variable})
	}
	return out
}

func TestRenderErrors(t *testing.T) {
	t.Parallel()
	vals := map[string]Value{
		"A":      {Text: "ok"},
		"Pct":    {Text: "100%"},
		"Quote":  {Text: `say "hi"`},
		"Amp":    {Text: "a&b"},
		"Nul":    {Text: "a\x00b"},
		"LF":     {Text: "a\nb"},
		"Secret": {Text: "s3cr3t%", Secret: true},
	}
	tests := []struct {
		name     string
		shell    Shell
		template string
		want     []problemKey
		unsafe   bool // the error must match ErrUnsafeValue
		invalid  bool // the error must match ErrInvalidTemplate
	}{
		{"unknown variable", ShellPOSIX, `x ${Nope}`, []problemKey{{RuleUnknownVariable, "Nope"}}, false, true},
		{"unknown variables once each", ShellPOSIX, `x ${B} ${B} ${C}`,
			[]problemKey{{RuleUnknownVariable, "B"}, {RuleUnknownVariable, "C"}}, false, true},
		{"unclosed variable", ShellPOSIX, `x ${A`, []problemKey{{RuleUnclosedVariable, ""}}, false, true},
		{"empty variable name", ShellPOSIX, `x ${}`, []problemKey{{RuleInvalidVariable, ""}}, false, true},
		{"bad variable name", ShellCmd, `x ${a b}`, []problemKey{{RuleInvalidVariable, "a b"}}, false, true},
		{"unclosed single quote", ShellPOSIX, `x 'abc`, []problemKey{{RuleUnclosedQuote, ""}}, false, true},
		{"unclosed double quote", ShellPowerShell, `x "abc`, []problemKey{{RuleUnclosedQuote, ""}}, false, true},
		{"trailing backslash", ShellPOSIX, `x \`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"escaped reference", ShellPOSIX, `x \${A}`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"escaped reference in double quotes", ShellPOSIX, `x "\${A}"`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"leading operator", ShellPOSIX, `; x`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"doubled operator", ShellPOSIX, `x && && y`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"trailing pipe", ShellPOSIX, `x |`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"redirection without file", ShellPOSIX, `x >`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"redirection without command", ShellPOSIX, `> out`, []problemKey{{RuleSyntax, ""}}, false, true},
		{"empty", ShellCmd, " \t", []problemKey{{RuleSyntax, ""}}, false, true},
		{"ps and", ShellPowerShell, `a && b`, []problemKey{{RuleUnsupportedOperator, ""}}, false, true},
		{"ps input", ShellPowerShell, `a < in`, []problemKey{{RuleUnsupportedOperator, ""}}, false, true},
		{"cmd percent", ShellCmd, `x ${Pct}`, []problemKey{{RuleUnsafeValue, "Pct"}}, true, false},
		{"cmd quote", ShellCmd, `x ${Quote}`, []problemKey{{RuleUnsafeValue, "Quote"}}, true, false},
		{"cmd newline", ShellCmd, `x "${LF}"`, []problemKey{{RuleUnsafeValue, "LF"}}, true, false},
		{"cmd template quote", ShellCmd, `echo 'a"b'`, []problemKey{{RuleUnsafeTemplate, ""}}, false, true},
		{"sh nul", ShellPOSIX, `x ${Nul}`, []problemKey{{RuleUnsafeValue, "Nul"}}, true, false},
		{"ps nul", ShellPowerShell, `x ${Nul}`, []problemKey{{RuleUnsafeValue, "Nul"}}, true, false},
		{"ps batch ampersand", ShellPowerShell, `run.cmd ${Amp}`, []problemKey{{RuleUnsafeValue, "Amp"}}, true, false},
		{"ps cmd.exe ampersand", ShellPowerShell, `C:\Windows\System32\CMD.EXE /c run.cmd ${Amp}`, []problemKey{{RuleUnsafeValue, "Amp"}}, true, false},
		{"ps cmd ampersand", ShellPowerShell, `cmd /c run.cmd ${Amp}`, []problemKey{{RuleUnsafeValue, "Amp"}}, true, false},
		{"every problem listed", ShellCmd, `x ${Pct} ${A} ${Missing} ${Quote} ${Pct}`,
			[]problemKey{{RuleUnsafeValue, "Pct"}, {RuleUnknownVariable, "Missing"}, {RuleUnsafeValue, "Quote"}}, true, true},
		{"secret refused", ShellCmd, `x ${Secret}`, []problemKey{{RuleUnsafeValue, "Secret"}}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := Render(tt.template, RenderOptions{Shell: tt.shell, Values: vals})
			if err == nil {
				t.Fatalf("Render(%q) = %q, want an error", tt.template, got.Command)
			}
			if diff := cmp.Diff(tt.want, keys(err)); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nerror: %v", diff, err)
			}
			if errors.Is(err, ErrUnsafeValue) != tt.unsafe {
				t.Errorf("errors.Is(%v, ErrUnsafeValue) = %v, want %v", err, !tt.unsafe, tt.unsafe)
			}
			if errors.Is(err, ErrInvalidTemplate) != tt.invalid {
				t.Errorf("errors.Is(%v, ErrInvalidTemplate) = %v, want %v", err, !tt.invalid, tt.invalid)
			}
			// Neither an unsafe value nor a bad template gets better by retrying.
			if want := tt.unsafe || tt.invalid; Permanent(err) != want {
				t.Errorf("Permanent(%v) = %v, want %v", err, !want, want)
			}
			if strings.Contains(err.Error(), "s3cr3t") {
				t.Errorf("error %q reveals a secret", err)
			}
		})
	}
}

func TestRenderAcceptsBatchValuesForScripts(t *testing.T) {
	t.Parallel()
	// The batch rules apply only when PowerShell starts a batch file.
	vals := map[string]Value{"V": {Text: `a&b "%x%"`}}
	got, err := Render(`run.ps1 ${V}`, RenderOptions{Shell: ShellPowerShell, Values: vals})
	if err != nil {
		t.Fatalf("Render: %v", err)
	}
	if want := `& 'run.ps1' 'a&b "%x%"'`; got.Command != want {
		t.Errorf("Command = %s, want %s", got.Command, want)
	}
}

func TestRenderUnknownShell(t *testing.T) {
	t.Parallel()
	_, err := Render("x", RenderOptions{Shell: "fish"})
	if !errors.Is(err, ErrInvalidTemplate) {
		t.Errorf("Render with an unknown shell: %v, want ErrInvalidTemplate", err)
	}
}

func TestVariables(t *testing.T) {
	t.Parallel()
	tests := []struct {
		template string
		want     []string
		wantErr  bool
	}{
		{`install.sh -p ${Port} --name "${Name}"`, []string{"Port", "Name"}, false},
		{`/dir/my.cmd ${My.Custom.Value} '${T3.Server.Name}' ${Port}${Port}`, []string{"My.Custom.Value", "T3.Server.Name", "Port"}, false},
		{`x ${install-ad.Domain_1}`, []string{"install-ad.Domain_1"}, false},
		{`x ${ Port } ${Port}`, []string{"Port"}, false},
		{`no variables $HOME {x}`, nil, false},
		{`x ${A} ${`, []string{"A"}, true},
		{`x ${a b}`, nil, true},
	}
	for _, tt := range tests {
		got, err := Variables(tt.template)
		if (err != nil) != tt.wantErr {
			t.Errorf("Variables(%q) error = %v, want error %v", tt.template, err, tt.wantErr)
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("Variables(%q) (-want +got):\n%s", tt.template, diff)
		}
	}
}

func TestCheckTemplate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		template string
		shell    Shell
		want     []problemKey
	}{
		{`install.sh ${Any} ${Other}`, ShellPOSIX, nil},
		{`install.cmd "${Any}"`, ShellCmd, nil},
		{`a && b`, ShellPowerShell, []problemKey{{RuleUnsupportedOperator, ""}}},
		{`echo 'a"b'`, ShellCmd, []problemKey{{RuleUnsafeTemplate, ""}}},
		{`x 'open`, ShellPOSIX, []problemKey{{RuleUnclosedQuote, ""}}},
	}
	for _, tt := range tests {
		err := CheckTemplate(tt.template, tt.shell)
		if diff := cmp.Diff(tt.want, keys(err)); diff != "" {
			t.Errorf("CheckTemplate(%q, %s) (-want +got):\n%s", tt.template, tt.shell, diff)
		}
	}
}
