package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packflow/packflow/manifest"
)

// TestClientCommands drives packflow dev with the client commands, as a
// person would: create an account and a publisher token for it, upload
// and publish a package with that token, and look at the result.
func TestClientCommands(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	url, _, admin, stop := startDev(t, map[string]string{"PACKFLOW_DATA_DIR": dataDir, "PACKFLOW_LOG_LEVEL": "warn"}, "-listen", "127.0.0.1:0")
	defer func() {
		if code := stop(); code != exitOK {
			t.Errorf("dev: exit status %d", code)
		}
	}()
	// pf runs a client command as token and returns its exit status and
	// output.
	pf := func(token string, args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		env := map[string]string{"PACKFLOW_API_URL": url, "PACKFLOW_TOKEN": token, "PACKFLOW_DATA_DIR": t.TempDir()}
		code := run(context.Background(), append(args, "-o", "json"), mapEnv(env), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	decode := func(out string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(out), v); err != nil {
			t.Fatalf("decode %q: %v", out, err)
		}
	}

	code, out, errOut := pf(admin, "accounts", "create", "acme")
	var acct struct{ ID, Name string }
	if code != exitOK {
		t.Fatalf("accounts create: %d %s", code, errOut)
	}
	decode(out, &acct)

	code, out, errOut = pf(admin, "tokens", "create", "-account", "acme", "-user", "ci", "-role", "publisher")
	var tok struct{ ID, Token string }
	if code != exitOK {
		t.Fatalf("tokens create: %d %s", code, errOut)
	}
	decode(out, &tok)

	zip := filepath.Join(t.TempDir(), "pkg.zip")
	if err := manifest.PackFile(context.Background(), filepath.Join("..", "..", "manifest", "testdata", "cases", "all-types", "pkg"), zip); err != nil {
		t.Fatal(err)
	}
	code, out, errOut = pf(tok.Token, "upload", zip)
	var up struct{ ID, Status string }
	if code != exitOK {
		t.Fatalf("upload: %d %s", code, errOut)
	}
	decode(out, &up)

	code, out, errOut = pf(tok.Token, "publish", up.ID, "-os", "linux", "-os-versions", "debian-12", "-wait")
	var st struct{ State string }
	if code != exitOK {
		t.Fatalf("publish -wait: %d %s %s", code, out, errOut)
	}
	decode(out, &st)
	if st.State != "completed" {
		t.Errorf("publish ended %s", st.State)
	}

	code, out, _ = pf(tok.Token, "accounts")
	var accounts []struct{ ID string }
	decode(out, &accounts)
	if code != exitOK || len(accounts) != 1 || accounts[0].ID != acct.ID {
		t.Errorf("the acme token lists %s", out)
	}
	code, out, _ = pf(tok.Token, "nodes")
	var nodes []any
	decode(out, &nodes)
	if code != exitOK || len(nodes) != 1 {
		t.Errorf("nodes: %s", out)
	}

	// A refusal prints the problem with every field error; exit 1.
	code, _, errOut = pf(admin, "tokens", "create", "-user", "", "-role", "king")
	if code != exitError || !strings.Contains(errOut, "422") || !strings.Contains(errOut, "user:") || !strings.Contains(errOut, "role:") {
		t.Errorf("bad token request: exit %d, %q", code, errOut)
	}
	// Revoked tokens stop working.
	if code, _, errOut = pf(admin, "tokens", "revoke", tok.ID); code != exitOK {
		t.Fatalf("revoke: %d %s", code, errOut)
	}
	if code, _, errOut = pf(tok.Token, "nodes"); code != exitError || !strings.Contains(errOut, "401") {
		t.Errorf("revoked token: exit %d, %q", code, errOut)
	}

	// Next to packflow dev, the kept admin token is the default.
	var stdout, stderr bytes.Buffer
	env := map[string]string{"PACKFLOW_API_URL": url, "PACKFLOW_DATA_DIR": dataDir}
	if code := run(context.Background(), []string{"nodes"}, mapEnv(env), &stdout, &stderr); code != exitOK {
		t.Errorf("nodes with the dev token: exit %d, %s", code, stderr.String())
	}
	stderr.Reset()
	env["PACKFLOW_DATA_DIR"] = t.TempDir()
	if code := run(context.Background(), []string{"nodes"}, mapEnv(env), &stdout, &stderr); code != exitUsage || !strings.Contains(stderr.String(), "PACKFLOW_TOKEN") {
		t.Errorf("no token: exit %d, %q", code, stderr.String())
	}
}
