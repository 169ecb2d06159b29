package ssh

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"
)

// Defaults of Options.
const (
	DefaultConnectTimeout   = 30 * time.Second
	DefaultKeepalive        = 15 * time.Second
	DefaultKeepaliveMax     = 3
	DefaultIdleTimeout      = 5 * time.Minute
	DefaultStagingBase      = "/var/tmp/packflow"
	DefaultPersistentBase   = "/opt/packflow/packages"
	DefaultUploadFiles      = 4
	DefaultReconnectInitial = time.Second
	DefaultReconnectMax     = 15 * time.Second
)

// DialFunc opens the network connection to addr. Tests and bastion hosts
// plug in here; the default is a net.Dialer.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Auth holds the credentials for a host. When both a key and a password are
// set, the key is tried first.
type Auth struct {
	// PrivateKeyPEM is a PEM-encoded private key (OpenSSH, PKCS#1, PKCS#8).
	PrivateKeyPEM []byte
	// Passphrase decrypts PrivateKeyPEM when it is encrypted.
	Passphrase string
	// Password is used for password (and keyboard-interactive) auth.
	Password string
}

// HostKeyPolicy says how the host's key is verified. Exactly one way must
// be chosen; a host key is never accepted unchecked.
type HostKeyPolicy struct {
	// Pinned is the expected key as an authorized_keys line
	// ("ssh-ed25519 AAAA…"), as recorded on the server record.
	Pinned string
	// KnownHostsFile is an OpenSSH known_hosts file to check against.
	KnownHostsFile string
	// TrustOnFirstUse accepts the key the host presents on the first
	// connection, after OnFirstKey recorded it. Later connections of the
	// same Client or Pool entry must present the same key; callers pass the
	// recorded key as Pinned from then on.
	TrustOnFirstUse bool
	// OnFirstKey records the key (an authorized_keys line) accepted by
	// trust-on-first-use. An error refuses the key. Required with
	// TrustOnFirstUse.
	OnFirstKey func(key string) error
}

// Options configures a Client. Zero values take the documented defaults.
type Options struct {
	// Addr is host:port; ":22" is added when the port is missing.
	Addr string
	// User is the login user.
	User string
	// Auth holds the credentials.
	Auth Auth
	// HostKey is the host key verification policy (required).
	HostKey HostKeyPolicy
	// Dialer opens the TCP connection; default a net.Dialer.
	Dialer DialFunc
	// ConnectTimeout bounds dialling and the SSH handshake; default 30 s.
	ConnectTimeout time.Duration
	// Keepalive is the interval of keepalive requests; default 15 s,
	// negative disables them.
	Keepalive time.Duration
	// KeepaliveMax is how many keepalives may go unanswered before the
	// connection is declared dead; default 3.
	KeepaliveMax int
	// IdleTimeout closes the connection after this long without sessions;
	// default 5 minutes, negative disables. The next call reconnects.
	IdleTimeout time.Duration
	// Sudo runs commands, Remove and the default reboot command through
	// "sudo -n" (never prompting). Uploads and staging directories use the
	// login user.
	Sudo bool
	// StagingBase is where StagingDir creates private directories; default
	// /var/tmp/packflow (kept across reboots, unlike /tmp on many hosts).
	StagingBase string
	// PersistentBase is the root of persistent packages; default
	// /opt/packflow/packages.
	PersistentBase string
	// UploadFiles is how many files Upload sends in parallel; default 4.
	UploadFiles int
	// ReconnectInitial and ReconnectMax bound the exponential backoff of
	// reconnecting after a reboot; defaults 1 s and 15 s.
	ReconnectInitial time.Duration
	ReconnectMax     time.Duration
	// Logger receives connection events; default discards.
	Logger *slog.Logger
}

// withDefaults returns a copy of o with defaults filled in, or an error when
// o cannot work.
func (o Options) withDefaults() (Options, error) {
	if o.Addr == "" {
		return o, errors.New("ssh: options: Addr is required")
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		o.Addr = net.JoinHostPort(strings.Trim(o.Addr, "[]"), "22")
	}
	if o.User == "" {
		return o, errors.New("ssh: options: User is required")
	}
	if len(o.Auth.PrivateKeyPEM) == 0 && o.Auth.Password == "" {
		return o, errors.New("ssh: options: Auth needs a private key or a password")
	}
	if err := o.HostKey.validate(); err != nil {
		return o, err
	}
	if o.Dialer == nil {
		var d net.Dialer
		o.Dialer = d.DialContext
	}
	if o.ConnectTimeout <= 0 {
		o.ConnectTimeout = DefaultConnectTimeout
	}
	if o.Keepalive == 0 {
		o.Keepalive = DefaultKeepalive
	}
	if o.KeepaliveMax <= 0 {
		o.KeepaliveMax = DefaultKeepaliveMax
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultIdleTimeout
	}
	if o.StagingBase == "" {
		o.StagingBase = DefaultStagingBase
	}
	if o.PersistentBase == "" {
		o.PersistentBase = DefaultPersistentBase
	}
	if o.UploadFiles <= 0 {
		o.UploadFiles = DefaultUploadFiles
	}
	if o.ReconnectInitial <= 0 {
		o.ReconnectInitial = DefaultReconnectInitial
	}
	if o.ReconnectMax < o.ReconnectInitial {
		o.ReconnectMax = max(DefaultReconnectMax, o.ReconnectInitial)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o, nil
}

func (p HostKeyPolicy) validate() error {
	n := 0
	for _, set := range []bool{p.Pinned != "", p.KnownHostsFile != "", p.TrustOnFirstUse} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return errors.New("ssh: options: HostKey needs Pinned, KnownHostsFile or TrustOnFirstUse")
	case n > 1:
		return errors.New("ssh: options: HostKey takes only one of Pinned, KnownHostsFile and TrustOnFirstUse")
	case p.TrustOnFirstUse && p.OnFirstKey == nil:
		return errors.New("ssh: options: TrustOnFirstUse needs OnFirstKey to record the key")
	}
	return nil
}

// poolKey identifies the connection a set of options may share: the same
// address, user, credentials and host key policy.
func (o Options) poolKey() string {
	h := sha256.New()
	for _, part := range []string{
		o.Addr, o.User, string(o.Auth.PrivateKeyPEM), o.Auth.Passphrase, o.Auth.Password,
		o.HostKey.Pinned, o.HostKey.KnownHostsFile, fmt.Sprint(o.HostKey.TrustOnFirstUse), fmt.Sprint(o.Sudo),
	} {
		_, _ = fmt.Fprintf(h, "%d:%s;", len(part), part)
	}
	return hex.EncodeToString(h.Sum(nil))
}
