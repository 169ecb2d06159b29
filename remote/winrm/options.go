package winrm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/packflow/packflow/remote"
)

// Auth names an authentication scheme.
type Auth string

// Authentication schemes.
const (
	// AuthBasic sends the credentials with every request (use HTTPS).
	AuthBasic Auth = "basic"
	// AuthNTLM negotiates NTLMv2 and falls back to Basic when the server
	// offers only Basic.
	AuthNTLM Auth = "ntlm"
)

// ErrPlainHTTP is wrapped by the error of Dial with Options.PlainHTTP. It
// wraps remote.ErrUnsupported: retrying cannot fix it.
var ErrPlainHTTP = fmt.Errorf("winrm: plain HTTP refused: %w", remote.ErrUnsupported)

// Defaults of Options.
const (
	DefaultHTTPSPort        = 5986
	DefaultTimeout          = 30 * time.Second
	DefaultOperationTimeout = 20 * time.Second
	// DefaultMaxEnvelopeSize matches Windows' default MaxEnvelopeSizekb
	// (500) since Windows Server 2012.
	DefaultMaxEnvelopeSize   = 500 * 1024
	DefaultRebootPoll        = 2 * time.Second
	DefaultRebootPollMax     = 30 * time.Second
	DefaultRebootTimeout     = 15 * time.Minute
	minMaxEnvelopeSize       = 16 * 1024
	envelopeHeadroom         = 4 * 1024
	defaultCleanupTimeout    = 10 * time.Second
	maxCommandLine           = 8191 // cmd.exe's limit
	maxFaultBody             = 64 * 1024
	defaultReceiveBodyFactor = 2
)

// Options configure a Client. Host, User and Password are required.
type Options struct {
	// Host is the name or address of the server.
	Host string
	// Port defaults to 5986 (HTTPS).
	Port int
	// PlainHTTP asks for plain HTTP instead of HTTPS, the default. It is
	// refused: with Basic the password would cross the network in clear,
	// and NTLM would carry every command (rendered passwords included)
	// readable, because this client does not implement NTLM message
	// encryption. Dial fails with an error wrapping ErrPlainHTTP.
	PlainHTTP bool
	// Insecure skips certificate verification. Set it only for a server
	// explicitly recorded as such; never by default.
	Insecure bool
	// CACertPEM, when set, replaces the system roots for verifying the
	// server certificate (a private CA or a pinned self-signed cert).
	CACertPEM []byte
	// TLSServerName overrides the name checked in the certificate
	// (default Host).
	TLSServerName string
	// Auth is AuthBasic (default) or AuthNTLM.
	Auth Auth
	// User and Password are the credentials ("DOMAIN\user" for NTLM
	// domain accounts).
	User, Password string
	// Timeout bounds connecting to the server (TCP and TLS handshake) and
	// waiting for the headers of an answer beyond the OperationTimeout
	// (default 30s).
	Timeout time.Duration
	// OperationTimeout is the WS-Management OperationTimeout: how long the
	// server may hold a Receive when there is no output (default 20s).
	OperationTimeout time.Duration
	// MaxEnvelopeSize is the server's MaxEnvelopeSizekb×1024 in bytes: the
	// largest message sent and accepted (default 500 KiB). Uploads size
	// their chunks from it.
	MaxEnvelopeSize int
	// RebootPoll is the first delay between reconnection attempts after a
	// reboot; it doubles up to RebootPollMax (defaults 2s and 30s).
	RebootPoll, RebootPollMax time.Duration
	// Logger receives the client's logs (default: discarded).
	Logger *slog.Logger
	// DialContext replaces the TCP dialer (bastions, tests). Ignored when
	// Transport is set. No proxy is taken from the environment: servers
	// are reached directly or through this dialer.
	DialContext func(ctx context.Context, network, addr string) (net.Conn, error)
	// Transport replaces the whole HTTP transport, TLS included. NTLM still
	// wraps it when Auth is AuthNTLM.
	Transport http.RoundTripper
}

// withDefaults validates o and fills in its defaults.
func (o Options) withDefaults() (Options, error) {
	if o.Host == "" {
		return o, errors.New("winrm: Options.Host is required")
	}
	if o.User == "" {
		return o, errors.New("winrm: Options.User is required")
	}
	switch o.Auth {
	case "":
		o.Auth = AuthBasic
	case AuthBasic, AuthNTLM:
	default:
		return o, fmt.Errorf("winrm: unknown Options.Auth %q", o.Auth)
	}
	if o.PlainHTTP {
		if o.Auth == AuthBasic {
			return o, fmt.Errorf("%w: Basic authentication would send the password in clear; use HTTPS (port %d)", ErrPlainHTTP, DefaultHTTPSPort)
		}
		return o, fmt.Errorf("%w: NTLM message encryption is not supported, so commands and their values would cross the network readable; use HTTPS (port %d)", ErrPlainHTTP, DefaultHTTPSPort)
	}
	if o.Port == 0 {
		o.Port = DefaultHTTPSPort
	}
	if o.Port < 0 || o.Port > 65535 {
		return o, fmt.Errorf("winrm: Options.Port %d out of range", o.Port)
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.OperationTimeout <= 0 {
		o.OperationTimeout = DefaultOperationTimeout
	}
	if o.OperationTimeout < time.Second {
		o.OperationTimeout = time.Second // WS-Management counts in seconds here
	}
	if o.MaxEnvelopeSize == 0 {
		o.MaxEnvelopeSize = DefaultMaxEnvelopeSize
	}
	if o.MaxEnvelopeSize < minMaxEnvelopeSize {
		return o, fmt.Errorf("winrm: Options.MaxEnvelopeSize %d below %d bytes", o.MaxEnvelopeSize, minMaxEnvelopeSize)
	}
	if o.RebootPoll <= 0 {
		o.RebootPoll = DefaultRebootPoll
	}
	if o.RebootPollMax <= 0 {
		o.RebootPollMax = DefaultRebootPollMax
	}
	if o.RebootPollMax < o.RebootPoll {
		o.RebootPollMax = o.RebootPoll
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o, nil
}

// stdinChunk is the largest number of stdin bytes one Send may carry: the
// envelope minus headroom for the SOAP headers, then 3/4 of it because
// stdin travels base64-encoded.
func (o Options) stdinChunk() int {
	return (o.MaxEnvelopeSize - envelopeHeadroom) / 4 * 3
}
