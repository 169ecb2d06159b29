package winrm

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"

	"github.com/packflow/packflow/remote"
)

// PackagesRoot is where persistent packages live on Windows hosts.
const PackagesRoot = `C:\ProgramData\packflow\packages`

// PackageDir returns the stable directory of a persistent package version,
// PackagesRoot\<uuid>\<version>. It refuses names that are empty, hold a
// path separator or a character Windows forbids in file names, or are "."
// or "..".
func PackageDir(uuid, version string) (string, error) {
	for _, name := range []string{uuid, version} {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, `\/:*?"<>|`) ||
			strings.IndexFunc(name, func(r rune) bool { return r < 0x20 }) >= 0 {
			return "", fmt.Errorf("%w: %q is not a valid directory name", remote.ErrUnsafeValue, name)
		}
	}
	return PackagesRoot + `\` + uuid + `\` + version, nil
}

// powerShellPrefix starts every PowerShell command line.
const powerShellPrefix = "powershell.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand "

// encodePowerShell returns the command line that runs script with
// powershell.exe: the script's UTF-16LE bytes, base64-encoded.
func encodePowerShell(script string) string {
	u := utf16.Encode([]rune(script))
	b := make([]byte, 2*len(u))
	for i, c := range u {
		binary.LittleEndian.PutUint16(b[2*i:], c)
	}
	return powerShellPrefix + base64.StdEncoding.EncodeToString(b)
}

// Markers that delimit the caller's command inside the PowerShell wrapper.
// #region is a comment to PowerShell.
const (
	regionStart = "#region command"
	regionEnd   = "#endregion command"
)

// scriptPreamble makes every script stop at the first error and keeps
// progress bars (which PowerShell writes as CLIXML to stderr) quiet.
const scriptPreamble = "$ErrorActionPreference = 'Stop'\n$ProgressPreference = 'SilentlyContinue'\n"

// catchExit1 ends a try block: an error thrown by the script is written to
// stderr and ends the process with status 1.
const catchExit1 = "} catch {\n    [Console]::Error.WriteLine($_.ToString())\n    exit 1\n}\n"

// userScript wraps a PowerShell command: set the location, run the
// command, exit with the status of the last native program, or 1 when the
// command throws.
func userScript(dir, command string) string {
	var b strings.Builder
	b.WriteString(scriptPreamble)
	b.WriteString("try {\n")
	if dir != "" {
		b.WriteString("    Set-Location -LiteralPath " + remote.QuotePowerShell(dir) + "\n")
	}
	b.WriteString("    $global:LASTEXITCODE = 0\n")
	b.WriteString(regionStart + "\n" + command + "\n" + regionEnd + "\n")
	b.WriteString("    exit $LASTEXITCODE\n")
	b.WriteString(catchExit1)
	return b.String()
}

// internalScript builds one of the communicator's own scripts. The first
// line names it ("# packflow:<name>"), each parameter is assigned as a
// single-quoted literal on its own line, then comes body inside the
// error-handling wrapper.
func internalScript(name string, params [][2]string, body string) string {
	var b strings.Builder
	b.WriteString("# packflow:" + name + "\n")
	for _, p := range params {
		b.WriteString("$" + p[0] + " = " + remote.QuotePowerShell(p[1]) + "\n")
	}
	b.WriteString(scriptPreamble)
	b.WriteString("try {\n")
	b.WriteString(body)
	b.WriteString(catchExit1)
	return b.String()
}

// uploadBody reads base64 lines from stdin into a temporary .zip (the
// extension Expand-Archive insists on), checks its SHA-256, expands it into
// $Destination and removes it whatever happens.
const uploadBody = `    $zip = Join-Path ([IO.Path]::GetTempPath()) ('packflow-' + [guid]::NewGuid().ToString('N') + '.zip')
    try {
        $out = [IO.File]::Open($zip, [IO.FileMode]::CreateNew, [IO.FileAccess]::Write)
        try {
            $in = [Console]::In
            while ($null -ne ($line = $in.ReadLine())) {
                if ($line.Length -eq 0) { continue }
                $bytes = [Convert]::FromBase64String($line)
                $out.Write($bytes, 0, $bytes.Length)
            }
        } finally {
            $out.Dispose()
        }
        $got = (Get-FileHash -LiteralPath $zip -Algorithm SHA256).Hash
        if ($got -ne $Sha256) {
            throw "upload corrupted: archive SHA-256 is $got, expected $Sha256"
        }
        [void][IO.Directory]::CreateDirectory($Destination)
        Expand-Archive -LiteralPath $zip -DestinationPath $Destination -Force
    } finally {
        Remove-Item -LiteralPath $zip -Force -ErrorAction SilentlyContinue
    }
    exit 0
`

func uploadScript(dst, sha256Hex string) string {
	return internalScript("upload", [][2]string{{"Destination", dst}, {"Sha256", sha256Hex}}, uploadBody)
}

// removeBody deletes $Path and everything below it; a missing path is not
// an error.
const removeBody = `    if (Test-Path -LiteralPath $Path) {
        Remove-Item -LiteralPath $Path -Recurse -Force
    }
    exit 0
`

func removeScript(p string) string {
	return internalScript("remove", [][2]string{{"Path", p}}, removeBody)
}

// bootTimeBody prints the last boot time as a stable round-trip string.
const bootTimeBody = `    (Get-CimInstance -ClassName Win32_OperatingSystem).LastBootUpTime.ToUniversalTime().ToString('o')
    exit 0
`

func bootTimeScript() string {
	return internalScript("boottime", nil, bootTimeBody)
}

// defaultRebootCommand restarts the host at once, whoever is logged on.
const defaultRebootCommand = "Restart-Computer -Force"

func rebootScript(command string) string {
	if command == "" {
		command = defaultRebootCommand
	}
	return internalScript("reboot", nil, "    "+command+"\n    exit 0\n")
}

// cmdPrefix starts the process that runs a cmd.exe command: no AutoRun
// commands (/d), delayed expansion off whatever the registry says
// (/v:off, so that ! is plain text), and /s so that exactly the outer
// pair of quotes around the command is removed. Commands are started
// without WinRM's own cmd.exe (see skipCmdShell), so this is the only
// cmd.exe that reads the line.
const cmdPrefix = "cmd.exe /d /v:off /s /c "

// commandLine renders cmd as the line sent to the WinRM cmd shell. An
// empty Shell means cmd.exe, WinRM's own shell.
func commandLine(cmd *remote.Cmd) (string, error) {
	var line string
	switch cmd.Shell {
	case remote.ShellCmd, "":
		inner := cmd.Command
		if cmd.Dir != "" {
			dir, err := remote.QuoteCmd(cmd.Dir)
			if err != nil {
				return "", fmt.Errorf("winrm: working directory: %w", err)
			}
			inner = "cd /d " + dir + " && " + cmd.Command
		}
		line = cmdPrefix + `"` + inner + `"`
	case remote.ShellPowerShell:
		line = encodePowerShell(userScript(cmd.Dir, cmd.Command))
	default:
		return "", fmt.Errorf("%w: winrm runs cmd and powershell commands, not %q", remote.ErrUnsafeValue, cmd.Shell)
	}
	return line, checkLine(line)
}

// errCommandTooLong reports a command line over cmd.exe's limit.
var errCommandTooLong = errors.New("winrm: command line too long")

// checkLine refuses command lines the protocol or cmd.exe cannot carry.
func checkLine(line string) error {
	switch {
	case strings.TrimSpace(line) == "":
		return errors.New("winrm: empty command")
	case strings.Contains(line, "]]>"):
		// The client sends the line in a CDATA section that "]]>" would end.
		return fmt.Errorf("%w: a command line cannot contain \"]]>\"", remote.ErrUnsafeValue)
	case strings.ContainsAny(line, "\x00\r\n"):
		return fmt.Errorf("%w: a cmd.exe command line cannot contain NUL, CR or LF", remote.ErrUnsafeValue)
	case len(line) > maxCommandLine:
		// Permanent: retrying cannot shorten the line.
		return fmt.Errorf("%w (%w): %d characters, cmd.exe takes at most %d",
			errCommandTooLong, remote.ErrUnsafeValue, len(line), maxCommandLine)
	}
	return nil
}

// checkRemovable refuses paths whose removal would be a disaster or that
// are not absolute Windows paths: empty, a drive root, a UNC path, or a
// path with . or .. components.
func checkRemovable(p string) error {
	clean := strings.TrimRight(strings.ReplaceAll(p, "/", `\`), `\`)
	if len(clean) < 4 || !isDriveLetter(clean[0]) || clean[1] != ':' || clean[2] != '\\' {
		return fmt.Errorf("%w: refusing to remove %q: not an absolute path below a drive root", remote.ErrUnsafeValue, p)
	}
	for _, part := range strings.Split(clean[3:], `\`) {
		if part == "" || part == "." || part == ".." {
			return fmt.Errorf("%w: refusing to remove %q: empty, . or .. component", remote.ErrUnsafeValue, p)
		}
	}
	if strings.ContainsAny(clean, "*?\x00") {
		return fmt.Errorf("%w: refusing to remove %q: wildcard or NUL", remote.ErrUnsafeValue, p)
	}
	return nil
}

func isDriveLetter(c byte) bool { return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' }
