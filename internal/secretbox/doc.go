// Package secretbox encrypts secrets at rest with AES-256-GCM: credential
// secrets, passphrases and Password parameter values are sealed before
// they reach Redis and opened only where they are used (a worker
// connecting to a server, a command being rendered).
//
// A Box is made from the platform's secret key (PACKFLOW_SECRET_KEY, at
// least 32 random bytes). The AES key is derived from it with HKDF-SHA256,
// so keys of any length at or above 32 bytes give a full-strength key.
// A sealed value is
//
//	version (1 byte) | key id (4 bytes) | nonce (12 bytes) | ciphertext+tag
//
// The key id (the first bytes of a hash of the derived key) lets Open
// tell "sealed with another key" (ErrWrongKey) from "tampered with"
// (ErrCorrupt). Seal takes additional data that binds a sealed value to
// its place (for example the credential's ID), so a sealed value copied
// to another record does not open.
package secretbox
