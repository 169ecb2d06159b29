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
// Nothing here is meant for production: the endpoint keeps every shell in
// memory and trusts its handler.
package winrmtest
