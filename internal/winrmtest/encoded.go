package winrmtest

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode/utf16"
)

// decodeEncodedCommand returns the script carried by a powershell.exe
// command line's -EncodedCommand parameter (base64 of UTF-16LE), or "" when
// the line does not run PowerShell with an encoded command.
func decodeEncodedCommand(line string) (string, error) {
	fields := strings.Fields(line)
	if len(fields) == 0 || !isPowerShell(fields[0]) {
		return "", nil
	}
	for i := 1; i < len(fields); i++ {
		if !isEncodedCommandFlag(fields[i]) {
			continue
		}
		if i+1 >= len(fields) {
			return "", errors.New("-EncodedCommand without a value")
		}
		return DecodeScript(fields[i+1])
	}
	return "", nil
}

func isPowerShell(prog string) bool {
	prog = strings.ToLower(strings.Trim(prog, `"`))
	if i := strings.LastIndexAny(prog, `\/`); i >= 0 {
		prog = prog[i+1:]
	}
	return prog == "powershell" || prog == "powershell.exe" || prog == "pwsh" || prog == "pwsh.exe"
}

// isEncodedCommandFlag accepts the spellings powershell.exe accepts: any
// unambiguous prefix of -EncodedCommand from -e on, and -ec.
func isEncodedCommandFlag(f string) bool {
	if !strings.HasPrefix(f, "-") && !strings.HasPrefix(f, "/") {
		return false
	}
	f = strings.ToLower(f[1:])
	return f == "ec" || (f != "" && strings.HasPrefix("encodedcommand", f))
}

// DecodeScript decodes a -EncodedCommand value: base64 of the script's
// UTF-16LE bytes.
func DecodeScript(enc string) (string, error) {
	raw, err := base64.StdEncoding.DecodeString(enc)
	if err != nil {
		return "", fmt.Errorf("decode -EncodedCommand: %w", err)
	}
	if len(raw)%2 != 0 {
		return "", errors.New("decode -EncodedCommand: odd number of UTF-16 bytes")
	}
	u := make([]uint16, len(raw)/2)
	for i := range u {
		u[i] = uint16(raw[2*i]) | uint16(raw[2*i+1])<<8
	}
	return string(utf16.Decode(u)), nil
}
