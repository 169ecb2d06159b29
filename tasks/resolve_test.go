package tasks

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// fakeCatalog is a library in memory: versions[uuid] lists "version
// requires..." where each requirement is "uuid:constraint".
type fakeCatalog struct {
	versions map[string][]string
	active   map[string]string
	err      error // returned by Versions when set
	calls    int
}

func (f *fakeCatalog) Versions(_ context.Context, uuid string) ([]CatalogVersion, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	specs, ok := f.versions[uuid]
	if !ok {
		return nil, fmt.Errorf("package %s: %w", uuid, store.ErrNotFound)
	}
	var out []CatalogVersion
	for _, spec := range specs {
		fields := strings.Fields(spec)
		cv := CatalogVersion{Version: fields[0], SHA256: "sha-" + uuid + "-" + fields[0], Size: int64(len(spec))}
		for _, r := range fields[1:] {
			dep, constraint, _ := strings.Cut(r, ":")
			cv.Requires = append(cv.Requires, manifest.Requirement{UUID: dep, Version: constraint})
		}
		out = append(out, cv)
	}
	return out, nil
}

func (f *fakeCatalog) ActiveVersion(_ context.Context, uuid string) (string, error) {
	return f.active[uuid], nil
}

// refs parses "A@1.0.0 B@2" into references.
func refs(s string) []VersionRef {
	var out []VersionRef
	for _, f := range strings.Fields(s) {
		uuid, version, _ := strings.Cut(f, "@")
		out = append(out, VersionRef{UUID: uuid, Version: version})
	}
	return out
}

func TestResolve(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		versions map[string][]string
		active   map[string]string
		root     string
		want     string // the order, or "" when an error is expected
		kind     ResolveErrorKind
		message  string // the error's chain and detail
	}{
		{
			name:     "no dependencies",
			versions: map[string][]string{"A": {"1.0.0"}},
			root:     "A@1.0.0",
			want:     "A@1.0.0",
		},
		{
			name: "chain of three, dependencies first",
			versions: map[string][]string{
				"A": {"1.0.0 B:^2"},
				"B": {"2.0.0 C:~1.1", "2.1.0 C:~1.1"},
				"C": {"1.1.0", "1.1.4", "1.2.0"},
			},
			root: "A@1.0.0",
			want: "C@1.1.4 B@2.1.0 A@1.0.0",
		},
		{
			name: "diamond: the shared dependency once, satisfying both sides",
			versions: map[string][]string{
				"A": {"1.0.0 B:^1 C:^1"},
				"B": {"1.0.0 D:^1.0"},
				"C": {"1.0.0 D:^1.2"},
				"D": {"1.0.0", "1.1.0", "1.2.0", "2.0.0"},
			},
			active: map[string]string{"D": "1.1.0"},
			root:   "A@1.0.0",
			want:   "D@1.2.0 B@1.0.0 C@1.0.0 A@1.0.0",
		},
		{
			name: "active version preferred over a higher one",
			versions: map[string][]string{
				"A": {"1.0.0 B:^1"},
				"B": {"1.0.0", "1.5.0", "2.0.0"},
			},
			active: map[string]string{"B": "1.0.0"},
			root:   "A@1.0.0",
			want:   "B@1.0.0 A@1.0.0",
		},
		{
			name: "active version outside the constraint: highest that fits",
			versions: map[string][]string{
				"A": {"1.0.0 B:^1"},
				"B": {"1.0.0", "1.5.0", "2.0.0"},
			},
			active: map[string]string{"B": "2.0.0"},
			root:   "A@1.0.0",
			want:   "B@1.5.0 A@1.0.0",
		},
		{
			name: "no constraint: active, and no pre-release when none is active",
			versions: map[string][]string{
				"A": {"1.0.0 B C"},
				"B": {"1.0.0", "3.0.0"},
				"C": {"1.0.0", "2.0.0-rc.1"},
			},
			active: map[string]string{"B": "1.0.0"},
			root:   "A@1.0.0",
			want:   "B@1.0.0 C@1.0.0 A@1.0.0",
		},
		{
			name: "revisions ordered numerically and matched as N.0.0",
			versions: map[string][]string{
				"A": {"1 B:>=2,<10 C"},
				"B": {"1", "2", "9", "10"},
				"C": {"2", "10", "9"},
			},
			root: "A@1",
			want: "B@9 C@10 A@1",
		},
		{
			name: "a choice made again lifts a conflict it caused",
			versions: map[string][]string{
				"A": {"1.0.0 B:^1 C:^1"},
				"B": {"1.0.0 D:^1", "1.1.0 D:^2"},
				"C": {"1.0.0 B:1.0.0"},
				"D": {"1.0.0", "2.0.0"},
			},
			root: "A@1.0.0",
			want: "D@1.0.0 B@1.0.0 C@1.0.0 A@1.0.0",
		},
		{
			name:     "root version not published",
			versions: map[string][]string{"A": {"1.0.0"}},
			root:     "A@2.0.0",
			kind:     DependencyMissing,
			message:  "A@2.0.0: version 2.0.0 of A is not published",
		},
		{
			name: "missing dependency",
			versions: map[string][]string{
				"A": {"1.0.0 B:^2"},
				"B": {"2.0.0 C:^1"},
			},
			root:    "A@1.0.0",
			kind:    DependencyMissing,
			message: "A@1.0.0 → B@2.0.0 → C: C has no published version",
		},
		{
			name: "unsatisfiable constraint",
			versions: map[string][]string{
				"A": {"1.0.0 B:^3"},
				"B": {"1.0.0", "2.1.0"},
			},
			root:    "A@1.0.0",
			kind:    DependencyUnsatisfiable,
			message: `A@1.0.0 → B: no published version of B satisfies "^3" (required by A@1.0.0); published: 1.0.0, 2.1.0`,
		},
		{
			name: "constraints that conflict",
			versions: map[string][]string{
				"A": {"1.0.0 B:^1 C:^1"},
				"B": {"1.0.0 D:^1"},
				"C": {"1.0.0 D:^2"},
				"D": {"1.0.0", "2.0.0"},
			},
			root:    "A@1.0.0",
			kind:    DependencyUnsatisfiable,
			message: `A@1.0.0 → C@1.0.0 → D: no published version of D satisfies "^1" (required by B@1.0.0) and "^2" (required by C@1.0.0); published: 1.0.0, 2.0.0`,
		},
		{
			name:     "direct cycle",
			versions: map[string][]string{"A": {"1.0.0 A:^1"}},
			root:     "A@1.0.0",
			kind:     DependencyCycle,
			message:  "A@1.0.0 → A: A requires itself",
		},
		{
			name: "indirect cycle",
			versions: map[string][]string{
				"A": {"1.0.0 B:^2"},
				"B": {"2.0.0 A:*"},
			},
			root:    "A@1.0.0",
			kind:    DependencyCycle,
			message: "A@1.0.0 → B@2.0.0 → A: A requires itself",
		},
		{
			name: "cycle below the root",
			versions: map[string][]string{
				"R": {"1.0.0 A:^1"},
				"A": {"1.0.0 B:^1"},
				"B": {"1.0.0 C:^1"},
				"C": {"1.0.0 A:^1"},
			},
			root:    "R@1.0.0",
			kind:    DependencyCycle,
			message: "R@1.0.0 → A@1.0.0 → B@1.0.0 → C@1.0.0 → A: A requires itself",
		},
		{
			name: "unparsable constraint",
			versions: map[string][]string{
				"A": {"1.0.0 B:>>1"},
				"B": {"1.0.0"},
			},
			root:    "A@1.0.0",
			kind:    DependencyInvalid,
			message: `A@1.0.0 → B: constraint ">>1" of A@1.0.0: `,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cat := &fakeCatalog{versions: tt.versions, active: tt.active}
			root := refs(tt.root)[0]
			got, err := Resolve(context.Background(), cat, root)
			if tt.want != "" {
				if err != nil {
					t.Fatalf("Resolve: %v", err)
				}
				if got.Root != root {
					t.Errorf("root %v, want %v", got.Root, root)
				}
				if diff := cmp.Diff(refs(tt.want), got.Refs()); diff != "" {
					t.Errorf("order (-want +got):\n%s", diff)
				}
				for _, v := range got.Order {
					if v.SHA256 != "sha-"+v.UUID+"-"+v.Version || v.Size == 0 {
						t.Errorf("%v carries archive %q/%d", v.VersionRef, v.SHA256, v.Size)
					}
				}
				return
			}
			var re *ResolveError
			if !errors.Is(err, ErrDependency) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *ResolveError", err)
			}
			if re.Kind != tt.kind {
				t.Errorf("kind %q, want %q", re.Kind, tt.kind)
			}
			wantPrefix := "tasks: dependency " + string(tt.kind) + ": " + tt.message
			if !strings.HasPrefix(err.Error(), wantPrefix) {
				t.Errorf("message\n  %s\nwant it to start with\n  %s", err, wantPrefix)
			}
		})
	}
}

func TestResolveErrorDetails(t *testing.T) {
	t.Parallel()
	cat := &fakeCatalog{versions: map[string][]string{
		"A": {"1.0.0 B:^1 C:^1"},
		"B": {"1.0.0 D:^1"},
		"C": {"1.0.0 D:^2"},
		"D": {"1.0.0", "2.0.0"},
	}}
	_, err := Resolve(context.Background(), cat, VersionRef{UUID: "A", Version: "1.0.0"})
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("err = %v", err)
	}
	want := &ResolveError{
		Kind:      DependencyUnsatisfiable,
		Chain:     refs("A@1.0.0 C@1.0.0 D"),
		Demands:   []Demand{{From: refs("B@1.0.0")[0], Constraint: "^1"}, {From: refs("C@1.0.0")[0], Constraint: "^2"}},
		Published: []string{"1.0.0", "2.0.0"},
		Detail:    re.Detail,
	}
	if diff := cmp.Diff(want, re); diff != "" {
		t.Errorf("error (-want +got):\n%s", diff)
	}
}

func TestResolveCatalogErrors(t *testing.T) {
	t.Parallel()
	down := errors.New("redis down")
	_, err := Resolve(context.Background(), &fakeCatalog{err: down}, VersionRef{UUID: "A", Version: "1.0.0"})
	if !errors.Is(err, down) || errors.Is(err, ErrDependency) {
		t.Errorf("err = %v, want the catalog's error and not ErrDependency (it may be retried)", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = Resolve(ctx, &fakeCatalog{versions: map[string][]string{"A": {"1.0.0"}}}, VersionRef{UUID: "A", Version: "1.0.0"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: err = %v", err)
	}
}

// TestResolveFrozen shows what freezing rests on: Resolve is a function of
// the catalog's answers, reading each package once, and the closure an
// install records survives encoding unchanged while the library moves on.
func TestResolveFrozen(t *testing.T) {
	t.Parallel()
	cat := &fakeCatalog{
		versions: map[string][]string{
			"A": {"1.0.0 B:^1"},
			"B": {"1.0.0 C:^1", "1.1.0 C:^1"},
			"C": {"1.0.0", "1.4.0"},
		},
		active: map[string]string{"B": "1.0.0", "C": "1.0.0"},
	}
	root := VersionRef{UUID: "A", Version: "1.0.0"}
	first, err := Resolve(context.Background(), cat, root)
	if err != nil {
		t.Fatal(err)
	}
	if cat.calls != 3 {
		t.Errorf("%d catalog reads, want one per package", cat.calls)
	}
	again, err := Resolve(context.Background(), cat, root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("same catalog, different closure (-first +again):\n%s", diff)
	}
	recorded, err := json.Marshal(first)
	if err != nil {
		t.Fatal(err)
	}

	// The library moves on: B and C get new active versions.
	cat.active = map[string]string{"B": "1.1.0", "C": "1.4.0"}
	moved, err := Resolve(context.Background(), cat, root)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(refs("C@1.4.0 B@1.1.0 A@1.0.0"), moved.Refs()); diff != "" {
		t.Errorf("a new resolve (-want +got):\n%s", diff)
	}
	var installed Closure
	if err := json.Unmarshal(recorded, &installed); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(first, installed); diff != "" {
		t.Errorf("recorded closure changed (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(refs("C@1.0.0 B@1.0.0 A@1.0.0"), installed.Refs()); diff != "" {
		t.Errorf("recorded closure (-want +got):\n%s", diff)
	}
	if !strings.Contains(string(recorded), `"uuid":"C","version":"1.0.0","sha256":"sha-C-1.0.0"`) {
		t.Errorf("recorded form: %s", recorded)
	}
}

func TestFormatChain(t *testing.T) {
	t.Parallel()
	if got := FormatChain(refs("A@1.0.0 B@2.0.0 A")); got != "A@1.0.0 → B@2.0.0 → A" {
		t.Errorf("FormatChain = %q", got)
	}
}

// mapCatalog is a catalog of fixed answers for the example.
type mapCatalog map[string][]CatalogVersion

func (m mapCatalog) Versions(_ context.Context, uuid string) ([]CatalogVersion, error) {
	return m[uuid], nil
}

func (m mapCatalog) ActiveVersion(context.Context, string) (string, error) { return "", nil }

func ExampleResolve() {
	catalog := mapCatalog{
		"app":  {{Version: "1.0.0", Requires: []manifest.Requirement{{UUID: "lib", Version: "^2.1"}}}},
		"lib":  {{Version: "2.0.0"}, {Version: "2.3.1", Requires: []manifest.Requirement{{UUID: "base"}}}, {Version: "3.0.0"}},
		"base": {{Version: "1"}, {Version: "2"}},
	}
	closure, err := Resolve(context.Background(), catalog, VersionRef{UUID: "app", Version: "1.0.0"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, v := range closure.Order { // dependencies first
		fmt.Println(v)
	}

	catalog["base"] = nil // unpublished since
	_, err = Resolve(context.Background(), catalog, VersionRef{UUID: "app", Version: "1.0.0"})
	fmt.Println(err)
	// Output:
	// base@2
	// lib@2.3.1
	// app@1.0.0
	// tasks: dependency missing: app@1.0.0 → lib@2.3.1 → base: base has no published version
}
