package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func uploadTestStore(t *testing.T) *store.Store {
	t.Helper()
	_, rdb := testenv.Miniredis(t)
	return store.New(rdb, store.Options{})
}

func uploadTestRecord(t *testing.T, s *store.Store, id, account string) store.Upload {
	t.Helper()
	u, err := s.CreateUpload(context.Background(), store.Upload{
		ID: id, AccountID: account, BlobKey: "uploads/" + id + ".zip",
		SHA256: "abc", Size: 3, Filename: id + ".zip", CreatedBy: "alice",
	})
	if err != nil {
		t.Fatalf("CreateUpload(%s): %v", id, err)
	}
	return u
}

func TestUploadLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	u := uploadTestRecord(t, s, "u1", "acct")
	if u.Status != store.UploadPending || u.CreatedAt.IsZero() {
		t.Fatalf("new upload = %+v, want pending with a time", u)
	}
	if _, err := s.CreateUpload(ctx, store.Upload{ID: "u1", AccountID: "acct", BlobKey: "x"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateUpload with a used ID: %v, want ErrConflict", err)
	}

	opts := store.PublishOptions{Category: "script", OS: "linux", Visibility: "private"}
	u, err := s.BeginPublish(ctx, "u1", opts)
	if err != nil {
		t.Fatalf("BeginPublish: %v", err)
	}
	if u.Status != store.UploadPublishing || u.TaskID != store.PublishTaskID("u1", 1) || u.Publish == nil || u.Publish.OS != "linux" {
		t.Errorf("after BeginPublish: %+v", u)
	}
	if _, err := s.BeginPublish(ctx, "u1", opts); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second BeginPublish while publishing: %v, want ErrConflict", err)
	}
	if _, err := s.DeleteUpload(ctx, "u1"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("DeleteUpload while publishing: %v, want ErrConflict", err)
	}
	if err := s.AbortPublish(ctx, "u1", "stale"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("AbortPublish with a stale task: %v, want ErrConflict", err)
	}
	if err := s.AbortPublish(ctx, "u1", u.TaskID); err != nil {
		t.Fatalf("AbortPublish: %v", err)
	}
	u, err = s.BeginPublish(ctx, "u1", opts)
	if err != nil || u.TaskID != store.PublishTaskID("u1", 2) {
		t.Fatalf("BeginPublish after abort = %+v, %v; want the second task id", u, err)
	}
	problems := []store.Problem{{Path: "/Manifest/Metadata/UUID", Line: 3, Rule: "metadata.uuid.format", Message: "bad"}}
	if _, err := s.RejectUpload(ctx, "u1", "publish:u1:1", problems, nil); !errors.Is(err, store.ErrConflict) {
		t.Errorf("RejectUpload from a stale task: %v, want ErrConflict", err)
	}
	u, err = s.RejectUpload(ctx, "u1", u.TaskID, problems, nil)
	if err != nil {
		t.Fatalf("RejectUpload: %v", err)
	}
	got, err := s.Upload(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(u, got); diff != "" {
		t.Errorf("Upload differs from the RejectUpload answer (-want +got):\n%s", diff)
	}
	if got.Status != store.UploadRejected || len(got.Errors) != 1 || got.Warnings == nil {
		t.Errorf("rejected upload = %+v", got)
	}
	if _, err := s.DeleteUpload(ctx, "u1"); err != nil {
		t.Fatalf("DeleteUpload: %v", err)
	}
	if _, err := s.Upload(ctx, "u1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Upload after delete: %v, want ErrNotFound", err)
	}
	if _, err := s.BeginPublish(ctx, "nope", opts); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("BeginPublish of a missing upload: %v, want ErrNotFound", err)
	}
}

func TestUploadsPagesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	var want []string
	for i := range 7 {
		acct := "a"
		if i%3 == 2 {
			acct = "b"
		}
		id := fmt.Sprintf("u%d", i)
		uploadTestRecord(t, s, id, acct)
		if acct == "a" {
			want = append([]string{id}, want...)
		}
	}
	if _, err := s.BeginPublish(ctx, "u0", store.PublishOptions{}); err != nil {
		t.Fatal(err)
	}

	var got []string
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
		ups, next, err := s.Uploads(ctx, store.UploadQuery{Accounts: []string{"a"}, Limit: 2, Cursor: cursor})
		if err != nil {
			t.Fatalf("Uploads: %v", err)
		}
		for _, u := range ups {
			got = append(got, u.ID)
		}
		if next == "" {
			break
		}
		cursor = next
	}
	// Same-millisecond uploads order by ID descending; compare as sets
	// plus the count, which catches both duplicates and losses.
	if diff := cmp.Diff(sortedStrings(want), sortedStrings(got)); diff != "" || len(got) != len(want) {
		t.Errorf("paged uploads of account a (-want +got):\n%s", diff)
	}

	ups, _, err := s.Uploads(ctx, store.UploadQuery{Statuses: []store.UploadStatus{store.UploadPublishing}})
	if err != nil || len(ups) != 1 || ups[0].ID != "u0" {
		t.Errorf("Uploads(publishing) = %v, %v; want u0", ups, err)
	}
	if _, _, err := s.Uploads(ctx, store.UploadQuery{Cursor: "!!"}); !errors.Is(err, store.ErrBadCursor) {
		t.Errorf("bad cursor: %v", err)
	}
}

func TestCheckPublishOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   store.PublishOptions
		want []string // paths
	}{
		{"valid", store.PublishOptions{Category: "script", OS: "linux", Visibility: "shared", OSVersions: []string{"debian-12", "ubuntu-24.04"}}, nil},
		{"empty", store.PublishOptions{}, []string{"category", "os", "visibility"}},
		{"every problem", store.PublishOptions{Category: "app", OS: "mac", Visibility: "everyone", OSVersions: []string{"", "a", "A", "x\ty"}},
			[]string{"category", "os", "visibility", "os_versions[0]", "os_versions[2]", "os_versions[3]"}},
	}
	for _, tt := range tests {
		var got []string
		for _, p := range store.CheckPublishOptions(tt.in) {
			got = append(got, p.Path)
			if p.Rule == "" || p.Message == "" {
				t.Errorf("%s: problem without rule or message: %+v", tt.name, p)
			}
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("%s: paths (-want +got):\n%s", tt.name, diff)
		}
	}
}
