package winrmtest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestCmdExeRules(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		process string // a process command line started with WINRS_SKIP_CMD_SHELL
		delayed bool   // the registry's setting
		want    string // the text of the single command, after both phases
	}{
		{"caret outside quotes escapes", `cmd.exe /c echo a^&b`, false, `echo a&b`},
		{"caret inside quotes is text", `cmd.exe /c echo "a^&b"`, false, `echo "a^&b"`},
		{"bang is text without delayed expansion", `cmd.exe /c echo "a!x!b" !`, false, `echo "a!x!b" !`},
		{"registry turns delayed expansion on", `cmd.exe /c echo "a!x!b"`, true, `echo "ab"`},
		{"/v:off wins over the registry", `cmd.exe /v:off /c echo "a!x!b^"`, true, `echo "a!x!b^"`},
		{"/v:on: a caret escapes inside quotes", `cmd.exe /v:on /c echo "a^!b^^"`, false, `echo "a!b^"`},
		{"/v:on: a lone bang is removed", `cmd.exe /v:on /c echo "a!b"`, false, `echo "ab"`},
		{"/v:on: no bang, no caret phase", `cmd.exe /v:on /c echo "a^b"`, false, `echo "a^b"`},
		{"/s strips the outer quotes", `cmd.exe /d /v:off /s /c "prog "a b" "c""`, true, `prog "a b" "c"`},
		{"without /s two quotes stay", `cmd.exe /c "prog" x`, false, `"prog" x`},
	}
	for _, tt := range tests {
		c, ok := parseCmdExe(tt.process, tt.delayed)
		if !ok || c.err != nil {
			t.Errorf("%s: parseCmdExe = %+v, %v", tt.name, c, ok)
			continue
		}
		steps, err := splitCmdLine(c.line)
		if err != nil || len(steps) != 1 {
			t.Errorf("%s: splitCmdLine(%q) = %+v, %v", tt.name, c.line, steps, err)
			continue
		}
		got := steps[0].text
		if c.delayed {
			got = delayedExpansion(got)
		}
		if got != tt.want {
			t.Errorf("%s: %q runs %q, want %q", tt.name, tt.process, got, tt.want)
		}
	}
	if _, ok := parseCmdExe(`powershell.exe -NoProfile`, false); ok {
		t.Errorf("powershell.exe taken for cmd.exe")
	}
	if c, _ := parseCmdExe(`cmd.exe /k dir`, false); c.err == nil {
		t.Errorf("cmd.exe /k accepted; it is not emulated")
	}
}

func TestSplitArgs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []string
	}{
		{`a b`, []string{"a", "b"}},
		{`"a b" c`, []string{"a b", "c"}},
		{`""`, []string{""}},
		{`"C:\dir\\"`, []string{`C:\dir\`}},
		{`C:\a\b`, []string{`C:\a\b`}},
		{`a\"b`, []string{`a"b`}},
		{`a\\\"b`, []string{`a\"b`}},
		{`"a""b"`, []string{`a"b`}},
		{`"a^!&b"`, []string{`a^!&b`}},
		{"  x\t y ", []string{"x", "y"}},
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, SplitArgs(tt.in)); diff != "" {
			t.Errorf("SplitArgs(%q) (-want +got):\n%s", tt.in, diff)
		}
	}
}
