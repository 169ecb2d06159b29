package manifest

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Value rules, as reported in ValueError.Rule.
const (
	ValueMissing   = "missing"
	ValueInvalid   = "invalid value"
	ValueWrongType = "wrong type"
)

// MinPasswordLength is the shortest Password value accepted.
const MinPasswordLength = 8

// ValueError explains why a value does not fit a parameter. Its message
// never contains the value of a Password parameter, nor anything derived
// from it such as its length: it is the same for every value that breaks
// the same rule, so callers show it as is.
type ValueError struct {
	Variable string `json:"variable"`
	// Rule is ValueMissing, ValueInvalid or ValueWrongType.
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("%s: %s: %s", e.Variable, e.Rule, e.Message)
}

func valueMessage(err error) string {
	var ve *ValueError
	if errors.As(err, &ve) {
		return ve.Message
	}
	return err.Error()
}

// CheckValue tells whether v is an acceptable value for the parameter at
// deployment time; it returns nil or a *ValueError. An empty value is
// missing when the parameter is Required (fill in Default before calling).
//
//   - Numeric: a decimal number (integer or fraction, optional sign).
//   - Option: exactly one of the option values.
//   - MultiSelect: option values joined by commas, each at most once.
//   - Password: at least MinPasswordLength characters from at least three
//     of lower case, upper case, digits and other characters.
//   - String: matches Regex, when given, with .NET semantics and
//     unanchored, as Regex.IsMatch in the original platform (anchor with
//     ^…$ to match the whole value); see MatchRegex.
//   - Network: a CIDR prefix such as 10.0.0.0/24 (or a single address).
//   - ServerIP: an IPv4 or IPv6 address.
//   - Server: a server name (no control characters).
//
// No value may contain a NUL character.
func (p Parameter) CheckValue(v string) error {
	fail := func(rule, format string, args ...any) error {
		return &ValueError{Variable: p.Variable, Rule: rule, Message: fmt.Sprintf(format, args...)}
	}
	if v == "" {
		if p.Required {
			return fail(ValueMissing, "a value is required")
		}
		return nil
	}
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return fail(ValueInvalid, "the value must be UTF-8 text without NUL characters")
	}
	switch p.Type {
	case TypeNumeric:
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) || strings.ContainsAny(v, "xXpP_") {
			return fail(ValueWrongType, "%q is not a number", v)
		}
	case TypeOption:
		if !p.hasOption(v) {
			return fail(ValueInvalid, "%q is not one of the options (%s)", v, p.optionList())
		}
	case TypeMultiSelect:
		seen := map[string]bool{}
		for _, part := range strings.Split(v, ",") {
			part = strings.TrimSpace(part)
			switch {
			case !p.hasOption(part):
				return fail(ValueInvalid, "%q is not one of the options (%s); join choices with commas", part, p.optionList())
			case seen[part]:
				return fail(ValueInvalid, "%q is chosen twice", part)
			}
			seen[part] = true
		}
	case TypePassword:
		if msg := passwordWeakness(v); msg != "" {
			return fail(ValueInvalid, "%s", msg)
		}
	case TypeString:
		if p.Regex != "" {
			ok, err := MatchRegex(p.Regex, v)
			switch {
			case errors.Is(err, ErrRegexTimeout):
				return fail(ValueInvalid, "the value could not be checked: %v", err)
			case err != nil:
				return fail(ValueInvalid, "the parameter's Regex does not compile: %v", err)
			case !ok:
				return fail(ValueInvalid, "%q does not match %s", v, p.Regex)
			}
		}
	case TypeNetwork:
		if _, err := netip.ParsePrefix(strings.TrimSpace(v)); err != nil {
			if _, err := netip.ParseAddr(strings.TrimSpace(v)); err != nil {
				return fail(ValueWrongType, "%q is not a network such as 10.0.0.0/24", v)
			}
		}
	case TypeServerIP:
		if _, err := netip.ParseAddr(strings.TrimSpace(v)); err != nil {
			return fail(ValueWrongType, "%q is not an IP address", v)
		}
	case TypeServer:
		if strings.IndexFunc(v, unicode.IsControl) >= 0 {
			return fail(ValueInvalid, "a server name cannot hold control characters")
		}
	}
	return nil
}

func (p Parameter) hasOption(v string) bool {
	for _, o := range p.Options {
		if o.Value == v {
			return true
		}
	}
	return false
}

func (p Parameter) optionList() string {
	vals := make([]string, 0, len(p.Options))
	for _, o := range p.Options {
		vals = append(vals, o.Value)
	}
	return strings.Join(vals, ", ")
}

// passwordWeakness returns every rule a password breaks, or "".
func passwordWeakness(v string) string {
	var lower, upper, digit, other bool
	for _, r := range v {
		switch {
		case unicode.IsLower(r):
			lower = true
		case unicode.IsUpper(r):
			upper = true
		case unicode.IsDigit(r):
			digit = true
		default:
			other = true
		}
	}
	classes := 0
	for _, b := range []bool{lower, upper, digit, other} {
		if b {
			classes++
		}
	}
	// Neither its length nor its mix is quoted: a message about a secret
	// tells nothing of its value.
	var broken []string
	if utf8.RuneCountInString(v) < MinPasswordLength {
		broken = append(broken, fmt.Sprintf("use at least %d characters", MinPasswordLength))
	}
	if classes < 3 {
		broken = append(broken, "mix at least three of lower case, upper case, digits and symbols")
	}
	if len(broken) == 0 {
		return ""
	}
	return "the password is too weak: " + strings.Join(broken, "; and ")
}
