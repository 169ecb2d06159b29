package manifest

import (
	"bytes"
	"encoding/json"
	"regexp"
)

// foreignKind names the kind of a file called package.manifest that is not
// XML at all (its first character is not "<"), so the author is told what
// the file is instead of an XML syntax error: other platforms (Umbraco,
// Firefox OS, Checkmk, FeOS…) use the same file name.
func foreignKind(b []byte) string {
	t := bytes.TrimSpace(b)
	switch {
	case len(t) == 0:
		return "an empty file"
	case (t[0] == '{' || t[0] == '[') && json.Valid(t):
		return "a JSON file"
	case t[0] == '{' || t[0] == '[' || bytes.HasPrefix(t, []byte("//")) || bytes.HasPrefix(t, []byte("/*")) ||
		bytes.HasPrefix(t, []byte("var ")) || bytes.HasPrefix(t, []byte("module.exports")):
		return "a JavaScript file"
	case keyValueFile(t):
		return "a text file of \"key: value\" lines"
	}
	return "a plain text file"
}

var keyValueLine = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_. -]*:(\s|$)`)

// keyValueFile tells whether most non-blank lines of t are "key: value"
// lines (RFC 822 headers, YAML mappings, Debian control files).
func keyValueFile(t []byte) bool {
	lines, kv := 0, 0
	for _, l := range bytes.Split(t, []byte("\n")) {
		l = bytes.TrimSpace(l)
		if len(l) == 0 || l[0] == '#' {
			continue
		}
		lines++
		if keyValueLine.Match(l) {
			kv++
		}
	}
	return lines > 0 && kv*2 > lines
}
