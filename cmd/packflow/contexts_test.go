package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestClientFindsDevWithoutSetUp starts packflow dev on a random port and
// runs a client command with neither PACKFLOW_API_URL nor PACKFLOW_TOKEN,
// from another folder: dev's "dev" context leads it there. Then login
// adds a context (0600), context use switches, and a bad token is refused
// without being kept.
func TestClientFindsDevWithoutSetUp(t *testing.T) {
	t.Parallel()
	cfgHome := t.TempDir()
	url, _, admin, stop := startDev(t, map[string]string{"PACKFLOW_DATA_DIR": t.TempDir(), "PACKFLOW_LOG_LEVEL": "warn",
		"XDG_CONFIG_HOME": cfgHome}, "-listen", "127.0.0.1:0")
	defer stop()
	client := map[string]string{"XDG_CONFIG_HOME": cfgHome, "PACKFLOW_DATA_DIR": t.TempDir()}
	pf := cliRun{t: t, env: client}
	if out := pf.ok("nodes"); !strings.HasPrefix(out, "ID ") {
		t.Errorf("nodes through the dev context:\n%s", out)
	}
	path := filepath.Join(cfgHome, "packflow", contextsFile)
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
	}

	// A bad token is refused and not kept.
	if code, _, errOut := pf.run("login", url, "-token", "pf_nope_nope_nope_nope", "-name", "bad"); code != exitError || !strings.Contains(errOut, "401") {
		t.Errorf("login with a bad token: exit %d %s", code, errOut)
	}
	// login reads the token from standard input when not given.
	var stdout, stderr bytes.Buffer
	code := runIO(context.Background(), []string{"login", url, "-name", "prod"}, mapEnv(client), strings.NewReader(admin+"\n"), &stdout, &stderr)
	if code != exitOK {
		t.Fatalf("login: exit %d %s", code, stderr.String())
	}
	if out := pf.ok("context", "current"); out != "prod\n" {
		t.Errorf("current context %q, want prod", out)
	}
	out := pf.ok("context")
	if !strings.Contains(out, "*        prod") && !strings.Contains(out, "* ") || !strings.Contains(out, "dev") || strings.Contains(out, admin) || strings.Contains(out, "bad") {
		t.Errorf("context list:\n%s", out)
	}
	pf.ok("context", "use", "dev")
	if out := pf.ok("context", "current"); out != "dev\n" {
		t.Errorf("current context %q, want dev", out)
	}
	if code, _, _ := pf.run("context", "use", "nope"); code != exitUsage {
		t.Errorf("context use nope: exit %d", code)
	}
	// -context names one; an unknown one is a usage error.
	pf.ok("nodes", "-context", "prod")
	if code, _, errOut := pf.run("nodes", "-context", "nope"); code != exitUsage || !strings.Contains(errOut, "no such context") {
		t.Errorf("nodes -context nope: exit %d %s", code, errOut)
	}
}

// TestClientAPIURLOrder checks where a client command goes: the flag, then
// PACKFLOW_API_URL, then PACKFLOW_LISTEN (dev's variable; an unspecified
// host dials loopback), then the current context, then the default; and
// the token of the context with that URL.
func TestClientAPIURLOrder(t *testing.T) {
	t.Parallel()
	cfgHome := t.TempDir()
	path := filepath.Join(cfgHome, "packflow", contextsFile)
	if err := saveContexts(path, clientConfig{Current: "prod", Contexts: map[string]clientContext{
		"prod": {APIURL: "https://prod.example:443", Token: "tok-prod"},
		"dev":  {APIURL: "http://127.0.0.1:9999", Token: "tok-dev"},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		url, tok string
	}{
		{"current context", nil, nil, "https://prod.example:443", "tok-prod"},
		{"listen", map[string]string{"PACKFLOW_LISTEN": "0.0.0.0:9999"}, nil, "http://127.0.0.1:9999", "tok-dev"},
		{"listen v6", map[string]string{"PACKFLOW_LISTEN": "[::]:7000"}, nil, "http://127.0.0.1:7000", ""},
		{"env url", map[string]string{"PACKFLOW_API_URL": "http://127.0.0.1:9999", "PACKFLOW_LISTEN": ":1"}, nil, "http://127.0.0.1:9999", "tok-dev"},
		{"flag", map[string]string{"PACKFLOW_API_URL": "http://a:1", "PACKFLOW_TOKEN": "t"}, []string{"-api-url", "http://b:2"}, "http://b:2", "t"},
		{"context flag", map[string]string{"PACKFLOW_LISTEN": ":1"}, []string{"-context", "dev"}, "http://127.0.0.1:9999", "tok-dev"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"XDG_CONFIG_HOME": cfgHome, "PACKFLOW_DATA_DIR": t.TempDir()}
			for k, v := range tc.env {
				env[k] = v
			}
			f := newFlagSet("nodes", "", clientSettings(), nil, mapEnv(env), io.Discard)
			if err := f.parse(tc.args); err != nil {
				t.Fatal(err)
			}
			c, err := newClient(f)
			if tc.tok == "" {
				if err == nil || !strings.Contains(err.Error(), "no token") {
					t.Errorf("want a no-token error, got %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.base.String() != tc.url || c.token != tc.tok {
				t.Errorf("got %s with %q, want %s with %q", c.base, c.token, tc.url, tc.tok)
			}
		})
	}
}
