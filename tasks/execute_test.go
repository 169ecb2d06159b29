package tasks_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/internal/sshdtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/ssh"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

const (
	uuidA  = "0b8f5e0e-1111-4c2a-9a55-0c1d2e3f4a01"
	uuidB  = "0b8f5e0e-2222-4c2a-9a55-0c1d2e3f4a02"
	canary = "Canary-Pw-4417!"
	// hostile arrives verbatim as one argument.
	hostile = `it's "q" $(touch pwned) ; rm -rf / && echo $HOME \ back` + "`id`"
)

func manifestA() string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata><UUID>` + uuidA + `</UUID><Name>Every Type</Name><Description>a</Description><Version>1.0.0</Version></Metadata>
  <Parameters>
    <Parameter Name="Str" Type="String" Variable="Str" Regex="^[^\n]*$" Prompt="Build"/>
    <Parameter Name="Num" Type="Numeric" Variable="Num" Default="42"/>
    <Parameter Name="Opt" Type="Option" Variable="Opt"><Option Name="Small" Value="s"/><Option Name="Large" Value="l"/></Parameter>
    <Parameter Name="Multi" Type="MultiSelect" Variable="Multi"><Option Name="A" Value="a"/><Option Name="B" Value="b"/><Option Name="C" Value="c"/></Parameter>
    <Parameter Name="Pw" Type="Password" Variable="Pw"/>
    <Parameter Name="Srv" Type="Server" Variable="Srv"/>
    <Parameter Name="SrvIP" Type="ServerIP" Variable="SrvIP"/>
    <Parameter Name="Shared" Type="String" Variable="Shared" Global="true"/>
    <Parameter Name="Me" Type="String" Variable="T3.Server.Name" Prompt="None"/>
  </Parameters>
  <Execution><Mode>Ssh</Mode>
    <Command>./a.sh ${Str} ${Num} ${Opt} ${Multi} ${Pw} ${Srv} ${SrvIP} ${Shared} ${T3.Server.Name}</Command>
    <Persistent>false</Persistent><RebootOnSuccess>false</RebootOnSuccess>
  </Execution>
</Manifest>`
}

func manifestB() string {
	return `<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata><UUID>` + uuidB + `</UUID><Name>Persistent Agent</Name><Description>b</Description><Version>2.0.0</Version></Metadata>
  <Parameters>
    <Parameter Name="Shared" Type="String" Variable="Shared" Global="true"/>
    <Parameter Name="Me" Type="String" Variable="T3.Server.Name" Prompt="None"/>
  </Parameters>
  <Execution><Mode>Ssh</Mode>
    <Command>./b.sh ${Shared} ${T3.Server.Name}</Command>
    <Persistent>true</Persistent><RebootOnSuccess>false</RebootOnSuccess>
  </Execution>
</Manifest>`
}

func scriptA(markers string) string {
	return `#!/bin/sh
d='` + markers + `'
echo run >> "$d/$9.a.count"
printf '%s\0' "$@" > "$d/$9.a.args"
pwd > "$d/$9.a.pwd"
echo "password is $5"
echo "to stderr" >&2
`
}

func scriptB(markers string) string {
	return `#!/bin/sh
d='` + markers + `'
echo run >> "$d/$2.b.count"
if [ ! -e "$d/$2.b.failed" ]; then touch "$d/$2.b.failed"; echo "failing once" >&2; exit 3; fi
printf '%s' "$1" > "$d/$2.b.shared"
pwd > "$d/$2.b.pwd"
`
}

// fleet is three sshd hosts recorded as servers, with per-server package
// bases under dir.
type fleet struct {
	sshd    *sshdtest.Server
	servers []store.Server
	dir     string
	markers string
}

func newFleet(t *testing.T, b *execBundle, addrs []string) *fleet {
	t.Helper()
	s := sshdtest.Start(t, sshdtest.Options{Addrs: addrs})
	f := &fleet{sshd: s, dir: t.TempDir()}
	f.markers = filepath.Join(f.dir, "markers")
	// The hosts share this machine's file system: make the common parents
	// of their package bases here, not in a race between the uploads.
	for _, d := range []string{f.markers, filepath.Join(f.dir, "stage"), filepath.Join(f.dir, "persist")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cred := b.credential(t, "deploy-key", s.User, s.ClientKeyPEM)
	for i := range s.Len() {
		host, port, _ := net.SplitHostPort(s.Addr(i))
		p, err := strconv.Atoi(port)
		if err != nil {
			t.Fatal(err)
		}
		f.servers = append(f.servers, b.server(t, store.Server{Name: fmt.Sprintf("h%d", i+1), Address: host, Port: p,
			OS: "linux", Transport: store.TransportSSH, CredentialID: cred.ID}))
	}
	return f
}

func (f *fleet) tune(sv store.Server, o *ssh.Options) {
	o.StagingBase = filepath.Join(f.dir, "stage", sv.Name)
	o.PersistentBase = filepath.Join(f.dir, "persist", sv.Name)
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// redisHolds reports whether any value in Redis contains needle.
func redisHolds(t *testing.T, rdb redis.UniversalClient, needle string) []string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for _, k := range keys {
		var vals []string
		switch rdb.Type(ctx, k).Val() {
		case "string":
			vals = []string{rdb.Get(ctx, k).Val()}
		case "hash":
			for f, v := range rdb.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = rdb.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = rdb.SMembers(ctx, k).Val()
		case "zset":
			vals = rdb.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range rdb.XRange(ctx, k, "-", "+").Val() {
				vals = append(vals, fmt.Sprint(m.Values))
			}
		}
		for _, v := range vals {
			if strings.Contains(v, needle) {
				found = append(found, k)
			}
		}
	}
	return found
}

func TestExecutionTwoStepsThreeHosts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	b := setupExec(t)
	f := newFleet(t, b, []string{"127.0.3.1", "127.0.3.2", "127.0.3.3"})
	vA := b.publish(t, manifestA(), file{"a.sh", scriptA(f.markers), 0o755})
	vB := b.publish(t, manifestB(), file{"b.sh", scriptB(f.markers), 0o755})
	b.startWorker(t, workerOpts{tuneSSH: f.tune})

	_, _, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{
		AccountID: store.RootAccountID, AccountName: "root", User: "alice",
		Steps: []tasks.StepRef{
			{Package: vA.PackageID, Version: vA.Version, Parameters: map[string]string{"Opt": "l"}},
			{Package: vB.PackageID, Version: store.ActiveVersion + "-not"},
		},
		Servers: f.servers, Visible: f.servers,
		Parameters: map[string]string{"Str": hostile, "Multi": "a,c", "Pw": canary, "Srv": "h2", "SrvIP": "h3", "Shared": "one value"},
		Retry:      &tasks.Retry{Max: tasks.Retries(3)},
	})
	var pe *tasks.ProblemsError
	if !errors.As(err, &pe) || len(pe.Problems) != 1 || pe.Problems[0].Path != "steps[1].version" {
		t.Fatalf("deploy with an unknown version: %v %+v", err, pe)
	}
	e, ids, err := tasks.Deploy(ctx, b.store, b.client, tasks.DeployRequest{
		AccountID: store.RootAccountID, AccountName: "root", User: "alice",
		Steps: []tasks.StepRef{
			{Package: vA.PackageID, Version: vA.Version, Parameters: map[string]string{"Opt": "l"}},
			{Package: vB.PackageID, Version: vB.Version},
		},
		Servers: f.servers, Visible: f.servers,
		Parameters: map[string]string{"Str": hostile, "Multi": "a,c", "Pw": canary, "Srv": "h2", "SrvIP": "h3", "Shared": "one value"},
		Retry:      &tasks.Retry{Max: tasks.Retries(3)},
	})
	if err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if len(ids) != 3 {
		t.Fatalf("task ids %v", ids)
	}
	_, runs := b.waitFinal(t, e.ID)
	for _, r := range runs {
		if r.Status != store.StatusSucceeded {
			t.Fatalf("run %s: %+v", r.Name, r)
		}
		a, bb := r.Steps[0], r.Steps[1]
		if a.Attempts != 1 || bb.Attempts != 2 || *bb.ExitCode != 0 || a.PersistedPath != "" {
			t.Errorf("%s steps %+v", r.Name, r.Steps)
		}
		args := strings.Split(strings.TrimSuffix(readFile(t, filepath.Join(f.markers, r.Name+".a.args")), "\x00"), "\x00")
		want := []string{hostile, "42", "l", "a,c", canary, "h2", "127.0.3.3", "one value", r.Name}
		if fmt.Sprintf("%q", args) != fmt.Sprintf("%q", want) {
			t.Errorf("%s args\n got %q\nwant %q", r.Name, args, want)
		}
		if n := strings.Count(readFile(t, filepath.Join(f.markers, r.Name+".a.count")), "run"); n != 1 {
			t.Errorf("%s step a ran %d times", r.Name, n)
		}
		if n := strings.Count(readFile(t, filepath.Join(f.markers, r.Name+".b.count")), "run"); n != 2 {
			t.Errorf("%s step b ran %d times, want 2 (fails once)", r.Name, n)
		}
		if got := readFile(t, filepath.Join(f.markers, r.Name+".b.shared")); got != "one value" {
			t.Errorf("global value %q", got)
		}
		aDir := strings.TrimSpace(readFile(t, filepath.Join(f.markers, r.Name+".a.pwd")))
		if _, err := os.Stat(aDir); !os.IsNotExist(err) {
			t.Errorf("non-persistent package left at %s: %v", aDir, err)
		}
		want2 := filepath.Join(f.dir, "persist", r.Name, uuidB, "2.0.0")
		if bb.PersistedPath != want2 {
			t.Errorf("persisted path %q, want %q", bb.PersistedPath, want2)
		}
		if _, err := os.Stat(filepath.Join(want2, "b.sh")); err != nil {
			t.Errorf("persistent package not kept: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(f.dir, "pwned")); err == nil {
		t.Error("a value ran as code")
	}
	evs, err := b.store.Events(ctx, e.ID, "", 10000, 0)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	for _, ev := range evs {
		fmt.Fprintf(&log, "%s %d %s %s %s\n", ev.Server, ev.Step, ev.Kind, ev.Stream, ev.Line+ev.Status)
	}
	if !strings.Contains(log.String(), "password is "+remote.MaskText) || !strings.Contains(log.String(), "failing once") {
		t.Errorf("log lacks lines:\n%s", log.String())
	}
	if keys := redisHolds(t, b.rdb, canary); len(keys) > 0 {
		t.Errorf("the canary password is in clear text in Redis keys %v", keys)
	}
	if bytes.Contains([]byte(log.String()), []byte(canary)) {
		t.Error("the canary password is in the log")
	}
}
