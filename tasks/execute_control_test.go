package tasks_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/sshtest"
	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// simpleManifest is a Linux package running cmd, with the given
// persistence and reboot flags.
func simpleManifest(uuid, name, cmd string, reboot bool) string {
	return fmt.Sprintf(`<Manifest><Metadata><UUID>%s</UUID><Name>%s</Name><Description>x</Description></Metadata>
<Parameters><Parameter Name="Me" Type="String" Variable="T3.Server.Name" Prompt="None"/></Parameters>
<Execution><Mode>Ssh</Mode><Command>%s</Command><RebootOnSuccess>%t</RebootOnSuccess></Execution></Manifest>`, uuid, name, cmd, reboot)
}

// waitFor polls cond until it holds; the bound only stops a broken test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestExecutionCancelThenRerun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.11"})
	// The first run of step 1 hangs until cancelled; later runs succeed.
	slow := b.publish(t, simpleManifest("0b8f5e0e-3333-4c2a-9a55-0c1d2e3f4a03", "Slow", "./slow.sh ${T3.Server.Name}", false),
		file{"slow.sh", "#!/bin/sh\nd='" + f.markers + "'\necho run >> \"$d/$1.slow.count\"\nif [ ! -e \"$d/$1.slow.once\" ]; then touch \"$d/$1.slow.once\"; echo $$ > \"$d/$1.slow.pid\"; exec sleep 300; fi\n", 0o755})
	after := b.publish(t, simpleManifest("0b8f5e0e-4444-4c2a-9a55-0c1d2e3f4a04", "After", "./after.sh ${T3.Server.Name}", false),
		file{"after.sh", "#!/bin/sh\necho run >> '" + f.markers + "'/$1.after.count\n", 0o755})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps:   []tasks.StepRef{{Package: slow.PackageID, Version: slow.Version}, {Package: after.PackageID, Version: after.Version}},
		Servers: f.servers, Visible: f.servers})
	if err != nil {
		t.Fatal(err)
	}
	pidFile := filepath.Join(f.markers, "h1.slow.pid")
	waitFor(t, "the slow step to start", func() bool { _, err := os.Stat(pidFile); return err == nil })
	pid, _ := strconv.Atoi(strings.TrimSpace(readFile(t, pidFile)))
	if err := tasks.Cancel(ctx, b.store, e, "bob"); err != nil {
		t.Fatal(err)
	}
	e, runs := b.waitFinal(t, e.ID)
	r := runs[0]
	if r.Status != store.StatusCancelled || r.Steps[0].Status != store.StatusCancelled || r.Steps[1].Status != store.StatusSkipped {
		t.Fatalf("after cancel: %+v", r)
	}
	waitFor(t, "the remote process to die", func() bool { return syscall.Kill(pid, 0) != nil })
	// A cancel is recorded and logged as one, with who did it; not as a
	// step that failed with "context canceled".
	if e.CancelledBy != "bob" || e.CancelledAt == nil || !e.Cancelled {
		t.Errorf("execution record: cancelled %v by %q at %v", e.Cancelled, e.CancelledBy, e.CancelledAt)
	}
	if r.Error != "cancelled by bob" || r.Steps[0].Error != "cancelled by bob" {
		t.Errorf("run error %q, step error %q; want both \"cancelled by bob\"", r.Error, r.Steps[0].Error)
	}
	evs, err := b.store.Events(ctx, e.ID, "", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var logged bool
	for _, ev := range evs {
		if strings.Contains(ev.Line, "context canceled") || strings.Contains(ev.Line, "step failed") {
			t.Errorf("event %+v", ev)
		}
		logged = logged || (ev.Kind == store.EventLog && ev.Step == 1 && ev.Line == "cancelled by bob")
	}
	if !logged {
		t.Errorf("no log line \"cancelled by bob\" for step 1 in %+v", evs)
	}

	ids, err := tasks.Rerun(ctx, b.store, b.client, e)
	if err != nil || len(ids) != 1 {
		t.Fatalf("Rerun = %v, %v", ids, err)
	}
	_, runs = b.waitFinal(t, e.ID)
	r = runs[0]
	if r.Status != store.StatusSucceeded || r.Run != 2 {
		t.Fatalf("after rerun: %+v", r)
	}
	if n := strings.Count(readFile(t, filepath.Join(f.markers, "h1.slow.count")), "run"); n != 2 {
		t.Errorf("slow step ran %d times, want 2 (cancelled, then rerun)", n)
	}
	if n := strings.Count(readFile(t, filepath.Join(f.markers, "h1.after.count")), "run"); n != 1 {
		t.Errorf("after step ran %d times", n)
	}
	// A second rerun has nothing to do, and a cancel nothing to stop:
	// both are refused with the reason.
	if ids, err := tasks.Rerun(ctx, b.store, b.client, e); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "nothing to rerun") || len(ids) != 0 {
		t.Errorf("rerun of a succeeded execution: %v, %v; want a conflict", ids, err)
	}
	if err := tasks.Cancel(ctx, b.store, e, "bob"); !errors.Is(err, store.ErrConflict) || !strings.Contains(err.Error(), "already ended") {
		t.Errorf("cancel of a succeeded execution: %v; want a conflict", err)
	}
}

func TestExecutionRebootDetectedByBootID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	srv := sshtest.Start(t, sshtest.Options{Addr: "127.0.3.21:0"})
	dir := t.TempDir()
	boot := srv.BootID()
	cred := b.credential(t, "test-key", srv.User, srv.ClientKeyPEM)
	host, port, _ := strings.Cut(srv.Addr(), ":")
	p, _ := strconv.Atoi(port)
	sv := b.server(t, store.Server{Name: "rebooter", Address: host, Port: p, OS: "linux", Transport: store.TransportSSH, CredentialID: cred.ID})
	v := b.publish(t, simpleManifest("0b8f5e0e-5555-4c2a-9a55-0c1d2e3f4a05", "Kernel", "./k.sh", true),
		file{"k.sh", "#!/bin/sh\necho patched\n", 0o755})
	b.startWorker(t, workerOpts{tuneSSH: func(_ store.Server, o *ssh.Options) {
		o.StagingBase, o.PersistentBase = filepath.Join(dir, "stage"), filepath.Join(dir, "persist")
		o.ReconnectInitial, o.ReconnectMax = 50*time.Millisecond, 200*time.Millisecond
	}})
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: []store.Server{sv}, Visible: []store.Server{sv}})
	if err != nil {
		t.Fatal(err)
	}
	_, runs := b.waitFinal(t, e.ID)
	st := runs[0].Steps[0]
	if runs[0].Status != store.StatusSucceeded || !st.Rebooted || st.Phase != "done" {
		t.Fatalf("run %+v", runs[0])
	}
	if srv.Reboots() != 1 || srv.BootID() == boot {
		t.Errorf("reboots %d, boot id %s (was %s)", srv.Reboots(), srv.BootID(), boot)
	}
}

func TestExecutionLinuxAndWindowsInOneBlueprint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.31"})
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{Programs: map[string]winrmtest.Program{
		"echoargs": func(_ context.Context, inv *winrmtest.Invocation) int {
			_, _ = io.WriteString(inv.Stdout, "windows got "+inv.Args)
			return 0
		},
	}})
	wsrv := winrmtest.NewTLS(winrmtest.Options{Handler: host})
	t.Cleanup(wsrv.Close)
	wcred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "win-admin",
		Kind: store.CredentialPassword, Username: winrmtest.DefaultUser}, store.Secret{Secret: winrmtest.DefaultPassword})
	if err != nil {
		t.Fatal(err)
	}
	win := b.server(t, store.Server{Name: "win1", Address: wsrv.Host, Port: wsrv.Port, OS: "windows", Transport: store.TransportWinRM, CredentialID: wcred.ID,
		WinRM: &store.WinRMSettings{CACert: string(wsrv.CACertPEM)}})
	lin := b.publish(t, simpleManifest("0b8f5e0e-6666-4c2a-9a55-0c1d2e3f4a06", "Linux Part", "./l.sh ${T3.Server.Name}", false),
		file{"l.sh", "#!/bin/sh\necho run >> '" + f.markers + "'/$1.l.count\n", 0o755})
	winPkg := b.publish(t, `<Manifest><Metadata><UUID>0b8f5e0e-7777-4c2a-9a55-0c1d2e3f4a07</UUID><Name>Windows Part</Name><Description>w</Description></Metadata>
<Parameters><Parameter Name="Shared" Type="String" Variable="Shared" Global="true"/></Parameters>
<Execution><Mode>Command</Mode><Command>echoargs ${Shared}</Command><Persistent>true</Persistent></Execution></Manifest>`,
		file{"readme.txt", "x", 0o644}, file{"unused.cmd", "@echo off\r\n", 0o644})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})
	servers := append([]store.Server{win}, f.servers...)
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps:   []tasks.StepRef{{Package: lin.PackageID, Version: lin.Version}, {Package: winPkg.PackageID, Version: winPkg.Version}},
		Servers: servers, Visible: servers, Parameters: map[string]string{"Shared": "a & b"}})
	if err != nil {
		t.Fatal(err)
	}
	_, runs := b.waitFinal(t, e.ID)
	for _, r := range runs {
		if r.Status != store.StatusSucceeded {
			t.Fatalf("run %s: %+v", r.Name, r)
		}
	}
	w, l := runs[0], runs[1]
	if w.Steps[0].Status != store.StatusSkipped || w.Steps[1].Status != store.StatusSucceeded || w.Steps[1].PersistedPath == "" {
		t.Errorf("windows steps %+v", w.Steps)
	}
	if l.Steps[1].Status != store.StatusSkipped || l.Steps[0].Status != store.StatusSucceeded {
		t.Errorf("linux steps %+v", l.Steps)
	}
	if !host.Exists(w.Steps[1].PersistedPath + `\readme.txt`) {
		t.Errorf("the windows package is not at %s", w.Steps[1].PersistedPath)
	}
	evs, _ := b.store.Events(ctx, e.ID, "", 1000, 0)
	var found bool
	for _, ev := range evs {
		found = found || (ev.Server == "win1" && strings.Contains(ev.Line, `windows got "a & b"`))
	}
	if !found {
		t.Errorf("no windows output in %+v", evs)
	}
}

// exclusiveScript fails with status 9 when another copy holds lock.
func exclusiveScript(lock string) string {
	return "#!/bin/sh\nmkdir '" + lock + "' 2>/dev/null || { echo overlap >&2; exit 9; }\nsleep 0.3\nrmdir '" + lock + "'\n"
}

func TestOneStepAtATimePerServer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.51"})
	v := b.publish(t, simpleManifest("0b8f5e0e-bbbb-4c2a-9a55-0c1d2e3f4a0b", "Exclusive", "./x.sh", false),
		file{"x.sh", exclusiveScript(filepath.Join(f.markers, "server.lock")), 0o755})
	// Two workers, four executions on the one server.
	b.startWorker(t, workerOpts{tuneSSH: f.tune, nodeID: "w1"})
	b.startWorker(t, workerOpts{tuneSSH: f.tune, nodeID: "w2"})
	var ids []string
	for range 4 {
		e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
			Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: f.servers, Visible: f.servers,
			Retry: &tasks.Retry{Max: tasks.Retries(1)}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, e.ID)
	}
	for _, id := range ids {
		_, runs := b.waitFinal(t, id)
		if r := runs[0]; r.Status != store.StatusSucceeded || r.Steps[0].Attempts != 1 {
			t.Errorf("execution %s: %+v", id, r)
		}
	}
}

func TestDatacenterLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.61", "127.0.3.62", "127.0.3.63"})
	v := b.publish(t, simpleManifest("0b8f5e0e-cccc-4c2a-9a55-0c1d2e3f4a0c", "Limited", "./x.sh", false),
		file{"x.sh", exclusiveScript(filepath.Join(f.markers, "dc.lock")), 0o755})
	b.startWorker(t, workerOpts{tuneSSH: f.tune, dcLimits: map[string]int{"default": 1}})
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: f.servers, Visible: f.servers,
		Retry: &tasks.Retry{Max: tasks.Retries(1)}})
	if err != nil {
		t.Fatal(err)
	}
	_, runs := b.waitFinal(t, e.ID)
	for _, r := range runs {
		if r.Status != store.StatusSucceeded || r.Steps[0].Attempts != 1 {
			t.Errorf("%s: %+v", r.Name, r)
		}
	}
}

func TestExecutionFailsAtOnceOnIdentityAndAuth(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.71", "127.0.3.72"})
	other := sshtest.Start(t, sshtest.Options{Addr: "127.0.3.73:0"}) // another host key, another client key
	if _, err := b.store.UpdateServer(ctx, f.servers[0].ID, func(sv *store.Server) error { sv.HostKey = other.HostKey(); return nil }); err != nil {
		t.Fatal(err)
	}
	wrong := b.credential(t, "wrong-key", f.sshd.User, other.ClientKeyPEM)
	if _, err := b.store.UpdateServer(ctx, f.servers[1].ID, func(sv *store.Server) error { sv.CredentialID = wrong.ID; return nil }); err != nil {
		t.Fatal(err)
	}
	v := b.publish(t, simpleManifest("0b8f5e0e-dddd-4c2a-9a55-0c1d2e3f4a0d", "Never", "./n.sh", false), file{"n.sh", "#!/bin/sh\n", 0o755})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: f.servers, Visible: f.servers,
		Retry: &tasks.Retry{Max: tasks.Retries(3), Backoff: tasks.Duration(time.Minute)}})
	if err != nil {
		t.Fatal(err)
	}
	_, runs := b.waitFinal(t, e.ID)
	for i, want := range []string{"host identity mismatch", "authentication failed"} {
		r := runs[i]
		if r.Status != store.StatusFailed || r.Attempts != 1 || !strings.Contains(r.Error, want) {
			t.Errorf("%s: status %s after %d attempts: %q, want failed at once with %q", r.Name, r.Status, r.Attempts, r.Error, want)
		}
	}
}
