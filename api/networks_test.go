package api

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

const netPkg = "1e7b0c55-5a4e-4f3e-8d2c-0a1b2c3d4e5f"

// publishNICPackage records a public package with a Network parameter,
// like the original's "Add secondary NIC".
func publishNICPackage(t *testing.T, b *bundle) {
	t.Helper()
	ctx := context.Background()
	m := manifest.Manifest{
		Metadata: manifest.Metadata{UUID: netPkg, Name: "Add NIC", Version: "1.0.0"},
		Parameters: []manifest.Parameter{
			{Name: "Network", Type: manifest.TypeNetwork, Variable: "network", Required: true, Prompt: manifest.PromptBuild},
		},
		Execution: manifest.Execution{Mode: "Ssh", Command: "install.sh '${network}'"},
	}
	mj, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.CreateUpload(ctx, store.Upload{ID: "up-n", AccountID: store.RootAccountID, BlobKey: "uploads/up-n.zip", SHA256: "abc", Size: 3}); err != nil {
		t.Fatal(err)
	}
	opts := store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPublic}
	u, err := b.store.BeginPublish(ctx, "up-n", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Publish(ctx, store.PublishRequest{UploadID: "up-n", TaskID: u.TaskID, AccountID: store.RootAccountID,
		ID: netPkg, Name: "add-nic", Options: opts, Version: "1.0.0", Manifest: mj, SHA256: "abc", Size: 3, BlobKey: "packages/up-n.zip"}); err != nil {
		t.Fatal(err)
	}
}

func TestNetworksInventory(t *testing.T) {
	t.Parallel()
	b := setupSchedules(t)
	acme := b.createAccount(t, testAdminToken, map[string]any{"name": "acme"})
	acmeEU := b.createAccount(t, testAdminToken, map[string]any{"name": "acme-eu", "parent": acme.ID})
	globex := b.createAccount(t, testAdminToken, map[string]any{"name": "globex"})
	op := b.mintToken(t, acme.ID, "olga", store.RoleOperator).Token
	viewer := b.mintToken(t, acme.ID, "victor", store.RoleViewer).Token
	euOp := b.mintToken(t, acmeEU.ID, "eva", store.RoleOperator).Token
	gOp := b.mintToken(t, globex.ID, "gus", store.RoleOperator).Token

	// Every problem at once.
	p := b.do(t, http.MethodPost, "/api/v1/networks", op, map[string]any{"name": "10.0.0.0/8", "datacenter": "eu west", "cidr": "10.0.1.9/24"}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if got := errorPaths(p); got["name"] != ruleInvalid || got["datacenter"] != ruleInvalid || got["cidr"] != ruleInvalid {
		t.Errorf("problems %+v", p.Errors)
	}
	p = b.do(t, http.MethodPost, "/api/v1/networks", op, map[string]any{}).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if got := errorPaths(p); got["name"] != ruleMissing || got["cidr"] != ruleMissing {
		t.Errorf("problems of an empty body %+v", p.Errors)
	}
	b.do(t, http.MethodPost, "/api/v1/networks", viewer, map[string]any{"name": "x", "cidr": "10.0.0.0/8"}).mustStatus(t, http.StatusForbidden)

	var backend, edge, theirs store.Network
	b.do(t, http.MethodPost, "/api/v1/networks", op, map[string]any{"name": "backend", "datacenter": "eu-west", "cidr": "10.0.1.0/24"}).
		mustStatus(t, http.StatusCreated).json(t, &backend)
	b.do(t, http.MethodPost, "/api/v1/networks", op, map[string]any{"name": "Backend", "datacenter": "eu-west", "cidr": "10.0.2.0/24"}).
		mustStatus(t, http.StatusConflict).problem(t)
	var dflt store.Network
	b.do(t, http.MethodPost, "/api/v1/networks", op, map[string]any{"name": "backend", "cidr": "10.5.0.0/16"}).
		mustStatus(t, http.StatusCreated).json(t, &dflt)
	if dflt.Datacenter != store.DefaultDatacenter {
		t.Errorf("a network without a datacenter is in %q", dflt.Datacenter)
	}
	b.do(t, http.MethodPost, "/api/v1/networks", euOp, map[string]any{"name": "edge", "datacenter": "eu-west", "cidr": "192.0.2.0/24"}).
		mustStatus(t, http.StatusCreated).json(t, &edge)
	b.do(t, http.MethodPost, "/api/v1/networks", gOp, map[string]any{"name": "secret-lan", "datacenter": "eu-west", "cidr": "10.0.1.0/24"}).
		mustStatus(t, http.StatusCreated).json(t, &theirs)

	// Visibility: an account sees its own and its sub-accounts' networks.
	names := func(token, query string) []string {
		var pg page[store.Network]
		b.do(t, http.MethodGet, "/api/v1/networks"+query, token, nil).mustStatus(t, http.StatusOK).json(t, &pg)
		var out []string
		for _, n := range pg.Items {
			out = append(out, n.Name+"@"+n.Datacenter)
		}
		slices.Sort(out)
		return out
	}
	if got := names(viewer, ""); !slices.Equal(got, []string{"backend@default", "backend@eu-west", "edge@eu-west"}) {
		t.Errorf("acme sees %v", got)
	}
	if got := names(euOp, ""); !slices.Equal(got, []string{"edge@eu-west"}) {
		t.Errorf("acme-eu sees %v", got)
	}
	if got := names(viewer, "?datacenter=eu-west&name=backend"); !slices.Equal(got, []string{"backend@eu-west"}) {
		t.Errorf("filtered list %v", got)
	}
	for _, m := range []string{http.MethodGet, http.MethodPatch, http.MethodDelete} {
		var body any
		if m == http.MethodPatch {
			body = map[string]any{"name": "mine"}
		}
		b.do(t, m, "/api/v1/networks/"+backend.ID, gOp, body).mustStatus(t, http.StatusNotFound).problem(t)
	}
	b.do(t, http.MethodGet, "/api/v1/networks/"+edge.ID, viewer, nil).mustStatus(t, http.StatusOK)

	// PATCH keeps absent fields and checks the result.
	var patched store.Network
	b.do(t, http.MethodPatch, "/api/v1/networks/"+dflt.ID, op, map[string]any{"description": "old office"}).
		mustStatus(t, http.StatusOK).json(t, &patched)
	if patched.CIDR != "10.5.0.0/16" || patched.Description != "old office" {
		t.Errorf("patched %+v", patched)
	}
	p = b.do(t, http.MethodPatch, "/api/v1/networks/"+dflt.ID, op, map[string]any{"name": "", "cidr": "x"}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if len(p.Errors) != 2 {
		t.Errorf("patch problems %+v", p.Errors)
	}
	b.do(t, http.MethodDelete, "/api/v1/networks/"+dflt.ID, op, nil).mustStatus(t, http.StatusNoContent)

	// The deploy form offers the names the account sees; a deployment
	// takes a name of the targets' datacenter, or a CIDR block.
	publishNICPackage(t, b)
	b.do(t, http.MethodPost, "/api/v1/credentials", op, map[string]any{"name": "k", "kind": "password", "username": "u", "secret": "pw-123456"}).
		mustStatus(t, http.StatusCreated)
	for _, sv := range []map[string]any{
		{"name": "web-eu", "address": "127.0.0.1", "os": "linux", "transport": "ssh", "credential": "k", "datacenter": "eu-west"},
		{"name": "web-us", "address": "127.0.0.2", "os": "linux", "transport": "ssh", "credential": "k", "datacenter": "us-east"},
	} {
		b.do(t, http.MethodPost, "/api/v1/servers", op, sv).mustStatus(t, http.StatusCreated)
	}
	var bp blueprintJSON
	b.do(t, http.MethodPost, "/api/v1/blueprints", op, map[string]any{"name": "nic", "steps": []map[string]any{{"package": netPkg, "version": "1.0.0"}}}).
		mustStatus(t, http.StatusCreated).json(t, &bp)
	var form struct {
		Fields []tasks.FormField `json:"fields"`
	}
	b.do(t, http.MethodGet, "/api/v1/blueprints/"+bp.ID+"/form", op, nil).mustStatus(t, http.StatusOK).json(t, &form)
	if len(form.Fields) != 1 {
		t.Fatalf("form %+v", form)
	}
	var offered []string
	for _, o := range form.Fields[0].Options {
		offered = append(offered, o.Value)
	}
	if !slices.Equal(offered, []string{"backend", "edge"}) {
		t.Errorf("the form offers %v, want acme's network names", offered)
	}
	// A designer's value is checked against the account's networks too.
	p = b.do(t, http.MethodPost, "/api/v1/blueprints", op, map[string]any{"name": "nic2", "steps": []map[string]any{
		{"package": netPkg, "version": "1.0.0", "parameters": map[string]string{"network": "secret-lan"}}}}).
		mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if errorPaths(p)["steps[0].parameters.network"] != ruleInvalid {
		t.Errorf("another account's network in a blueprint: %+v", p.Errors)
	}

	deploy := func(server, network string) answer {
		return b.do(t, http.MethodPost, "/api/v1/blueprints/"+bp.ID+"/deploy", op, map[string]any{
			"servers": []string{server}, "parameters": map[string]string{"network": network},
			// No worker serves these datacenters in this test.
			"queue_without_worker": true})
	}
	deploy("web-eu", "backend").mustStatus(t, http.StatusAccepted)
	deploy("web-us", "10.1.0.0/16").mustStatus(t, http.StatusAccepted)
	for _, tc := range []struct{ server, network string }{
		{"web-us", "backend"},    // not in us-east
		{"web-eu", "secret-lan"}, // another account's
		{"web-eu", "ghost"},
	} {
		p := deploy(tc.server, tc.network).mustStatus(t, http.StatusUnprocessableEntity).problem(t)
		if errorPaths(p)["parameters.network"] != ruleInvalid {
			t.Errorf("deploy %s onto %s: %+v", tc.network, tc.server, p.Errors)
		}
	}

	// Schedules check, and later fire, with the owner's networks.
	schedule := func(server, network string) answer {
		return b.do(t, http.MethodPost, "/api/v1/schedules", op, map[string]any{"name": "nic " + server + " " + network, "every": "1h",
			"action": map[string]any{"kind": "deploy", "blueprint": bp.ID, "servers": []string{server}, "parameters": map[string]string{"network": network}}})
	}
	schedule("web-eu", "backend").mustStatus(t, http.StatusCreated)
	p = schedule("web-us", "backend").mustStatus(t, http.StatusUnprocessableEntity).problem(t)
	if errorPaths(p)["action.parameters.network"] != ruleInvalid {
		t.Errorf("a schedule onto a datacenter without the network: %+v", p.Errors)
	}
}
