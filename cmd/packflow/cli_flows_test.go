package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/internal/testenv"
)

const helloManifest = `<?xml version="1.0" encoding="utf-8"?>
<Manifest>
  <Metadata>
    <UUID>5b0e7c1a-3d2f-4e6a-8b9c-0d1e2f3a4b5c</UUID>
    <Name>CLI Hello</Name>
    <Description>Writes what it is given</Description>
    <Version>1.0.0</Version>
  </Metadata>
  <Parameters>
    <Parameter Name="Greeting" Type="String" Variable="Greeting" Hint="Text" Default="Hello" Prompt="Build" />
    <Parameter Name="Port" Type="Numeric" Variable="Port" Hint="Port" Default="8080" Prompt="Build" />
    <Parameter Name="Token" Type="Password" Variable="Token" Hint="Token" Default="Str0ng-pass" Prompt="Build" />
  </Parameters>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>install.sh "${Greeting}" ${Port} "${Token}"</Command>
    <Persistent>false</Persistent>
    <RebootOnSuccess>false</RebootOnSuccess>
  </Execution>
</Manifest>
`

const helloScript = `#!/bin/sh
set -eu
printf 'greeting=[%s] args=%s\n' "$1" "$#"
if [ "$2" = 13 ]; then echo "unlucky" >&2; exit 7; fi
if [ "$2" = 99 ]; then sleep 60; fi
echo "page written for port $2"
`

// cliRun runs client commands against one API and token.
type cliRun struct {
	t   *testing.T
	env map[string]string
}

func (c cliRun) run(args ...string) (int, string, string) {
	c.t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, mapEnv(c.env), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// ok runs a command that must succeed and returns its output.
func (c cliRun) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != exitOK {
		c.t.Fatalf("packflow %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// json runs a command with -o json and decodes its output into v.
func (c cliRun) json(v any, args ...string) {
	c.t.Helper()
	out := c.ok(append(args, "-o", "json")...)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		c.t.Fatalf("packflow %s: decode %q: %v", strings.Join(args, " "), out, err)
	}
}

// TestCLIDeployFollow drives every operator flow with the client against
// packflow dev and a real sshd on loopback: a credential and a server, a
// package uploaded and published, a plan, a deployment followed to its
// end with a hostile parameter value, a failed and a cancelled one with
// their exit statuses, a blueprint and a schedule.
func TestCLIDeployFollow(t *testing.T) {
	if _, err := os.Stat(sshdtest.DefaultBinary); err != nil {
		testenv.Require(t, "needs OpenSSH's sshd at "+sshdtest.DefaultBinary)
	}
	sshd := sshdtest.Start(t, sshdtest.Options{Addrs: []string{"127.0.13.1"}})
	dataDir := t.TempDir()
	url, _, admin, stop := startDev(t, map[string]string{"PACKFLOW_DATA_DIR": dataDir, "PACKFLOW_LOG_LEVEL": "warn"}, "-listen", "127.0.0.1:0")
	defer func() {
		if code := stop(); code != exitOK {
			t.Errorf("dev: exit status %d", code)
		}
	}()
	pf := cliRun{t: t, env: map[string]string{"PACKFLOW_API_URL": url, "PACKFLOW_TOKEN": admin, "PACKFLOW_DATA_DIR": t.TempDir()}}
	dir := t.TempDir()

	// A package, packed, uploaded and published.
	pkgDir := filepath.Join(dir, "hello")
	if err := os.MkdirAll(pkgDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "package.manifest"), []byte(helloManifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(pkgDir, "install.sh"), []byte(helloScript), 0o755); err != nil {
		t.Fatal(err)
	}
	zip := filepath.Join(dir, "hello.zip")
	pf.ok("pack", pkgDir, "-o", zip)
	var up struct{ ID string }
	pf.json(&up, "upload", zip)
	pf.ok("publish", up.ID, "-os", "linux", "-wait")
	const pkg = "5b0e7c1a-3d2f-4e6a-8b9c-0d1e2f3a4b5c"
	if out := pf.ok("packages"); !strings.Contains(out, "CLI Hello") || !strings.HasPrefix(out, "ID ") {
		t.Errorf("packages table:\n%s", out)
	}
	if out := pf.ok("versions", pkg); !strings.Contains(out, "1.0.0") {
		t.Errorf("versions:\n%s", out)
	}
	pf.ok("activate", pkg, "1.0.0", "-wait")
	if out := pf.ok("installs", pkg, "-o", "yaml"); !strings.Contains(out, "  state: installed\n") {
		t.Errorf("installs -o yaml:\n%s", out)
	}

	// A credential (the key read from a file, never echoed) and a server.
	keyFile := filepath.Join(dir, "key")
	if err := os.WriteFile(keyFile, sshd.ClientKeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if out := pf.ok("credentials", "create", "key", "-kind", "ssh-key", "-username", sshd.User, "-secret-file", keyFile); strings.Contains(out, "PRIVATE KEY") {
		t.Fatal("the key came back")
	}
	host, port, _ := strings.Cut(sshd.Addr(0), ":")
	var srv struct{ ID string }
	pf.json(&srv, "servers", "create", "web1", "-address", host, "-port", port, "-credential", "key", "-host-key", sshd.HostKey)
	if out := pf.ok("servers", "check", srv.ID, "-wait"); !strings.Contains(out, "true") {
		t.Errorf("servers check:\n%s", out)
	}

	// The plan: the command as it would run, the password masked, nothing
	// run; then a plan with problems, every one listed, exit 1.
	hostile := `it's $(id); rm -rf / "x"`
	const secret = "S3cret-Value-99"
	out := pf.ok("deploy", pkg, "-server", "web1", "-param", "Greeting="+hostile, "-param", "Token="+secret, "-plan")
	wantCmd := `$ ./install.sh 'it'\''s $(id); rm -rf / "x"' '8080' '********'`
	if !strings.Contains(out, "web1 ("+host+"):") || !strings.Contains(out, wantCmd) || strings.Contains(out, secret) {
		t.Errorf("deploy -plan: want %s in\n%s", wantCmd, out)
	}
	var plan struct {
		Servers []struct {
			Steps []struct{ Command string }
		}
		Problems []any
	}
	pf.json(&plan, "deploy", pkg, "-server", "web1", "-param", "Token="+secret, "-plan")
	if len(plan.Servers) != 1 || len(plan.Servers[0].Steps) != 1 || len(plan.Problems) != 0 || strings.Contains(plan.Servers[0].Steps[0].Command, secret) {
		t.Errorf("deploy -plan -o json: %+v", plan)
	}
	code, out, _ := pf.run("deploy", pkg, "-server", "nope", "-param", "Port=x", "-plan")
	if code != exitError || !strings.Contains(out, "no such server: nope") || !strings.Contains(out, "parameters.Port") {
		t.Errorf("deploy -plan with problems: exit %d\n%s", code, out)
	}
	if out := pf.ok("executions", "-o", "json"); strings.TrimSpace(out) != "[]" {
		t.Errorf("a plan ran something: %s", out)
	}

	// A hostile value reaches the script as one argument, followed live.
	code, out, errOut := pf.run("deploy", pkg+"@1.0.0", "-server", "web1", "-param", "Greeting="+hostile, "-param", "Port=9090", "-follow")
	if strings.Contains(out+errOut, "Str0ng-pass") {
		t.Error("the password reached the output")
	}
	if code != exitOK {
		t.Fatalf("deploy -follow: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, "greeting=["+hostile+"] args=3") || !strings.Contains(out, "page written for port 9090") {
		t.Errorf("deploy -follow output:\n%s", out)
	}
	if !strings.Contains(errOut, "web1 step 1: succeeded") {
		t.Errorf("deploy -follow states:\n%s", errOut)
	}

	// A failing step: exit 1, the log kept.
	var acc struct {
		ExecutionID string `json:"execution_id"`
	}
	pf.json(&acc, "deploy", pkg, "-server", "web1", "-param", "Port=13", "-retry-max", "0")
	code, _, errOut = pf.run("logs", acc.ExecutionID, "-follow")
	if code != exitError || !strings.Contains(errOut, "failed") {
		t.Errorf("logs -follow of a failed execution: exit %d\n%s", code, errOut)
	}
	if out := pf.ok("logs", acc.ExecutionID); !strings.Contains(out, "unlucky") {
		t.Errorf("logs:\n%s", out)
	}
	if out := pf.ok("executions", "show", acc.ExecutionID); !strings.Contains(out, "failed") || !strings.Contains(out, "web1") {
		t.Errorf("executions show:\n%s", out)
	}

	// Cancelled: exit 3.
	pf.json(&acc, "deploy", pkg, "-server", "web1", "-param", "Port=99")
	pf.ok("cancel", acc.ExecutionID)
	if code, _, errOut = pf.run("logs", acc.ExecutionID, "-follow"); code != exitCancelled {
		t.Errorf("logs -follow of a cancelled execution: exit %d\n%s", code, errOut)
	}
	var execs []struct{ ID, Status string }
	pf.json(&execs, "executions")
	if len(execs) != 3 {
		t.Errorf("executions: %+v", execs)
	}

	// A blueprint from a file, its form, and a deployment of it.
	bpFile := filepath.Join(dir, "bp.json")
	if err := os.WriteFile(bpFile, []byte(`{"name":"hello","steps":[{"package":"`+pkg+`","version":"1.0.0","parameters":{"Port":"9091"}}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	var bp struct{ ID string }
	pf.json(&bp, "blueprints", "create", "-f", bpFile)
	pf.ok("blueprints", "form", bp.ID)
	if code, out, errOut = pf.run("deploy", "-blueprint", bp.ID, "-server", "web1", "-follow"); code != exitOK || !strings.Contains(out, "port 9091") {
		t.Errorf("deploy -blueprint -follow: exit %d\n%s%s", code, out, errOut)
	}

	// A schedule: created, paused, resumed, listed.
	var sc struct{ ID string }
	pf.json(&sc, "schedules", "create", "nightly", "-cron", "0 3 * * *", "-blueprint", bp.ID, "-server", "web1")
	pf.ok("schedules", "pause", sc.ID)
	pf.ok("schedules", "resume", sc.ID)
	if out := pf.ok("schedules"); !strings.Contains(out, "nightly") {
		t.Errorf("schedules:\n%s", out)
	}
	pf.ok("schedules", "runs", sc.ID)

	// Usage errors: exit 2.
	if code, _, _ := pf.run("deploy", pkg); code != exitUsage {
		t.Errorf("deploy without -server: exit %d", code)
	}
}
