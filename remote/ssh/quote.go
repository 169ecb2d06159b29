package ssh

import "strings"

// quote returns s as one single-quoted POSIX shell word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
