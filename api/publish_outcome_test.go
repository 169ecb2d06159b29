package api

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for n, body := range files {
		h := &zip.FileHeader{Name: n, Method: zip.Deflate}
		h.SetMode(0o755)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(body))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// Publishing an existing version is refused at the request (409), and a
// package that breaks a rule ends its task completed with outcome
// rejected, its problems on the upload.
func TestPublishConflictAndRejectedOutcome(t *testing.T) {
	b := execSetup(t, nil)
	tok := testAdminToken
	const m = `<Manifest><Metadata><UUID>6a1e0c9e-0000-4000-8000-0000000000e1</UUID><Name>Again</Name><Description>d</Description><Version>1.0.0</Version></Metadata>
<Execution><Mode>Ssh</Mode><Command>./a.sh</Command></Execution></Manifest>`
	files := map[string]string{"package.manifest": m, "a.sh": "#!/bin/sh\ntrue\n"}
	publishZip(t, b, files)
	opts := map[string]any{"category": "script", "os": "linux", "os_versions": []string{"debian-12"}, "visibility": "private"}

	again := b.uploadZip(t, tok, zipOf(t, files))
	p := b.do(t, http.MethodPost, "/api/v1/uploads/"+again.ID+"/publish", tok, opts).mustStatus(t, http.StatusConflict).problem(t)
	if len(p.Errors) != 1 || p.Errors[0].Rule != "package.version.exists" {
		t.Errorf("409 problems %+v", p)
	}
	var up uploadJSON
	b.do(t, http.MethodGet, "/api/v1/uploads/"+again.ID, tok, nil).mustStatus(t, http.StatusOK).json(t, &up)
	if up.Status != store.UploadPending {
		t.Errorf("refused upload is %s, want pending", up.Status)
	}

	bad := b.uploadZip(t, tok, zipOf(t, map[string]string{"package.manifest": `<Manifest><Metadata><UUID>6a1e0c9e-0000-4000-8000-0000000000e2</UUID><Name>Bad</Name></Metadata>
<Execution><Mode>Ssh</Mode><Command>./missing.sh</Command></Execution></Manifest>`}))
	var acc map[string]string
	b.do(t, http.MethodPost, "/api/v1/uploads/"+bad.ID+"/publish", tok, opts).mustStatus(t, http.StatusAccepted).json(t, &acc)
	var task taskJSON
	deadline := time.Now().Add(60 * time.Second)
	for {
		b.do(t, http.MethodGet, "/api/v1/tasks/"+acc["task_id"], tok, nil).mustStatus(t, http.StatusOK).json(t, &task)
		if task.State == "completed" || task.State == "archived" || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var res tasks.PublishResult
	if err := json.Unmarshal(task.Result, &res); err != nil || task.State != "completed" || res.Outcome != tasks.OutcomeRejected ||
		res.UploadID != bad.ID || res.Problems == 0 || res.Upload != "/api/v1/uploads/"+bad.ID {
		t.Fatalf("rejected publish task %+v, result %+v (%v)", task, res, err)
	}
	b.do(t, http.MethodGet, res.Upload, tok, nil).mustStatus(t, http.StatusOK).json(t, &up)
	if up.Status != store.UploadRejected || len(up.Errors) != res.Problems {
		t.Errorf("rejected upload %+v", up)
	}
}
