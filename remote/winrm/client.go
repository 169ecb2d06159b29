package winrm

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/Azure/go-ntlmssp"
	"github.com/masterzen/winrm"
	"github.com/masterzen/winrm/soap"

	"github.com/packflow/packflow/remote"
)

// Client is a remote.Communicator for one Windows host over WinRM. It is
// safe for concurrent use: every operation opens its own remote shell.
type Client struct {
	opts   Options
	url    string
	http   *http.Client
	idle   func()
	log    *slog.Logger
	closed atomic.Bool
}

var _ remote.Communicator = (*Client)(nil)

// Dial checks opts, connects to the host and proves that the credentials
// and the certificate are accepted by opening and deleting a shell.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	rt, idle, err := newRoundTripper(o)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: o,
		url:  "https://" + net.JoinHostPort(o.Host, strconv.Itoa(o.Port)) + "/wsman",
		http: &http.Client{Transport: rt},
		idle: idle,
		log:  o.Logger.With("host", o.Host, "port", o.Port),
	}
	if err := c.ping(ctx); err != nil {
		c.idle()
		return nil, err
	}
	c.log.Debug("winrm connected", "auth", o.Auth)
	return c, nil
}

// newRoundTripper builds the HTTP transport from the options. idle closes
// its idle connections.
func newRoundTripper(o Options) (rt http.RoundTripper, idle func(), err error) {
	rt = o.Transport
	idle = func() {}
	if rt == nil {
		tlsConf := &tls.Config{
			ServerName:         o.TLSServerName,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: o.Insecure, //nolint:gosec // only when the server record says so
		}
		if len(o.CACertPEM) > 0 {
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(o.CACertPEM) {
				return nil, nil, errors.New("winrm: Options.CACertPEM holds no PEM certificate")
			}
			tlsConf.RootCAs = pool
		}
		dial := o.DialContext
		if dial == nil {
			dial = (&net.Dialer{Timeout: o.Timeout, KeepAlive: 30 * time.Second}).DialContext
		}
		t := &http.Transport{
			DialContext:           dial,
			TLSClientConfig:       tlsConf,
			TLSHandshakeTimeout:   o.Timeout,
			ResponseHeaderTimeout: o.OperationTimeout + o.Timeout,
			MaxIdleConnsPerHost:   8,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     false, // WinRM speaks HTTP/1.1
		}
		rt, idle = t, t.CloseIdleConnections
	}
	if o.Auth == AuthNTLM {
		rt = ntlmssp.Negotiator{RoundTripper: rt}
	}
	return rt, idle, nil
}

// Close releases idle connections. Operations started later fail with
// remote.ErrDisconnected. It is safe to call more than once.
func (c *Client) Close() error {
	if c.closed.CompareAndSwap(false, true) {
		c.idle()
	}
	return nil
}

// ping opens and deletes a shell.
func (c *Client) ping(ctx context.Context) error {
	s, err := c.session(ctx)
	if err != nil {
		return err
	}
	shell, err := s.wc.CreateShell()
	if err != nil {
		return s.fail("open shell", err)
	}
	s.detach()
	defer s.end()
	if err := shell.Close(); err != nil {
		return s.fail("delete shell", err)
	}
	return nil
}

// session is the state of one operation: a masterzen client whose every
// request goes through transporter, bound to the operation's context.
type session struct {
	c  *Client
	wc *winrm.Client
	tr *transporter
}

func (c *Client) session(ctx context.Context) (*session, error) {
	if c.closed.Load() {
		return nil, fmt.Errorf("winrm: client closed: %w", remote.ErrDisconnected)
	}
	tr := &transporter{c: c, ctx: ctx}
	params := winrm.NewParameters(
		"PT"+strconv.Itoa(int(c.opts.OperationTimeout/time.Second))+"S", "en-US", c.opts.MaxEnvelopeSize)
	params.TransportDecorator = func() winrm.Transporter { return tr }
	ep := &winrm.Endpoint{Host: c.opts.Host, Port: c.opts.Port, HTTPS: true}
	wc, err := winrm.NewClientWithParameters(ep, c.opts.User, c.opts.Password, params)
	if err != nil {
		return nil, fmt.Errorf("winrm: new client: %w", err)
	}
	return &session{c: c, wc: wc, tr: tr}, nil
}

// detach moves the session's remaining requests (Signal, Delete) to a
// context that outlives the caller's cancellation, bounded in time, so that
// a cancelled operation still cleans up on the host.
func (s *session) detach() {
	s.tr.mu.Lock()
	defer s.tr.mu.Unlock()
	if s.tr.cleanup {
		return
	}
	s.tr.ctx, s.tr.cancel = context.WithTimeout(context.WithoutCancel(s.tr.ctx), defaultCleanupTimeout)
	s.tr.cleanup = true
}

// end releases the session's cleanup context.
func (s *session) end() {
	s.tr.mu.Lock()
	defer s.tr.mu.Unlock()
	if s.tr.cancel != nil {
		s.tr.cancel()
	}
}

// fail turns an error of the masterzen client into one carrying the
// remote sentinels. The transport's own first failure is more precise than
// what the library reports, so it wins when there is one.
func (s *session) fail(op string, err error) error {
	if first := s.tr.firstErr(); first != nil {
		err = first
	}
	return fmt.Errorf("winrm: %s on %s: %w", op, s.c.opts.Host, err)
}

// transporter carries the masterzen client's requests over the Client's
// HTTP client with the operation's context, and classifies failures.
type transporter struct {
	c       *Client
	mu      sync.Mutex
	ctx     context.Context
	cancel  context.CancelFunc
	cleanup bool
	err     error // first failed request other than a Send
	sendErr error // first failed Send
}

// Transport is part of winrm.Transporter; the HTTP client is already set.
func (t *transporter) Transport(*winrm.Endpoint) error { return nil }

// Post sends one SOAP message and returns the answer's body.
func (t *transporter) Post(_ *winrm.Client, msg *soap.SoapMessage) (string, error) {
	t.mu.Lock()
	ctx := t.ctx
	t.mu.Unlock()
	req := skipCmdShell(msg.String())
	body, err := t.c.post(ctx, req)
	// A failed Send is the stdin feeder's to report (see runLine); a
	// Receive that saw no output is retried by the library.
	if err != nil && !errors.Is(err, errOperationTimeout) {
		t.mu.Lock()
		switch {
		case t.cleanup:
		case isSend(req):
			if t.sendErr == nil {
				t.sendErr = err
			}
		case t.err == nil:
			t.err = err
		}
		t.mu.Unlock()
	}
	return body, err
}

// skipCmdOption is the option of a Command request that makes WinRM run
// the command line through cmd.exe /c; the masterzen client always sends
// it FALSE.
var skipCmdOption = regexp.MustCompile(`(Name="WINRS_SKIP_CMD_SHELL"[^>]*>)\s*FALSE\s*(<)`)

// skipCmdShell makes a Command request start its command line as a
// process of its own (WINRS_SKIP_CMD_SHELL=TRUE) instead of through
// WinRM's cmd.exe /c, whose delayed expansion follows the host's registry
// and would read the line a second time. The communicator's command lines
// name their program: cmd.exe /d /v:off /s /c "…" or powershell.exe.
func skipCmdShell(req string) string {
	head := req[:min(len(req), 4096)]
	if !strings.Contains(head, "/windows/shell/Command</") {
		return req
	}
	loc := skipCmdOption.FindStringSubmatchIndex(head)
	if loc == nil {
		return req
	}
	return req[:loc[3]] + "TRUE" + req[loc[4]:]
}

// isSend reports whether a request is a Send, looking at the action in its
// header only.
func isSend(req string) bool {
	return strings.Contains(req[:min(len(req), 4096)], "/windows/shell/Send</")
}

func (t *transporter) firstErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func (t *transporter) firstSendErr() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.sendErr
}

// errOperationTimeout marks a Receive that saw no output within the
// OperationTimeout; the masterzen client retries when the error text holds
// "OperationTimeout".
var errOperationTimeout = errors.New("winrm: no output within OperationTimeout")

// post sends one request.
func (c *Client) post(ctx context.Context, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, strings.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("winrm: build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/soap+xml;charset=UTF-8")
	req.SetBasicAuth(c.opts.User, c.opts.Password)
	resp, err := c.http.Do(req)
	if err != nil {
		return "", classify(ctx, err)
	}
	defer func() { _ = resp.Body.Close() }()
	limit := int64(c.opts.MaxEnvelopeSize) * defaultReceiveBodyFactor
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	if err != nil {
		return "", classify(ctx, err)
	}
	soapAnswer := strings.Contains(resp.Header.Get("Content-Type"), "application/soap+xml")
	switch {
	case resp.StatusCode == http.StatusOK && soapAnswer:
		return string(b), nil
	case resp.StatusCode == http.StatusUnauthorized:
		return "", fmt.Errorf("%w: server answered 401 for user %q", remote.ErrAuth, c.opts.User)
	case soapAnswer:
		f := parseFault(b)
		if f.timedOut() {
			return "", fmt.Errorf("%w (OperationTimeout): %w", errOperationTimeout, f)
		}
		f.Status = resp.StatusCode
		return "", f
	case resp.StatusCode == http.StatusServiceUnavailable:
		// WinRM answers 503 while the service starts or stops.
		return "", fmt.Errorf("%w: server answered %s", remote.ErrDisconnected, resp.Status)
	default:
		return "", fmt.Errorf("winrm: server answered %s: %s", resp.Status, truncate(string(b), 512))
	}
}

// classify maps a transport failure onto the remote sentinels.
func classify(ctx context.Context, err error) error {
	var (
		verifyErr   *tls.CertificateVerificationError
		unknownAuth x509.UnknownAuthorityError
		hostErr     x509.HostnameError
		invalidErr  x509.CertificateInvalidError
		netErr      net.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() != nil:
		return fmt.Errorf("%w: %w", remote.ErrTimeout, err)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return err
	case errors.As(err, &verifyErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr),
		errors.As(err, &invalidErr):
		return fmt.Errorf("%w: %w", remote.ErrHostKeyMismatch, err)
	case errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Errorf("%w: %w: %w", remote.ErrDisconnected, remote.ErrTimeout, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.As(err, &netErr):
		return fmt.Errorf("%w: %w", remote.ErrDisconnected, err)
	}
	return fmt.Errorf("winrm: %w", err)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
