package winrmtest

import "strings"

// SplitArgs splits a Windows command line's arguments as programs built
// with the Microsoft C runtime (since 2008) do, which is also what
// CommandLineToArgvW does after the program name:
//
//   - spaces and tabs outside double quotes separate arguments;
//   - a double quote starts or ends a quoted part; inside one, two double
//     quotes in a row are one literal double quote;
//   - 2n backslashes before a double quote are n backslashes and the
//     quote acts as above; 2n+1 backslashes before a double quote are n
//     backslashes and a literal double quote;
//   - backslashes not followed by a double quote are literal.
//
// s holds the arguments only, without the program name.
func SplitArgs(s string) []string {
	var args []string
	var cur strings.Builder
	inArg, quoted := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\':
			n := 0
			for i < len(s) && s[i] == '\\' {
				n++
				i++
			}
			inArg = true
			if i < len(s) && s[i] == '"' {
				cur.WriteString(strings.Repeat(`\`, n/2))
				if n%2 == 1 {
					cur.WriteByte('"')
					continue
				}
			} else {
				cur.WriteString(strings.Repeat(`\`, n))
			}
			i-- // the quote, or whatever follows, is read next
		case c == '"':
			inArg = true
			if quoted && i+1 < len(s) && s[i+1] == '"' {
				cur.WriteByte('"')
				i++
				continue
			}
			quoted = !quoted
		case (c == ' ' || c == '\t') && !quoted:
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
			}
			inArg = false
		default:
			cur.WriteByte(c)
			inArg = true
		}
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args
}
