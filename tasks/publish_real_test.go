package tasks_test

import (
	"context"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/pkgtest"
	"github.com/packflow/packflow/store"
)

// TestPublishRealManifests publishes every case of the corpus of real
// manifests through the publish task: what the original platform
// published is published, what it rejected is rejected; a file of another
// format is rejected with the one error that says so.
func TestPublishRealManifests(t *testing.T) {
	t.Parallel()
	cases := pkgtest.RealManifests(t)
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			b := setupPublish(t)
			opts := store.PublishOptions{Category: "script", OS: c.OS, Visibility: store.VisibilityPrivate}
			u, task := b.upload(t, b.acme, c.Zip(t), opts)
			_ = b.handler.ProcessTask(context.Background(), task) // the upload's state tells the outcome
			got, err := b.store.Upload(context.Background(), u.ID)
			if err != nil {
				t.Fatal(err)
			}
			var rules []string
			for _, p := range got.Errors {
				rules = append(rules, p.Rule)
			}
			switch {
			case c.Published && got.Status != store.UploadPublished:
				t.Errorf("upload %s with errors %+v; the original platform published it (%s)", got.Status, got.Errors, c.Why)
			case !c.Published && got.Status != store.UploadRejected:
				t.Errorf("upload %s; the original platform rejected it (%s)", got.Status, c.Why)
			case strings.HasPrefix(c.Name, "neg-") && (len(rules) != 1 || rules[0] != "manifest.format"):
				t.Errorf("errors %+v, want only manifest.format", got.Errors)
			}
			if c.Name == "chimera-swarm" {
				n := 0
				for _, w := range got.Warnings {
					if w.Rule == "parameter.platform.unknown" {
						n++
					}
				}
				if n != 2 {
					t.Errorf("warnings %+v, want one naming each of the two T3.BuildServerTask variables", got.Warnings)
				}
			}
		})
	}
}
