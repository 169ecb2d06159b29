// Package sshtest owns an in-process SSH server (golang.org/x/crypto/ssh)
// for fault injection in tests: simulated reboots (connections dropped,
// refused for a while, back with a new boot id), changed host keys,
// commands that hang without an answer, connections dropped mid-command or
// mid-upload. Other commands run for real under /bin/sh, each in its own
// session and process group as sshd does, and SFTP serves the real file
// system, so the server passes the remote conformance suite.
package sshtest
