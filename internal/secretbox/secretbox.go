package secretbox

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
)

// MinKeySize is the shortest secret key accepted, in bytes.
const MinKeySize = 32

const (
	version   = 1
	keyIDSize = 4
	nonceSize = 12
	header    = 1 + keyIDSize + nonceSize
)

// Errors callers branch on.
var (
	// ErrWrongKey means the value was sealed with another secret key.
	ErrWrongKey = errors.New("secretbox: sealed with another key")
	// ErrCorrupt means the value is not a sealed value of this box or was
	// altered.
	ErrCorrupt = errors.New("secretbox: sealed value is corrupt")
)

// Box seals and opens secrets. It is safe for concurrent use.
type Box struct {
	aead  cipher.AEAD
	keyID [keyIDSize]byte
}

// New returns a Box for the secret key, which must be at least MinKeySize
// bytes of random data.
func New(secretKey []byte) (*Box, error) {
	if len(secretKey) < MinKeySize {
		return nil, fmt.Errorf("secretbox: the secret key has %d bytes; at least %d are needed", len(secretKey), MinKeySize)
	}
	key, err := hkdf.Key(sha256.New, secretKey, nil, "packflow secretbox v1", 32)
	if err != nil {
		return nil, fmt.Errorf("secretbox: derive key: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("secretbox: %w", err)
	}
	b := &Box{aead: aead}
	sum := sha256.Sum256(append([]byte("packflow key id\x00"), key...))
	copy(b.keyID[:], sum[:])
	return b, nil
}

// Seal encrypts plaintext, bound to aad (which Open must be given again).
func (b *Box) Seal(plaintext, aad []byte) ([]byte, error) {
	out := make([]byte, header, header+len(plaintext)+b.aead.Overhead())
	out[0] = version
	copy(out[1:], b.keyID[:])
	if _, err := rand.Read(out[1+keyIDSize : header]); err != nil {
		return nil, fmt.Errorf("secretbox: nonce: %w", err)
	}
	return b.aead.Seal(out, out[1+keyIDSize:header], plaintext, aad), nil
}

// Open decrypts a value from Seal made with the same aad.
func (b *Box) Open(sealed, aad []byte) ([]byte, error) {
	if len(sealed) < header+b.aead.Overhead() || sealed[0] != version {
		return nil, ErrCorrupt
	}
	if [keyIDSize]byte(sealed[1:1+keyIDSize]) != b.keyID {
		return nil, ErrWrongKey
	}
	pt, err := b.aead.Open(nil, sealed[1+keyIDSize:header], sealed[header:], aad)
	if err != nil {
		return nil, ErrCorrupt
	}
	return pt, nil
}

// SealString seals s and returns it as unpadded base64url text, for JSON
// records.
func (b *Box) SealString(s, aad string) (string, error) {
	out, err := b.Seal([]byte(s), []byte(aad))
	if err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// OpenString opens a value from SealString.
func (b *Box) OpenString(sealed, aad string) (string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(sealed)
	if err != nil {
		return "", ErrCorrupt
	}
	pt, err := b.Open(raw, []byte(aad))
	if err != nil {
		return "", err
	}
	return string(pt), nil
}
