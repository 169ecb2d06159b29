package tasks

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/local"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/remote/winrm"
	"github.com/packflow/packflow/store"
)

// winStagingRoot is where packages are staged on Windows hosts.
const winStagingRoot = `C:\ProgramData\packflow\staging`

// Target is a connected server: a Communicator plus where packages go.
type Target interface {
	remote.Communicator
	// StagingDir creates a fresh private directory for one run of a
	// package and returns its path.
	StagingDir(ctx context.Context, name string) (string, error)
	// PersistentDir returns the stable path of a persistent package.
	PersistentDir(uuid, version string) (string, error)
	// HostKey returns the identity the host presented ("" when the
	// transport has none to record).
	HostKey() string
}

// ConnectorOptions configures a Connector.
type ConnectorOptions struct {
	// Store gives server credentials and records trusted host keys.
	Store *store.Store
	// SSH shares SSH connections between tasks; default a new Pool.
	SSH *ssh.Pool
	// SSHOptions tunes SSH clients (staging and persistent bases, dialer);
	// Addr, User, Auth and HostKey are set per server.
	SSHOptions ssh.Options
	// TuneSSH, when set, adjusts the SSH options of one server (a bastion
	// dialer, other package bases).
	TuneSSH func(sv store.Server, o *ssh.Options)
	// WinRMOptions tunes WinRM clients; Host, Port, User, Password and the
	// TLS settings are set per server.
	WinRMOptions winrm.Options
	// AllowLocal permits the local transport (commands run on the worker).
	AllowLocal bool
	// LocalDir is where the local transport stages packages; default the
	// system's temporary directory.
	LocalDir string
	// Logger receives connection events; nil discards.
	Logger *slog.Logger
}

// Connector opens Targets for server records. It is safe for concurrent
// use.
type Connector struct {
	o ConnectorOptions
}

// NewConnector returns a Connector.
func NewConnector(o ConnectorOptions) (*Connector, error) {
	if o.Store == nil {
		return nil, errors.New("tasks: connector needs a store")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.SSH == nil {
		o.SSH = ssh.NewPool(ssh.PoolOptions{Logger: o.Logger})
	}
	if o.LocalDir == "" {
		o.LocalDir = filepath.Join(os.TempDir(), "packflow-local")
	}
	return &Connector{o: o}, nil
}

// Close closes the shared connections.
func (c *Connector) Close() error { return c.o.SSH.Close() }

// Connect opens a Target for sv. Errors that retrying cannot fix (refused
// credentials, a host key mismatch, a transport not allowed) wrap
// asynq.SkipRetry.
func (c *Connector) Connect(ctx context.Context, sv store.Server) (Target, error) {
	cred, sec, err := c.credentials(ctx, sv)
	if err != nil {
		return nil, err
	}
	return c.connectWith(ctx, sv, cred, sec)
}

// credentials reads the credential of sv and opens its secret (none for
// the local transport). A credential that does not exist is permanent;
// any other error (Redis out of reach) may pass.
func (c *Connector) credentials(ctx context.Context, sv store.Server) (store.Credential, store.Secret, error) {
	if sv.Transport == store.TransportLocal {
		return store.Credential{}, store.Secret{}, nil
	}
	cred, err := c.o.Store.Credential(ctx, sv.CredentialID)
	if err == nil {
		var sec store.Secret
		if sec, err = c.o.Store.CredentialSecret(ctx, sv.CredentialID); err == nil {
			return cred, sec, nil
		}
	}
	err = fmt.Errorf("server %s: credential: %w", sv.Name, err)
	if errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrNoSecretKey) {
		err = permanent(err)
	}
	return store.Credential{}, store.Secret{}, err
}

// connectWith opens a Target for sv with its credential.
func (c *Connector) connectWith(ctx context.Context, sv store.Server, cred store.Credential, sec store.Secret) (Target, error) {
	t, err := c.connect(ctx, sv, cred, sec)
	if err != nil {
		if remote.Permanent(err) {
			return nil, permanent(fmt.Errorf("server %s: %w", sv.Name, err))
		}
		return nil, fmt.Errorf("server %s: %w", sv.Name, err)
	}
	return t, nil
}

func (c *Connector) connect(ctx context.Context, sv store.Server, cred store.Credential, sec store.Secret) (Target, error) {
	switch sv.Transport {
	case store.TransportSSH:
		o := c.o.SSHOptions
		o.Addr, o.User = sv.Endpoint(), cred.Username
		o.Auth = ssh.Auth{}
		if cred.Kind == store.CredentialSSHKey {
			o.Auth.PrivateKeyPEM, o.Auth.Passphrase = []byte(sec.Secret), sec.Passphrase
		} else {
			o.Auth.Password = sec.Secret
		}
		if sv.HostKey != "" {
			o.HostKey = ssh.HostKeyPolicy{Pinned: sv.HostKey}
		} else {
			id := sv.ID
			o.HostKey = ssh.HostKeyPolicy{TrustOnFirstUse: true, OnFirstKey: func(key string) error {
				if err := c.o.Store.RecordHostKey(context.WithoutCancel(ctx), id, key); err != nil {
					if errors.Is(err, store.ErrConflict) {
						return fmt.Errorf("%w: another key was recorded meanwhile", remote.ErrHostKeyMismatch)
					}
					return err
				}
				return nil
			}}
		}
		if c.o.TuneSSH != nil {
			c.o.TuneSSH(sv, &o)
		}
		cl, err := c.o.SSH.Get(ctx, o)
		if err != nil {
			return nil, err
		}
		return cl, nil
	case store.TransportWinRM:
		o := c.o.WinRMOptions
		o.Host, o.Port, o.User, o.Password = sv.Address, sv.Port, cred.Username, sec.Secret
		// HTTPS with verification unless the record says otherwise; a
		// record from before HTTPS was the default that says
		// "https": false fails in Dial with a final, explained error.
		o.PlainHTTP = !sv.WinRM.UseHTTPS()
		if w := sv.WinRM; w != nil {
			o.Insecure = w.Insecure
			if w.CACert != "" {
				o.CACertPEM = []byte(w.CACert)
			}
		}
		cl, err := winrm.Dial(ctx, o)
		if err != nil {
			return nil, err
		}
		return winTarget{cl}, nil
	case store.TransportLocal:
		if !c.o.AllowLocal {
			return nil, fmt.Errorf("%w: the local transport is not allowed on this worker (PACKFLOW_ALLOW_LOCAL)", remote.ErrUnsupported)
		}
		// Checked again at every run: a record made before the rule, or
		// approved by a token since revoked, must not run.
		if err := c.o.Store.CheckLocalServer(ctx, sv); err != nil {
			if errors.Is(err, store.ErrLocalForbidden) {
				return nil, fmt.Errorf("%w: %w", remote.ErrUnsupported, err)
			}
			return nil, err
		}
		return localTarget{Communicator: local.New(local.Options{Logger: c.o.Logger}), dir: c.o.LocalDir}, nil
	}
	return nil, fmt.Errorf("%w: transport %q", remote.ErrUnsupported, sv.Transport)
}

// permanent marks err as one retrying cannot fix.
func permanent(err error) error { return fmt.Errorf("%w: %w", err, asynq.SkipRetry) }

// reason is err's message without the retry marker, for records.
func reason(err error) string {
	return strings.TrimSuffix(err.Error(), ": "+asynq.SkipRetry.Error())
}

// randSuffix returns a short random name part.
func randSuffix() string { return strings.ToLower(rand.Text()[:8]) }

// winTarget adds package directories to a WinRM client.
type winTarget struct{ *winrm.Client }

func (w winTarget) StagingDir(_ context.Context, name string) (string, error) {
	return winStagingRoot + `\` + name + "." + randSuffix(), nil
}

func (w winTarget) PersistentDir(uuid, version string) (string, error) {
	return winrm.PackageDir(uuid, version)
}

func (w winTarget) HostKey() string { return "" }

// localTarget adds package directories to the local communicator.
type localTarget struct {
	*local.Communicator
	dir string
}

func (l localTarget) StagingDir(_ context.Context, name string) (string, error) {
	if err := os.MkdirAll(l.dir, 0o700); err != nil {
		return "", fmt.Errorf("local: staging: %w", err)
	}
	d, err := os.MkdirTemp(l.dir, name+".")
	if err != nil {
		return "", fmt.Errorf("local: staging: %w", err)
	}
	return d, nil
}

func (l localTarget) PersistentDir(uuid, version string) (string, error) {
	return filepath.Join(l.dir, "packages", uuid, version), nil
}

func (l localTarget) HostKey() string { return "" }

// as is errors.As with a type parameter.
func as[T any](err error, target *T) bool { return err != nil && errors.As(err, target) }
