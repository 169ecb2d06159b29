package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/store"
)

func sortedStrings(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

// publishUpload records an upload, begins its publish and publishes it
// as req (filled in with the upload's IDs).
func publishUpload(t *testing.T, s *store.Store, uploadID string, req store.PublishRequest) (store.PublishResult, error) {
	t.Helper()
	ctx := context.Background()
	uploadTestRecord(t, s, uploadID, req.AccountID)
	u, err := s.BeginPublish(ctx, uploadID, req.Options)
	if err != nil {
		t.Fatalf("BeginPublish(%s): %v", uploadID, err)
	}
	req.UploadID, req.TaskID = uploadID, u.TaskID
	if req.BlobKey == "" {
		req.BlobKey = "packages/" + req.ID + "/" + uploadID + ".zip"
	}
	return s.Publish(ctx, req)
}

func pubReq(id, name, version, account string) store.PublishRequest {
	return store.PublishRequest{
		AccountID: account, PublishedBy: "alice",
		ID: id, Name: name, Description: "does things", Version: version,
		Options:  store.PublishOptions{Category: "script", OS: "linux", OSVersions: []string{"debian-12"}, Visibility: store.VisibilityPrivate},
		Manifest: []byte(`{"metadata":{}}`), SHA256: "abc", Size: 3,
	}
}

func conflictRule(err error) string {
	var ce *store.ConflictError
	if errors.As(err, &ce) {
		return ce.Rule
	}
	return ""
}

func TestPublishRules(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)

	res, err := publishUpload(t, s, "up1", pubReq("p1", "Agent", "1.0.0", "acme"))
	if err != nil {
		t.Fatalf("first publish: %v", err)
	}
	if res.Package.AccountID != "acme" || res.Version.Version != "1.0.0" || res.Package.LatestVersion != "1.0.0" || res.Replaced != nil {
		t.Errorf("first publish = %+v", res)
	}
	up, err := s.Upload(ctx, "up1")
	if err != nil || up.Status != store.UploadPublished || up.PackageID != "p1" || up.Version != "1.0.0" {
		t.Errorf("upload after publish = %+v, %v", up, err)
	}

	tests := []struct {
		name    string
		req     store.PublishRequest
		rule    string
		wantErr error
	}{
		{"another account reuses the UUID", pubReq("p1", "Agent", "2.0.0", "other"), "package.uuid.owner", store.ErrConflict},
		{"name taken by another package", pubReq("p2", "aGENT", "1.0.0", "other"), "package.name.taken", store.ErrConflict},
		{"existing version", pubReq("p1", "Agent", "1.0.0", "acme"), "package.version.exists", store.ErrConflict},
	}
	// Every refusal is reported, not only the first.
	if _, err := publishUpload(t, s, "tool", pubReq("p7", "Tool", "1.0.0", "acme")); err != nil {
		t.Fatal(err)
	}
	_, err = publishUpload(t, s, "twice", pubReq("p1", "tool", "1.0.0", "other"))
	var rules []string
	for _, ce := range store.Conflicts(err) {
		rules = append(rules, ce.Rule)
	}
	if diff := cmp.Diff([]string{"package.uuid.owner", "package.name.taken"}, rules); diff != "" {
		t.Errorf("two refusals (-want +got):\n%s", diff)
	}
	for i, tt := range tests {
		_, err := publishUpload(t, s, fmt.Sprintf("bad%d", i), tt.req)
		if !errors.Is(err, tt.wantErr) || conflictRule(err) != tt.rule {
			t.Errorf("%s: %v (rule %q), want rule %s", tt.name, err, conflictRule(err), tt.rule)
		}
	}

	force := pubReq("p1", "Agent Renamed", "1.0.0", "acme")
	force.Options.Force = true
	force.Options.Visibility = store.VisibilityPublic
	res, err = publishUpload(t, s, "force", force)
	if err != nil {
		t.Fatalf("forced publish: %v", err)
	}
	if res.Replaced == nil || res.Replaced.UploadID != "up1" || res.Package.Name != "Agent Renamed" || res.Package.Visibility != store.VisibilityPublic {
		t.Errorf("forced publish = %+v", res)
	}
	// The old name is free again; the new one is taken.
	if _, err := publishUpload(t, s, "oldname", pubReq("p3", "Agent", "", "other")); err != nil {
		t.Errorf("publishing under the freed name: %v", err)
	}
	if _, err := publishUpload(t, s, "newname", pubReq("p4", "agent renamed", "", "other")); conflictRule(err) != "package.name.taken" {
		t.Errorf("publishing under the new name: %v", err)
	}

	// Revisions number versions without <Version>.
	for i, want := range []string{"1", "2"} {
		res, err := publishUpload(t, s, fmt.Sprintf("rev%d", i), pubReq("p5", "Revved", "", "acme"))
		if err != nil || res.Version.Version != want {
			t.Errorf("revision %d = %q, %v; want %s", i, res.Version.Version, err, want)
		}
	}
	// A stale task cannot publish.
	uploadTestRecord(t, s, "stale", "acme")
	req := pubReq("p6", "Stale", "", "acme")
	req.UploadID, req.TaskID, req.BlobKey = "stale", "publish:stale:9", "x"
	if _, err := s.Publish(ctx, req); conflictRule(err) != "upload.status" {
		t.Errorf("publish of a pending upload: %v", err)
	}
}

func TestVendorLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	req := pubReq("v1", "Vendor Pack", "1.0.0", "vendor")
	req.Vendor = true
	if _, err := publishUpload(t, s, "a", req); err != nil {
		t.Fatal(err)
	}
	req.Options.Force = true
	if _, err := publishUpload(t, s, "b", req); !errors.Is(err, store.ErrVendorLocked) {
		t.Errorf("forced overwrite of a vendor version: %v, want ErrVendorLocked", err)
	}
	if _, err := s.DeleteVersion(ctx, "v1", "1.0.0", "root"); !errors.Is(err, store.ErrVendorLocked) {
		t.Errorf("delete by another account: %v, want ErrVendorLocked", err)
	}
	if _, err := s.DeleteVersion(ctx, "v1", "1.0.0", "vendor"); err != nil {
		t.Errorf("delete by the vendor: %v", err)
	}
}

func TestDeleteVersion(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	for i, v := range []string{"1.0.0", "1.10.0", "1.2.0", "1.2.0-rc.1"} {
		if _, err := publishUpload(t, s, fmt.Sprintf("u%d", i), pubReq("p", "Pack", v, "acme")); err != nil {
			t.Fatal(err)
		}
	}
	vs, err := s.Versions(ctx, "p")
	if diff := cmp.Diff([]string{"1.0.0", "1.2.0-rc.1", "1.2.0", "1.10.0"}, vs); err != nil || diff != "" {
		t.Errorf("Versions: %v (-want +got):\n%s", err, diff)
	}
	v, err := s.DeleteVersion(ctx, "p", "1.10.0", "acme")
	if err != nil || v.UploadID != "u1" {
		t.Fatalf("DeleteVersion = %+v, %v", v, err)
	}
	p, err := s.Package(ctx, "p")
	if err != nil || p.LatestVersion != "1.2.0" {
		t.Errorf("after delete: latest %q, %v; want 1.2.0", p.LatestVersion, err)
	}
	if _, err := s.Version(ctx, "p", "1.10.0"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted version: %v", err)
	}
	if _, err := s.DeleteVersion(ctx, "p", "9.9.9", "acme"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("missing version: %v", err)
	}
	for _, v := range []string{"1.0.0", "1.2.0", "1.2.0-rc.1"} {
		if _, err := s.DeleteVersion(ctx, "p", v, "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Package(ctx, "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("package after its last version: %v, want ErrNotFound", err)
	}
	pkgs, _, err := s.Packages(ctx, store.PackageQuery{})
	if err != nil || len(pkgs) != 0 {
		t.Errorf("library after delete = %v, %v", pkgs, err)
	}
	// The name and UUID are free again.
	if _, err := publishUpload(t, s, "again", pubReq("p", "Pack", "1.0.0", "other")); err != nil {
		t.Errorf("republish after delete: %v", err)
	}
}

func TestConcurrentPublishOneWins(t *testing.T) {
	t.Parallel()
	t.Run("miniredis", func(t *testing.T) {
		t.Parallel()
		concurrentPublish(t, uploadTestStore(t))
	})
	t.Run("redis", func(t *testing.T) {
		t.Parallel()
		concurrentPublish(t, store.New(testenv.RealRedis(t).Client, store.Options{}))
	})
}

func concurrentPublish(t *testing.T, s *store.Store) {
	ctx := context.Background()
	const n = 8
	reqs := make([]store.PublishRequest, n)
	for i := range reqs {
		id := fmt.Sprintf("c%d", i)
		uploadTestRecord(t, s, id, "acme")
		u, err := s.BeginPublish(ctx, id, store.PublishOptions{})
		if err != nil {
			t.Fatal(err)
		}
		r := pubReq("race", "Race", "1.0.0", "acme")
		r.UploadID, r.TaskID, r.BlobKey = id, u.TaskID, "packages/race/"+id+".zip"
		reqs[i] = r
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range reqs {
		wg.Go(func() { _, errs[i] = s.Publish(ctx, reqs[i]) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
		case conflictRule(err) != "package.version.exists":
			t.Errorf("publish %d: %v, want a version conflict", i, err)
		}
	}
	if wins != 1 {
		t.Errorf("%d publishes won, want exactly 1", wins)
	}
}

func TestPackagesQuery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	var all []string
	for i := range 12 {
		r := pubReq(fmt.Sprintf("id%02d", i), fmt.Sprintf("Pack %02d", i), "1.0.0", "acme")
		if i%2 == 1 {
			r.Options.OS, r.Options.Category = "windows", "software"
		}
		if i == 5 {
			r.Description = "Installs the MONITORING agent"
		}
		if _, err := publishUpload(t, s, fmt.Sprintf("u%d", i), r); err != nil {
			t.Fatal(err)
		}
		all = append(all, r.ID)
	}
	names := func(q store.PackageQuery) []string {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			if pages > 20 {
				t.Fatal("pagination does not end")
			}
			ps, next, err := s.Packages(ctx, q)
			if err != nil {
				t.Fatalf("Packages: %v", err)
			}
			for _, p := range ps {
				ids = append(ids, p.ID)
			}
			if next == "" {
				return ids
			}
			q.Cursor = next
		}
	}
	if diff := cmp.Diff(all, names(store.PackageQuery{Limit: 5})); diff != "" {
		t.Errorf("all, paged (-want +got):\n%s", diff)
	}
	if got := names(store.PackageQuery{OS: "windows", Category: "software"}); len(got) != 6 || got[0] != "id01" {
		t.Errorf("windows software = %v", got)
	}
	if diff := cmp.Diff([]string{"id05"}, names(store.PackageQuery{Q: "monitoring"})); diff != "" {
		t.Errorf("q=monitoring (-want +got):\n%s", diff)
	}
	even := func(p store.Package) bool { return p.OS == "linux" }
	if got := names(store.PackageQuery{Visible: even, Limit: 2}); len(got) != 6 {
		t.Errorf("visible = %v, want 6", got)
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	in := []string{"zeta", "1.0.0", "10", "2", "1.0.0-alpha", "v2.0.0", "1", "0.9.0"}
	want := []string{"1", "2", "10", "0.9.0", "1.0.0-alpha", "1.0.0", "v2.0.0", "zeta"}
	got := slices.Clone(in)
	slices.SortFunc(got, store.CompareVersions)
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("order (-want +got):\n%s", diff)
	}
}
