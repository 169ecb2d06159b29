package manifest

import (
	"fmt"
	"regexp"
	"strings"
)

// checkRegex compiles a parameter's Regex with Go's RE2 engine and explains
// a failure, naming the construct when the pattern uses syntax RE2 lacks.
func checkRegex(pat string) (rule, msg string) {
	_, err := regexp.Compile(pat)
	if err == nil {
		return "", ""
	}
	if feat := unsupportedRegex(pat); feat != "" {
		return RuleParamRegexUnsupported, fmt.Sprintf(
			"Regex uses %s, which the RE2 engine used here does not support (no lookaround, backreferences, atomic groups or possessive quantifiers); rewrite the pattern without it", feat)
	}
	return RuleParamRegexSyntax, fmt.Sprintf("Regex does not compile: %s; fix the pattern", strings.TrimPrefix(err.Error(), "error parsing regexp: "))
}

// unsupportedRegex names the first construct of pat that RE2 lacks, or "".
func unsupportedRegex(pat string) string {
	inClass := false
	for i := 0; i < len(pat); i++ {
		c := pat[i]
		if c == '\\' && i+1 < len(pat) {
			n := pat[i+1]
			switch {
			case inClass:
			case '1' <= n && n <= '9':
				return fmt.Sprintf("a backreference (\\%c)", n)
			case n == 'k' && i+2 < len(pat) && (pat[i+2] == '<' || pat[i+2] == '\'' || pat[i+2] == '{'):
				return "a named backreference (\\k<name>)"
			case n == 'G':
				return "the \\G anchor"
			}
			i++
			continue
		}
		if inClass {
			if c == ']' {
				inClass = false
			}
			continue
		}
		switch c {
		case '[':
			inClass = true
			if strings.HasPrefix(pat[i+1:], "]") || strings.HasPrefix(pat[i+1:], "^]") {
				i += strings.IndexByte(pat[i+1:], ']') + 1
			}
		case '(':
			rest := pat[i:]
			for _, f := range []struct{ prefix, name string }{
				{"(?<=", "a lookbehind (?<=…)"},
				{"(?<!", "a negative lookbehind (?<!…)"},
				{"(?=", "a lookahead (?=…)"},
				{"(?!", "a negative lookahead (?!…)"},
				{"(?>", "an atomic group (?>…)"},
				{"(?(", "a conditional (?(…)…)"},
			} {
				if strings.HasPrefix(rest, f.prefix) {
					return f.name
				}
			}
		case '*', '+', '?', '}':
			if i+1 < len(pat) && pat[i+1] == '+' {
				return fmt.Sprintf("a possessive quantifier (%c+)", c)
			}
		}
	}
	return ""
}
