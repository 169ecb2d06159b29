// Package sshdtest starts real OpenSSH sshd processes on loopback addresses
// for tests and benchmarks: generated host and client keys, key-only
// authentication, a clean home for sessions, one or many "hosts" (one
// loopback address each, several sshd processes when more than 15 are
// asked for, since a stock sshd listens on at most 16 sockets).
//
// Start is for tests: it skips when sshd is missing, except when the
// environment variable CI is "true", where it fails instead. Launch is the
// same without a *testing.T, for benchmarks.
package sshdtest
