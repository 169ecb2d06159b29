package api

import (
	"regexp"
	"slices"
	"strings"

	"github.com/packflow/packflow/store"
)

// Internal errors are wrapped with the package that saw them ("store:
// conflict: …", "tasks: publish: …") and, for tasks that must not be
// retried, asynq's "skip retry for the task". The whole chain goes to the
// logs; answers show publicText of it, in plain words.

var (
	// internalPrefix matches a package prefix of packflow's (or asynq's)
	// errors, anywhere in a message.
	internalPrefix = regexp.MustCompile(`\b(?:store|tasks|api|asynq|scheduler|worker): `)
	// sentinelText matches the words of sentinel errors that mean nothing
	// to a user once the answer's status says them.
	sentinelText = strings.NewReplacer(
		": skip retry for the task", "",
		"skip retry for the task", "",
		"store: conflict: ", "",
		"store: invalid record: ", "",
	)
)

// publicText returns an internal error's text without the internal
// prefixes and markers, for answers.
func publicText(s string) string {
	s = sentinelText.Replace(s)
	s = internalPrefix.ReplaceAllString(s, "")
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), ":"))
	return s
}

// publicProblems returns ps with publicText messages.
func publicProblems(ps []store.Problem) []store.Problem {
	out := make([]store.Problem, len(ps))
	for i, p := range ps {
		p.Message = publicText(p.Message)
		out[i] = p
	}
	return out
}

// public cleans a problem's texts before it is written: whatever a
// handler put in it, no internal prefix reaches the caller.
func (p *Problem) public() {
	p.Detail = publicText(p.Detail)
	for i := range p.Errors {
		p.Errors[i].Message = publicText(p.Errors[i].Message)
	}
}

// publicRuns returns runs with publicText errors, the runs' and their
// steps'.
func publicRuns(runs []store.ServerRun) []store.ServerRun {
	out := make([]store.ServerRun, len(runs))
	for i, r := range runs {
		r.Error = publicText(r.Error)
		if len(r.Steps) > 0 {
			r.Steps = slices.Clone(r.Steps)
		}
		for j := range r.Steps {
			r.Steps[j].Error = publicText(r.Steps[j].Error)
		}
		out[i] = r
	}
	return out
}
