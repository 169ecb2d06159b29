// Package winrm owns the WinRM implementation of remote.Communicator: it
// runs cmd.exe and PowerShell commands on Windows hosts over WS-Management
// (github.com/masterzen/winrm), uploads package trees, removes paths and
// reboots hosts.
//
// # Transport
//
// The client always speaks HTTPS (port 5986 by default) and verifies the
// host's certificate against the system roots, or against
// Options.CACertPEM when given; Options.Insecure skips verification and is
// meant only for servers explicitly recorded that way. Plain HTTP
// (Options.PlainHTTP) is refused with ErrPlainHTTP: Basic would send the
// password in clear, and NTLM message encryption, which would make plain
// HTTP safe, is not implemented (the masterzen client's version falls
// back to unencrypted messages when its handshake fails, and ignores the
// context). Basic and NTLM authentication are supported. The NTLM
// negotiator authenticates every request afresh, which costs two extra
// round trips per message. Every request carries the caller's context, so
// cancelling it aborts the request on the wire; a cancelled command is
// then terminated with a Signal and its shell deleted.
//
// # Commands
//
// WinRM's cmd shell would run every command line through cmd.exe /c,
// whose delayed expansion follows the host's registry. The communicator
// instead starts every command line as a process of its own
// (WINRS_SKIP_CMD_SHELL=TRUE, set on the masterzen client's Command
// requests) and names cmd.exe itself, so a remote.ShellCmd command is
// sent as
//
//	cmd.exe /d /v:off /s /c "cd /d "<dir>" && <command>"
//
// exactly one cmd.exe reads it, with delayed expansion off (! and, inside
// quotes, ^ are plain text) and /s removing the outer pair of quotes.
//
// A remote.ShellPowerShell command is sent as
//
//	powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand <base64 of UTF-16LE>
//
// where the script stops on the first error, sets the location with
// Set-Location -LiteralPath, runs the command and exits with $LASTEXITCODE
// (the status of the last native program), or 1 when the script throws.
// cmd.exe limits a command line to 8191 characters, which bounds the
// length of a PowerShell command to roughly 2,900 characters once encoded.
//
// # Upload
//
// Upload zips the local tree into a temporary file (hashing it on the way)
// and streams it through the stdin of one PowerShell command, base64 text
// one line per WinRM Send message. Each Send is sized to the envelope
// limit (Options.MaxEnvelopeSize, default 500 KiB like Windows'
// MaxEnvelopeSizekb): stdin travels base64-encoded inside the envelope, so
// a Send carries (limit − 4 KiB headroom) × 3/4 stdin bytes, that is about
// 279 KiB of archive per round trip, instead of the few KiB per command
// of tools that paste chunks into command lines. On the host the script
// decodes every line into a temporary .zip, checks its SHA-256 with
// Get-FileHash, expands it into the destination with Expand-Archive and
// removes the temporary file. Windows has no Unix modes: the modes kept in
// the archive are ignored, and a new destination inherits the ACL of its
// parent. Get-FileHash and Expand-Archive need PowerShell 5.0 or later
// (Windows Server 2016, or WMF 5.1 on older systems).
//
// # Reboot
//
// Reboot reads LastBootUpTime, issues Restart-Computer -Force, then polls
// with a capped exponential backoff until a command runs again and reports
// a different LastBootUpTime, bounded by RebootOptions.Timeout (15 minutes
// by default).
//
// Persistent packages live under PackageDir(uuid, version), that is
// C:\ProgramData\packflow\packages\<uuid>\<version>.
package winrm
