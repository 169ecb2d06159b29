package remote

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// cmdRefused lists the characters cmd.exe cannot carry inside a
// double-quoted word: '"' ends the quotes, '%' expands variables even
// inside quotes, CR and LF end the command line and NUL ends the string.
// '!' and '^' are carried: commands run under cmd.exe /V:OFF, where '!'
// is plain text, and inside double quotes '^' is plain text too.
const cmdRefused = "\"%\r\n\x00"

// batchRefused lists the characters that must not reach a batch file
// through PowerShell: PowerShell writes an argument without spaces onto
// the command line unquoted, where cmd.exe acts on ^ & | < > ( ), and
// the cmd.exe Windows starts for the batch file keeps the host's
// delayed-expansion setting, under which '!' expands variables.
const batchRefused = cmdRefused + "!^&|<>()"

// QuotePOSIX returns s as one word for a POSIX shell: s enclosed in single
// quotes, where each single quote of s closes the quotes, is escaped with a
// backslash and reopens them:
//
//	it's  ->  'it'\''s'
//
// Every byte other than NUL is carried exactly; NUL cannot be part of a
// shell word, so callers passing untrusted text must refuse it first
// (Render does).
func QuotePOSIX(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// QuotePowerShell returns s as one PowerShell string literal: s enclosed in
// single quotes, each single-quote character doubled. PowerShell treats
// the typographic quotes U+2018, U+2019, U+201A and U+201B as single
// quotes too, so they are doubled as well. Inside single quotes
// PowerShell expands nothing ($, `, @, ( and ; are plain text). NUL cannot
// be carried; callers passing untrusted text must refuse it first.
func QuotePowerShell(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('\'')
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if isPowerShellSingleQuote(r) {
			b.WriteString(s[i : i+size])
		}
		b.WriteString(s[i : i+size])
		i += size
	}
	b.WriteByte('\'')
	return b.String()
}

// QuoteCmd returns s as one double-quoted word for cmd.exe started with
// /V:OFF (delayed expansion off). Inside double quotes cmd.exe takes
// & | < > ( ) ^ ! and spaces literally, but nothing can protect " % CR LF
// or NUL, so a string holding any of them is refused with an error
// wrapping ErrUnsafeValue.
//
// QuoteCmd does not double trailing backslashes: cmd.exe and batch files
// read them literally. Render doubles them for arguments of other programs,
// which split their command line with the Microsoft C runtime rules.
func QuoteCmd(s string) (string, error) {
	if i := strings.IndexAny(s, cmdRefused); i >= 0 {
		return "", fmt.Errorf("%w: cmd.exe cannot carry %s inside a quoted word", ErrUnsafeValue, describeByte(s[i]))
	}
	return `"` + s + `"`, nil
}

// isPowerShellSingleQuote reports whether PowerShell's tokenizer treats r
// as a single quote.
func isPowerShellSingleQuote(r rune) bool {
	switch r {
	case '\'', '\u2018', '\u2019', '\u201a', '\u201b':
		return true
	}
	return false
}

// describeByte names a refused character for an error message.
func describeByte(c byte) string {
	switch c {
	case '\r':
		return "CR"
	case '\n':
		return "LF"
	case 0:
		return "NUL"
	}
	return fmt.Sprintf("%q", rune(c))
}

// bareSafe reports whether s may appear unquoted as one word in sh with
// exactly its own meaning: it is not empty and holds only characters the
// shell gives no special meaning to in argument position.
func bareSafe(s string, sh Shell) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		switch c {
		case '_', '-', '.', '/', ':', '+':
			continue
		case '=', ',', '@', '%':
			// sh: plain. cmd.exe splits batch arguments at = and , and
			// expands %; PowerShell builds arrays with , and splats @.
			if sh == ShellPOSIX {
				continue
			}
			if c == '=' && sh == ShellPowerShell {
				continue
			}
		case '\\':
			// A path separator on Windows, an escape in sh.
			if sh != ShellPOSIX {
				continue
			}
		}
		return false
	}
	return true
}

// doubleTrailingBackslashes doubles the backslashes that end s, so that a
// program splitting its command line with the Microsoft C runtime rules
// reads them literally before the closing quote instead of as an escaped
// quote.
func doubleTrailingBackslashes(s string) string {
	n := len(s) - len(strings.TrimRight(s, `\`))
	if n == 0 {
		return s
	}
	return s + strings.Repeat(`\`, n)
}
