// Package ssh implements remote.Communicator over SSH (golang.org/x/crypto/ssh),
// with uploads over SFTP (github.com/pkg/sftp).
//
// It owns the SSH side of talking to a Linux host: authentication (private
// key with optional passphrase, password), host key verification (a pinned
// key, a known_hosts file, or trust-on-first-use that hands the first key to
// the caller to record; never ignored), one connection per host shared by
// its sessions with keepalives and an idle close, the staging and persistent
// directories packages are uploaded to, and reboot detection.
//
// # Commands
//
// Run starts every command as
//
//	printf '%d\n' "$$"; exec [sudo -n] /bin/sh -c 'cd <dir> || exit
//	<command>'
//
// The first line of standard output is the process id of the session's
// shell, which sshd made the leader of a new session and process group; it
// is stripped before the caller sees the output. When ctx is cancelled, Run
// sends SIGKILL to that whole process group from a second session (through
// "sudo -n" when the command ran through it), so the remote command and
// its children really stop: SSH signal requests alone do not reach the
// children of a command without a terminal. Input the command does not
// read is no error.
//
// # Uploads
//
// Upload speaks SFTP with concurrent writes, several files at a time,
// 128 KiB writes on servers that advertise limits@openssh.com (OpenSSH)
// and 32 KiB elsewhere. It runs as the login user, also with Sudo.
//
// # Reboot detection
//
// Reboot reads /proc/sys/kernel/random/boot_id, issues the reboot command
// (default "shutdown -r now", through "sudo -n" when the login user is not
// root), waits for the connection to drop, then reconnects with exponential
// backoff. It succeeds only once the boot id differs from the one read
// before and a command ran on the new connection; a host that comes back
// with the same boot id did not reboot and is waited for until the timeout
// (RebootOptions.Timeout, default 15 minutes). A host key that changed
// across the reboot fails with remote.ErrHostKeyMismatch.
//
// # Pooling
//
// Pool hands out Clients that share one connection per host (address, user,
// credentials, host key policy and Sudo). Connections are dialled lazily, closed
// after IdleTimeout without sessions, and replaced when they died.
package ssh
