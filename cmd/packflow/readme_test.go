package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestREADMEDocumentsEverySetting keeps the README's configuration table in
// step with the settings: every PACKFLOW_* variable the binary reads has a
// row, and the table names none that it does not read.
func TestREADMEDocumentsEverySetting(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	rows := map[string]bool{}
	for _, m := range regexp.MustCompile("(?m)^\\| `(PACKFLOW_[A-Z0-9_]+)` \\|").FindAllStringSubmatch(string(b), -1) {
		rows[m[1]] = true
	}
	known := map[string]bool{}
	for _, s := range settingDefs() {
		known[s.env] = true
		if !rows[s.env] {
			t.Errorf("README's configuration table has no row for %s (%s)", s.env, s.usage)
		}
	}
	for env := range rows {
		if !known[env] {
			t.Errorf("README documents %s, which no command reads", env)
		}
	}
	if !strings.Contains(string(b), "make run") || !strings.Contains(string(b), "make test") {
		t.Error("README must name make run and make test")
	}
}
