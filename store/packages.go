package store

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/packflow/packflow/manifest"
)

// Package visibilities.
const (
	// VisibilityPrivate: the owning account only.
	VisibilityPrivate = "private"
	// VisibilityShared: the owning account and its sub-accounts.
	VisibilityShared = "shared"
	// VisibilityPublic: every account.
	VisibilityPublic = "public"
)

// ErrVendorLocked means the package was published by a vendor account and
// the change asked for would overwrite or delete it.
var ErrVendorLocked = errors.New("store: package is vendor-locked")

// ConflictError is a publish or delete refused by a library rule. It wraps
// ErrConflict (or ErrVendorLocked) and names the rule, so the refusal can
// be recorded as a problem of the upload.
type ConflictError struct {
	// Rule is a stable identifier: package.uuid.owner, package.name.taken,
	// package.version.exists, package.version.active,
	// package.version.required, package.vendor.locked, upload.status.
	Rule    string
	Message string
	err     error
}

func (e *ConflictError) Error() string { return "store: " + e.Message }

// Unwrap returns ErrConflict or ErrVendorLocked.
func (e *ConflictError) Unwrap() error { return e.err }

// Conflicts returns every *ConflictError in err's tree, in order.
func Conflicts(err error) []*ConflictError {
	var out []*ConflictError
	var walk func(error)
	walk = func(e error) {
		if e == nil {
			return
		}
		// A type assertion, not errors.As: the walk visits every node itself
		// to collect all conflicts, where errors.As would stop at the first.
		if ce, ok := e.(*ConflictError); ok { //nolint:errorlint // see above
			out = append(out, ce)
			return
		}
		switch u := e.(type) { //nolint:errorlint // see above
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	return out
}

func conflict(rule, format string, args ...any) error {
	return &ConflictError{Rule: rule, Message: fmt.Sprintf(format, args...), err: ErrConflict}
}

func locked(format string, args ...any) error {
	return &ConflictError{Rule: "package.vendor.locked", Message: fmt.Sprintf(format, args...), err: ErrVendorLocked}
}

// Package is a library entry: one UUID, owned by one account, with its
// published versions.
type Package struct {
	// ID is the manifest UUID.
	ID          string `json:"id"`
	Name        string `json:"name"`
	Description string `json:"description"`
	// AccountID owns the package; only it publishes versions of the UUID.
	AccountID  string   `json:"account_id"`
	Category   string   `json:"category"`
	OS         string   `json:"os"`
	OSVersions []string `json:"os_versions"`
	Visibility string   `json:"visibility"`
	// VendorLocked is set when a vendor account published the package:
	// its versions are never overwritten, and only the vendor deletes them.
	VendorLocked bool `json:"vendor_locked"`
	// ActiveVersion is the version installed on the fleet ("" for none).
	ActiveVersion string `json:"active_version"`
	// LatestVersion is the highest published version.
	LatestVersion string `json:"latest_version"`
	// Revision is the last revision number given to a version published
	// without <Version>.
	Revision  int       `json:"revision"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PackageFile is one file of a published version.
type PackageFile struct {
	Path string `json:"path"`
	Size int64  `json:"size"`
	Mode uint32 `json:"mode"`
}

// Requirement is a package a version requires.
type Requirement struct {
	UUID    string `json:"uuid"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// Version is one published version of a package.
type Version struct {
	PackageID string `json:"package_id"`
	Version   string `json:"version"`
	// Manifest is the parsed manifest as JSON.
	Manifest    json.RawMessage `json:"manifest"`
	Files       []PackageFile   `json:"files"`
	Requires    []Requirement   `json:"requires"`
	SHA256      string          `json:"sha256"`
	Size        int64           `json:"size"`
	BlobKey     string          `json:"blob_key"`
	UploadID    string          `json:"upload_id"`
	PublishedAt time.Time       `json:"published_at"`
	PublishedBy string          `json:"published_by,omitempty"`
	Warnings    []Problem       `json:"warnings"`
}

func (s *Store) packageKey(id string) string { return s.key("{pkg}", "package", id) }
func (s *Store) packageNameKey(name string) string {
	return s.key("{pkg}", "name", strings.ToLower(name))
}
func (s *Store) packagesKey() string { return s.key("{pkg}", "packages") }
func (s *Store) versionKey(id, v string) string {
	return s.key("{pkg}", "version", id, v)
}
func (s *Store) versionsKey(id string) string { return s.key("{pkg}", "versions", id) }

// libraryMember orders the library by name, then UUID.
func libraryMember(p Package) string { return strings.ToLower(p.Name) + "\x00" + p.ID }

// CompareVersions orders version strings: revision numbers ("1", "2", …)
// numerically and before semantic versions, semantic versions by semver
// precedence, anything else lexically after both. Equal precedence falls
// back to the strings, so the order is total.
func CompareVersions(a, b string) int {
	ka, kb := versionKind(a), versionKind(b)
	if ka != kb {
		return cmp.Compare(ka, kb)
	}
	switch ka {
	case 0:
		na, _ := strconv.ParseUint(a, 10, 64)
		nb, _ := strconv.ParseUint(b, 10, 64)
		if c := cmp.Compare(na, nb); c != 0 {
			return c
		}
	case 1:
		va, _ := manifest.ParseVersion(a)
		vb, _ := manifest.ParseVersion(b)
		if c := va.Compare(vb); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

func versionKind(v string) int {
	if _, err := strconv.ParseUint(v, 10, 64); err == nil {
		return 0
	}
	if _, err := manifest.ParseVersion(v); err == nil {
		return 1
	}
	return 2
}

// PublishRequest is everything a publish records.
type PublishRequest struct {
	// UploadID and TaskID name the upload being published and the task
	// doing it; the upload must be publishing under TaskID.
	UploadID string
	TaskID   string
	// AccountID is the publishing account; Vendor tells whether it is a
	// vendor account.
	AccountID string
	Vendor    bool
	// PublishedBy is the user who asked for the publish.
	PublishedBy string

	ID          string
	Name        string
	Description string
	Options     PublishOptions
	// Version is the manifest's canonical <Version>; "" gives the next
	// revision number.
	Version  string
	Manifest json.RawMessage
	Files    []PackageFile
	Requires []Requirement
	SHA256   string
	Size     int64
	BlobKey  string
	Warnings []Problem
}

// PublishResult is what a publish recorded.
type PublishResult struct {
	Package Package
	Version Version
	// Replaced is the version overwritten by a forced publish (its blob
	// is the caller's to delete), or nil.
	Replaced *Version
}

// Publish records a new version and marks the upload published, in one
// transaction, enforcing the library's rules:
//
//   - a UUID belongs to the account that first published it
//     (package.uuid.owner);
//   - names are unique platform-wide, ignoring case (package.name.taken);
//   - an existing version is refused unless Options.Force
//     (package.version.exists), and always for a vendor-locked package
//     (package.vendor.locked).
//
// Refusals are *ConflictError values, every one found joined in the error
// (see Conflicts). Of two publishes racing for the same UUID and version
// exactly one wins; the other sees the winner's version.
func (s *Store) Publish(ctx context.Context, r PublishRequest) (PublishResult, error) {
	if r.UploadID == "" || r.ID == "" || r.AccountID == "" || r.BlobKey == "" {
		return PublishResult{}, errors.New("store: publish needs an upload, a package id, an account and a blob key")
	}
	pkgKey, nameKey, upKey := s.packageKey(r.ID), s.packageNameKey(r.Name), s.uploadKey(r.UploadID)
	var res PublishResult
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		res = PublishResult{}
		var up Upload
		if err := getJSON(ctx, tx, upKey, &up); err != nil {
			return fmt.Errorf("upload %s: %w", r.UploadID, err)
		}
		if up.Status != UploadPublishing || up.TaskID != r.TaskID {
			return conflict("upload.status", "upload %s is %s under task %s, not publishing under %s", up.ID, up.Status, up.TaskID, r.TaskID)
		}
		now := time.Now().UTC().Truncate(time.Millisecond)
		var pkg Package
		err := getJSON(ctx, tx, pkgKey, &pkg)
		exists := err == nil
		switch {
		case errors.Is(err, ErrNotFound):
			pkg = Package{ID: r.ID, AccountID: r.AccountID, CreatedAt: now, VendorLocked: r.Vendor}
		case err != nil:
			return err
		}
		owner, err := tx.Get(ctx, nameKey).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return err
		}
		version := r.Version
		revision := pkg.Revision
		if version == "" {
			revision++
			version = strconv.Itoa(revision)
		}
		vKey := s.versionKey(r.ID, version)
		if err := tx.Watch(ctx, vKey).Err(); err != nil {
			return err
		}
		var old Version
		err = getJSON(ctx, tx, vKey, &old)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		refused := publishRefusals(r, pkg, exists, owner, version, err == nil)
		if len(refused) == 0 && err == nil {
			res.Replaced = &old
		}
		if len(refused) > 0 {
			return errors.Join(refused...)
		}

		oldMember := ""
		if exists {
			oldMember = libraryMember(pkg)
		}
		oldName := pkg.Name
		pkg.Name, pkg.Description = r.Name, r.Description
		pkg.Category, pkg.OS, pkg.Visibility = r.Options.Category, r.Options.OS, r.Options.Visibility
		pkg.OSVersions = slices.Clone(r.Options.OSVersions)
		pkg.Revision = revision
		pkg.UpdatedAt = now
		pkg.VendorLocked = pkg.VendorLocked || r.Vendor
		if pkg.LatestVersion == "" || CompareVersions(version, pkg.LatestVersion) > 0 {
			pkg.LatestVersion = version
		}
		ver := Version{
			PackageID: r.ID, Version: version, Manifest: r.Manifest,
			Files: nonNil(r.Files), Requires: nonNil(r.Requires),
			SHA256: r.SHA256, Size: r.Size, BlobKey: r.BlobKey, UploadID: r.UploadID,
			PublishedAt: now, PublishedBy: r.PublishedBy, Warnings: emptyProblems(r.Warnings),
		}
		up.Status, up.PackageID, up.Version = UploadPublished, r.ID, version
		up.BlobKey, up.SHA256, up.Size = r.BlobKey, r.SHA256, r.Size
		up.Errors, up.Warnings = []Problem{}, emptyProblems(r.Warnings)
		up.UpdatedAt = now
		pb, err1 := json.Marshal(pkg)
		vb, err2 := json.Marshal(ver)
		ub, err3 := json.Marshal(up)
		if err := errors.Join(err1, err2, err3); err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, pkgKey, pb, 0)
			p.Set(ctx, vKey, vb, 0)
			p.SAdd(ctx, s.versionsKey(r.ID), version)
			p.Set(ctx, upKey, ub, 0)
			if exists && !strings.EqualFold(oldName, r.Name) {
				p.Del(ctx, s.packageNameKey(oldName))
			}
			p.Set(ctx, nameKey, r.ID, 0)
			if oldMember != "" {
				p.ZRem(ctx, s.packagesKey(), oldMember)
			}
			p.ZAdd(ctx, s.packagesKey(), redis.Z{Member: libraryMember(pkg)})
			return nil
		})
		res.Package, res.Version = pkg, ver
		return err
	}, pkgKey, nameKey, upKey)
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) || errors.Is(err, ErrNotFound) {
			return PublishResult{}, err
		}
		return PublishResult{}, fmt.Errorf("store: publish %s: %w", r.ID, err)
	}
	return res, nil
}

// publishRefusals applies the library's rules to publishing r as
// version: pkg is the package record (exists tells whether it is stored),
// nameOwner the package holding r.Name ("" for none), versionExists
// whether the version is published. Every refusal is returned.
func publishRefusals(r PublishRequest, pkg Package, exists bool, nameOwner, version string, versionExists bool) []error {
	var refused []error
	owned := !exists || pkg.AccountID == r.AccountID
	if !owned {
		refused = append(refused, conflict("package.uuid.owner", "package UUID %s belongs to another account; give your package a new <UUID>", r.ID))
	}
	if nameOwner != "" && nameOwner != r.ID {
		refused = append(refused, conflict("package.name.taken", "the name %q is taken by another package; package names are unique across the platform, choose another <Name>", r.Name))
	}
	switch {
	case !versionExists || !owned:
		// Another account's versions: the owner refusal says it.
	case !r.Options.Force:
		refused = append(refused, conflict("package.version.exists", "version %s of %s is already published; raise <Version>, or publish with force to overwrite it", version, r.ID))
	case pkg.VendorLocked:
		refused = append(refused, locked("version %s of %s was published by a vendor and cannot be overwritten, even with force; publish a new version", version, r.ID))
	}
	return refused
}

// CheckPublish applies the library's rules to r without recording
// anything, so that a publish request the library would refuse is
// refused at once. r needs AccountID, ID, Name, Version (a publish
// without a version never conflicts on it) and Options.Force. The
// result may change before the publish runs: Publish checks again.
func (s *Store) CheckPublish(ctx context.Context, r PublishRequest) error {
	var pkg Package
	err := getJSON(ctx, s.rdb, s.packageKey(r.ID), &pkg)
	exists := err == nil
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("store: check publish of %s: %w", r.ID, err)
	}
	owner := ""
	if r.Name != "" {
		owner, err = s.rdb.Get(ctx, s.packageNameKey(r.Name)).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("store: check publish of %s: %w", r.ID, err)
		}
	}
	versionExists := false
	if r.Version != "" {
		n, err := s.rdb.Exists(ctx, s.versionKey(r.ID, r.Version)).Result()
		if err != nil {
			return fmt.Errorf("store: check publish of %s: %w", r.ID, err)
		}
		versionExists = n > 0
	}
	return errors.Join(publishRefusals(r, pkg, exists, owner, r.Version, versionExists)...)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// Package returns the package with id, or ErrNotFound.
func (s *Store) Package(ctx context.Context, id string) (Package, error) {
	return getRecord[Package](ctx, s.rdb, s.packageKey(id), "package %q", id)
}

// Version returns one version of a package, or ErrNotFound.
func (s *Store) Version(ctx context.Context, id, version string) (Version, error) {
	return getRecord[Version](ctx, s.rdb, s.versionKey(id, version), "version %s of %q", version, id)
}

// Versions returns the version strings of a package, lowest first (see
// CompareVersions).
func (s *Store) Versions(ctx context.Context, id string) ([]string, error) {
	vs, err := s.rdb.SMembers(ctx, s.versionsKey(id)).Result()
	if err != nil {
		return nil, fmt.Errorf("store: versions of %s: %w", id, err)
	}
	slices.SortFunc(vs, CompareVersions)
	return vs, nil
}

// DeleteVersion removes one version; the package goes with its last
// version (freeing its name and UUID). A vendor-locked package's versions
// are only deleted by the vendor (byAccount is the account asking); the
// active version is never deleted. It returns the removed version so the
// caller can delete its blob.
func (s *Store) DeleteVersion(ctx context.Context, id, version, byAccount string) (Version, error) {
	pkgKey, vKey, vsKey := s.packageKey(id), s.versionKey(id, version), s.versionsKey(id)
	var out Version
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var pkg Package
		if err := getJSON(ctx, tx, pkgKey, &pkg); err != nil {
			return fmt.Errorf("package %q: %w", id, err)
		}
		var v Version
		if err := getJSON(ctx, tx, vKey, &v); err != nil {
			return fmt.Errorf("version %s of %q: %w", version, id, err)
		}
		if pkg.VendorLocked && byAccount != pkg.AccountID {
			return locked("package %s was published by a vendor; only the vendor deletes its versions", id)
		}
		if pkg.ActiveVersion == version {
			return conflict("package.version.active", "version %s of %s is the active version; activate another version first", version, id)
		}
		if users, err := s.activeUsers(ctx, tx, id, version); err != nil {
			return err
		} else if len(users) > 0 {
			return conflict("package.version.required", "version %s of %s is installed with the active version %s of %s; activate another version of that package first",
				version, id, users[0].Version, users[0].PackageID)
		}
		rest, err := tx.SMembers(ctx, vsKey).Result()
		if err != nil {
			return err
		}
		rest = slices.DeleteFunc(rest, func(x string) bool { return x == version })
		pkg.LatestVersion = ""
		for _, x := range rest {
			if pkg.LatestVersion == "" || CompareVersions(x, pkg.LatestVersion) > 0 {
				pkg.LatestVersion = x
			}
		}
		pkg.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		pb, err := json.Marshal(pkg)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, vKey)
			p.SRem(ctx, vsKey, version)
			if len(rest) == 0 {
				p.Del(ctx, pkgKey, s.packageNameKey(pkg.Name), vsKey)
				p.ZRem(ctx, s.packagesKey(), libraryMember(pkg))
			} else {
				p.Set(ctx, pkgKey, pb, 0)
			}
			return nil
		})
		out = v
		return err
	}, pkgKey, vKey, vsKey)
	if err != nil {
		var ce *ConflictError
		if errors.As(err, &ce) || errors.Is(err, ErrNotFound) {
			return Version{}, err
		}
		return Version{}, fmt.Errorf("store: delete version %s of %s: %w", version, id, err)
	}
	return out, nil
}

// PackageQuery selects library entries, by name.
type PackageQuery struct {
	// OS and Category match exactly when set.
	OS       string
	Category string
	// Q matches a substring of the name or description, ignoring case.
	Q string
	// Visible, when set, keeps only the packages it accepts (the caller's
	// view of the library).
	Visible func(Package) bool
	// Limit is the page size (default 50, at most 500).
	Limit int
	// Cursor continues a previous answer.
	Cursor string
}

// Packages lists the library entries matching q, ordered by name, and the
// cursor of the next page ("" at the end).
func (s *Store) Packages(ctx context.Context, q PackageQuery) ([]Package, string, error) {
	limit := pageSize(q.Limit)
	start := "-"
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(raw) == 0 {
			return nil, "", ErrBadCursor
		}
		start = "(" + string(raw)
	}
	needle := strings.ToLower(q.Q)
	out := []Package{}
	batch := int64(max(limit, 100))
	for {
		members, err := s.rdb.ZRangeByLex(ctx, s.packagesKey(), &redis.ZRangeBy{Min: start, Max: "+", Count: batch}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("store: list packages: %w", err)
		}
		pkgs, err := s.packagesByMember(ctx, members)
		if err != nil {
			return nil, "", err
		}
		for i, p := range pkgs {
			if p == nil {
				continue
			}
			if (q.OS != "" && p.OS != q.OS) || (q.Category != "" && p.Category != q.Category) {
				continue
			}
			if needle != "" && !strings.Contains(strings.ToLower(p.Name), needle) && !strings.Contains(strings.ToLower(p.Description), needle) {
				continue
			}
			if q.Visible != nil && !q.Visible(*p) {
				continue
			}
			out = append(out, *p)
			if len(out) == limit {
				return out, base64.RawURLEncoding.EncodeToString([]byte(members[i])), nil
			}
		}
		if int64(len(members)) < batch {
			return out, "", nil
		}
		start = "(" + members[len(members)-1]
	}
}

func (s *Store) packagesByMember(ctx context.Context, members []string) ([]*Package, error) {
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, len(members))
	for i, m := range members {
		keys[i] = s.packageKey(m[strings.LastIndexByte(m, 0)+1:])
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list packages: %w", err)
	}
	out := make([]*Package, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue
		}
		var p Package
		if err := json.Unmarshal([]byte(str), &p); err != nil {
			return nil, fmt.Errorf("store: decode package: %w", err)
		}
		out[i] = &p
	}
	return out, nil
}
