package tasks

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// VersionRef names one published version of a package.
type VersionRef struct {
	UUID    string `json:"uuid"`
	Version string `json:"version"`
}

// String formats the reference as uuid@version, or uuid alone when no
// version is set.
func (r VersionRef) String() string {
	if r.Version == "" {
		return r.UUID
	}
	return r.UUID + "@" + r.Version
}

// CatalogVersion is what Resolve needs of a published version.
type CatalogVersion struct {
	Version string
	// Requires lists the packages the version depends on, each with a
	// version constraint (manifest.ParseConstraint; "" allows any release).
	Requires []manifest.Requirement
	// SHA256 and Size describe the version's archive.
	SHA256 string
	Size   int64
}

// PackageCatalog is the part of the library Resolve reads.
type PackageCatalog interface {
	// Versions returns every published version of the package. A package
	// that does not exist has none: an empty list or an error wrapping
	// store.ErrNotFound.
	Versions(ctx context.Context, uuid string) ([]CatalogVersion, error)
	// ActiveVersion returns the package's active version: "" (or an error
	// wrapping store.ErrNotFound) when it has none.
	ActiveVersion(ctx context.Context, uuid string) (string, error)
}

// ResolvedVersion is one version of a closure with its archive.
type ResolvedVersion struct {
	VersionRef
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
}

// Closure is a version and every version it depends on, directly or not:
// the environment an install of Root provides.
type Closure struct {
	Root VersionRef `json:"root"`
	// Order lists each version of the closure once, every version after
	// the versions it requires, Root last: installing in this order
	// installs dependencies first.
	Order []ResolvedVersion `json:"order"`
}

// Refs returns the versions of Order without their archives.
func (c Closure) Refs() []VersionRef {
	out := make([]VersionRef, len(c.Order))
	for i, v := range c.Order {
		out[i] = v.VersionRef
	}
	return out
}

// ErrDependency is wrapped by every *ResolveError: the closure cannot be
// resolved from the library as it is, and trying again will not help until
// the library changes.
var ErrDependency = errors.New("tasks: dependency error")

// ResolveErrorKind tells why a closure could not be resolved.
type ResolveErrorKind string

// Kinds of ResolveError.
const (
	// DependencyMissing: a required package (or the root version) is not
	// published.
	DependencyMissing ResolveErrorKind = "missing"
	// DependencyUnsatisfiable: no published version of a required package
	// satisfies every constraint on it.
	DependencyUnsatisfiable ResolveErrorKind = "unsatisfiable"
	// DependencyCycle: a package requires itself, directly or not.
	DependencyCycle ResolveErrorKind = "cycle"
	// DependencyInvalid: a constraint in the library cannot be parsed.
	DependencyInvalid ResolveErrorKind = "invalid"
)

// Demand is one constraint on a package and the version that states it.
type Demand struct {
	From       VersionRef `json:"from"`
	Constraint string     `json:"constraint"`
}

// ResolveError is a closure that cannot be resolved. It wraps
// ErrDependency; a task that gets one should not retry.
type ResolveError struct {
	Kind ResolveErrorKind `json:"kind"`
	// Chain leads from the root to the package at fault, which comes last
	// without a version: A@1.0.0 → B@2.0.0 → C. For a cycle, the last
	// package is the one that closes it. For a missing root it is the root
	// alone, with its version.
	Chain []VersionRef `json:"chain"`
	// Demands lists the constraints on the package at fault (unsatisfiable
	// and invalid errors).
	Demands []Demand `json:"demands,omitempty"`
	// Published lists the published versions of the package at fault
	// (unsatisfiable errors).
	Published []string `json:"published,omitempty"`
	// Detail says what is wrong in words.
	Detail string `json:"detail"`
}

func (e *ResolveError) Error() string {
	return fmt.Sprintf("tasks: dependency %s: %s: %s", e.Kind, FormatChain(e.Chain), e.Detail)
}

// Unwrap returns ErrDependency.
func (e *ResolveError) Unwrap() error { return ErrDependency }

// FormatChain joins references with arrows: A@1.0.0 → B@2.0.0 → A.
func FormatChain(chain []VersionRef) string {
	parts := make([]string, len(chain))
	for i, r := range chain {
		parts[i] = r.String()
	}
	return strings.Join(parts, " → ")
}

// maxResolveRounds bounds how often Resolve revisits its choices.
const maxResolveRounds = 32

// Resolve returns the closure of root: root and, recursively, one version
// of every package it requires. For each required package, Resolve gathers
// the constraints of every version in the closure that requires it and
// chooses:
//
//  1. the package's active version, when it satisfies them all (so an
//     install reuses what the fleet runs);
//  2. otherwise the highest published version that satisfies them all,
//     in the library's order (store.CompareVersions).
//
// A revision number N (a version published without <Version>) is matched
// against constraints as the version N.0.0. A choice that later
// constraints rule out is made again with all of them; Resolve never
// tries other versions of the requiring packages to make a conflict go
// away, and never puts two versions of one package in a closure.
//
// A missing package, constraints no published version satisfies, a cycle
// and an unparsable constraint are a *ResolveError (wrapping
// ErrDependency) whose message lists the chain from the root. Errors of
// the catalog are returned wrapped as they are.
//
// Resolve only reads the catalog: with the same answers it returns the
// same closure. Freezing an environment is the caller's part: record the
// Closure with the install and install from the record, so that a
// dependency's new active version changes nothing until root is installed
// again.
func Resolve(ctx context.Context, catalog PackageCatalog, root VersionRef) (Closure, error) {
	r := &resolver{ctx: ctx, catalog: catalog, pkgs: map[string]*catalogPackage{}}
	rootPkg, err := r.pkg(root.UUID)
	if err != nil {
		return Closure{}, err
	}
	if _, ok := rootPkg.version(root.Version); !ok {
		return Closure{}, &ResolveError{Kind: DependencyMissing, Chain: []VersionRef{root},
			Detail: fmt.Sprintf("version %s of %s is not published", root.Version, root.UUID)}
	}
	choice := map[string]string{root.UUID: root.Version}
	for range maxResolveRounds {
		w := &walk{r: r, choice: choice, demands: map[string][]demand{}, state: map[string]visit{}}
		if err := w.visit(root, nil); err != nil {
			return Closure{}, err
		}
		// Choose again, with every constraint now known, until no choice
		// changes. A conflict counts once the other choices have settled,
		// since another package's new choice may lift it.
		next := map[string]string{root.UUID: root.Version}
		changed := false
		var conflict error
		for _, uuid := range w.required {
			v, err := r.choose(uuid, w.demands[uuid])
			if err != nil {
				if conflict == nil {
					conflict = err
				}
				continue
			}
			next[uuid] = v
			changed = changed || v != choice[uuid]
		}
		if !changed {
			if conflict != nil {
				return Closure{}, conflict
			}
			return Closure{Root: root, Order: w.order}, nil
		}
		choice = next
	}
	return Closure{}, &ResolveError{Kind: DependencyUnsatisfiable, Chain: []VersionRef{root},
		Detail: fmt.Sprintf("the choice of versions did not settle after %d rounds; pin the dependencies with exact constraints", maxResolveRounds)}
}

// catalogPackage is one package as the catalog answered for it, read once
// per Resolve.
type catalogPackage struct {
	versions []CatalogVersion // lowest first
	active   string
}

func (p *catalogPackage) version(v string) (CatalogVersion, bool) {
	i := slices.IndexFunc(p.versions, func(cv CatalogVersion) bool { return cv.Version == v })
	if i < 0 {
		return CatalogVersion{}, false
	}
	return p.versions[i], true
}

func (p *catalogPackage) published() []string {
	out := make([]string, len(p.versions))
	for i, v := range p.versions {
		out[i] = v.Version
	}
	return out
}

type resolver struct {
	ctx     context.Context
	catalog PackageCatalog
	pkgs    map[string]*catalogPackage
}

// pkg reads a package from the catalog (once).
func (r *resolver) pkg(uuid string) (*catalogPackage, error) {
	if p, ok := r.pkgs[uuid]; ok {
		return p, nil
	}
	if err := r.ctx.Err(); err != nil {
		return nil, fmt.Errorf("tasks: resolve: %w", err)
	}
	versions, err := r.catalog.Versions(r.ctx, uuid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("tasks: resolve: versions of %s: %w", uuid, err)
	}
	p := &catalogPackage{versions: slices.Clone(versions)}
	slices.SortStableFunc(p.versions, func(a, b CatalogVersion) int { return store.CompareVersions(a.Version, b.Version) })
	if len(p.versions) > 0 {
		p.active, err = r.catalog.ActiveVersion(r.ctx, uuid)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("tasks: resolve: active version of %s: %w", uuid, err)
		}
	}
	r.pkgs[uuid] = p
	return p, nil
}

// demand is a constraint on a package, parsed, with the chain that led to
// it.
type demand struct {
	Demand
	constraint manifest.Constraint
	chain      []VersionRef // root … From
}

// choose picks the version of uuid for its demands (see Resolve).
func (r *resolver) choose(uuid string, ds []demand) (string, error) {
	p, err := r.pkg(uuid)
	if err != nil {
		return "", err
	}
	last := ds[len(ds)-1]
	chain := append(slices.Clone(last.chain), VersionRef{UUID: uuid})
	if len(p.versions) == 0 {
		return "", &ResolveError{Kind: DependencyMissing, Chain: chain,
			Detail: fmt.Sprintf("%s has no published version", uuid)}
	}
	allowed := func(v string) bool {
		sv, ok := constraintVersion(v)
		if !ok {
			return false
		}
		for _, d := range ds {
			if !d.constraint.Allows(sv) {
				return false
			}
		}
		return true
	}
	if p.active != "" && allowed(p.active) {
		if _, ok := p.version(p.active); ok {
			return p.active, nil
		}
	}
	for i := len(p.versions) - 1; i >= 0; i-- {
		if v := p.versions[i].Version; allowed(v) {
			return v, nil
		}
	}
	e := &ResolveError{Kind: DependencyUnsatisfiable, Chain: chain, Published: p.published()}
	var want []string
	for _, d := range ds {
		e.Demands = append(e.Demands, d.Demand)
		want = append(want, fmt.Sprintf("%q (required by %s)", d.Constraint, d.From))
	}
	e.Detail = fmt.Sprintf("no published version of %s satisfies %s; published: %s",
		uuid, strings.Join(want, " and "), strings.Join(e.Published, ", "))
	return "", e
}

// constraintVersion is the semantic version a published version is matched
// as: itself, or N.0.0 for revision N.
func constraintVersion(v string) (manifest.Version, bool) {
	if n, err := strconv.ParseUint(v, 10, 64); err == nil {
		return manifest.Version{Major: n}, true
	}
	sv, err := manifest.ParseVersion(v)
	return sv, err == nil
}

type visit int

const (
	unvisited visit = iota
	visiting        // on the current path
	visited
)

// walk is one depth-first pass over the closure with the current choices.
type walk struct {
	r       *resolver
	choice  map[string]string
	demands map[string][]demand // by required UUID
	// required lists the UUIDs of demands in the order first met.
	required []string
	state    map[string]visit // by UUID
	order    []ResolvedVersion
}

// visit walks ref's requirements, then appends ref to the order. path is
// the chain from the root to ref's requirer.
func (w *walk) visit(ref VersionRef, path []VersionRef) error {
	p, err := w.r.pkg(ref.UUID)
	if err != nil {
		return err
	}
	cv, ok := p.version(ref.Version)
	if !ok { // chosen from the published list, so only a changing catalog gets here
		return &ResolveError{Kind: DependencyMissing, Chain: append(slices.Clone(path), ref),
			Detail: fmt.Sprintf("version %s of %s is not published", ref.Version, ref.UUID)}
	}
	path = append(slices.Clone(path), ref)
	w.state[ref.UUID] = visiting
	for _, req := range cv.Requires {
		if w.state[req.UUID] == visiting {
			return &ResolveError{Kind: DependencyCycle, Chain: append(path, VersionRef{UUID: req.UUID}),
				Detail: fmt.Sprintf("%s requires itself", req.UUID)}
		}
		c, err := manifest.ParseConstraint(req.Version)
		d := demand{Demand: Demand{From: ref, Constraint: req.Version}, constraint: c, chain: path}
		if err != nil {
			return &ResolveError{Kind: DependencyInvalid, Chain: append(path, VersionRef{UUID: req.UUID}),
				Demands: []Demand{d.Demand}, Detail: fmt.Sprintf("constraint %q of %s: %v", req.Version, ref, err)}
		}
		if _, ok := w.demands[req.UUID]; !ok {
			w.required = append(w.required, req.UUID)
		}
		w.demands[req.UUID] = append(w.demands[req.UUID], d)
		if w.state[req.UUID] == visited {
			continue
		}
		v, chosen := w.choice[req.UUID]
		if !chosen {
			if v, err = w.r.choose(req.UUID, w.demands[req.UUID]); err != nil {
				return err
			}
			w.choice[req.UUID] = v
		}
		if err := w.visit(VersionRef{UUID: req.UUID, Version: v}, path); err != nil {
			return err
		}
	}
	w.state[ref.UUID] = visited
	w.order = append(w.order, ResolvedVersion{VersionRef: ref, SHA256: cv.SHA256, Size: cv.Size})
	return nil
}
