// Command testreport reads `go test -json` on stdin and prints what a person
// needs: build errors, the whole output of every failed test, one line per
// package as go test prints it, and a closing count. Skipped tests are
// listed with their reasons, and when any were skipped the last line says
// so loudly, with how to run them: a skip is a test that proved nothing.
//
//	go test -json ./... | go run ./scripts/testreport
//
// It exits 1 when any test or package failed, or when the input ends
// without a package result (go test itself died).
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of `go test -json` (see `go doc test2json`).
type event struct {
	Action     string
	Package    string
	Test       string
	Output     string
	ImportPath string
}

type key struct{ pkg, test string }

// designedSkip starts the reason of a skip that is no missing part.
const designedSkip = "by design:"

type report struct {
	out                   io.Writer
	buf                   map[key][]string
	passed, failed        int
	skipped               []string
	designed              int
	pkgFailed, pkgResults int
}

func main() {
	r := &report{out: os.Stdout, buf: map[key][]string{}}
	if err := r.read(os.Stdin); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}
	if !r.close() {
		os.Exit(1)
	}
}

func (r *report) read(in io.Reader) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (go vet's or the toolchain's own words): pass it on.
			fmt.Fprintln(r.out, string(line))
			continue
		}
		r.event(e)
	}
	return sc.Err()
}

func (r *report) event(e event) {
	k := key{e.Package, e.Test}
	switch {
	case e.Action == "build-output":
		fmt.Fprint(r.out, e.Output)
	case e.Action == "output" && e.Test == "":
		// Package-level lines: "ok  pkg 1.2s", "FAIL pkg", panics outside tests.
		if t := strings.TrimSpace(e.Output); t == "PASS" || t == "FAIL" || strings.HasPrefix(t, "=== ") {
			return
		}
		fmt.Fprint(r.out, e.Output)
	case e.Action == "output":
		r.buf[k] = append(r.buf[k], e.Output)
	case e.Test != "" && e.Action == "pass":
		r.passed++
		delete(r.buf, k)
	case e.Test != "" && e.Action == "fail":
		r.failed++
		for _, l := range r.buf[k] {
			fmt.Fprint(r.out, l)
		}
		delete(r.buf, k)
	case e.Test != "" && e.Action == "skip":
		why := skipReason(r.buf[k])
		if strings.HasPrefix(why, designedSkip) {
			r.designed++
		}
		r.skipped = append(r.skipped, e.Package+" "+e.Test+": "+why)
		delete(r.buf, k)
	case e.Test == "" && (e.Action == "pass" || e.Action == "skip"):
		r.pkgResults++
	case e.Test == "" && e.Action == "fail":
		r.pkgResults++
		r.pkgFailed++
	}
}

// skipReason is the message a test gave t.Skip: its output without the
// framework's own lines.
func skipReason(lines []string) string {
	var msg []string
	for _, l := range lines {
		t := strings.TrimSpace(l)
		if t == "" || strings.HasPrefix(t, "=== ") || strings.HasPrefix(t, "--- SKIP") {
			continue
		}
		// "file_test.go:12: message" as the testing package prints it.
		if _, rest, ok := strings.Cut(t, ": "); ok && strings.Contains(t[:len(t)-len(rest)], ".go:") {
			t = rest
		}
		msg = append(msg, t)
	}
	if len(msg) == 0 {
		return "(no reason given)"
	}
	return strings.Join(msg, " ")
}

// close prints the summary and reports whether everything passed.
func (r *report) close() bool {
	ok := r.failed == 0 && r.pkgFailed == 0 && r.pkgResults > 0
	if len(r.skipped) > 0 {
		sort.Strings(r.skipped)
		fmt.Fprintf(r.out, "\nskipped tests:\n")
		for _, s := range r.skipped {
			fmt.Fprintf(r.out, "  %s\n", s)
		}
	}
	fmt.Fprintf(r.out, "\n%d passed, %d failed, %d skipped\n", r.passed, r.failed, len(r.skipped))
	if r.pkgResults == 0 {
		fmt.Fprintln(r.out, "testreport: no package result was read: go test did not run to the end")
	}
	if n := len(r.skipped) - r.designed; n > 0 {
		fmt.Fprintf(r.out, "!!! %d TESTS SKIPPED: they proved nothing. Install what they name above "+
			"(redis-server, openssh-server, libxml2-utils, unzip) or run `bash .ci/run`, which installs them and fails on any skip.\n",
			n)
	}
	return ok
}
