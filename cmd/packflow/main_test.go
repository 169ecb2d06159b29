package main

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

// mapEnv is a getenv over m.
func mapEnv(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// tWriter sends what is written to t.Log, line by line, until the test
// ends.
type tWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func newTWriter(t testing.TB) *tWriter {
	w := &tWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return w
}

func (w *tWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

var devBanner = regexp.MustCompile(`^packflow dev: API at (http://\S+), admin token in (\S+): (\S+)$`)

// startDev runs packflow dev in-process and returns the API URL, the
// printed token and a stop function that cancels it and returns its exit
// status.
func startDev(t *testing.T, env map[string]string, args ...string) (url, tokenPath, token string, stop func() int) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		done <- run(ctx, append([]string{"dev"}, args...), mapEnv(env), pw, newTWriter(t))
		_ = pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	if !sc.Scan() {
		cancel()
		t.Fatalf("packflow dev exited with status %d before it was ready", <-done)
	}
	m := devBanner.FindStringSubmatch(sc.Text())
	if m == nil {
		cancel()
		t.Fatalf("unexpected first line %q", sc.Text())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	return m[1], m[2], m[3], func() int {
		cancel()
		return <-done
	}
}

func get(t *testing.T, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, body
}

func TestDevEmbedded(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	dir := filepath.Join(t.TempDir(), "data")
	env := map[string]string{"PACKFLOW_DATA_DIR": dir, "PACKFLOW_LOG_LEVEL": "warn"}
	url, tokenPath, token, stop := startDev(t, env, "-listen", "127.0.0.1:0", "-node-id", "dev-test")

	if code, _ := get(t, url+"/healthz", ""); code != http.StatusOK {
		t.Errorf("/healthz: %d", code)
	}
	if code, body := get(t, url+"/readyz", ""); code != http.StatusOK {
		t.Errorf("/readyz: %d %s", code, body)
	}
	if code, _ := get(t, url+"/api/v1/accounts", ""); code != http.StatusUnauthorized {
		t.Errorf("/api/v1/accounts without a token: %d", code)
	}
	code, body := get(t, url+"/api/v1/accounts", token)
	var accounts struct {
		Items []struct{ ID string } `json:"items"`
	}
	if err := json.Unmarshal(body, &accounts); code != http.StatusOK || err != nil || len(accounts.Items) != 1 || accounts.Items[0].ID != "root" {
		t.Errorf("/api/v1/accounts: %d %s", code, body)
	}
	code, body = get(t, url+"/api/v1/nodes", token)
	if code != http.StatusOK || !strings.Contains(string(body), `"id":"dev-test"`) {
		t.Errorf("/api/v1/nodes: %d %s", code, body)
	}

	if want := filepath.Join(dir, adminTokenFile); tokenPath != want {
		t.Errorf("token path %s, want %s", tokenPath, want)
	}
	data, err := os.ReadFile(tokenPath)
	if err != nil || strings.TrimSpace(string(data)) != token {
		t.Errorf("token file holds %q (%v), printed %q", data, err, token)
	}
	for _, f := range []string{adminTokenFile, secretKeyFile, redisPasswordFile} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit status %d after cancel", code)
	}

	// A restart reuses the token.
	_, _, again, stop := startDev(t, env, "-listen", "127.0.0.1:0")
	if again != token {
		t.Errorf("restart printed token %q, want the kept %q", again, token)
	}
	if code := stop(); code != exitOK {
		t.Fatalf("exit status %d after cancel", code)
	}
}
