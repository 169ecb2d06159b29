//go:build unix

package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/pkgtest"
)

// platform is the api, two workers and a scheduler of one Redis URL, run
// in-process by run() exactly as the binary runs them.
type platform struct {
	t     *testing.T
	api   string
	token string
	nodes []string
}

// startPlatform runs api, scheduler and two workers (n1, n2, local
// transport allowed) on redisURL with a shared blob directory, and waits
// until each is ready.
func startPlatform(t *testing.T, redisURL string) *platform {
	t.Helper()
	p := &platform{t: t, token: "topology-test-admin-token", nodes: []string{"n1", "n2"}}
	blobs := "file://" + filepath.Join(t.TempDir(), "blobs")
	common := func(extra map[string]string) map[string]string {
		env := map[string]string{
			"PACKFLOW_REDIS_URL": redisURL, "PACKFLOW_ADMIN_TOKEN": p.token, "PACKFLOW_BLOB_URL": blobs,
			"PACKFLOW_DATA_DIR": t.TempDir(), "PACKFLOW_LOG_LEVEL": "warn", "PACKFLOW_SHUTDOWN_TIMEOUT": "5s",
			"PACKFLOW_TASK_CHECK_INTERVAL": "20ms", "PACKFLOW_RETRY_BACKOFF": "1s", "PACKFLOW_RETRY_BACKOFF_MAX": "2s",
		}
		for k, v := range extra {
			env[k] = v
		}
		return env
	}
	addr := freeAddr(t)
	stop := runInBackground(t, common(map[string]string{"PACKFLOW_LISTEN": addr}), "api")
	t.Cleanup(func() { stop() })
	p.api = "http://" + addr
	waitUp(t, p.api+"/readyz")
	for _, id := range p.nodes {
		ops := freeAddr(t)
		stop := runInBackground(t, common(map[string]string{"PACKFLOW_NODE_ID": id, "PACKFLOW_METRICS_LISTEN": ops,
			"PACKFLOW_ALLOW_LOCAL": "true", "PACKFLOW_CONCURRENCY": "4"}), "worker")
		t.Cleanup(func() { stop() })
		waitUp(t, "http://"+ops+"/readyz")
	}
	ops := freeAddr(t)
	stopSched := runInBackground(t, common(map[string]string{"PACKFLOW_METRICS_LISTEN": ops}), "scheduler")
	t.Cleanup(func() { stopSched() })
	waitUp(t, "http://"+ops+"/readyz")
	return p
}

// do sends body (JSON unless it is []byte, sent as a zip) and decodes the
// answer into out.
func (p *platform) do(method, path string, body, out any) int {
	p.t.Helper()
	switch b := body.(type) {
	case nil:
		return call(p.t, method, p.api+path, p.token, "", nil, out)
	case []byte:
		return call(p.t, method, p.api+path, p.token, "application/zip", b, out)
	default:
		j, _ := json.Marshal(b)
		return call(p.t, method, p.api+path, p.token, "application/json", j, out)
	}
}

// poll calls fetch until it returns true. The deadline only stops a broken
// test from hanging; nothing is asserted about time.
func (p *platform) poll(what string, fetch func() (bool, string)) {
	p.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		ok, state := fetch()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%s: still %s", what, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// awaitTask waits until task id completes.
func (p *platform) awaitTask(id string) {
	p.t.Helper()
	p.poll("task "+id, func() (bool, string) {
		var task struct {
			State     string `json:"state"`
			LastError string `json:"last_error"`
		}
		p.do(http.MethodGet, "/api/v1/tasks/"+id, nil, &task)
		if task.State == "archived" {
			p.t.Fatalf("task %s archived: %s", id, task.LastError)
		}
		return task.State == "completed", task.State + " " + task.LastError
	})
}

// topologyPackage is a package whose command prints its parameter.
func topologyPackage(t *testing.T, uuid, version string) []byte {
	return pkgtest.Zip(t,
		pkgtest.File{Name: "package.manifest", Body: fmt.Sprintf(`<?xml version="1.0" encoding="utf-8"?>
<Manifest>
  <Metadata><UUID>%s</UUID><Name>topology-%s</Name><Description>prints a greeting</Description><Version>%s</Version></Metadata>
  <Parameters><Parameter Name="Greeting" Type="String" Variable="Greeting" Hint="text" Default="hi" Prompt="Build" /></Parameters>
  <Execution><Mode>Ssh</Mode><Command>run.sh "${Greeting}"</Command><Persistent>false</Persistent><RebootOnSuccess>false</RebootOnSuccess></Execution>
</Manifest>
`, uuid, uuid[len(uuid)-4:], version)},
		pkgtest.File{Name: "run.sh", Body: "#!/bin/sh\necho \"greeting: $1\"\n", Mode: 0o755})
}

// publishInstall uploads, publishes, activates and installs uuid@version on
// every node of p, through the API.
func (p *platform) publishInstall(uuid, version string) {
	t := p.t
	t.Helper()
	var up struct {
		ID string `json:"id"`
	}
	if code := p.do(http.MethodPost, "/api/v1/uploads", topologyPackage(t, uuid, version), &up); code != http.StatusCreated {
		t.Fatalf("upload: %d", code)
	}
	var acc struct {
		TaskID string `json:"task_id"`
	}
	if code := p.do(http.MethodPost, "/api/v1/uploads/"+up.ID+"/publish", map[string]any{"category": "script", "os": "linux",
		"os_versions": []string{"debian-12"}, "visibility": "private"}, &acc); code != http.StatusAccepted {
		t.Fatalf("publish: %d", code)
	}
	p.awaitTask(acc.TaskID)
	if code := p.do(http.MethodPost, "/api/v1/packages/"+uuid+"/versions/"+version+"/activate-install", map[string]any{}, &acc); code != http.StatusAccepted {
		t.Fatalf("activate-install: %d", code)
	}
	p.poll("install of "+uuid+"@"+version, func() (bool, string) {
		var in fleetInstalls
		p.do(http.MethodGet, "/api/v1/packages/"+uuid+"/installs", nil, &in)
		return allInstalled(version, p.nodes...)(in), fmt.Sprintf("%+v", in.Items)
	})
}

// deploy runs uuid@version on server with a greeting and checks the
// execution log shows it.
func (p *platform) deploy(uuid, version, server, greeting string) {
	t := p.t
	t.Helper()
	var ex struct {
		ExecutionID string `json:"execution_id"`
	}
	if code := p.do(http.MethodPost, "/api/v1/executions", map[string]any{"package": uuid, "version": version,
		"servers": []string{server}, "parameters": map[string]string{"Greeting": greeting}}, &ex); code != http.StatusAccepted {
		t.Fatalf("deploy: %d", code)
	}
	p.poll("execution "+ex.ExecutionID, func() (bool, string) {
		var e struct {
			Status string `json:"status"`
		}
		p.do(http.MethodGet, "/api/v1/executions/"+ex.ExecutionID, nil, &e)
		if e.Status == "failed" || e.Status == "cancelled" {
			t.Fatalf("execution %s %s", ex.ExecutionID, e.Status)
		}
		return e.Status == "succeeded", e.Status
	})
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, p.api+"/api/v1/executions/"+ex.ExecutionID+"/log", nil)
	req.Header.Set("Authorization", "Bearer "+p.token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var sb strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := res.Body.Read(buf)
		sb.Write(buf[:n])
		if err != nil {
			break
		}
	}
	if !strings.Contains(sb.String(), "greeting: "+greeting) {
		t.Fatalf("execution log lacks the greeting:\n%s", sb.String())
	}
}

// addLocalServer records a server of the local transport.
func (p *platform) addLocalServer(name string) {
	p.t.Helper()
	if code := p.do(http.MethodPost, "/api/v1/servers", map[string]any{"name": name, "address": "127.0.0.1",
		"os": "linux", "transport": "local"}, nil); code != http.StatusCreated {
		p.t.Fatalf("add server %s: %d", name, code)
	}
}
