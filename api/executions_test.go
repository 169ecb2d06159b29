package api

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/secretbox"
	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

const apiCanary = "Canary-Api-Pw-7731!"

// execSetup starts the API and a worker with the executor on the real
// Redis, with a secret key; tune adjusts SSH options per server.
func execSetup(t *testing.T, tune func(store.Server, *ssh.Options)) *bundle {
	t.Helper()
	ctx := context.Background()
	r := testenv.RealRedis(t)
	box, err := secretbox.New(bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(r.Client, store.Options{Secrets: box})
	bs, err := blob.Open(ctx, "file://"+filepath.ToSlash(filepath.Join(t.TempDir(), "blobs")))
	if err != nil {
		t.Fatal(err)
	}
	log := testLogger(t)
	client := tasks.NewClient(r.Client, st, log)
	srv, err := New(Options{Store: st, Blob: bs, Enqueuer: client, Tasks: client, Logger: log, AdminToken: testAdminToken})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := tasks.NewConnector(tasks.ConnectorOptions{Store: st, TuneSSH: tune, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ex, err := tasks.NewExecutor(tasks.ExecuteOptions{Store: st, Connector: conn, Logger: log,
		Stager: &tasks.BlobStager{Blob: bs, Dir: t.TempDir()}})
	if err != nil {
		t.Fatal(err)
	}
	w, err := worker.New(worker.Options{
		Redis: r.Client, Store: st, NodeID: "api-exec", Concurrency: 8, Logger: log, Datacenters: []string{"default"},
		Handlers:        tasks.Handlers(tasks.Deps{Store: st, Blob: bs, Logger: log, Executor: ex}),
		Retry:           tasks.Backoff{Base: time.Second, Cap: time.Second},
		ShutdownTimeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Start(ctx); err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = w.Shutdown(ctx)
		_ = conn.Close()
	})
	return &bundle{srv: srv, store: st, rdb: r.Client, http: hs}
}

// publishZip uploads and publishes a package of the given files.
func publishZip(t *testing.T, b *bundle, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(files[n]))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, b.http.URL+"/api/v1/uploads", &buf)
	req.Header.Set("Content-Type", "application/zip")
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	res, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var up uploadJSON
	if err := json.NewDecoder(res.Body).Decode(&up); err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("upload: %d %v", res.StatusCode, err)
	}
	_ = res.Body.Close()
	b.do(t, http.MethodPost, "/api/v1/uploads/"+up.ID+"/publish", testAdminToken,
		map[string]any{"category": "script", "os": "linux", "os_versions": []string{"debian-12"}, "visibility": "private"}).
		mustStatus(t, http.StatusAccepted)
	deadline := time.Now().Add(60 * time.Second)
	for {
		b.do(t, http.MethodGet, "/api/v1/uploads/"+up.ID, testAdminToken, nil).mustStatus(t, http.StatusOK).json(t, &up)
		if up.Status == store.UploadPublished {
			return up.PackageID
		}
		if up.Status == store.UploadRejected || time.Now().After(deadline) {
			t.Fatalf("publish: %+v", up)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func errorPaths(p Problem) map[string]string {
	out := map[string]string{}
	for _, e := range p.Errors {
		out[e.Path] = e.Rule
	}
	return out
}

func TestE2EInventoryBlueprintDeploy(t *testing.T) {
	dir := t.TempDir()
	// The hosts share this machine's file system: make the common parents
	// of their package bases before the uploads race to.
	for _, d := range []string{"stage", "persist"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tune := func(sv store.Server, o *ssh.Options) {
		o.StagingBase = filepath.Join(dir, "stage", sv.Name)
		o.PersistentBase = filepath.Join(dir, "persist", sv.Name)
	}
	// Started first so that it stops last, after the worker's connections.
	sshd := sshdtest.Start(t, sshdtest.Options{Addrs: []string{"127.0.4.1", "127.0.4.2"}})
	b := execSetup(t, tune)
	tok := testAdminToken

	// Credentials: every problem at once; the secret is never returned.
	p := b.do(t, http.MethodPost, "/api/v1/credentials", tok, map[string]any{"kind": "token"}).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	for path, rule := range map[string]string{"name": "missing", "kind": "invalid value", "username": "missing", "secret": "missing"} {
		if errorPaths(p)[path] != rule {
			t.Errorf("credential problems %+v lack %s/%s", p.Errors, path, rule)
		}
	}
	a := b.do(t, http.MethodPost, "/api/v1/credentials", tok, map[string]any{"name": "key", "kind": "ssh-key",
		"username": sshd.User, "secret": string(sshd.ClientKeyPEM)}).mustStatus(t, http.StatusCreated)
	if bytes.Contains(a.body, []byte("PRIVATE KEY")) {
		t.Fatal("the key came back")
	}
	a = b.do(t, http.MethodPost, "/api/v1/credentials", tok, map[string]any{"name": "pw", "kind": "password",
		"username": "admin", "secret": apiCanary}).mustStatus(t, http.StatusCreated)
	var list page[credentialJSON]
	b.do(t, http.MethodGet, "/api/v1/credentials", tok, nil).mustStatus(t, http.StatusOK).json(t, &list)
	if len(list.Items) != 2 {
		t.Fatalf("credentials %+v", list)
	}

	// Servers.
	p = b.do(t, http.MethodPost, "/api/v1/servers", tok, map[string]any{"address": "a b", "os": "beos", "credential": "nope"}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	for _, path := range []string{"name", "address", "os", "transport", "credential"} {
		if _, ok := errorPaths(p)[path]; !ok {
			t.Errorf("server problems %+v lack %s", p.Errors, path)
		}
	}
	var servers []store.Server
	for i := range sshd.Len() {
		host, port, _ := net.SplitHostPort(sshd.Addr(i))
		pn, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		var sv store.Server
		b.do(t, http.MethodPost, "/api/v1/servers", tok, map[string]any{"name": fmt.Sprintf("web%d", i+1), "address": host, "port": pn,
			"os": "linux", "transport": "ssh", "credential": "key"}).mustStatus(t, http.StatusCreated).json(t, &sv)
		servers = append(servers, sv)
	}

	// A check runs on a worker and records the host key on first use.
	var acc map[string]string
	b.do(t, http.MethodPost, "/api/v1/servers/"+servers[0].ID+"/check", tok, nil).mustStatus(t, http.StatusAccepted).json(t, &acc)
	var check tasks.ServerCheckResult
	waitTask(t, b, acc["task_id"], &check)
	if !check.OK || check.HostKey != sshd.HostKey {
		t.Errorf("check %+v, host key %q", check, sshd.HostKey)
	}
	var sv0 store.Server
	b.do(t, http.MethodGet, "/api/v1/servers/"+servers[0].ID, tok, nil).mustStatus(t, http.StatusOK).json(t, &sv0)
	if sv0.HostKey != sshd.HostKey {
		t.Errorf("host key not recorded: %q", sv0.HostKey)
	}

	// Two packages sharing a Global parameter.
	markers := filepath.Join(dir, "markers")
	if err := os.MkdirAll(markers, 0o755); err != nil {
		t.Fatal(err)
	}
	pkgA := publishZip(t, b, map[string]string{
		"package.manifest": `<Manifest><Metadata><UUID>6a1e0c9e-0000-4000-8000-00000000000a</UUID><Name>A</Name><Description>a</Description></Metadata>
<Parameters>
 <Parameter Name="Num" Type="Numeric" Variable="Num" Default="7"/>
 <Parameter Name="Opt" Type="Option" Variable="Opt"><Option Name="S" Value="s"/><Option Name="L" Value="l"/></Parameter>
 <Parameter Name="Pw" Type="Password" Variable="Pw"/>
 <Parameter Name="Peer" Type="Server" Variable="Peer"/>
 <Parameter Name="Shared" Type="String" Variable="Shared" Global="true" Regex="^[a-z ]+$"/>
 <Parameter Name="Me" Type="String" Variable="T3.Server.Name" Prompt="None"/>
</Parameters>
<Execution><Mode>Ssh</Mode><Command>./a.sh ${Num} ${Opt} ${Pw} ${Peer} ${Shared} ${T3.Server.Name}</Command></Execution></Manifest>`,
		"a.sh": "#!/bin/sh\necho \"a on $6 pw=$3\"\nprintf '%s|' \"$@\" > '" + markers + "'/$6.a\n",
	})
	pkgB := publishZip(t, b, map[string]string{
		"package.manifest": `<Manifest><Metadata><UUID>6a1e0c9e-0000-4000-8000-00000000000b</UUID><Name>B</Name><Description>b</Description></Metadata>
<Parameters><Parameter Name="Shared" Type="String" Variable="Shared" Global="true"/></Parameters>
<Execution><Mode>Ssh</Mode><Command>./b.sh ${Shared}</Command><Persistent>true</Persistent></Execution></Manifest>`,
		"b.sh": "#!/bin/sh\necho \"b got $1\"\n",
	})
	var bp blueprintJSON
	b.do(t, http.MethodPost, "/api/v1/blueprints", tok, map[string]any{"name": "web", "description": "two steps", "steps": []map[string]any{
		{"package": pkgA, "version": "1", "parameters": map[string]string{"Opt": "l", "Pw": apiCanary}},
		{"package": pkgB, "version": "1"},
	}}).mustStatus(t, http.StatusCreated).json(t, &bp)
	if bp.Steps[0].Parameters["Pw"] != remote.MaskText {
		t.Errorf("blueprint shows %q for a password", bp.Steps[0].Parameters["Pw"])
	}
	var form struct {
		Fields []tasks.FormField `json:"fields"`
	}
	b.do(t, http.MethodGet, "/api/v1/blueprints/"+bp.ID+"/form", tok, nil).mustStatus(t, http.StatusOK).json(t, &form)
	var vars []string
	for _, f := range form.Fields {
		vars = append(vars, f.Variable)
		if f.Variable == "Shared" && (len(f.Steps) != 2 || !f.Global) {
			t.Errorf("global field %+v", f)
		}
		if f.Variable == "Num" && f.Default != "7" {
			t.Errorf("default not shown: %+v", f)
		}
	}
	if strings.Join(vars, ",") != "Num,Opt,Pw,Peer,Shared" {
		t.Errorf("form fields %v", vars)
	}

	// Deploy: every problem at once.
	p = b.do(t, http.MethodPost, "/api/v1/blueprints/"+bp.ID+"/deploy", tok, map[string]any{
		"servers": []string{"web1", "nowhere"}, "parameters": map[string]string{"Num": "abc", "Peer": "ghost", "Shared": "UPPER", "Extra": "x"},
	}).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	want := map[string]string{"servers[1]": "invalid value", "parameters.Num": "wrong type", "parameters.Peer": "invalid value",
		"parameters.Shared": "invalid value", "parameters.Extra": "invalid value"}
	for path, rule := range want {
		if errorPaths(p)[path] != rule {
			t.Errorf("deploy problems %+v: want %s %s", p.Errors, path, rule)
		}
	}

	var dep struct {
		ExecutionID string   `json:"execution_id"`
		TaskIDs     []string `json:"task_ids"`
	}
	b.do(t, http.MethodPost, "/api/v1/blueprints/"+bp.ID+"/deploy", tok, map[string]any{
		"servers": []string{"web1", servers[1].ID}, "parameters": map[string]string{"Peer": "web2", "Shared": "same for all"},
		"retry": map[string]any{"max": 2, "backoff": "1s"},
	}).mustStatus(t, http.StatusAccepted).json(t, &dep)
	if len(dep.TaskIDs) != 2 {
		t.Fatalf("deploy answer %+v", dep)
	}
	// Follow the events until the stream ends.
	events := readSSE(t, b, "/api/v1/executions/"+dep.ExecutionID+"/events", "")
	if len(events) == 0 || events[len(events)-1].event != "end" {
		t.Fatalf("events %+v", events)
	}
	// A step's output comes before the state change that ends the step.
	for _, name := range []string{"web1", "web2"} {
		lastLog, done := -1, -1
		for i, ev := range events {
			var e store.Event
			_ = json.Unmarshal([]byte(ev.data), &e)
			switch {
			case e.Server != name || e.Step != 1:
			case e.Kind == store.EventLog:
				lastLog = i
			case e.Status == store.StatusSucceeded:
				done = i
			}
		}
		if lastLog < 0 || done < lastLog {
			t.Errorf("%s: last log line at %d, step done at %d", name, lastLog, done)
		}
	}
	var ex executionJSON
	b.do(t, http.MethodGet, "/api/v1/executions/"+dep.ExecutionID, tok, nil).mustStatus(t, http.StatusOK).json(t, &ex)
	if ex.Status != store.StatusSucceeded || len(ex.Servers) != 2 {
		t.Fatalf("execution %+v", ex)
	}
	// The record keeps the parameters as given, and numbers steps from 1
	// as the log and the events do.
	if want := map[string]string{"Peer": "web2", "Shared": "same for all"}; fmt.Sprint(ex.Parameters) != fmt.Sprint(want) {
		t.Errorf("parameters %v, want %v", ex.Parameters, want)
	}
	for i, st := range ex.Steps {
		if st.Step != i+1 || ex.Servers[0].Steps[i].Step != i+1 {
			t.Errorf("step %d numbered %d in the plan, %d in the run", i, st.Step, ex.Servers[0].Steps[i].Step)
		}
	}
	for _, r := range ex.Servers {
		if r.TaskID != tasks.ExecuteTaskID(ex.ID, r.ServerID, 1) {
			t.Errorf("%s task id %q", r.Name, r.TaskID)
		}
		if r.Steps[1].PersistedPath == "" || r.Steps[0].PersistedPath != "" {
			t.Errorf("%s steps %+v", r.Name, r.Steps)
		}
		got, err := os.ReadFile(filepath.Join(markers, r.Name+".a"))
		if err != nil || string(got) != "7|l|"+apiCanary+"|web2|same for all|"+r.Name+"|" {
			t.Errorf("%s args %q %v", r.Name, got, err)
		}
	}
	// Resume: the events after the third one are the rest.
	rest := readSSE(t, b, "/api/v1/executions/"+dep.ExecutionID+"/events", events[2].id)
	if len(rest) != len(events)-3 || rest[0].id != events[3].id {
		t.Errorf("resumed %d events from %s, want %d", len(rest), events[2].id, len(events)-3)
	}
	logText := b.do(t, http.MethodGet, "/api/v1/executions/"+dep.ExecutionID+"/log?server=web2", tok, nil).mustStatus(t, http.StatusOK).body
	if !bytes.Contains(logText, []byte("a on web2 pw="+remote.MaskText)) || !bytes.Contains(logText, []byte("b got same for all")) || bytes.Contains(logText, []byte("web1 step")) {
		t.Errorf("log:\n%s", logText)
	}
	var exs page[executionJSON]
	b.do(t, http.MethodGet, "/api/v1/executions?status=succeeded&server=web1", tok, nil).mustStatus(t, http.StatusOK).json(t, &exs)
	if len(exs.Items) != 1 {
		t.Errorf("filtered list %+v", exs.Items)
	}

	// One package without a blueprint.
	p = b.do(t, http.MethodPost, "/api/v1/executions", tok, map[string]any{"package": pkgB, "servers": []string{"web1"}}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if errorPaths(p)["steps[0].version"] != "missing" {
		t.Errorf("no active version: %+v", p.Errors)
	}
	var one struct {
		ExecutionID string `json:"execution_id"`
	}
	b.do(t, http.MethodPost, "/api/v1/executions", tok, map[string]any{"package": pkgB, "version": "1", "servers": []string{"web1"},
		"parameters": map[string]string{"Shared": "solo"}}).mustStatus(t, http.StatusAccepted).json(t, &one)
	if evs := readSSE(t, b, "/api/v1/executions/"+one.ExecutionID+"/events", ""); len(evs) == 0 || evs[len(evs)-1].event != "end" {
		t.Fatalf("single-package events %+v", evs)
	}
	var single executionJSON
	b.do(t, http.MethodGet, "/api/v1/executions/"+one.ExecutionID, tok, nil).mustStatus(t, http.StatusOK).json(t, &single)
	if single.Status != store.StatusSucceeded || single.BlueprintID != "" {
		t.Errorf("single-package execution %+v", single)
	}
	// Nothing to cancel or rerun in an execution that succeeded: 409 with
	// the reason.
	for verb, why := range map[string]string{"cancel": "already ended", "rerun": "nothing to rerun"} {
		p := b.do(t, http.MethodPost, "/api/v1/executions/"+one.ExecutionID+"/"+verb, tok, nil).mustStatus(t, http.StatusConflict).problem(t)
		if !strings.Contains(p.Detail, why) {
			t.Errorf("%s: %+v, want a detail saying %q", verb, p, why)
		}
	}

	// The canary never shows, in answers, the log, events or Redis.
	for _, path := range []string{"/api/v1/credentials", "/api/v1/blueprints", "/api/v1/blueprints/" + bp.ID, "/api/v1/executions/" + dep.ExecutionID,
		"/api/v1/executions/" + dep.ExecutionID + "/log"} {
		if body := b.do(t, http.MethodGet, path, tok, nil).body; bytes.Contains(body, []byte(apiCanary)) {
			t.Errorf("GET %s shows the canary", path)
		}
	}
	for _, ev := range events {
		if strings.Contains(ev.data, apiCanary) {
			t.Error("an event shows the canary")
		}
	}
	if redisHoldsNonStream(t, b, apiCanary) || streamsHold(t, b, apiCanary) {
		t.Error("Redis holds the canary in clear text")
	}
}

// waitTask waits for task id to complete and decodes its result.
func waitTask(t *testing.T, b *bundle, id string, v any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st tasks.Status
		a := b.do(t, http.MethodGet, "/api/v1/tasks/"+id, testAdminToken, nil)
		if a.status == http.StatusOK {
			a.json(t, &st)
			if st.State == tasks.StateCompleted {
				if err := json.Unmarshal(st.Result, v); err != nil {
					t.Fatal(err)
				}
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("task %s: %s", id, a.body)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type sseEvent struct{ id, event, data string }

// readSSE reads an event stream until the server ends it.
// redisHoldsNonStream is bundle.redisHolds over every key but streams.
func redisHoldsNonStream(t *testing.T, b *bundle, needle string) bool {
	t.Helper()
	ctx := context.Background()
	for _, k := range b.rdb.Keys(ctx, "*").Val() {
		var vals []string
		switch b.rdb.Type(ctx, k).Val() {
		case "string":
			vals = []string{b.rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range b.rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "set":
			vals = b.rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = b.rdb.ZRange(ctx, k, 0, -1).Val()
		case "list":
			vals = b.rdb.LRange(ctx, k, 0, -1).Val()
		}
		for _, v := range append(vals, k) {
			if strings.Contains(v, needle) {
				return true
			}
		}
	}
	return false
}

func streamsHold(t *testing.T, b *bundle, needle string) bool {
	t.Helper()
	ctx := context.Background()
	var found bool
	for _, k := range b.rdb.Keys(ctx, "*").Val() {
		if b.rdb.Type(ctx, k).Val() != "stream" {
			continue
		}
		for _, m := range b.rdb.XRange(ctx, k, "-", "+").Val() {
			found = found || strings.Contains(fmt.Sprint(m.Values), needle)
		}
	}
	return found
}

func readSSE(t *testing.T, b *bundle, path, lastID string) []sseEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.http.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+testAdminToken)
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	res, err := b.http.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var out []sseEvent
	var cur sseEvent
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if cur.event != "" {
				out = append(out, cur)
			}
			cur = sseEvent{}
		case strings.HasPrefix(line, "id: "):
			cur.id = line[4:]
		case strings.HasPrefix(line, "event: "):
			cur.event = line[7:]
		case strings.HasPrefix(line, "data: "):
			cur.data = line[6:]
		}
	}
	return out
}
