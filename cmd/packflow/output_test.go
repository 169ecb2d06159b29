package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestHumanValues(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		key  string
		v    any
		want string
	}{
		{"timeout", float64(5e9), "5s"},
		{"backoff_max", float64(600e9), "10m0s"},
		{"mode", float64(0o755), "0755"},
		{"size", float64(3 << 20), "3.0 MiB"},
		{"latency_ms", float64(35), "35ms"},
		{"created_at", "2026-12-08T01:02:03.456Z", "2026-12-08 01:02:03Z"},
		{"attempts", float64(3), "3"},
		{"os_versions", []any{"debian-12", "ubuntu-24.04"}, "debian-12,ubuntu-24.04"},
		{"name", nil, ""},
	} {
		if got := human(tc.key, tc.v); got != tc.want {
			t.Errorf("human(%s, %v) = %q, want %q", tc.key, tc.v, got, tc.want)
		}
	}
}

func TestPrinterFormats(t *testing.T) {
	t.Parallel()
	rows := []any{
		map[string]any{"id": "a1", "timeout": float64(5e9), "spec": map[string]any{"mode": float64(0o644)}},
		map[string]any{"id": "b2", "timeout": float64(36e11), "note": "tab\there"},
	}
	var b bytes.Buffer
	p, _ := newPrinter(&b, "table")
	if err := p.print(rows, []column{{"ID", "id"}, {"TIMEOUT", "timeout"}, {"MODE", "spec.mode"}}); err != nil {
		t.Fatal(err)
	}
	want := "ID  TIMEOUT  MODE\na1  5s       0644\nb2  1h0m0s   \n"
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("table (-want +got):\n%s", diff)
	}
	b.Reset()
	p, _ = newPrinter(&b, "yaml")
	if err := p.print(map[string]any{"items": rows, "empty": []any{}, "yes": "no", "text": "a: b"}, nil); err != nil {
		t.Fatal(err)
	}
	want = `empty: []
items:
  - id: a1
    spec:
      mode: 420
    timeout: 5000000000
  - id: b2
    note: "tab\there"
    timeout: 3600000000000
text: "a: b"
"yes": "no"
`
	if diff := cmp.Diff(want, b.String()); diff != "" {
		t.Errorf("yaml (-want +got):\n%s", diff)
	}
	if _, err := newPrinter(&b, "xml"); err == nil {
		t.Error("-o xml accepted")
	}
}

// TestCompletionScripts checks that each shell's script names every
// command, and that bash parses its own.
func TestCompletionScripts(t *testing.T) {
	t.Parallel()
	for _, sh := range []string{"bash", "zsh", "fish"} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), []string{"completion", sh}, mapEnv(nil), &out, &errOut); code != exitOK {
			t.Fatalf("completion %s: exit %d %s", sh, code, errOut.String())
		}
		for _, c := range commands() {
			if !strings.Contains(out.String(), c.name) {
				t.Errorf("%s completion lacks %s", sh, c.name)
			}
		}
		if bin, err := exec.LookPath(sh); err == nil {
			flag := "-n"
			if sh == "fish" {
				flag = "--no-execute"
			}
			cmd := exec.Command(bin, flag)
			cmd.Stdin = strings.NewReader(out.String())
			if b, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("%s %s: %v\n%s", sh, flag, err, b)
			}
		}
	}
	if code := run(context.Background(), []string{"completion", "tcsh"}, mapEnv(nil), &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("completion tcsh: exit %d", code)
	}
}
