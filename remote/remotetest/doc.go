// Package remotetest owns the conformance suite every remote.Communicator
// passes: running commands with their streams and exit status, working
// directories, cancellation that really stops the remote process, uploads
// that keep content and Unix modes, removal, reboot and Close. The suite
// speaks POSIX sh to the host (sh, cat, find, stat, sha256sum, pgrep).
package remotetest
