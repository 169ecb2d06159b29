package manifest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// ErrInvalid is the sentinel wrapped by every error that reports an invalid
// package or manifest. Callers branch on it with errors.Is: an invalid package
// never becomes valid by retrying, whereas any other error (I/O, cancellation)
// may.
var ErrInvalid = errors.New("manifest: invalid package")

// Problem is one thing wrong with a package, located as precisely as
// possible, with a message that says how to fix it.
type Problem struct {
	// Path locates the problem. For the manifest it is an XPath-like
	// location such as /Manifest/Parameters/Parameter[2]/@Variable; for the
	// archive it is the entry name as stored in the zip (or "" for the whole
	// archive).
	Path string `json:"path"`
	// Line is the line of package.manifest the problem was found on, or 0
	// when the problem is not tied to a line.
	Line int `json:"line"`
	// Rule is a stable identifier such as "metadata.uuid.format"; see the
	// Rule* constants.
	Rule string `json:"rule"`
	// Message explains the problem and how to fix it.
	Message string `json:"message"`
}

// String formats the problem on one line.
func (p Problem) String() string {
	var b strings.Builder
	if p.Path != "" {
		b.WriteString(p.Path)
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	fmt.Fprintf(&b, "%s [%s]", p.Message, p.Rule)
	return b.String()
}

// Report lists every problem found in a package: errors make it invalid,
// warnings do not.
type Report struct {
	Errors   []Problem `json:"errors"`
	Warnings []Problem `json:"warnings"`
}

// OK tells whether the report holds no error (warnings are allowed).
func (r Report) OK() bool { return len(r.Errors) == 0 }

// Err returns nil when the report holds no error, and otherwise an
// *InvalidError that wraps ErrInvalid and carries the report.
func (r Report) Err() error {
	if r.OK() {
		return nil
	}
	return &InvalidError{Report: r}
}

// Rules returns the rule identifiers of the errors and of the warnings, in
// report order; tests and tools use it to compare outcomes.
func (r Report) Rules() (errs, warns []string) {
	for _, p := range r.Errors {
		errs = append(errs, p.Rule)
	}
	for _, p := range r.Warnings {
		warns = append(warns, p.Rule)
	}
	return errs, warns
}

// Has tells whether the report holds an error or warning with the rule.
func (r Report) Has(rule string) bool {
	match := func(p Problem) bool { return p.Rule == rule }
	return slices.ContainsFunc(r.Errors, match) || slices.ContainsFunc(r.Warnings, match)
}

func (r *Report) errorf(path string, line int, rule, format string, args ...any) {
	r.Errors = append(r.Errors, Problem{Path: path, Line: line, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

func (r *Report) warnf(path string, line int, rule, format string, args ...any) {
	r.Warnings = append(r.Warnings, Problem{Path: path, Line: line, Rule: rule, Message: fmt.Sprintf(format, args...)})
}

// sort orders problems by line, keeping the discovery order for ties, so
// reports read top to bottom (archive problems, which have no line, first).
func (r *Report) sort() {
	by := func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) }
	slices.SortStableFunc(r.Errors, by)
	slices.SortStableFunc(r.Warnings, by)
}

// Format writes the report for a terminal: one line per problem, errors
// first, then a summary line. name labels the package (a file or directory
// name).
func (r Report) Format(w io.Writer, name string) error {
	var b strings.Builder
	line := func(kind string, p Problem) {
		b.WriteString(name)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		fmt.Fprintf(&b, ": %s [%s]", kind, p.Rule)
		if p.Path != "" {
			fmt.Fprintf(&b, " %s", p.Path)
		}
		fmt.Fprintf(&b, ": %s\n", p.Message)
	}
	for _, p := range r.Errors {
		line("error", p)
	}
	for _, p := range r.Warnings {
		line("warning", p)
	}
	switch {
	case len(r.Errors) > 0:
		fmt.Fprintf(&b, "%s: invalid: %s, %s\n", name, plural(len(r.Errors), "error"), plural(len(r.Warnings), "warning"))
	case len(r.Warnings) > 0:
		fmt.Fprintf(&b, "%s: valid, %s\n", name, plural(len(r.Warnings), "warning"))
	default:
		fmt.Fprintf(&b, "%s: valid\n", name)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}

// InvalidError is the error returned for an invalid package. It wraps
// ErrInvalid and carries every problem found.
type InvalidError struct {
	Report Report
}

// Error summarises the first problem and counts the rest.
func (e *InvalidError) Error() string {
	if len(e.Report.Errors) == 0 {
		return ErrInvalid.Error()
	}
	msg := fmt.Sprintf("%s: %s", ErrInvalid.Error(), e.Report.Errors[0])
	if n := len(e.Report.Errors) - 1; n > 0 {
		msg += fmt.Sprintf(" (and %s)", plural(n, "more error"))
	}
	return msg
}

// Unwrap returns ErrInvalid.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// MarshalJSON writes empty lists as [] rather than null.
func (r Report) MarshalJSON() ([]byte, error) {
	type plain Report
	if r.Errors == nil {
		r.Errors = []Problem{}
	}
	if r.Warnings == nil {
		r.Warnings = []Problem{}
	}
	return json.Marshal(plain(r))
}
