package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPackAndValidate(t *testing.T) {
	t.Parallel()
	good := filepath.Join("..", "..", "manifest", "testdata", "cases", "all-types", "pkg")
	bad := filepath.Join("..", "..", "manifest", "testdata", "cases", "command-missing", "pkg")
	zip := filepath.Join(t.TempDir(), "all-types.zip")

	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"pack", good, "-o", zip}, mapEnv(nil), &stdout, &stderr); code != exitOK {
		t.Fatalf("pack: exit %d: %s", code, stderr.String())
	}
	if fi, err := os.Stat(zip); err != nil || fi.Size() == 0 {
		t.Fatalf("pack wrote nothing: %v", err)
	}
	for _, path := range []string{zip, good} {
		stdout.Reset()
		stderr.Reset()
		if code := run(context.Background(), []string{"validate", path}, mapEnv(nil), &stdout, &stderr); code != exitOK {
			t.Errorf("validate %s: exit %d: %s %s", path, code, stdout.String(), stderr.String())
		}
	}
	stdout.Reset()
	stderr.Reset()
	if code := run(context.Background(), []string{"validate", "-json", bad}, mapEnv(nil), &stdout, &stderr); code != exitError {
		t.Errorf("validate of a broken package: exit %d, want %d", code, exitError)
	}
	if !strings.Contains(stdout.String(), `"rule"`) || !strings.Contains(stderr.String(), "error(s)") {
		t.Errorf("report %q, stderr %q", stdout.String(), stderr.String())
	}
}
