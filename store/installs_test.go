package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/packflow/packflow/store"
)

const (
	pkgA = "aaaaaaaa-0000-4000-8000-000000000001"
	pkgB = "bbbbbbbb-0000-4000-8000-000000000002"
)

func activation(id, pkg, version string, at time.Time, deps ...store.ClosureVersion) store.Activation {
	closure := append(deps, store.ClosureVersion{UUID: pkg, Version: version, SHA256: "abc", Size: 3})
	return store.Activation{PackageID: pkg, Version: version, Closure: closure, ID: id, RequestedAt: at}
}

func TestActivateAndRecordInstalls(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := uploadTestStore(t)
	for i, v := range []string{"1.0.0", "2.0.0"} {
		if _, err := publishUpload(t, s, "up-a"+v, pubReq(pkgA, "alpha", v, "acme")); err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
	}
	if _, err := publishUpload(t, s, "up-b", pubReq(pkgB, "beta", "1.0.0", "acme")); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now().UTC()
	dep := store.ClosureVersion{UUID: pkgB, Version: "1.0.0", SHA256: "abc", Size: 3}
	a1, err := s.Activate(ctx, activation("act-1", pkgA, "1.0.0", t0, dep), []string{"n1", "n2"})
	if err != nil {
		t.Fatalf("Activate: %v", err)
	}
	if p, _ := s.Package(ctx, pkgA); p.ActiveVersion != "1.0.0" {
		t.Errorf("active version %q, want 1.0.0", p.ActiveVersion)
	}
	ins, err := s.NodeInstalls(ctx, pkgA)
	if err != nil || len(ins) != 2 || ins["n1"].State != store.InstallPending || ins["n2"].Activation != "act-1" {
		t.Fatalf("installs after activation: %+v, %v", ins, err)
	}

	// The same activation again is a no-op; an older request is refused.
	again, err := s.Activate(ctx, activation("act-1", pkgA, "1.0.0", t0, dep), nil)
	if err != nil || !again.ActivatedAt.Equal(a1.ActivatedAt) {
		t.Errorf("repeated Activate: %+v, %v", again, err)
	}
	if _, err := s.Activate(ctx, activation("act-0", pkgA, "2.0.0", t0.Add(-time.Second)), nil); !errors.Is(err, store.ErrSuperseded) {
		t.Errorf("older activation: %v, want ErrSuperseded", err)
	}
	if _, err := s.Activate(ctx, activation("act-x", pkgA, "9.9.9", t0.Add(time.Second)), nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unpublished version: %v, want ErrNotFound", err)
	}

	// The dependency cannot be deleted while the active closure holds it.
	if _, err := s.DeleteVersion(ctx, pkgB, "1.0.0", "acme"); conflictRule(err) != "package.version.required" {
		t.Errorf("delete a dependency of an active version: %v", err)
	}

	if err := s.RecordNodeInstall(ctx, store.NodeInstall{Node: "n1", PackageID: pkgA, Version: "1.0.0",
		State: store.InstallInstalled, Attempts: 1, Activation: "act-1"}); err != nil {
		t.Fatalf("RecordNodeInstall: %v", err)
	}
	// A newer activation makes the old one's reports obsolete.
	if _, err := s.Activate(ctx, activation("act-2", pkgA, "2.0.0", t0.Add(time.Second)), []string{"n1"}); err != nil {
		t.Fatal(err)
	}
	err = s.RecordNodeInstall(ctx, store.NodeInstall{Node: "n2", PackageID: pkgA, Version: "1.0.0", State: store.InstallInstalled, Activation: "act-1"})
	if !errors.Is(err, store.ErrSuperseded) {
		t.Errorf("report of a superseded activation: %v", err)
	}
	ins, _ = s.NodeInstalls(ctx, pkgA)
	if len(ins) != 1 || ins["n1"].Version != "2.0.0" || ins["n1"].State != store.InstallPending {
		t.Errorf("installs after re-activation: %+v", ins)
	}
	all, err := s.Activations(ctx)
	if err != nil || len(all) != 1 || all[0].Version != "2.0.0" {
		t.Errorf("Activations: %+v, %v", all, err)
	}
	// The new closure no longer holds the dependency.
	if _, err := s.DeleteVersion(ctx, pkgB, "1.0.0", "acme"); err != nil {
		t.Errorf("delete a version nothing active uses: %v", err)
	}
	if _, err := s.Activation(ctx, pkgB); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("activation of a package never activated: %v", err)
	}
}

func TestActivateRefusesABadClosure(t *testing.T) {
	t.Parallel()
	s := uploadTestStore(t)
	a := activation("act", pkgA, "1.0.0", time.Now())
	a.Closure = nil
	if _, err := s.Activate(context.Background(), a, nil); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("closure without the package: %v", err)
	}
}
