package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/packflow/packflow/manifest"
)

// call sends a request with a bearer token and decodes a JSON answer
// into out (when non-nil), returning the status.
func call(t *testing.T, method, url, token, contentType string, body []byte, out any) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = res.Body.Close() }()
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, url, err)
		}
	}
	return res.StatusCode
}

// TestDevPublishes runs the publish flow through packflow dev: the API
// stores the upload and enqueues, the worker in the same process runs the
// task, and the task's state is read back through the API.
func TestDevPublishes(t *testing.T) {
	t.Parallel()
	zip := filepath.Join(t.TempDir(), "pkg.zip")
	if err := manifest.PackFile(context.Background(), filepath.Join("..", "..", "manifest", "testdata", "cases", "all-types", "pkg"), zip); err != nil {
		t.Fatal(err)
	}
	archive, err := os.ReadFile(zip)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PACKFLOW_DATA_DIR": t.TempDir(), "PACKFLOW_LOG_LEVEL": "warn", "PACKFLOW_TASK_CHECK_INTERVAL": "20ms"}
	url, _, token, stop := startDev(t, env, "-listen", "127.0.0.1:0")
	defer func() {
		if code := stop(); code != exitOK {
			t.Errorf("exit status %d", code)
		}
	}()

	var upload struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if code := call(t, http.MethodPost, url+"/api/v1/uploads", token, "application/zip", archive, &upload); code != http.StatusCreated || upload.Status != "pending" {
		t.Fatalf("upload: %d %+v", code, upload)
	}
	body, _ := json.Marshal(map[string]any{"category": "script", "os": "linux", "os_versions": []string{"debian-12"}, "visibility": "private"})
	var accepted struct {
		TaskID string `json:"task_id"`
	}
	if code := call(t, http.MethodPost, url+"/api/v1/uploads/"+upload.ID+"/publish", token, "application/json", body, &accepted); code != http.StatusAccepted || accepted.TaskID == "" {
		t.Fatalf("publish: %d %+v", code, accepted)
	}
	var task struct {
		State     string          `json:"state"`
		LastError string          `json:"last_error"`
		Result    json.RawMessage `json:"result"`
	}
	for range 1000 { // waits for the worker; asserts nothing about time
		if code := call(t, http.MethodGet, url+"/api/v1/tasks/"+accepted.TaskID, token, "", nil, &task); code != http.StatusOK {
			t.Fatalf("task: %d", code)
		}
		if task.State == "completed" || task.State == "archived" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if task.State != "completed" {
		t.Fatalf("publish task %s: %s", task.State, task.LastError)
	}
	if code := call(t, http.MethodGet, url+"/api/v1/uploads/"+upload.ID, token, "", nil, &upload); code != http.StatusOK || upload.Status != "published" {
		t.Errorf("upload after publish: %d %+v", code, upload)
	}
}
