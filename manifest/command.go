package manifest

import (
	"errors"
	"fmt"
	"path"
	"strings"
)

// ErrUnclosed reports a "${" without its "}" in a command.
var ErrUnclosed = errors.New("unclosed ${")

// Segment is a piece of a command: literal text, or a ${Variable}
// reference that a renderer replaces with the value quoted for the target
// shell.
type Segment struct {
	Text     string `json:"text,omitempty"`
	Variable string `json:"variable,omitempty"`
	// Ref is true for a ${Variable} reference.
	Ref bool `json:"ref,omitempty"`
}

// IsVariable tells whether the segment is a ${Variable} reference.
func (s Segment) IsVariable() bool { return s.Ref }

// ParseCommand splits a command into literal text and ${Variable}
// references. A "$" not followed by "{" is literal. On an unclosed "${" it
// returns the segments before it and an error wrapping ErrUnclosed.
func ParseCommand(cmd string) ([]Segment, error) {
	var segs []Segment
	rest := cmd
	for rest != "" {
		i := strings.Index(rest, "${")
		if i < 0 {
			segs = append(segs, Segment{Text: rest})
			break
		}
		if i > 0 {
			segs = append(segs, Segment{Text: rest[:i]})
		}
		j := strings.IndexByte(rest[i+2:], '}')
		if j < 0 {
			return segs, fmt.Errorf("%w at character %d of the command", ErrUnclosed, len(cmd)-len(rest)+i+1)
		}
		segs = append(segs, Segment{Variable: strings.TrimSpace(rest[i+2 : i+2+j]), Ref: true})
		rest = rest[i+2+j+1:]
	}
	return segs, nil
}

// Program returns the archive path named by the command's first word, with
// "\" turned into "/", a leading "/", "./" or ".\" taken as the package root,
// and surrounding quotes removed. ok is false when the first word holds a
// variable or is empty. Whether the path is in the archive is for the caller
// to check: the word may be a program installed on the server (bash,
// powershell.exe, msiexec).
func Program(cmd string) (name string, ok bool) {
	word := firstWord(strings.TrimSpace(cmd))
	if word == "" || strings.Contains(word, "${") {
		return "", false
	}
	word = strings.ReplaceAll(word, `\`, "/")
	for {
		switch {
		case strings.HasPrefix(word, "./"):
			word = word[2:]
		case strings.HasPrefix(word, "/"):
			word = word[1:]
		default:
			word = path.Clean(word)
			if word == "." || word == ".." || strings.HasPrefix(word, "../") {
				return "", false
			}
			return word, true
		}
	}
}

// firstWord returns the first shell word of s, without quotes when it is
// quoted. A PowerShell call operator "&" or "." before it is skipped.
func firstWord(s string) string {
	for {
		if strings.HasPrefix(s, "& ") || strings.HasPrefix(s, ". ") {
			s = strings.TrimSpace(s[2:])
			continue
		}
		break
	}
	if s == "" {
		return ""
	}
	if q := s[0]; q == '"' || q == '\'' {
		if end := strings.IndexByte(s[1:], q); end >= 0 {
			return s[1 : 1+end]
		}
		return s[1:]
	}
	if i := strings.IndexAny(s, " \t\r\n"); i >= 0 {
		return s[:i]
	}
	return s
}

// scriptExts are extensions that mark a first word as a file of the package
// rather than a program of the server.
var scriptExts = []string{".sh", ".bash", ".ps1", ".cmd", ".bat", ".py", ".pl", ".rb", ".vbs", ".js", ".msi"}

// namesPackageFile tells whether a first word that is not in the archive
// was nevertheless meant as one of its files: it has a directory part or a
// script extension. Bare ".exe" names are left alone (powershell.exe,
// msiexec.exe live on the server), as are absolute paths into the Linux
// system directories on Ssh packages.
func namesPackageFile(raw string, mode Mode) bool {
	raw = strings.ReplaceAll(strings.TrimSpace(raw), `\`, "/")
	if mode == ModeSsh {
		for _, dir := range []string{"/bin/", "/sbin/", "/usr/", "/opt/", "/etc/"} {
			if strings.HasPrefix(raw, dir) {
				return false
			}
		}
	}
	if strings.Contains(raw, "/") {
		return true
	}
	ext := strings.ToLower(path.Ext(raw))
	for _, e := range scriptExts {
		if ext == e {
			return true
		}
	}
	return false
}
