package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// auditManifest is a Linux package with a password, a string and a
// system parameter.
func auditManifest(uuid string) string {
	return `<Manifest><Metadata><UUID>` + uuid + `</UUID><Name>Audited</Name><Description>x</Description></Metadata>
<Parameters><Parameter Name="Pw" Type="Password" Variable="Pw"/><Parameter Name="Note" Type="String" Variable="Note"/>
<Parameter Name="Me" Type="String" Variable="T3.Server.Name" Prompt="None"/></Parameters>
<Execution><Mode>Ssh</Mode><Command>./a.sh ${T3.Server.Name} ${Note} ${Pw}</Command></Execution></Manifest>`
}

// TestExecutionNoRetryAndAuditRecord: "retry": {"max": 0} runs a failing
// step once; the record keeps who deployed and the parameters as given
// (the password masked); steps are numbered from 1 in the record, the
// events and the log alike.
func TestExecutionNoRetryAndAuditRecord(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.81"})
	v := b.publish(t, auditManifest("0b8f5e0e-eeee-4c2a-9a55-0c1d2e3f4a0e"),
		file{"a.sh", "#!/bin/sh\nd='" + f.markers + "'\necho run >> \"$d/$1.count\"\necho \"note $2\"\n" +
			"if [ ! -e \"$d/$1.failed\" ]; then touch \"$d/$1.failed\"; echo 'failing once' >&2; exit 3; fi\n", 0o755})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "carol",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: f.servers, Visible: f.servers,
		Parameters: map[string]string{"Pw": canary, "Note": "hello"}, Retry: &tasks.Retry{Max: tasks.Retries(0)}})
	if err != nil {
		t.Fatal(err)
	}
	e, runs := b.waitFinal(t, e.ID)
	r := runs[0]
	if r.Status != store.StatusFailed || r.Attempts != 1 || r.Steps[0].Attempts != 1 {
		t.Errorf("with max 0: run %s after %d attempts (step %d), want failed after 1", r.Status, r.Attempts, r.Steps[0].Attempts)
	}
	if n := strings.Count(readFile(t, filepath.Join(f.markers, "h1.count")), "run"); n != 1 {
		t.Errorf("the command ran %d times, want once", n)
	}

	if e.User != "carol" {
		t.Errorf("deployed by %q", e.User)
	}
	if want := map[string]string{"Pw": remote.MaskText, "Note": "hello"}; len(e.Parameters) != 2 ||
		e.Parameters["Pw"] != want["Pw"] || e.Parameters["Note"] != want["Note"] {
		t.Errorf("parameters %v, want %v", e.Parameters, want)
	}
	if e.Steps[0].Step != 1 || r.Steps[0].Step != 1 {
		t.Errorf("step numbered %d in the plan, %d in the run, want 1", e.Steps[0].Step, r.Steps[0].Step)
	}
	evs, err := b.store.Events(ctx, e.ID, "", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var noted bool
	for _, ev := range evs {
		if ev.Step < 0 || ev.Step > 1 {
			t.Errorf("event numbered %d: %+v", ev.Step, ev)
		}
		if ev.Line == "note hello" {
			noted = ev.Step == 1
		}
		if ev.Kind == store.EventState && ev.Step == 0 && ev.Status != r.Status && ev.Status != store.StatusRunning && ev.Status != store.StatusQueued {
			t.Errorf("server event %+v", ev)
		}
	}
	if !noted {
		t.Errorf("the step's output is not numbered 1: %+v", evs)
	}
	if keys := redisHolds(t, b.rdb, canary); len(keys) > 0 {
		t.Errorf("the password is in clear text in %v", keys)
	}
}

// failFirstGet fails the first GET of one key, as a Redis out of reach
// would, and counts the GETs.
type failFirstGet struct {
	key   string
	mu    sync.Mutex
	reads int
}

func (h *failFirstGet) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *failFirstGet) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (h *failFirstGet) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if args := cmd.Args(); strings.EqualFold(cmd.Name(), "get") && len(args) > 1 && args[1] == h.key {
			h.mu.Lock()
			h.reads++
			first := h.reads == 1
			h.mu.Unlock()
			if first {
				err := errors.New("injected: i/o timeout")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// TestServerPasswordStoreErrorFailsTheStep: when the server's credential
// cannot be read, the step fails with the error and is retried; the
// command never runs with an empty ${T3.Server.Password}.
func TestServerPasswordStoreErrorFailsTheStep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	const pw = "Win-Pw-5521"
	var mu sync.Mutex
	var seen []string
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{Programs: map[string]winrmtest.Program{
		"record": func(_ context.Context, inv *winrmtest.Invocation) int {
			mu.Lock()
			seen = append(seen, inv.Args)
			mu.Unlock()
			return 0
		},
	}})
	wsrv := winrmtest.NewTLS(winrmtest.Options{Handler: host, Password: pw})
	t.Cleanup(wsrv.Close)
	cred, err := b.store.CreateCredential(ctx, store.Credential{AccountID: store.RootAccountID, Name: "win-admin",
		Kind: store.CredentialPassword, Username: winrmtest.DefaultUser}, store.Secret{Secret: pw})
	if err != nil {
		t.Fatal(err)
	}
	win := b.server(t, store.Server{Name: "win1", Address: wsrv.Host, Port: wsrv.Port, OS: "windows", Transport: store.TransportWinRM, CredentialID: cred.ID,
		WinRM: &store.WinRMSettings{CACert: string(wsrv.CACertPEM)}})
	v := b.publish(t, `<Manifest><Metadata><UUID>0b8f5e0e-ffff-4c2a-9a55-0c1d2e3f4a0f</UUID><Name>Uses Password</Name><Description>w</Description></Metadata>
<Parameters><Parameter Name="Pw" Type="Password" Variable="T3.Server.Password" Prompt="None"/></Parameters>
<Execution><Mode>Command</Mode><Command>record ${T3.Server.Password}</Command></Execution></Manifest>`, file{"readme.txt", "x", 0o644}, file{"unused.cmd", "@echo off\r\n", 0o644})

	// The worker's Redis client fails the first read of the credential.
	rdb, err := redisconn.Open(b.redis.URL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	hook := &failFirstGet{key: "pf:{inv}:cred:" + cred.ID}
	rdb.AddHook(hook)
	box, _ := secretbox.New(bytes.Repeat([]byte{0x5a}, 32))
	b.startWorker(t, workerOpts{rdb: rdb, st: store.New(rdb, store.Options{Secrets: box})})

	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: []store.Server{win}, Visible: []store.Server{win}})
	if err != nil {
		t.Fatal(err)
	}
	_, runs := b.waitFinal(t, e.ID)
	r := runs[0]
	if r.Status != store.StatusSucceeded || r.Attempts != 2 {
		t.Errorf("run %s after %d attempts, want succeeded after 2 (the first failed on the store error)", r.Status, r.Attempts)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || !strings.Contains(seen[0], pw) {
		t.Errorf("the command saw %q, want it run once with the password", seen)
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if hook.reads == 1 {
		t.Error("the injected failure never happened")
	}
}

// panicStager panics where a package would be staged.
type panicStager struct{}

func (panicStager) Stage(context.Context, store.Version) (string, error) { panic("stager bug") }

// TestLogSinkClosedAfterPanic: a run that panics still writes the lines
// it logged and stops its log's flush goroutine. (Not parallel: it looks
// at every goroutine of the process.)
func TestLogSinkClosedAfterPanic(t *testing.T) {
	ctx := context.Background()
	b := setupExec(t)
	v := b.publish(t, simpleManifest("0b8f5e0e-1212-4c2a-9a55-0c1d2e3f4a12", "Panicky", "./p.sh", false), file{"p.sh", "#!/bin/sh\n", 0o755})
	// Local servers run only when a root admin approved them.
	approver, _, err := b.store.CreateToken(ctx, store.Token{AccountID: store.RootAccountID, User: "root-admin", Role: store.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	sv := b.server(t, store.Server{Name: "here", Address: "localhost", OS: "linux", Transport: store.TransportLocal, LocalApprovedBy: approver.ID})
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: b.store, AllowLocal: true, LocalDir: t.TempDir(), Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ex, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: b.store, Connector: conn, Stager: panicStager{}, Logger: b.log})
	if err != nil {
		t.Fatal(err)
	}
	e, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{AccountID: store.RootAccountID, User: "alice",
		Steps: []tasks.StepRef{{Package: v.PackageID, Version: v.Version}}, Servers: []store.Server{sv}, Visible: []store.Server{sv}})
	if err != nil {
		t.Fatal(err)
	}
	run, err := b.store.ServerRun(ctx, e.ID, sv.ID)
	if err != nil {
		t.Fatal(err)
	}
	task, _, err := tasks.NewExecuteTask(e, run, nil)
	if err != nil {
		t.Fatal(err)
	}
	var recovered any
	func() {
		defer func() { recovered = recover() }() // as the task middleware does
		_ = ex.ProcessTask(ctx, asynq.NewTask(task.Type(), task.Payload()))
	}()
	if recovered == nil {
		t.Fatal("the stager's panic did not happen")
	}
	evs, err := b.store.Events(ctx, e.ID, "", 1000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var staged bool
	for _, ev := range evs {
		staged = staged || strings.HasPrefix(ev.Line, "staging Panicky")
	}
	if !staged {
		t.Errorf("the line logged before the panic was dropped: %+v", evs)
	}
	buf := make([]byte, 1<<20)
	if stacks := string(buf[:runtime.Stack(buf, true)]); strings.Contains(stacks, "(*logSink).loop") {
		t.Errorf("a log sink's goroutine outlived its run:\n%s", stacks)
	}
}
