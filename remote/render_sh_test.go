package remote

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// argsScript prints its arguments, each followed by NUL.
const argsScript = "#!/bin/sh\nprintf '%s\\0' \"$@\"\n"

// shPackage makes a package root holding args.sh and returns it.
func shPackage(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/sh"); err != nil {
		t.Fatalf("the POSIX tests need /bin/sh: %v", err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "args.sh"), []byte(argsScript), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runSh renders template for sh, runs it with /bin/sh -c in dir and
// returns the NUL-separated words it printed.
func runSh(t *testing.T, dir, template string, vals map[string]Value) []string {
	t.Helper()
	r, err := Render(template, RenderOptions{Shell: ShellPOSIX, Values: vals, IsPackageFile: files("args.sh")})
	if err != nil {
		t.Fatalf("Render(%q): %v", template, err)
	}
	cmd := exec.Command("/bin/sh", "-c", r.Command)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sh -c %q: %v\n%s", r.Command, err, stderr.String())
	}
	words := strings.Split(string(out), "\x00")
	return words[:len(words)-1] // the text after the last NUL is empty
}

// TestRenderPOSIXRealShell runs every hostile value through /bin/sh and
// checks that the program receives exactly the values as its arguments.
func TestRenderPOSIXRealShell(t *testing.T) {
	t.Parallel()
	dir := shPackage(t)
	for _, tt := range hostileTests {
		if tt.nulDrop {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			vals := map[string]Value{"V": {Text: tt.value}}
			got := runSh(t, dir, `args.sh ${V} -x${V}y "${V}" '${V}' --v=${V} ${V}${V} `+"''", vals)
			v := tt.value
			want := []string{v, "-x" + v + "y", v, v, "--v=" + v, v + v, ""}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("argv for %q (-want +got):\n%s", v, diff)
			}
		})
	}
}

func TestRenderPOSIXRealShellOperators(t *testing.T) {
	t.Parallel()
	dir := shPackage(t)
	vals := map[string]Value{
		"A":    {Text: "; touch pwned-a"},
		"B":    {Text: "$(touch pwned-b)"},
		"File": {Text: "out file;x"},
	}
	template := `/args.sh ${A} && args.sh "${B}" > "${File}" ; ./args.sh 'done;' 2>&1 | args.sh ok`
	got := runSh(t, dir, template, vals)
	// The first command prints A; the second writes into the file; the
	// output of the third goes into the pipe, whose end prints "ok".
	if diff := cmp.Diff([]string{"; touch pwned-a", "ok"}, got); diff != "" {
		t.Errorf("output (-want +got):\n%s", diff)
	}
	// The second command wrote its words into the file named by File.
	data, err := os.ReadFile(filepath.Join(dir, "out file;x"))
	if err != nil {
		t.Fatalf("redirection to a quoted value: %v", err)
	}
	if got, want := string(data), "$(touch pwned-b)\x00"; got != want {
		t.Errorf("file holds %q, want %q", got, want)
	}
	for _, probe := range []string{"pwned-a", "pwned-b"} {
		if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
			t.Errorf("a value ran as code: %s exists", probe)
		}
	}
}
