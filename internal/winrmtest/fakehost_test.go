package winrmtest

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/google/go-cmp/cmp"
	"github.com/masterzen/winrm"
)

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, data := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(data)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// base64Lines encodes b as base64 lines of at most n raw bytes each.
func base64Lines(b []byte, n int) string {
	var s strings.Builder
	for len(b) > 0 {
		k := min(n, len(b))
		s.WriteString(base64.StdEncoding.EncodeToString(b[:k]) + "\r\n")
		b = b[k:]
	}
	return s.String()
}

func uploadScriptFor(dst, sum string) string {
	return "# packflow:upload\n$Destination = '" + dst + "'\n$Sha256 = '" + sum + "'\n$ErrorActionPreference = 'Stop'\n"
}

func serve(h *FakeHost, script, stdin string) (stdout, stderr string, code int) {
	var o, e bytes.Buffer
	code = h.ServeCommand(context.Background(), &Command{Script: script, Stdin: strings.NewReader(stdin)}, &o, &e)
	return o.String(), e.String(), code
}

func TestFakeHostUpload(t *testing.T) {
	t.Parallel()
	archive := zipOf(t, map[string]string{"a.txt": "A", "sub/b.txt": "B", "empty/": ""})
	sum := sha256.Sum256(archive)
	good := strings.ToUpper(hex.EncodeToString(sum[:]))

	tests := []struct {
		name     string
		archive  []byte
		sum      string
		wantCode int
		wantErr  string
		wantTree map[string][]byte
	}{
		{name: "reassembled", archive: archive, sum: strings.ToLower(good), wantTree: map[string][]byte{
			"a.txt": []byte("A"), "sub/": nil, "sub/b.txt": []byte("B"), "empty/": nil,
		}},
		{name: "hash mismatch", archive: archive, sum: strings.Repeat("0", 64), wantCode: 1, wantErr: "upload corrupted"},
		{name: "unsafe entry", archive: zipOf(t, map[string]string{"../evil.txt": "x"}), wantCode: 1, wantErr: "unsafe entry"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := NewFakeHost(FakeHostOptions{})
			sum := tt.sum
			if sum == "" {
				s := sha256.Sum256(tt.archive)
				sum = hex.EncodeToString(s[:])
			}
			_, stderr, code := serve(h, uploadScriptFor(`C:\dst`, sum), base64Lines(tt.archive, 100))
			if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
				t.Fatalf("code %d stderr %q; want %d and %q", code, stderr, tt.wantCode, tt.wantErr)
			}
			if tt.wantTree == nil {
				if h.Exists(`C:\dst`) {
					t.Errorf("destination created by a failed upload")
				}
				return
			}
			if diff := cmp.Diff(tt.wantTree, h.Tree(`c:\DST`), cmp.Comparer(bytes.Equal)); diff != "" {
				t.Errorf("tree (-want +got):\n%s", diff)
			}
			up := h.Uploads()[0]
			if up.ArchiveBytes != len(tt.archive) || up.Lines != (len(tt.archive)+99)/100 {
				t.Errorf("upload record %+v", up)
			}
		})
	}
}

func TestFakeHostRemoveAndPrograms(t *testing.T) {
	t.Parallel()
	h := NewFakeHost(FakeHostOptions{})
	h.WriteFile(`C:\a\b\c.txt`, []byte("c"))
	h.WriteFile(`C:\a\bb.txt`, []byte("bb"))

	stdout, _, code := serve(h, "", "")
	_ = stdout
	if code != 1 {
		t.Errorf("an empty script ran with code %d", code)
	}
	if _, _, code := serve(h, "# packflow:remove\n$Path = 'C:\\a\\b'\n", ""); code != 0 {
		t.Fatalf("remove: code %d", code)
	}
	if h.Exists(`C:\a\b\c.txt`) || h.Exists(`C:\a\b`) || !h.Exists(`C:\a\bb.txt`) {
		t.Errorf("remove took the wrong paths: %v", h.Tree(`C:\a`))
	}

	run := func(line string, stdin string) (string, string, int) {
		var o, e bytes.Buffer
		code := h.ServeCommand(context.Background(), &Command{Line: line, Stdin: strings.NewReader(stdin)}, &o, &e)
		return o.String(), e.String(), code
	}
	tests := []struct {
		line, stdin, stdout string
		code                int
	}{
		{line: `cd /d "C:\a" && type bb.txt`, stdout: "bb"},
		{line: `cd /d "C:\a" && cd`, stdout: "C:\\a\r\n"},
		{line: `cd /d "C:\missing" && cd`, code: 1},
		{line: `echo hello world`, stdout: "hello world\r\n"},
		{line: `exit /b 3`, code: 3},
		{line: `more`, stdin: "piped", stdout: "piped"},
		{line: `nosuch.exe`, code: 1},
	}
	for _, tt := range tests {
		stdout, _, code := run(tt.line, tt.stdin)
		if stdout != tt.stdout || code != tt.code {
			t.Errorf("%q = %q, %d; want %q, %d", tt.line, stdout, code, tt.stdout, tt.code)
		}
	}
}

func TestFakeHostReboot(t *testing.T) {
	t.Parallel()
	h := NewFakeHost(FakeHostOptions{RebootDelay: time.Millisecond, RebootDowntime: 50 * time.Millisecond})
	srv := New(Options{Handler: h, Down: h.Down})
	defer srv.Close()
	c := newClient(t, srv, DefaultUser, DefaultPassword)
	before := h.BootTime()

	_, _, code, err := c.RunCmdWithContext(t.Context(), encodedLine("# packflow:reboot\n$ErrorActionPreference = 'Stop'\ntry {\n    Restart-Computer -Force\n    exit 0\n} catch {\n}\n"))
	// The host may go down before the answer arrives: only a clean
	// failure is wrong.
	if err == nil && code != 0 {
		t.Fatalf("reboot script: code %d", code)
	}
	// Poll until the host is down, then until it is back: no timing is
	// asserted, only the order of events.
	for !h.Down() && h.Boots() == 0 {
		time.Sleep(time.Millisecond)
	}
	for h.Down() {
		// A command may succeed only because the host came back meanwhile.
		if _, _, _, err := c.RunCmdWithContext(t.Context(), "echo hi"); err == nil && h.Down() {
			t.Fatalf("a command ran while the host was down")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if h.Boots() != 1 || h.BootTime() == before {
		t.Fatalf("boots %d, boot time %s (was %s)", h.Boots(), h.BootTime(), before)
	}
	if srv.Stats().Dropped == 0 {
		t.Errorf("no connection dropped while down")
	}
	stdout, _, code, err := c.RunCmdWithContext(t.Context(), encodedLine("# packflow:boottime\n"))
	if err != nil || code != 0 || strings.TrimSpace(stdout) != h.BootTime() {
		t.Errorf("boot time = %q, %d, %v; want %s", stdout, code, err, h.BootTime())
	}
}

// encodedLine returns a powershell.exe command line carrying script.
func encodedLine(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 0, 2*len(u))
	for _, c := range u {
		b = append(b, byte(c), byte(c>>8))
	}
	return "powershell.exe -EncodedCommand " + base64.StdEncoding.EncodeToString(b)
}

func TestUnquotePowerShell(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: `''`, want: ``},
		{in: `'C:\it''s'`, want: `C:\it's`},
		{in: "'a\u2019\u2019b'", want: "a\u2019b"},
		{in: `'a'b'`, wantErr: true},
		{in: `'unterminated`, wantErr: true},
		{in: `"double"`, wantErr: true},
		{in: `'ends with quote'''`, want: `ends with quote'`},
	}
	for _, tt := range tests {
		got, err := unquotePowerShell(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("unquotePowerShell(%s) = %q, %v; want %q, err %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseEnvelopeFastPathMatchesDecoder(t *testing.T) {
	t.Parallel()
	p := winrm.DefaultParameters
	messages := map[string]string{
		"send":        winrm.NewSendInputRequest("http://h/wsman", "S", "C", bytes.Repeat([]byte("x"), 5000), false, p).String(),
		"send end":    winrm.NewSendInputRequest("http://h/wsman", "S", "C", nil, true, p).String(),
		"receive":     winrm.NewGetOutputRequest("http://h/wsman", "S", "C", "stdout stderr", p).String(),
		"command":     winrm.NewExecuteCommandRequest("http://h/wsman", "S", "echo <Stream>&", []string{"a"}, p).String(),
		"entity text": strings.Replace(winrm.NewSendInputRequest("http://h/wsman", "S", "C", []byte("hi"), false, p).String(), "aGk=", "aG&#107;=", 1),
	}
	for name, msg := range messages {
		got, err := parseEnvelope([]byte(msg))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := decodeEnvelope([]byte(msg))
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: fast path differs from the decoder (-want +got):\n%s", name, diff)
		}
	}
}

func TestStdinPipe(t *testing.T) {
	t.Parallel()
	p := newStdinPipe()
	if _, err := p.Write([]byte("abc")); err != nil {
		t.Fatal(err)
	}
	p.CloseWrite()
	if _, err := p.Write([]byte("late")); err == nil {
		t.Errorf("Write after CloseWrite succeeded")
	}
	var out bytes.Buffer
	if _, err := out.ReadFrom(p); err != nil || out.String() != "abc" {
		t.Errorf("read %q, %v", out.String(), err)
	}

	// A full pipe makes Write wait until the reader drains it.
	p = newStdinPipe()
	big := bytes.Repeat([]byte("z"), stdinBufferMax+10)
	done := make(chan error, 1)
	go func() {
		_, err := p.Write(big[:stdinBufferMax])
		if err == nil {
			_, err = p.Write(big[stdinBufferMax:]) // waits for the reader
		}
		p.CloseWrite()
		done <- err
	}()
	out.Reset()
	if _, err := out.ReadFrom(p); err != nil || out.Len() != len(big) {
		t.Errorf("read %d bytes, %v; want %d", out.Len(), err, len(big))
	}
	if err := <-done; err != nil {
		t.Errorf("writer: %v", err)
	}

	// A reader that gives up fails the writers.
	p = newStdinPipe()
	p.CloseRead(errTestGone)
	if _, err := p.Write([]byte("x")); !errors.Is(err, errTestGone) {
		t.Errorf("Write after CloseRead = %v", err)
	}
}

var errTestGone = &testError{"reader gone"}

type testError struct{ s string }

func (e *testError) Error() string { return e.s }
