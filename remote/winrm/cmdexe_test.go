package winrm

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
)

// argvProgram prints the arguments it received, split with the Microsoft
// C runtime rules, as JSON.
func argvProgram(_ context.Context, inv *winrmtest.Invocation) int {
	b, err := json.Marshal(winrmtest.SplitArgs(inv.Args))
	if err != nil {
		return 2
	}
	_, _ = inv.Stdout.Write(b)
	return 0
}

// TestCmdCarriesEveryPrintableASCII renders a value holding each
// printable ASCII character for Command mode, runs it through the test
// endpoint's cmd.exe rules and checks the argv the program receives. Only
// '"' and '%' are refused, naming the parameter. The host's registry
// turns delayed expansion on, so the test also proves that the command's
// own cmd.exe runs with /V:OFF.
func TestCmdCarriesEveryPrintableASCII(t *testing.T) {
	t.Parallel()
	b := setup(t, setupOpts{host: winrmtest.FakeHostOptions{DelayedExpansion: true,
		Programs: map[string]winrmtest.Program{"argv.exe": argvProgram}}})
	for c := byte(0x20); c < 0x7f; c++ {
		for _, value := range []string{string(c), "a" + string(c) + "b", "P@ss " + string(c) + string(c) + "!^", `C:\dir ` + string(c) + `\`} {
			r, err := remote.Render("argv.exe ${Pass}", remote.RenderOptions{Shell: remote.ShellCmd,
				Values: map[string]remote.Value{"Pass": {Text: value, Secret: true}}})
			if c == '"' || c == '%' {
				if !errors.Is(err, remote.ErrUnsafeValue) || !strings.Contains(err.Error(), "Pass") {
					t.Errorf("%q: Render err = %v, want ErrUnsafeValue naming Pass", value, err)
				}
				if err != nil && len(value) > 1 && strings.Contains(err.Error(), value) {
					t.Errorf("%q: the error quotes the secret: %v", value, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%q: Render: %v", value, err)
				continue
			}
			stdout, stderr, err := run(t.Context(), b.client, &remote.Cmd{Shell: remote.ShellCmd, Command: r.Command})
			if err != nil {
				t.Errorf("%q: Run(%s): %v: %s", value, r.Command, err, stderr)
				continue
			}
			var argv []string
			if err := json.Unmarshal([]byte(stdout), &argv); err != nil {
				t.Fatalf("%q: argv output %q: %v", value, stdout, err)
			}
			if len(argv) != 1 || argv[0] != value {
				t.Errorf("%q: rendered %s, program received %q", value, r.Command, argv)
			}
		}
	}
}
