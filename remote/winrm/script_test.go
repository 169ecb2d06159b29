package winrm

import (
	"errors"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
)

func TestCommandLine(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cmd     remote.Cmd
		want    string // exact line, or prefix for PowerShell
		wantErr error
	}{
		{name: "cmd in dir", cmd: remote.Cmd{Shell: remote.ShellCmd, Dir: `C:\p q\1.0`, Command: `setup.exe /S "a b"`},
			want: `cmd.exe /d /v:off /s /c "cd /d "C:\p q\1.0" && setup.exe /S "a b""`},
		{name: "cmd without dir", cmd: remote.Cmd{Shell: remote.ShellCmd, Command: "ver"}, want: `cmd.exe /d /v:off /s /c "ver"`},
		{name: "empty shell is cmd", cmd: remote.Cmd{Command: "ver"}, want: `cmd.exe /d /v:off /s /c "ver"`},
		{name: "dir with percent", cmd: remote.Cmd{Shell: remote.ShellCmd, Dir: `C:\%PATH%`, Command: "ver"},
			wantErr: remote.ErrUnsafeValue},
		{name: "dir with quote", cmd: remote.Cmd{Shell: remote.ShellCmd, Dir: `C:\a"b`, Command: "ver"},
			wantErr: remote.ErrUnsafeValue},
		{name: "cdata end", cmd: remote.Cmd{Shell: remote.ShellCmd, Command: "echo ]]>"}, wantErr: remote.ErrUnsafeValue},
		{name: "newline", cmd: remote.Cmd{Shell: remote.ShellCmd, Command: "echo a\r\necho b"}, wantErr: remote.ErrUnsafeValue},
		{name: "posix", cmd: remote.Cmd{Shell: remote.ShellPOSIX, Command: "true"}, wantErr: remote.ErrUnsafeValue},
		{name: "powershell", cmd: remote.Cmd{Shell: remote.ShellPowerShell, Command: "Get-Date"}, want: powerShellPrefix},
		{name: "powershell multi-line is fine", cmd: remote.Cmd{Shell: remote.ShellPowerShell, Command: "a\nb"}, want: powerShellPrefix},
		{name: "too long", cmd: remote.Cmd{Shell: remote.ShellPowerShell, Command: strings.Repeat("x", 4000)},
			wantErr: errCommandTooLong},
	}
	for _, tt := range tests {
		got, err := commandLine(&tt.cmd)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("%s: err = %v, want %v", tt.name, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if tt.cmd.Shell == remote.ShellPowerShell {
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("%s: line %q lacks prefix %q", tt.name, got, tt.want)
			}
			script, err := winrmtest.DecodeScript(strings.TrimPrefix(got, powerShellPrefix))
			if err != nil || script != userScript(tt.cmd.Dir, tt.cmd.Command) {
				t.Errorf("%s: -EncodedCommand decodes to %q, %v", tt.name, script, err)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%s: line = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestEncodePowerShellRoundTrip(t *testing.T) {
	t.Parallel()
	for _, script := range []string{"", "Get-Date", "Write-Output 'hé ☃ 𝄞'\n$x = \"`t\"", strings.Repeat("ab", 1000)} {
		line := encodePowerShell(script)
		got, err := winrmtest.DecodeScript(strings.TrimPrefix(line, powerShellPrefix))
		if err != nil || got != script {
			t.Errorf("round trip of %q = %q, %v", script, got, err)
		}
	}
}

func TestPackageDir(t *testing.T) {
	t.Parallel()
	got, err := PackageDir("6f1c2a8e-0d4b-4c1e-9a57-2f5d1b7e3c90", "1.2.0")
	if want := `C:\ProgramData\packflow\packages\6f1c2a8e-0d4b-4c1e-9a57-2f5d1b7e3c90\1.2.0`; err != nil || got != want {
		t.Errorf("PackageDir = %q, %v; want %q", got, err, want)
	}
	for _, bad := range [][2]string{{"", "1"}, {"u", ""}, {"..", "1"}, {"u", `1\..`}, {"u", "a/b"}, {"u", "x:y"}, {"u", "a\nb"}} {
		if _, err := PackageDir(bad[0], bad[1]); !errors.Is(err, remote.ErrUnsafeValue) {
			t.Errorf("PackageDir(%q, %q) = %v, want remote.ErrUnsafeValue", bad[0], bad[1], err)
		}
	}
}

func TestOptionsDefaults(t *testing.T) {
	t.Parallel()
	o, err := Options{Host: "h", User: "u"}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Port != DefaultHTTPSPort || o.Auth != AuthBasic || o.MaxEnvelopeSize != DefaultMaxEnvelopeSize || o.Insecure {
		t.Errorf("defaults = port %d auth %s envelope %d insecure %v", o.Port, o.Auth, o.MaxEnvelopeSize, o.Insecure)
	}
	if got := o.stdinChunk(); got != 380928 {
		t.Errorf("stdinChunk = %d, want 380928 ((500 KiB − 4 KiB) × 3/4)", got)
	}
	for _, bad := range []Options{
		{User: "u"},
		{Host: "h", User: "u", PlainHTTP: true},
		{Host: "h", User: "u", PlainHTTP: true, Auth: AuthNTLM},
		{Host: "h"},
		{Host: "h", User: "u", Auth: "kerberos"},
		{Host: "h", User: "u", MaxEnvelopeSize: 1000},
		{Host: "h", User: "u", Port: 70000},
	} {
		if _, err := bad.withDefaults(); err == nil {
			t.Errorf("withDefaults(%+v) accepted", bad)
		}
	}
}

// TestPlainHTTPRefused checks that nothing but an explicit opt-out asks
// for plain HTTP, and that the opt-out is refused with a reason: Basic
// would send the password in clear, and NTLM message encryption is not
// implemented.
func TestPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	o, err := Options{Host: "h", User: "u", Password: "p"}.withDefaults()
	if err != nil || o.Port != DefaultHTTPSPort || o.PlainHTTP {
		t.Fatalf("zero options = port %d plain %v, %v; want HTTPS on %d", o.Port, o.PlainHTTP, err, DefaultHTTPSPort)
	}
	for auth, want := range map[Auth]string{AuthBasic: "password in clear", AuthNTLM: "NTLM message encryption"} {
		_, err := Dial(t.Context(), Options{Host: "127.0.0.1", User: "u", Password: "p", Auth: auth, PlainHTTP: true})
		if !errors.Is(err, ErrPlainHTTP) || !remote.Permanent(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s over plain HTTP: err = %v, want a final ErrPlainHTTP saying %q", auth, err, want)
		}
	}
	// A plain HTTP endpoint is never spoken to in clear: the client
	// insists on TLS and fails the handshake.
	plain := winrmtest.New(winrmtest.Options{})
	t.Cleanup(plain.Close)
	_, err = Dial(t.Context(), Options{Host: plain.Host, Port: plain.Port, User: winrmtest.DefaultUser, Password: winrmtest.DefaultPassword})
	if err == nil {
		t.Fatal("Dial of a plain HTTP endpoint succeeded")
	}
	if n := plain.Stats().Requests["Create"]; n != 0 {
		t.Errorf("the plain endpoint served %d shells", n)
	}
}

func TestInternalScriptsExact(t *testing.T) {
	t.Parallel()
	const tail = "} catch {\n    [Console]::Error.WriteLine($_.ToString())\n    exit 1\n}\n"
	const pre = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\ntry {\n"
	tests := map[string]struct{ got, want string }{
		"boottime": {bootTimeScript(), "# packflow:boottime\n" + pre +
			"    (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToUniversalTime().ToString('o')\n    exit 0\n" + tail},
		"reboot": {rebootScript(""), "# packflow:reboot\n" + pre + "    Restart-Computer -Force\n    exit 0\n" + tail},
		"remove": {removeScript(`C:\a'b`), "# packflow:remove\n$Path = 'C:\\a''b'\n" + pre +
			"    if (Test-Path -LiteralPath $Path) {\n        Remove-Item -LiteralPath $Path -Recurse -Force\n    }\n    exit 0\n" + tail},
	}
	for name, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s script:\n%s\nwant:\n%s", name, tt.got, tt.want)
		}
	}
}
