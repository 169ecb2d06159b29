package manifest

import (
	"cmp"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Version is a semantic version (semver.org 2.0.0).
type Version struct {
	Major, Minor, Patch uint64
	// Pre holds the dot-separated pre-release identifiers ("rc", "1").
	Pre []string
	// Build is the build metadata after "+"; it never affects ordering.
	Build string
}

// ParseVersion parses MAJOR.MINOR.PATCH[-PRERELEASE][+BUILD]. A leading
// "v" is accepted.
func ParseVersion(s string) (Version, error) {
	v, n, err := parsePartial(strings.TrimPrefix(s, "v"))
	if err != nil {
		return Version{}, err
	}
	if n < 3 {
		return Version{}, fmt.Errorf("version %q: want MAJOR.MINOR.PATCH", s)
	}
	return v, nil
}

// parsePartial parses a version with one to three numeric parts; n tells how
// many were given (a wildcard x, X or * ends the version).
func parsePartial(s string) (v Version, n int, err error) {
	if s == "" {
		return v, 0, errors.New("empty version")
	}
	core := s
	if i := strings.IndexByte(core, '+'); i >= 0 {
		v.Build = core[i+1:]
		core = core[:i]
		if !validIdents(v.Build, false) {
			return v, 0, fmt.Errorf("version %q: bad build metadata", s)
		}
	}
	if i := strings.IndexByte(core, '-'); i >= 0 {
		pre := core[i+1:]
		core = core[:i]
		if !validIdents(pre, true) {
			return v, 0, fmt.Errorf("version %q: bad pre-release", s)
		}
		v.Pre = strings.Split(pre, ".")
	}
	parts := strings.Split(core, ".")
	if len(parts) > 3 {
		return v, 0, fmt.Errorf("version %q: too many parts", s)
	}
	nums := []*uint64{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		if p == "x" || p == "X" || p == "*" {
			if i+1 != len(parts) || v.Pre != nil || v.Build != "" {
				return v, 0, fmt.Errorf("version %q: a wildcard must come last", s)
			}
			return v, i, nil
		}
		if !numeric(p) {
			return v, 0, fmt.Errorf("version %q: %q is not a number", s, p)
		}
		x, err := strconv.ParseUint(p, 10, 64)
		if err != nil {
			return v, 0, fmt.Errorf("version %q: %w", s, err)
		}
		*nums[i] = x
		n++
	}
	if n < 3 && (v.Pre != nil || v.Build != "") {
		return v, 0, fmt.Errorf("version %q: pre-release needs MAJOR.MINOR.PATCH", s)
	}
	return v, n, nil
}

// numeric tells whether p is a number without leading zeros.
func numeric(p string) bool {
	if p == "" || (len(p) > 1 && p[0] == '0') {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

func validIdents(s string, pre bool) bool {
	if s == "" {
		return false
	}
	for _, id := range strings.Split(s, ".") {
		if id == "" {
			return false
		}
		digits := true
		for i := 0; i < len(id); i++ {
			c := id[i]
			switch {
			case '0' <= c && c <= '9':
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', c == '-':
				digits = false
			default:
				return false
			}
		}
		if pre && digits && len(id) > 1 && id[0] == '0' {
			return false
		}
	}
	return true
}

// String formats the version canonically.
func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if len(v.Pre) > 0 {
		s += "-" + strings.Join(v.Pre, ".")
	}
	if v.Build != "" {
		s += "+" + v.Build
	}
	return s
}

// Compare orders versions by semver precedence: -1, 0 or +1.
func (v Version) Compare(o Version) int {
	if c := cmp.Or(cmp.Compare(v.Major, o.Major), cmp.Compare(v.Minor, o.Minor), cmp.Compare(v.Patch, o.Patch)); c != 0 {
		return c
	}
	switch {
	case len(v.Pre) == 0 && len(o.Pre) == 0:
		return 0
	case len(v.Pre) == 0:
		return 1
	case len(o.Pre) == 0:
		return -1
	}
	for i := 0; i < len(v.Pre) && i < len(o.Pre); i++ {
		a, b := v.Pre[i], o.Pre[i]
		an, bn := numeric(a), numeric(b)
		switch {
		case an && bn:
			x, _ := strconv.ParseUint(a, 10, 64)
			y, _ := strconv.ParseUint(b, 10, 64)
			if c := cmp.Compare(x, y); c != 0 {
				return c
			}
		case an:
			return -1
		case bn:
			return 1
		default:
			if c := strings.Compare(a, b); c != 0 {
				return c
			}
		}
	}
	return cmp.Compare(len(v.Pre), len(o.Pre))
}

// Constraint is a set of version ranges: alternatives separated by "||",
// each a list of comparators that must all hold.
type Constraint struct {
	text string
	alts [][]comparator
}

type comparator struct {
	op string // one of = != < <= > >=
	v  Version
}

// ParseConstraint parses a version constraint. Comparators are separated by
// spaces or commas and must all hold; "||" separates alternatives.
//
//	1.2.3, =1.2.3   exactly 1.2.3          1.2, 1.2.x   >=1.2.0 <1.3.0
//	>=1.2.0 <2.0.0  a range                 != 1.4.0     anything but
//	^1.2.3          >=1.2.3 <2.0.0          ^0.2.3       >=0.2.3 <0.3.0
//	~1.2.3          >=1.2.3 <1.3.0          ~1           >=1.0.0 <2.0.0
//	*, ""           any version
//
// As in npm, a pre-release version is allowed only by a comparator that
// names a pre-release of the same MAJOR.MINOR.PATCH.
func ParseConstraint(s string) (Constraint, error) {
	c := Constraint{text: strings.TrimSpace(s)}
	for _, alt := range strings.Split(c.text, "||") {
		fields := strings.FieldsFunc(alt, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' })
		// Join an operator written apart from its version (">= 1.2").
		var terms []string
		for i := 0; i < len(fields); i++ {
			f := fields[i]
			if strings.Trim(f, "=<>!^~") == "" && i+1 < len(fields) {
				f += fields[i+1]
				i++
			}
			terms = append(terms, f)
		}
		var set []comparator
		for _, t := range terms {
			cs, err := parseTerm(t)
			if err != nil {
				return Constraint{}, err
			}
			set = append(set, cs...)
		}
		if len(set) == 0 && len(c.alts) > 0 {
			return Constraint{}, errors.New("empty alternative around ||")
		}
		c.alts = append(c.alts, set)
	}
	return c, nil
}

func parseTerm(t string) ([]comparator, error) {
	op := ""
	for _, p := range []string{">=", "<=", "!=", "==", ">", "<", "=", "^", "~"} {
		if strings.HasPrefix(t, p) {
			op, t = p, t[len(p):]
			break
		}
	}
	t = strings.TrimPrefix(t, "v")
	if op == "" && (t == "*" || t == "x" || t == "X") {
		return nil, nil
	}
	v, n, err := parsePartial(t)
	if err != nil {
		return nil, err
	}
	next := func(v Version, n int) Version { // the first version past the partial
		switch n {
		case 0:
			return Version{Major: ^uint64(0)}
		case 1:
			return Version{Major: v.Major + 1}
		case 2:
			return Version{Major: v.Major, Minor: v.Minor + 1}
		}
		return Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch + 1, Pre: []string{"0"}}
	}
	lo := Version{Major: v.Major, Minor: v.Minor, Patch: v.Patch, Pre: v.Pre}
	switch op {
	case "", "=", "==":
		if n == 3 {
			return []comparator{{"=", v}}, nil
		}
		if n == 0 {
			return nil, nil
		}
		return []comparator{{">=", lo}, {"<", next(v, n)}}, nil
	case "!=":
		if n < 3 {
			return nil, fmt.Errorf("!= needs a full version, not %q", t)
		}
		return []comparator{{"!=", v}}, nil
	case ">":
		if n == 3 {
			return []comparator{{">", v}}, nil
		}
		return []comparator{{">=", next(v, n)}}, nil
	case ">=":
		return []comparator{{">=", lo}}, nil
	case "<":
		return []comparator{{"<", lo}}, nil
	case "<=":
		if n == 3 {
			return []comparator{{"<=", v}}, nil
		}
		return []comparator{{"<", next(v, n)}}, nil
	case "~":
		if n == 0 {
			return nil, nil
		}
		return []comparator{{">=", lo}, {"<", next(v, min(n, 2))}}, nil
	case "^":
		var hi Version
		switch {
		case v.Major > 0 || n == 1:
			hi = Version{Major: v.Major + 1}
		case v.Minor > 0 || n == 2:
			hi = Version{Minor: v.Minor + 1}
		default:
			hi = Version{Patch: v.Patch + 1}
		}
		return []comparator{{">=", lo}, {"<", hi}}, nil
	}
	return nil, fmt.Errorf("unknown operator in %q", t)
}

// Allows tells whether v satisfies the constraint.
func (c Constraint) Allows(v Version) bool {
	if len(c.alts) == 0 {
		return len(v.Pre) == 0
	}
	for _, set := range c.alts {
		if allowsAll(set, v) {
			return true
		}
	}
	return false
}

func allowsAll(set []comparator, v Version) bool {
	preOK := len(v.Pre) == 0
	for _, cm := range set {
		d := v.Compare(cm.v)
		ok := false
		switch cm.op {
		case "=":
			ok = d == 0
		case "!=":
			ok = d != 0
		case "<":
			ok = d < 0
		case "<=":
			ok = d <= 0
		case ">":
			ok = d > 0
		case ">=":
			ok = d >= 0
		}
		if !ok {
			return false
		}
		if len(cm.v.Pre) > 0 && cm.v.Major == v.Major && cm.v.Minor == v.Minor && cm.v.Patch == v.Patch {
			preOK = true
		}
	}
	return preOK
}

// String returns the constraint as written.
func (c Constraint) String() string { return c.text }
