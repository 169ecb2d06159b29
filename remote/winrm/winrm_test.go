package winrm

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// bundle is what setup returns: a fake Windows host behind an endpoint and
// a connected client.
type bundle struct {
	host   *winrmtest.FakeHost
	srv    *winrmtest.Server
	client *Client
}

type setupOpts struct {
	host    winrmtest.FakeHostOptions
	ntlm    bool              // the endpoint and the client use NTLM
	handler winrmtest.Handler // wraps the host when set
	client  func(*Options)
}

func setup(t *testing.T, so setupOpts) *bundle {
	t.Helper()
	host := winrmtest.NewFakeHost(so.host)
	var h winrmtest.Handler = host
	if so.handler != nil {
		h = so.handler
	}
	eo := winrmtest.Options{Handler: h, Down: host.Down, ReceiveTimeout: time.Second, NTLM: so.ntlm}
	srv := winrmtest.NewTLS(eo)
	t.Cleanup(srv.Close)
	opts := clientOptions(t, srv)
	if so.ntlm {
		opts.Auth = AuthNTLM
	}
	if so.client != nil {
		so.client(&opts)
	}
	c, err := Dial(t.Context(), opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return &bundle{host: host, srv: srv, client: c}
}

func clientOptions(t *testing.T, srv *winrmtest.Server) Options {
	return Options{
		Host:       srv.Host,
		Port:       srv.Port,
		CACertPEM:  srv.CACertPEM,
		User:       winrmtest.DefaultUser,
		Password:   winrmtest.DefaultPassword,
		Logger:     testLogger(t),
		RebootPoll: 20 * time.Millisecond,
	}
}

func run(ctx context.Context, c *Client, cmd *remote.Cmd) (stdout, stderr string, err error) {
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = c.Run(ctx, cmd)
	return o.String(), e.String(), err
}

func TestRunCmdFromPackageRoot(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.host.WriteFile(`C:\pkg\app\readme.txt`, []byte("hello"))

	stdout, stderr, err := run(t.Context(), b.client, &remote.Cmd{
		Shell: remote.ShellCmd, Dir: `C:\pkg\app`, Command: "type readme.txt",
	})
	if err != nil || stdout != "hello" || stderr != "" {
		t.Fatalf("Run = %q, %q, %v", stdout, stderr, err)
	}
	cmds := b.srv.Commands()
	last := cmds[len(cmds)-1]
	if want := `cmd.exe /d /v:off /s /c "cd /d "C:\pkg\app" && type readme.txt"`; last.Line != want || len(last.Args) != 0 || !last.SkipCmdShell {
		t.Errorf("command line = %q %q (skip cmd shell %v), want %q started without WinRM's cmd.exe", last.Line, last.Args, last.SkipCmdShell, want)
	}
}

func TestRunPowerShellEncodesScript(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.host.WriteFile(`C:\pkg\it's\x`, nil)

	stdout, _, err := run(t.Context(), b.client, &remote.Cmd{
		Shell: remote.ShellPowerShell, Dir: `C:\pkg\it's`, Command: "cd",
	})
	if err != nil || stdout != "C:\\pkg\\it's\r\n" {
		t.Fatalf("Run = %q, %v", stdout, err)
	}
	last := b.srv.Commands()[len(b.srv.Commands())-1]
	if !strings.HasPrefix(last.Line, "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ") {
		t.Errorf("command line = %q", last.Line)
	}
	want := "$ErrorActionPreference = 'Stop'\n" +
		"$ProgressPreference = 'SilentlyContinue'\n" +
		"try {\n" +
		"    Set-Location -LiteralPath 'C:\\pkg\\it''s'\n" +
		"    $global:LASTEXITCODE = 0\n" +
		"#region command\n" +
		"cd\n" +
		"#endregion command\n" +
		"    exit $LASTEXITCODE\n" +
		"} catch {\n" +
		"    [Console]::Error.WriteLine($_.ToString())\n" +
		"    exit 1\n" +
		"}\n"
	if diff := cmp.Diff(want, last.Script); diff != "" {
		t.Errorf("decoded -EncodedCommand (-want +got):\n%s", diff)
	}
}

func TestRunAndUploadOverTLSWithNTLM(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{ntlm: true})
	src := writeTree(t, map[string][]byte{"a.txt": []byte("over ntlm")})
	if err := b.client.Upload(t.Context(), src, `C:\pkg`); err != nil {
		t.Fatalf("Upload: %v", err)
	}
	stdout, _, err := run(t.Context(), b.client, &remote.Cmd{Shell: remote.ShellPowerShell, Dir: `C:\pkg`, Command: "type a.txt"})
	if err != nil || stdout != "over ntlm" {
		t.Fatalf("Run = %q, %v", stdout, err)
	}
}

func TestRunExitStatusAndStreams(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{Programs: map[string]winrmtest.Program{
		"fail": func(_ context.Context, inv *winrmtest.Invocation) int {
			_, _ = io.WriteString(inv.Stdout, "partial")
			_, _ = io.WriteString(inv.Stderr, "boom")
			return 42
		},
	}}})
	for _, shell := range []remote.Shell{remote.ShellCmd, remote.ShellPowerShell} {
		stdout, stderr, err := run(t.Context(), b.client, &remote.Cmd{Shell: shell, Command: "fail now"})
		var exit *remote.ExitError
		if !errors.As(err, &exit) || exit.Code != 42 {
			t.Errorf("%s: err = %v, want exit status 42", shell, err)
		}
		if stdout != "partial" || stderr != "boom" {
			t.Errorf("%s: streams = %q, %q", shell, stdout, stderr)
		}
	}
	if err := b.client.Run(t.Context(), &remote.Cmd{Command: "exit 0"}); err != nil {
		t.Errorf("exit 0 with nil streams: %v", err)
	}
}

func TestRunStreamsStdin(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	in := bytes.Repeat([]byte("0123456789abcdef"), 25*1024) // 400 KiB: two Sends, several Receives
	var out bytes.Buffer
	err := b.client.Run(t.Context(), &remote.Cmd{Command: "more", Stdin: bytes.NewReader(in), Stdout: &out})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if !bytes.Equal(out.Bytes(), in) {
		t.Fatalf("stdout: %d bytes, want the %d bytes of stdin", out.Len(), len(in))
	}
	if got, limit := b.srv.Stats().MaxRequestBytes, DefaultMaxEnvelopeSize; got > limit {
		t.Errorf("largest request %d bytes exceeds the envelope limit %d", got, limit)
	}
}

func TestRunWithoutStdinSeesEOF(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	stdout, _, err := run(t.Context(), b.client, &remote.Cmd{Command: "more"})
	if err != nil || stdout != "" {
		t.Fatalf("Run = %q, %v", stdout, err)
	}
}

func TestCancelTerminatesRemoteProcess(t *testing.T) {
	t.Parallel()
	stopped := make(chan struct{})
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{Programs: map[string]winrmtest.Program{
		"wait": func(ctx context.Context, inv *winrmtest.Invocation) int {
			_, _ = io.WriteString(inv.Stdout, "ready")
			<-ctx.Done()
			close(stopped)
			return 1
		},
	}}})
	// Cancel once output arrives: the client knows the command then.
	ctx, cancel := context.WithCancel(t.Context())
	err := b.client.Run(ctx, &remote.Cmd{Command: "wait", Stdout: cancelWriter(cancel)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	<-stopped // the remote process saw its context end
	if st := b.srv.Stats(); st.Requests["Signal"] == 0 || st.Requests["Delete"] == 0 {
		t.Errorf("requests after cancel = %v, want a Signal and a Delete", st.Requests)
	}
	if n := b.srv.OpenShells(); n != 0 {
		t.Errorf("%d shells left open", n)
	}
}

// cancelWriter cancels on the first write.
type cancelWriter context.CancelFunc

func (w cancelWriter) Write(p []byte) (int, error) {
	w()
	return len(p), nil
}

func TestDeadlineIsTimeout(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	err := b.client.Run(ctx, &remote.Cmd{Command: "timeout /t 100"})
	if !errors.Is(err, remote.ErrTimeout) {
		t.Fatalf("err = %v, want remote.ErrTimeout", err)
	}
}

func TestConcurrentRuns(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := strings.Repeat("x", i+1)
			stdout, _, err := run(t.Context(), b.client, &remote.Cmd{Command: "echo " + want})
			if err == nil && stdout != want+"\r\n" {
				err = errors.New("wrong output " + stdout)
			}
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	plain := winrmtest.NewTLS(winrmtest.Options{}) // Basic only
	t.Cleanup(plain.Close)
	secure := plain
	ntlm := winrmtest.NewTLS(winrmtest.Options{NTLM: true})
	t.Cleanup(ntlm.Close)
	closed := winrmtest.NewTLS(winrmtest.Options{})
	closed.Close()

	tests := []struct {
		name   string
		srv    *winrmtest.Server
		modify func(*Options)
		want   error
	}{
		{name: "bad password", srv: plain, modify: func(o *Options) { o.Password = "wrong" }, want: remote.ErrAuth},
		{name: "bad password ntlm", srv: plain, modify: func(o *Options) { o.Password = "wrong"; o.Auth = AuthNTLM }, want: remote.ErrAuth},
		{name: "ntlm falls back to basic", srv: plain, modify: func(o *Options) { o.Auth = AuthNTLM }},
		{name: "ntlm", srv: ntlm, modify: func(o *Options) { o.Auth = AuthNTLM }},
		{name: "ntlm bad password", srv: ntlm, modify: func(o *Options) { o.Auth = AuthNTLM; o.Password = "wrong" }, want: remote.ErrAuth},
		{name: "basic against ntlm only", srv: ntlm, want: remote.ErrAuth},
		{name: "tls with CA", srv: secure},
		{name: "tls unknown CA", srv: secure, modify: func(o *Options) { o.CACertPEM = nil }, want: remote.ErrHostKeyMismatch},
		{name: "tls wrong name", srv: secure, modify: func(o *Options) { o.TLSServerName = "other.test" }, want: remote.ErrHostKeyMismatch},
		{name: "tls insecure by choice", srv: secure, modify: func(o *Options) { o.CACertPEM = nil; o.Insecure = true }},
		{name: "refused", srv: closed, want: remote.ErrDisconnected},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := clientOptions(t, tt.srv)
			if tt.modify != nil {
				tt.modify(&opts)
			}
			c, err := Dial(t.Context(), opts)
			if c != nil {
				defer func() { _ = c.Close() }()
			}
			if tt.want == nil {
				if err != nil {
					t.Fatalf("Dial: %v", err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("Dial err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestDisconnectedMidway(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	b.srv.Close()
	err := b.client.Run(t.Context(), &remote.Cmd{Command: "echo hi"})
	if !errors.Is(err, remote.ErrDisconnected) {
		t.Fatalf("err = %v, want remote.ErrDisconnected", err)
	}
}

func TestClosedClient(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{})
	if err := b.client.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.client.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.client.Run(t.Context(), &remote.Cmd{Command: "echo hi"}); !errors.Is(err, remote.ErrDisconnected) {
		t.Fatalf("Run after Close = %v, want remote.ErrDisconnected", err)
	}
}

func TestRunLargeOutputMissingDirIgnoredInput(t *testing.T) {
	t.Parallel()
	const n = 512 << 10
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{Programs: map[string]winrmtest.Program{
		"zeros": func(_ context.Context, inv *winrmtest.Invocation) int {
			zero := make([]byte, n)
			_, _ = inv.Stdout.Write(zero)
			_, _ = inv.Stderr.Write(zero)
			return 0
		},
	}}})

	stdout, stderr, err := run(t.Context(), b.client, &remote.Cmd{Command: "zeros"})
	if err != nil || len(stdout) != n || len(stderr) != n {
		t.Errorf("large output: %d and %d bytes, %v; want %d each", len(stdout), len(stderr), err, n)
	}

	for _, shell := range []remote.Shell{remote.ShellCmd, remote.ShellPowerShell} {
		err := b.client.Run(t.Context(), &remote.Cmd{Shell: shell, Dir: `C:\missing`, Command: "echo hi"})
		var exit *remote.ExitError
		if !errors.As(err, &exit) {
			t.Errorf("%s in a missing dir: err = %v, want an exit error", shell, err)
		}
	}

	in := bytes.Repeat([]byte("unread input\n"), 1<<16)
	if err := b.client.Run(t.Context(), &remote.Cmd{Command: "exit 0", Stdin: bytes.NewReader(in)}); err != nil {
		t.Errorf("Run of a command that ignores its input = %v, want nil", err)
	}
}

// TestSendsNoEnvironment checks that no shell is asked to set a variable:
// the worker's environment (which holds its secrets) stays on the worker.
func TestSendsNoEnvironment(t *testing.T) {
	t.Setenv("PACKFLOW_SECRET_KEY", "worker-secret-must-not-leak")
	b := setup(t, setupOpts{})
	if _, _, err := run(t.Context(), b.client, &remote.Cmd{Shell: remote.ShellCmd, Command: "echo hi"}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t.Context(), b.client, &remote.Cmd{Shell: remote.ShellPowerShell, Command: "echo hi"}); err != nil {
		t.Fatal(err)
	}
	st := b.srv.Stats()
	if st.Requests["Create"] == 0 || len(st.EnvVariables) != 0 {
		t.Errorf("shells created %d, variables sent %q; want some shells and no variables", st.Requests["Create"], st.EnvVariables)
	}
}
