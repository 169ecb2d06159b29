package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packflow/packflow/manifest"
)

// TestActivateCommand publishes a package through packflow dev, activates
// it with the client command and reads where it is installed: on dev's
// own worker node, in the cache under the data dir.
func TestActivateCommand(t *testing.T) {
	t.Parallel()
	dataDir := t.TempDir()
	url, _, admin, stop := startDev(t, map[string]string{"PACKFLOW_DATA_DIR": dataDir, "PACKFLOW_LOG_LEVEL": "warn"}, "-listen", "127.0.0.1:0")
	defer func() {
		if code := stop(); code != exitOK {
			t.Errorf("dev: exit status %d", code)
		}
	}()
	pf := func(args ...string) (int, string, string) {
		t.Helper()
		var stdout, stderr bytes.Buffer
		env := map[string]string{"PACKFLOW_API_URL": url, "PACKFLOW_TOKEN": admin, "PACKFLOW_DATA_DIR": t.TempDir()}
		code := run(context.Background(), append(args, "-o", "json"), mapEnv(env), &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	zip := filepath.Join(t.TempDir(), "pkg.zip")
	if err := manifest.PackFile(context.Background(), filepath.Join("..", "..", "manifest", "testdata", "cases", "all-types", "pkg"), zip); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := pf("upload", zip)
	var up struct{ ID string }
	if code != exitOK || json.Unmarshal([]byte(out), &up) != nil {
		t.Fatalf("upload: %d %s %s", code, out, errOut)
	}
	code, out, errOut = pf("publish", up.ID, "-os", "linux", "-wait")
	var pub struct {
		Result struct {
			PackageID string `json:"package_id"`
			Version   string `json:"version"`
		} `json:"result"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &pub) != nil || pub.Result.PackageID == "" {
		t.Fatalf("publish: %d %s %s", code, out, errOut)
	}
	pkg, version := pub.Result.PackageID, pub.Result.Version

	code, out, errOut = pf("activate", pkg, version, "-wait")
	if code != exitOK || !strings.Contains(out, `"active on 1 of 1 nodes"`) {
		t.Fatalf("activate -wait: %d %s %s", code, out, errOut)
	}
	code, out, _ = pf("installs", pkg)
	var in struct {
		Items []struct{ Node, State string } `json:"items"`
	}
	if code != exitOK || json.Unmarshal([]byte(out), &in) != nil || len(in.Items) != 1 || in.Items[0].State != "installed" {
		t.Errorf("installs: %d %s", code, out)
	}
	if _, err := os.Stat(filepath.Join(dataDir, "cache", pkg, version, "package.manifest")); err != nil {
		t.Errorf("dev's worker has no installed tree: %v", err)
	}
	if code, _, errOut = pf("activate", pkg); code != exitUsage || !strings.Contains(errOut, "VERSION") {
		t.Errorf("activate without a version: exit %d, %q", code, errOut)
	}
}
