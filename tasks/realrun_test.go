package tasks_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// The run tests of the corpus of real manifests: each real package is
// deployed, its command file replaced by a stand-in that records its
// arguments, and the arguments are compared with what the original
// platform's Command gave. The expectation comes from a small model of
// the original, not from packflow's renderer: substitute each ${Var}
// with its value as text, then let the target shell split the line.

// refVar matches a ${Variable} reference, as the original substituted it.
var refVar = regexp.MustCompile(`\$\{([^}]*)\}`)

// shellNeutral are the characters a test value may hold: with them, the
// original's text substitution and packflow's quoting agree, so the
// comparison is about the command line, not about hostile values (which
// the original mangled and packflow passes as data, tested elsewhere).
var shellNeutral = regexp.MustCompile(`^[A-Za-z0-9 @._:/,+=-]*$`)

// runValues are the values a test deployment gives, and the system
// values the platform fills, by Variable.
type runValues struct {
	design, deploy, all map[string]string
}

// quotedEverywhere tells whether every reference to v in command sits
// inside quotes ('${v}' or "${v}"), where a value with spaces stays one
// word on the original too.
func quotedEverywhere(command, v string) bool {
	ref := "${" + v + "}"
	n := 0
	for i := strings.Index(command, ref); i >= 0; {
		end := i + len(ref)
		if i == 0 || end >= len(command) || (command[i-1] != '\'' && command[i-1] != '"') || command[end] != command[i-1] {
			return false
		}
		n++
		next := strings.Index(command[end:], ref)
		if next < 0 {
			break
		}
		i = end + next
	}
	return n > 0
}

// valuesFor picks a value for every parameter of m, given where the
// original would take it (the designer's for Prompt Design, the
// deployment's for the rest), and adds the system values the platform
// fills for server sv.
func valuesFor(t *testing.T, m manifest.Manifest, sv store.Server, user, account string) runValues {
	t.Helper()
	rv := runValues{design: map[string]string{}, deploy: map[string]string{}, all: map[string]string{
		"T3.Identity.User": user, "T3.Identity.Account": account,
		"T3.Server.Name": sv.Name, "T3.Server.IPAddress": sv.Address, "T3.Datacenter": sv.Datacenter,
	}}
	for _, p := range m.Parameters {
		if p.System() {
			continue
		}
		if !p.Prompted() && !p.Unfilled() {
			rv.all[p.Variable] = p.Default
			continue
		}
		var v string
		switch p.Type {
		case manifest.TypeNetwork:
			v = "backend" // a network of the account, by name
		case manifest.TypePassword:
			v = "S3cret-Pass_9"
		case manifest.TypeNumeric:
			v = "3"
		case manifest.TypeOption, manifest.TypeMultiSelect:
			v = p.Options[len(p.Options)-1].Value
		case manifest.TypeServerIP:
			v = "192.0.2.10"
		case manifest.TypeServer:
			v = sv.Name
		default:
			v = "v-" + strings.ToLower(p.Variable[strings.LastIndex(p.Variable, ".")+1:])
			if quotedEverywhere(m.Execution.Command, p.Variable) {
				v = "two words " + v
			}
		}
		if !shellNeutral.MatchString(v) {
			t.Fatalf("test value %q of %s is not shell-neutral; the reference model would not hold", v, p.Variable)
		}
		rv.all[p.Variable] = v
		if p.Prompt == manifest.PromptDesign {
			rv.design[p.Variable] = v
		} else {
			rv.deploy[p.Variable] = v
		}
	}
	return rv
}

// originalArgv is what the original's Command gave the program it names:
// the values substituted as text, then the line split by /bin/sh. It
// returns the program (the first word) and its arguments.
func originalArgv(t *testing.T, command string, values map[string]string) (string, []string) {
	t.Helper()
	line := refVar.ReplaceAllStringFunc(command, func(ref string) string {
		v, ok := values[ref[2:len(ref)-1]]
		if !ok {
			t.Fatalf("the command refers to %s, which has no value in the test", ref)
		}
		return v
	})
	line = strings.TrimSpace(line)
	prog, rest, _ := strings.Cut(line, " ")
	out, err := exec.Command("/bin/sh", "-c", `p() { printf '%s\0' "$@"; }; p `+rest).Output()
	if err != nil {
		t.Fatalf("sh -c on %q: %v", rest, err)
	}
	return prog, splitNUL(string(out))
}

func splitNUL(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(strings.TrimSuffix(s, "\x00"), "\x00")
}

// argvRecorder is a stand-in for a command file: it writes its arguments,
// NUL-terminated, to out.
func argvRecorder(out string) string {
	return "#!/bin/sh\nprintf '%s\\0' \"$@\" > '" + out + "'\n"
}

func TestRealManifestsRunOnSSH(t *testing.T) {
	t.Parallel()
	cases := pkgtest.RealManifests(t)
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.91"})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})
	sv := f.servers[0]
	// Network parameters get the name of one of the account's networks in
	// the server's datacenter, and the command receives that name.
	nets := []store.Network{{AccountID: store.RootAccountID, Name: "backend", Datacenter: sv.Datacenter, CIDR: "10.0.1.0/24"}}
	if _, err := b.store.CreateNetwork(ctx, nets[0]); err != nil {
		t.Fatal(err)
	}
	const user, account = "alice", "root"
	ran := 0
	for _, c := range cases {
		if c.OS != "linux" || !c.Published {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			manifestXML := string(c.Manifest)
			// A loopback sshd host is this machine: it must not reboot.
			// The reboot is tested against the in-process server.
			manifestXML = regexp.MustCompile(`(?i)<RebootOnSuccess>\s*true\s*</RebootOnSuccess>`).
				ReplaceAllString(manifestXML, "<RebootOnSuccess>false</RebootOnSuccess>")
			var m manifest.Manifest
			// The command file, as the Command's first word names it.
			prog := strings.Fields(commandOf(t, manifestXML))[0]
			out := filepath.Join(f.markers, c.Name+".args")
			var files []file
			found := false
			for _, e := range c.Entries()[1:] {
				if e.Name == prog {
					e.Body, found = argvRecorder(out), true
				}
				files = append(files, file{e.Name, e.Body, e.Mode})
			}
			if !found {
				t.Fatalf("files.tsv lists no %s, the command's file", prog)
			}
			v := b.publish(t, manifestXML, files...)
			if err := json.Unmarshal(v.Manifest, &m); err != nil {
				t.Fatal(err)
			}
			if m.Execution.RebootOnSuccess {
				t.Fatal("the test copy still reboots")
			}
			rv := valuesFor(t, m, sv, user, account)
			wantProg, want := originalArgv(t, m.Execution.Command, rv.all)
			if wantProg != prog {
				t.Fatalf("the reference model runs %q, the manifest names %q", wantProg, prog)
			}
			step := tasks.StepRef{Package: v.PackageID, Version: v.Version, Parameters: rv.design}
			e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{
				AccountID: store.RootAccountID, AccountName: account, User: user,
				Steps: []tasks.StepRef{step}, Servers: []store.Server{sv}, Visible: []store.Server{sv}, Networks: nets,
				Parameters: rv.deploy,
			})
			if err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			_, runs := b.waitFinal(t, e.ID)
			if runs[0].Status != store.StatusSucceeded {
				t.Fatalf("run %+v", runs[0])
			}
			data, err := os.ReadFile(out)
			if err != nil {
				t.Fatalf("the stand-in of %s did not run: %v", prog, err)
			}
			got := splitNUL(string(data))
			t.Logf("%s received %q", prog, got)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Errorf("%s received\n %q\nthe original's Command gives\n %q", prog, got, want)
			}
			ran++
		})
	}
	if ran == 0 && !t.Failed() {
		t.Log("no Linux case ran to the end")
	}
}

// commandOf returns the text of the manifest's <Command>, read without
// packflow's parser.
func commandOf(t *testing.T, manifestXML string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<Command>(.*?)</Command>`).FindStringSubmatch(manifestXML)
	if m == nil {
		t.Fatal("no <Command>")
	}
	return strings.TrimSpace(m[1])
}

// windowsWords splits a Windows command line into words as the target
// shell hands them to the program: cmd.exe's programs (a .bat's %~1, a
// C program's argv) split at spaces and tabs outside double quotes, the
// quotes removed; PowerShell splits at whitespace outside quotes, a
// single-quoted string is literal (” for '), a double-quoted one loses
// its quotes (test values hold nothing PowerShell expands).
func windowsWords(line string, powershell bool) []string {
	words := []string{}
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == 0 && (c == ' ' || c == '\t'):
			if in {
				words = append(words, cur.String())
				cur.Reset()
			}
			in = false
		case quote == 0 && (c == '"' || (powershell && c == '\'')):
			quote, in = c, true
		case quote != 0 && c == quote:
			if c == '\'' && i+1 < len(line) && line[i+1] == '\'' {
				cur.WriteByte('\'')
				i++
				continue
			}
			quote = 0
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}

func TestRealManifestsRenderOnWinRM(t *testing.T) {
	t.Parallel()
	cases := pkgtest.RealManifests(t)
	ctx := context.Background()
	b := setupExec(t)
	var mu sync.Mutex
	var got []string // the words the last program was started with
	record := func(_ context.Context, inv *winrmtest.Invocation) int {
		mu.Lock()
		defer mu.Unlock()
		got = append(windowsWords(inv.Name, false), windowsWords(inv.Args, inv.Shell == "powershell")...)
		if inv.Name == "&" {
			got = got[1:]
		}
		return 0
	}
	programs := map[string]winrmtest.Program{"&": record}
	for _, c := range cases {
		if c.OS == "windows" {
			prog := strings.Fields(commandOf(t, string(c.Manifest)))[0]
			programs[`".\`+strings.ToLower(prog)+`"`] = record
		}
	}
	// RebootOnSuccess packages reboot the emulated host, which comes back
	// with a new boot time.
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{Programs: programs})
	wsrv := winrmtest.NewTLS(winrmtest.Options{Handler: host, Down: host.Down, ReceiveTimeout: time.Second})
	t.Cleanup(wsrv.Close)
	cred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "win-admin",
		Kind: store.CredentialPassword, Username: winrmtest.DefaultUser}, store.Secret{Secret: winrmtest.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	sv := b.server(t, store.Server{Name: "win1", Address: wsrv.Host, Port: wsrv.Port, OS: "windows", Transport: store.TransportWinRM, CredentialID: cred.ID,
		WinRM: &store.WinRMSettings{CACert: string(wsrv.CACertPEM)}})
	b.startWorker(t, workerOpts{})
	const user, account = "alice", "root"
	for _, c := range cases {
		if c.OS != "windows" || !c.Published {
			continue
		}
		t.Run(c.Name, func(t *testing.T) {
			var files []file
			for _, e := range c.Entries()[1:] {
				files = append(files, file{e.Name, e.Body, e.Mode})
			}
			v := b.publish(t, string(c.Manifest), files...)
			var m manifest.Manifest
			if err := json.Unmarshal(v.Manifest, &m); err != nil {
				t.Fatal(err)
			}
			powershell := m.Execution.Mode == manifest.ModePowerShell
			rv := valuesFor(t, m, sv, user, account)
			line := refVar.ReplaceAllStringFunc(m.Execution.Command, func(ref string) string {
				val, ok := rv.all[ref[2:len(ref)-1]]
				if !ok {
					t.Fatalf("the command refers to %s, which has no value in the test", ref)
				}
				return val
			})
			want := windowsWords(strings.TrimSpace(line), powershell)
			mu.Lock()
			got = nil
			mu.Unlock()
			e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{
				AccountID: store.RootAccountID, AccountName: account, User: user,
				Steps:   []tasks.StepRef{{Package: v.PackageID, Version: v.Version, Parameters: rv.design}},
				Servers: []store.Server{sv}, Visible: []store.Server{sv}, Parameters: rv.deploy,
			})
			if err != nil {
				t.Fatalf("Deploy: %v", err)
			}
			_, runs := b.waitFinal(t, e.ID)
			if runs[0].Status != store.StatusSucceeded {
				t.Fatalf("run %+v", runs[0])
			}
			mu.Lock()
			defer mu.Unlock()
			t.Logf("the host started %q", got)
			if len(got) == 0 {
				t.Fatal("the command file was not started")
			}
			// The program is the package's file, however the path is written.
			gotProg := got[0][strings.LastIndexAny(got[0], `\/`)+1:]
			if !strings.EqualFold(gotProg, want[0]) || fmt.Sprintf("%q", got[1:]) != fmt.Sprintf("%q", want[1:]) {
				t.Errorf("the host started\n %q\nthe original's Command gives\n %q", got, want)
			}
		})
	}
}
