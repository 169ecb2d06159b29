// Package winrmtest owns a WS-Management endpoint for tests: an
// httptest.Server (plain HTTP or TLS) that speaks the WinRM remote shell
// protocol (MS-WSMV: Create, Command, Send, Receive, Signal, Delete) to real
// WinRM clients such as github.com/masterzen/winrm, enforces Basic
// credentials and hands every command to a pluggable Handler.
//
// FakeHost is a Handler that emulates the parts of a Windows host that
// packflow's WinRM communicator touches: an in-memory file tree filled by
// the upload script, the remove script, boot-time queries, a reboot that
// drops every connection for a while, and a small registry of canned
// programs for cmd.exe and PowerShell commands.
//
// # cmd.exe rules the FakeHost models
//
// A command line arrives either with WINRS_SKIP_CMD_SHELL=FALSE, and then
// runs as cmd.exe /c <line>, or with TRUE, and then starts as a process of
// its own: cmd.exe (its switches /d /q /s /v:on /v:off and /c are read;
// others fail) or a program of the registry. For a cmd.exe process:
//
//   - /s removes exactly the first and the last double quote of the
//     command; without /s two quotes stay and otherwise the first and
//     last are removed (the program-name check of real cmd.exe is not
//     modelled).
//   - Delayed expansion is /v:on or /v:off when given, else
//     FakeHostOptions.DelayedExpansion (the registry's DelayedExpansion).
//   - Special characters (phase 2): a double quote toggles quoting; outside
//     quotes a caret makes the next character literal and is removed, and
//     & && || split commands (a pipe is refused: not emulated); inside
//     quotes everything is text, carets included.
//   - Delayed expansion (phase 5), only when on and the command holds a
//     '!': a caret makes the next character literal and is removed, inside
//     quotes too; !NAME! expands (the host has no variables: to nothing,
//     as an undefined variable in a batch file) and a lone '!' is removed.
//   - Redirections 1>&2, 2>&1, >nul, 2>nul and <nul; cd /d.
//
// %VAR% expansion is not modelled (packflow refuses % in values). A
// program receives the rest of its command text verbatim; SplitArgs
// splits it with the Microsoft C runtime rules.
//
// Nothing here is meant for production: the endpoint keeps every shell in
// memory and trusts its handler.
package winrmtest
