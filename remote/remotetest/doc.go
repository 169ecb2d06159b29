// Package remotetest owns the conformance suite every remote.Communicator
// passes: running commands with their streams and exit status, working
// directories, cancellation that really stops the remote process, uploads
// that keep content and Unix modes, removal, reboot and Close.
//
// The suite speaks to the host through a Dialect: the commands each
// subtest needs, written for the host's shell. POSIX (sh with GNU
// coreutils, findutils and procps) is the default; Windows speaks cmd.exe
// and Windows PowerShell. A subtest whose property a host does not have,
// such as Unix modes on Windows, is skipped with the reason.
package remotetest
