package manifest

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/dlclark/regexp2"
)

// RegexTimeout bounds one match of a parameter's Regex, so that a pattern
// that backtracks catastrophically cannot hang a worker or the API. .NET's
// Regex.IsMatch has no bound by default; real patterns match a value in
// microseconds.
const RegexTimeout = 250 * time.Millisecond

// ErrRegexTimeout is returned by MatchRegex when the match ran past
// RegexTimeout.
var ErrRegexTimeout = errors.New("the Regex took too long to match (it backtracks catastrophically); simplify the pattern")

// CompileRegex compiles a parameter's Regex as the original platform did:
// with .NET's regular expression syntax and semantics (lookaround,
// backreferences, atomic groups and the like included). A pattern .NET
// refuses is refused.
func CompileRegex(pattern string) (*regexp2.Regexp, error) {
	re, err := regexp2.Compile(pattern, regexp2.None)
	if err != nil {
		return nil, fmt.Errorf("manifest: regex: %w", err)
	}
	re.MatchTimeout = RegexTimeout
	return re, nil
}

// MatchRegex tells whether value matches pattern the way the original
// platform checked parameter values, with .NET's Regex.IsMatch: anywhere
// in the value (anchor with ^…$ to match whole values). Every check of a
// parameter's Regex — publish, the API, deployments — goes through it.
// The error is a compile error or ErrRegexTimeout.
func MatchRegex(pattern, value string) (bool, error) {
	re, err := CompileRegex(pattern)
	if err != nil {
		return false, err
	}
	ok, err := re.MatchString(value)
	if err != nil {
		return false, fmt.Errorf("%w (limit %s)", ErrRegexTimeout, RegexTimeout)
	}
	return ok, nil
}

// checkRegex compiles a parameter's Regex and explains a failure.
func checkRegex(pat string) (rule, msg string) {
	if _, err := CompileRegex(pat); err != nil {
		return RuleParamRegexSyntax, fmt.Sprintf("Regex does not compile as a .NET regular expression: %s; fix the pattern",
			strings.TrimPrefix(err.Error(), "manifest: regex: "))
	}
	return "", ""
}
