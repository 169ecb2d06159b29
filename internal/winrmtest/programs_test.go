package winrmtest

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// runLine runs a cmd.exe line (shell "cmd") or a PowerShell command
// (shell "powershell") on h.
func runLine(ctx context.Context, h *FakeHost, shell, line, stdin string) (stdout, stderr string, code int) {
	cmd := &Command{Line: line, Stdin: strings.NewReader(stdin)}
	if shell == "powershell" {
		cmd.Line = "powershell.exe -EncodedCommand x"
		cmd.Script = "try {\n#region command\n" + line + "\n#endregion command\n} catch {}\n"
	}
	var o, e bytes.Buffer
	code = h.ServeCommand(ctx, cmd, &o, &e)
	return o.String(), e.String(), code
}

func TestFakeHostCmdLine(t *testing.T) {
	t.Parallel()
	h := NewFakeHost(FakeHostOptions{})
	h.WriteFile(`C:\a\f.txt`, []byte("f"))
	h.MkdirAll(`C:\a\empty`)
	tests := []struct {
		shell, line, stdin     string
		stdout, stderr         string
		code                   int
		wantFile, wantFileData string
	}{
		{line: `echo out& 1>&2 echo err& echo last`, stdout: "out\r\nlast\r\n", stderr: "err\r\n"},
		{line: `echo kept space & echo b`, stdout: "kept space \r\nb\r\n"},
		{line: `echo "a & b" ^& c`, stdout: "\"a & b\" & c\r\n"},
		{line: `echo quiet >nul& 2>nul type missing& 2>&1 type missing`, stdout: "The system cannot find the file specified.\r\n", code: 1},
		{line: `<nul set /p "=no newline"`, stdin: "ignored\r\n", stdout: "no newline", code: 1},
		{line: `set /p "=prompt"`, stdin: "answer\r\n", stdout: "prompt"},
		{line: `exit /b 3& echo never`, code: 3},
		{line: `type missing && echo never`, stderr: "The system cannot find the file specified.\r\n", code: 1},
		{line: `type missing || echo instead`, stdout: "instead\r\n", stderr: "The system cannot find the file specified.\r\n"},
		{line: `cd /d "C:\a" && cd& type f.txt& cd empty& cd`, stdout: "C:\\a\r\nfC:\\a\\empty\r\n"},
		{line: `cd /d "C:\a\f.txt" && echo never`, stderr: "The system cannot find the path specified.\r\n", code: 1},
		{line: `mkdir "C:\b\with space"&& mkdir "C:\b"`, stderr: "A subdirectory or file C:\\b already exists.\r\n", code: 1},
		{line: `fsutil file createnew "C:\a\z" 3 >nul&& type "C:\a\z"`, stdout: "\x00\x00\x00", wantFile: `C:\a\z`, wantFileData: "\x00\x00\x00"},
		{line: `fsutil file createnew "C:\a\z" 3`, stderr: "Error:  The file exists.\r\n", code: 1},
		{line: `echo a | more`, stderr: "FakeHost: pipes between programs are not emulated\r\n", code: 1},
		{line: `echo a >file.txt`, stderr: "FakeHost: redirection in \"echo a >file.txt\" is not emulated\r\n", code: 1},
		{shell: "powershell", line: `Test-Path -LiteralPath 'C:\A\F.TXT'`, stdout: "True\r\n"},
		{shell: "powershell", line: `Test-Path -LiteralPath 'C:\a\it''s'`, stdout: "False\r\n"},
		{shell: "powershell", line: `Get-ChildItem -LiteralPath 'C:\a' -Recurse -Force -File -Name`, stdout: "f.txt\r\nz\r\n"},
		{shell: "powershell", line: `Get-ChildItem -LiteralPath 'C:\' -Recurse -Force -Directory -Name`, stdout: "a\r\na\\empty\r\nb\r\nb\\with space\r\n"},
		{shell: "powershell", line: `Get-ChildItem -LiteralPath 'C:\a' -Name`, stdout: "empty\r\nf.txt\r\nz\r\n"},
		{shell: "powershell", line: `Get-ChildItem -LiteralPath 'C:\a'`, stderr: "FakeHost: Get-ChildItem -LiteralPath 'C:\\a' is not emulated\r\n", code: 1},
		{shell: "powershell", line: "[Console]::OpenStandardInput().CopyTo([Console]::OpenStandardOutput())", stdin: "\x00\xff\r\n", stdout: "\x00\xff\r\n"},
	}
	for _, tt := range tests {
		shell := tt.shell
		if shell == "" {
			shell = "cmd"
		}
		stdout, stderr, code := runLine(t.Context(), h, shell, tt.line, tt.stdin)
		if stdout != tt.stdout || stderr != tt.stderr || code != tt.code {
			t.Errorf("%s %q = %q, %q, %d; want %q, %q, %d", shell, tt.line, stdout, stderr, code, tt.stdout, tt.stderr, tt.code)
		}
		if tt.wantFile == "" {
			continue
		}
		if data, ok := h.ReadFile(tt.wantFile); !ok || string(data) != tt.wantFileData {
			t.Errorf("%q: %s holds %q (exists %v), want %q", tt.line, tt.wantFile, data, ok, tt.wantFileData)
		}
	}
}

func TestFakeHostProcesses(t *testing.T) {
	t.Parallel()
	h := NewFakeHost(FakeHostOptions{})
	ctx, cancel := context.WithCancel(t.Context())
	var w signalBuffer
	w.started = make(chan struct{})
	done := make(chan int)
	go func() {
		done <- h.ServeCommand(ctx, &Command{Line: "echo started& ping -n 4000000000 127.0.0.1 >nul& echo never", Stdin: strings.NewReader("")}, &w, &w)
	}()
	<-w.started

	query := `Get-CimInstance Win32_Process -Filter "CommandLine LIKE '%PING -n 4000000000 %'" | Select-Object -ExpandProperty CommandLine`
	stdout, stderr, code := runLine(t.Context(), h, "powershell", query, "")
	want := "cmd.exe /c echo started& ping -n 4000000000 127.0.0.1 >nul& echo never\r\nping -n 4000000000 127.0.0.1\r\n"
	if stdout != want || stderr != "" || code != 0 {
		t.Fatalf("query while running = %q, %q, %d; want %q", stdout, stderr, code, want)
	}

	cancel()
	<-done
	if stdout, _, _ := runLine(t.Context(), h, "powershell", query, ""); stdout != "" {
		t.Errorf("query after the command was terminated = %q, want nothing", stdout)
	}
	if w.String() != "started\r\n" {
		t.Errorf("output %q: the line went on after termination", w.String())
	}
	var got []string
	for _, p := range h.Killed() {
		got = append(got, p.CommandLine)
	}
	if diff := cmp.Diff([]string{"ping -n 4000000000 127.0.0.1", "cmd.exe /c echo started& ping -n 4000000000 127.0.0.1 >nul& echo never"}, got); diff != "" {
		t.Errorf("killed processes (-want +got):\n%s", diff)
	}
	// Finished processes are gone and not counted as killed; the query
	// itself is a cmdlet, not a process.
	if ps := h.Processes(); len(ps) != 0 {
		t.Errorf("processes left: %v", ps)
	}
	if n := len(h.Killed()); n != 2 {
		t.Errorf("%d killed processes, want 2", n)
	}
}

// signalBuffer collects output and closes started on the first write.
type signalBuffer struct {
	bytes.Buffer
	started chan struct{}
}

func (b *signalBuffer) Write(p []byte) (int, error) {
	if b.Len() == 0 {
		defer close(b.started)
	}
	return b.Buffer.Write(p)
}
