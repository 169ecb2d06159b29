package winrmtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/masterzen/winrm"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testLogger sends the endpoint's logs to t.Log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// newClient returns a real masterzen/winrm client for srv.
func newClient(t *testing.T, srv *Server, user, password string) *winrm.Client {
	t.Helper()
	ep := &winrm.Endpoint{Host: srv.Host, Port: srv.Port, HTTPS: srv.HTTPS, CACert: srv.CACertPEM, Timeout: 10 * time.Second}
	params := winrm.NewParameters("PT5S", "en-US", 500*1024)
	c, err := winrm.NewClientWithParameters(ep, user, password, params)
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	return c
}

// echoHandler answers "echo <text>", "exit <n>", "cat" (stdin to stdout)
// and "wait" (blocks until terminated).
func echoHandler(ctx context.Context, cmd *Command, stdout, stderr io.Writer) int {
	if cmd.Script != "" {
		say(stdout, "script:%s", cmd.Script)
		return 0
	}
	name, rest, _ := strings.Cut(cmd.Line, " ")
	switch name {
	case "echo":
		say(stdout, "%s\r\n", rest)
		return 0
	case "exit":
		var code int
		if _, err := fmt.Sscan(rest, &code); err != nil {
			return 2
		}
		say(stderr, "failing")
		return code
	case "cat":
		_, _ = io.Copy(stdout, cmd.Stdin)
		return 0
	case "wait":
		<-ctx.Done()
		return 130
	}
	return notRecognized(ctx, cmd, stdout, stderr)
}

func TestRunAgainstRealClient(t *testing.T) {
	t.Parallel()
	for _, useTLS := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", useTLS), func(t *testing.T) {
			t.Parallel()
			opts := Options{Handler: HandlerFunc(echoHandler), Logger: testLogger(t)}
			start := New
			if useTLS {
				start = NewTLS
			}
			srv := start(opts)
			defer srv.Close()
			c := newClient(t, srv, DefaultUser, DefaultPassword)
			ctx := context.Background()

			stdout, stderr, code, err := c.RunCmdWithContext(ctx, "echo hello & world")
			if err != nil || code != 0 || stdout != "hello & world\r\n" || stderr != "" {
				t.Errorf("echo = %q, %q, %d, %v", stdout, stderr, code, err)
			}
			_, stderr, code, err = c.RunCmdWithContext(ctx, "exit 7")
			if err != nil || code != 7 || stderr != "failing" {
				t.Errorf("exit 7 = %q, %d, %v", stderr, code, err)
			}
			big := strings.Repeat("0123456789abcdef", 16*1024) // 256 KiB: several Sends and Receives
			// Without WriterTo, io.Copy hands the client 32 KiB writes, each
			// one Send well inside the envelope limit.
			var out bytes.Buffer
			code, err = c.RunWithContextWithInput(ctx, "cat", &out, io.Discard, struct{ io.Reader }{strings.NewReader(big)})
			if err != nil || code != 0 || out.String() != big {
				t.Errorf("cat: %d bytes back of %d, code %d, err %v", out.Len(), len(big), code, err)
			}
			stdout, _, code, err = c.RunPSWithContext(ctx, "Write-Output 'hé ☃'")
			if want := "script:$ProgressPreference = 'SilentlyContinue';Write-Output 'hé ☃'"; err != nil || code != 0 || stdout != want {
				t.Errorf("powershell = %q, %d, %v; want %q", stdout, code, err, want)
			}
			st := srv.Stats()
			for _, action := range []string{"Create", "Command", "Send", "Receive", "Delete"} {
				if st.Requests[action] == 0 {
					t.Errorf("no %s request seen: %v", action, st.Requests)
				}
			}
			if srv.OpenShells() != 0 {
				t.Errorf("%d shells left open", srv.OpenShells())
			}
		})
	}
}

func TestBadCredentialsGet401(t *testing.T) {
	t.Parallel()
	srv := New(Options{Handler: HandlerFunc(echoHandler)})
	defer srv.Close()
	c := newClient(t, srv, DefaultUser, "wrong")
	_, _, _, err := c.RunCmdWithContext(context.Background(), "echo hi")
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("err = %v, want a 401", err)
	}
	if got := srv.Stats().Unauthorized; got != 1 {
		t.Errorf("Unauthorized = %d, want 1", got)
	}
}

func TestCancelSignalsTerminate(t *testing.T) {
	t.Parallel()
	srv := New(Options{Handler: HandlerFunc(echoHandler), ReceiveTimeout: 100 * time.Millisecond})
	defer srv.Close()
	c := newClient(t, srv, DefaultUser, DefaultPassword)
	ctx, cancel := context.WithCancel(context.Background())
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	cmd, err := shell.ExecuteWithContext(ctx, "wait")
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	cmd.Wait()
	if err := shell.Close(); err != nil {
		t.Fatalf("delete shell: %v", err)
	}
	if got := srv.Stats().Requests["Signal"]; got == 0 {
		t.Errorf("no Signal request after cancel")
	}
}

func TestEnvelopeLimitEnforced(t *testing.T) {
	t.Parallel()
	srv := New(Options{Handler: HandlerFunc(echoHandler), MaxEnvelopeSize: 8 * 1024})
	defer srv.Close()
	c := newClient(t, srv, DefaultUser, DefaultPassword)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shell.Close() }()
	// The client's default transport ignores the HTTP status of a SOAP
	// answer, so the fault shows up as a response it cannot parse.
	_, err = shell.ExecuteWithContext(t.Context(), "echo "+strings.Repeat("x", 9*1024))
	var ece *winrm.ExecuteCommandError
	if !errors.As(err, &ece) || !strings.Contains(ece.Body, "MaxEnvelopeSize") {
		t.Fatalf("err = %v, want the envelope fault", err)
	}
	if got := srv.Stats().MaxRequestBytes; got <= 8*1024 {
		t.Errorf("MaxRequestBytes = %d, want > 8 KiB", got)
	}
}

func TestDecodeEncodedCommand(t *testing.T) {
	t.Parallel()
	// "Get-Date" as UTF-16LE, base64.
	const enc = "RwBlAHQALQBEAGEAdABlAA=="
	tests := []struct {
		line, want string
		wantErr    bool
	}{
		{line: "powershell.exe -NoProfile -EncodedCommand " + enc, want: "Get-Date"},
		{line: `C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe -enc ` + enc, want: "Get-Date"},
		{line: "PowerShell -EC " + enc, want: "Get-Date"},
		{line: "powershell -Command Get-Date", want: ""},
		{line: "cmd.exe /c echo -EncodedCommand " + enc, want: ""},
		{line: "powershell -EncodedCommand", wantErr: true},
		{line: "powershell -EncodedCommand !!!", wantErr: true},
	}
	for _, tt := range tests {
		got, err := decodeEncodedCommand(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("decodeEncodedCommand(%q) = %q, %v; want %q, err %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestCommandsRecorded(t *testing.T) {
	t.Parallel()
	srv := New(Options{Handler: HandlerFunc(echoHandler)})
	defer srv.Close()
	c := newClient(t, srv, DefaultUser, DefaultPassword)
	shell, err := c.CreateShell()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = shell.Close() }()
	cmd, err := shell.ExecuteWithContext(t.Context(), "echo", "a]b", "<c>")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	_, _ = io.Copy(&out, cmd.Stdout)
	cmd.Wait()
	want := []Recorded{{Line: "echo", Args: []string{"a]b", "<c>"}}}
	if diff := cmp.Diff(want, srv.Commands()); diff != "" {
		t.Errorf("recorded commands (-want +got):\n%s", diff)
	}
}

func TestNTLM(t *testing.T) {
	t.Parallel()
	srv := New(Options{Handler: HandlerFunc(echoHandler), NTLM: true})
	defer srv.Close()
	ntlmClient := func(password string) *winrm.Client {
		params := winrm.NewParameters("PT5S", "en-US", 500*1024)
		params.TransportDecorator = func() winrm.Transporter { return &winrm.ClientNTLM{} }
		c, err := winrm.NewClientWithParameters(&winrm.Endpoint{Host: srv.Host, Port: srv.Port}, DefaultUser, password, params)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	stdout, _, code, err := ntlmClient(DefaultPassword).RunCmdWithContext(t.Context(), "echo ntlm")
	if err != nil || code != 0 || stdout != "ntlm\r\n" {
		t.Fatalf("NTLM run = %q, %d, %v", stdout, code, err)
	}
	if n := srv.Stats().Unauthorized; n != 0 {
		t.Errorf("Unauthorized = %d after a good handshake", n)
	}
	for name, c := range map[string]*winrm.Client{
		"ntlm wrong password": ntlmClient("wrong"),
		"basic":               newClient(t, srv, DefaultUser, DefaultPassword),
	} {
		if _, _, _, err := c.RunCmdWithContext(t.Context(), "echo hi"); err == nil || !strings.Contains(err.Error(), "401") {
			t.Errorf("%s: err = %v, want a 401", name, err)
		}
	}
}

func TestNTLMVerifierRejectsGarbage(t *testing.T) {
	t.Parallel()
	var v ntlmVerifier
	v.challenge()
	for _, msg := range [][]byte{nil, []byte("NTLMSSP\x00\x03\x00\x00\x00"), append([]byte("NTLMSSP\x00\x03\x00\x00\x00"), make([]byte, 80)...)} {
		if v.verify(msg, DefaultUser, DefaultPassword) {
			t.Errorf("verify(%x) accepted", msg)
		}
	}
}

func TestCreateRecordsEnvironment(t *testing.T) {
	t.Parallel()
	srv := New(Options{})
	defer srv.Close()
	create := `<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:rsp="http://schemas.microsoft.com/wbem/wsman/1/windows/shell">
 <s:Header><a:Action>http://schemas.xmlsoap.org/ws/2004/09/transfer/Create</a:Action><a:MessageID>uuid:1</a:MessageID></s:Header>
 <s:Body><rsp:Shell><rsp:Environment><rsp:Variable Name="SECRET">v</rsp:Variable></rsp:Environment>
 <rsp:InputStreams>stdin</rsp:InputStreams><rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell></s:Body>
</s:Envelope>`
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, srv.URL, strings.NewReader(create))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(DefaultUser, DefaultPassword)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	if got := srv.Stats().EnvVariables; !slices.Equal(got, []string{"SECRET=v"}) {
		t.Errorf("EnvVariables = %q, want SECRET=v", got)
	}
}
