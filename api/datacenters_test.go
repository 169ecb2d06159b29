package api

import (
	"net/http"
	"strings"
	"testing"

	"github.com/packflow/packflow/store"
)

// A check or a deployment onto a datacenter no live worker serves is
// refused, naming the datacenter and the served ones, unless the request
// queues it anyway; then it shows what it waits for.
func TestDatacenterWithoutWorker(t *testing.T) {
	b := execSetup(t, nil) // its worker serves datacenter "default"
	tok := testAdminToken
	b.do(t, http.MethodPost, "/api/v1/credentials", tok, map[string]any{"name": "pw", "kind": "password",
		"username": "admin", "secret": "s3cret-s3cret"}).mustStatus(t, http.StatusCreated)
	var eu, home store.Server
	b.do(t, http.MethodPost, "/api/v1/servers", tok, map[string]any{"name": "web-eu", "address": "10.0.0.5",
		"os": "linux", "transport": "ssh", "credential": "pw", "datacenter": "eu-west"}).mustStatus(t, http.StatusCreated).json(t, &eu)
	b.do(t, http.MethodPost, "/api/v1/servers", tok, map[string]any{"name": "web-home", "address": "10.0.0.6",
		"os": "linux", "transport": "ssh", "credential": "pw"}).mustStatus(t, http.StatusCreated).json(t, &home)

	var list page[serverJSON]
	b.do(t, http.MethodGet, "/api/v1/servers", tok, nil).mustStatus(t, http.StatusOK).json(t, &list)
	served := map[string]bool{}
	for _, sv := range list.Items {
		served[sv.Name] = sv.DatacenterServed
	}
	if len(served) != 2 || served["web-eu"] || !served["web-home"] {
		t.Errorf("datacenter_served by server: %v", served)
	}

	mustNameDatacenters := func(p Problem) {
		t.Helper()
		if len(p.Errors) == 0 || p.Errors[0].Rule != ruleNoWorker ||
			!strings.Contains(p.Errors[0].Message, `"eu-west"`) || !strings.Contains(p.Errors[0].Message, "live workers serve default") {
			t.Errorf("problem %+v does not name eu-west and the served datacenters", p)
		}
	}
	mustNameDatacenters(b.do(t, http.MethodPost, "/api/v1/servers/"+eu.ID+"/check", tok, nil).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t))
	var acc map[string]string
	b.do(t, http.MethodPost, "/api/v1/servers/"+eu.ID+"/check", tok, map[string]any{"queue_without_worker": true}).
		mustStatus(t, http.StatusAccepted).json(t, &acc)
	const waiting = "waiting for a worker in eu-west"
	if acc["waiting"] != waiting {
		t.Errorf("queued check answer %v", acc)
	}
	var task taskJSON
	b.do(t, http.MethodGet, "/api/v1/tasks/"+acc["task_id"], tok, nil).mustStatus(t, http.StatusOK).json(t, &task)
	if task.State != "pending" || task.Waiting != waiting {
		t.Errorf("queued check task %+v", task)
	}

	pkg := publishZip(t, b, map[string]string{
		"package.manifest": `<Manifest><Metadata><UUID>6a1e0c9e-0000-4000-8000-0000000000dc</UUID><Name>DC</Name><Description>d</Description></Metadata>
<Execution><Mode>Ssh</Mode><Command>./a.sh</Command></Execution></Manifest>`,
		"a.sh": "#!/bin/sh\ntrue\n",
	})
	deploy := map[string]any{"package": pkg, "version": "1", "servers": []string{"web-eu"}}
	p := b.do(t, http.MethodPost, "/api/v1/executions", tok, deploy).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	mustNameDatacenters(p)
	if p.Errors[0].Path != "servers[0]" {
		t.Errorf("problem path %q", p.Errors[0].Path)
	}
	deploy["queue_without_worker"] = true
	var dep struct {
		ExecutionID string `json:"execution_id"`
	}
	b.do(t, http.MethodPost, "/api/v1/executions", tok, deploy).mustStatus(t, http.StatusAccepted).json(t, &dep)
	var ex waitingExecutionJSON
	b.do(t, http.MethodGet, "/api/v1/executions/"+dep.ExecutionID, tok, nil).mustStatus(t, http.StatusOK).json(t, &ex)
	if ex.Status != store.StatusQueued || ex.Waiting != waiting || len(ex.Servers) != 1 || ex.Servers[0].Waiting != waiting {
		t.Errorf("queued execution %+v", ex)
	}
}
