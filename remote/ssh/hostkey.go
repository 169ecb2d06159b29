package ssh

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/packflow/packflow/remote"
)

// authorizedLine renders key as an authorized_keys line without newline.
func authorizedLine(key ssh.PublicKey) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
}

// parseKeyLine parses an authorized_keys line.
func parseKeyLine(line string) (ssh.PublicKey, error) {
	key, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		return nil, fmt.Errorf("ssh: parse host key %q: %w", line, err)
	}
	return key, nil
}

// algorithmsFor lists the host key algorithms that make a server present a
// key of type keyType, so a host with several keys shows the pinned one.
func algorithmsFor(keyType string) []string {
	if keyType == ssh.KeyAlgoRSA {
		return []string{ssh.KeyAlgoRSASHA512, ssh.KeyAlgoRSASHA256, ssh.KeyAlgoRSA}
	}
	return []string{keyType}
}

// hostKeys verifies host keys for one host. After the first accepted key
// every later connection must present that same key, whatever the policy.
type hostKeys struct {
	policy HostKeyPolicy
	known  ssh.HostKeyCallback // from KnownHostsFile

	mu       sync.Mutex
	accepted ssh.PublicKey
	algos    []string // host key algorithms to offer; nil means the default
}

func newHostKeys(p HostKeyPolicy) (*hostKeys, error) {
	h := &hostKeys{policy: p}
	switch {
	case p.Pinned != "":
		key, err := parseKeyLine(p.Pinned)
		if err != nil {
			return nil, err
		}
		h.accepted = key
		h.algos = algorithmsFor(key.Type())
	case p.KnownHostsFile != "":
		cb, err := knownhosts.New(p.KnownHostsFile)
		if err != nil {
			return nil, fmt.Errorf("ssh: read known_hosts: %w", err)
		}
		h.known = cb
	}
	return h, nil
}

// algorithms returns the host key algorithms to offer.
func (h *hostKeys) algorithms() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.algos
}

// key returns the accepted host key line, or "" before the first connection.
func (h *hostKeys) key() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepted == nil {
		return ""
	}
	return authorizedLine(h.accepted)
}

// errRetryAlgorithms asks the dialler to connect again offering the host key
// algorithms recorded in known_hosts.
var errRetryAlgorithms = errors.New("ssh: host presented a key type not in known_hosts")

// check is the ssh.HostKeyCallback.
func (h *hostKeys) check(hostname string, addr net.Addr, key ssh.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.accepted != nil {
		if !keysEqual(h.accepted, key) {
			return mismatch(hostname, key, h.accepted)
		}
		return nil
	}
	switch {
	case h.known != nil:
		err := h.known(hostname, addr, key)
		var kerr *knownhosts.KeyError
		if errors.As(err, &kerr) {
			if len(kerr.Want) == 0 {
				return fmt.Errorf("%w: %s is not in known_hosts", remote.ErrHostKeyMismatch, hostname)
			}
			if h.algos == nil && !sameType(kerr.Want, key.Type()) {
				// The host has a key we know, of another type: offer that type.
				for _, w := range kerr.Want {
					h.algos = append(h.algos, algorithmsFor(w.Key.Type())...)
				}
				return errRetryAlgorithms
			}
			return mismatch(hostname, key, kerr.Want[0].Key)
		}
		if err != nil {
			return fmt.Errorf("%w: %s: %w", remote.ErrHostKeyMismatch, hostname, err)
		}
	case h.policy.TrustOnFirstUse:
		if err := h.policy.OnFirstKey(authorizedLine(key)); err != nil {
			return fmt.Errorf("ssh: record first host key of %s: %w", hostname, err)
		}
	default:
		return fmt.Errorf("%w: no host key policy", remote.ErrHostKeyMismatch)
	}
	h.accepted = key
	h.algos = algorithmsFor(key.Type())
	return nil
}

func sameType(want []knownhosts.KnownKey, keyType string) bool {
	for _, w := range want {
		if w.Key.Type() == keyType {
			return true
		}
	}
	return false
}

func keysEqual(a, b ssh.PublicKey) bool {
	return a.Type() == b.Type() && string(a.Marshal()) == string(b.Marshal())
}

func mismatch(hostname string, got, want ssh.PublicKey) error {
	return fmt.Errorf("%w: %s presented %s %s, want %s %s", remote.ErrHostKeyMismatch, hostname,
		got.Type(), ssh.FingerprintSHA256(got), want.Type(), ssh.FingerprintSHA256(want))
}

// authMethods turns Auth into SSH auth methods. A key that cannot be
// decrypted is an authentication failure.
func authMethods(a Auth) ([]ssh.AuthMethod, error) {
	var methods []ssh.AuthMethod
	if len(a.PrivateKeyPEM) > 0 {
		signer, err := ssh.ParsePrivateKey(a.PrivateKeyPEM)
		var missing *ssh.PassphraseMissingError
		if errors.As(err, &missing) {
			if a.Passphrase == "" {
				return nil, fmt.Errorf("%w: private key is encrypted and no passphrase was given", remote.ErrAuth)
			}
			signer, err = ssh.ParsePrivateKeyWithPassphrase(a.PrivateKeyPEM, []byte(a.Passphrase))
			if errors.Is(err, x509.IncorrectPasswordError) {
				return nil, fmt.Errorf("%w: wrong passphrase for private key", remote.ErrAuth)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("%w: parse private key: %w", remote.ErrAuth, err)
		}
		methods = append(methods, ssh.PublicKeys(signer))
	}
	if a.Password != "" {
		pw := a.Password
		methods = append(methods, ssh.Password(pw),
			ssh.KeyboardInteractive(func(_, _ string, questions []string, _ []bool) ([]string, error) {
				answers := make([]string, len(questions))
				for i := range answers {
					answers[i] = pw
				}
				return answers, nil
			}))
	}
	return methods, nil
}
