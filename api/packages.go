package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// maxQueryLength bounds ?q= of GET /packages.
const maxQueryLength = 200

// packageJSON is a library entry as the API shows it.
type packageJSON struct {
	ID            string        `json:"id"`
	Name          string        `json:"name"`
	Description   string        `json:"description"`
	AccountID     string        `json:"account_id"`
	Category      string        `json:"category"`
	OS            string        `json:"os"`
	OSVersions    []string      `json:"os_versions"`
	Visibility    string        `json:"visibility"`
	VendorLocked  bool          `json:"vendor_locked"`
	ActiveVersion string        `json:"active_version"`
	LatestVersion string        `json:"latest_version"`
	CreatedAt     time.Time     `json:"created_at"`
	UpdatedAt     time.Time     `json:"updated_at"`
	Versions      []versionItem `json:"versions,omitempty"`
	// Fleet says where the active version is installed (GET
	// /packages/{uuid} only).
	Fleet *fleetJSON `json:"fleet,omitempty"`
}

// versionItem is one version in a package's list.
type versionItem struct {
	Version     string    `json:"version"`
	SHA256      string    `json:"sha256"`
	Size        int64     `json:"size"`
	PublishedAt time.Time `json:"published_at"`
	PublishedBy string    `json:"published_by,omitempty"`
	Active      bool      `json:"active"`
}

func toPackageJSON(p store.Package) packageJSON {
	return packageJSON{
		ID: p.ID, Name: p.Name, Description: p.Description, AccountID: p.AccountID,
		Category: p.Category, OS: p.OS, OSVersions: nonNil(p.OSVersions), Visibility: p.Visibility,
		VendorLocked: p.VendorLocked, ActiveVersion: p.ActiveVersion, LatestVersion: p.LatestVersion,
		CreatedAt: p.CreatedAt.UTC(), UpdatedAt: p.UpdatedAt.UTC(),
	}
}

// versionJSON is one published version in full.
type versionJSON struct {
	PackageID   string              `json:"package_id"`
	Version     string              `json:"version"`
	Active      bool                `json:"active"`
	Manifest    json.RawMessage     `json:"manifest"`
	Parameters  []manifest.Field    `json:"parameters"`
	Files       []store.PackageFile `json:"files"`
	Requires    []store.Requirement `json:"requires"`
	SHA256      string              `json:"sha256"`
	Size        int64               `json:"size"`
	PublishedAt time.Time           `json:"published_at"`
	PublishedBy string              `json:"published_by,omitempty"`
	UploadID    string              `json:"upload_id"`
	Warnings    []store.Problem     `json:"warnings"`
}

// libraryView is what one caller sees of the library:
//
//	private  the owning account
//	shared   the owning account and its sub-accounts
//	public   every account
//
// The root account sees everything.
type libraryView struct {
	account string
	root    bool
	// above holds the caller's ancestors: owners whose shared packages it
	// sees.
	above map[string]bool
}

func (s *Server) libraryView(ctx context.Context, p Principal) (libraryView, error) {
	v := libraryView{account: p.AccountID, root: p.AccountID == store.RootAccountID, above: map[string]bool{}}
	if v.root || p.AccountID == "" {
		return v, nil
	}
	anc, err := s.store.Ancestors(ctx, p.AccountID)
	if err != nil {
		return libraryView{}, fmt.Errorf("ancestors of %s: %w", p.AccountID, err)
	}
	for _, a := range anc {
		v.above[a] = true
	}
	return v, nil
}

func (v libraryView) sees(p store.Package) bool {
	switch {
	case v.account == "":
		return false
	case v.root, p.Visibility == store.VisibilityPublic, p.AccountID == v.account:
		return true
	case p.Visibility == store.VisibilityShared:
		return v.above[p.AccountID]
	}
	return false
}

// listPackages answers GET /packages: the library the caller may see, by
// name, filtered by ?os=, ?category= and ?q= (name or description).
func (s *Server) listPackages(c echo.Context) error {
	pr, err := parsePage(c)
	var errs []FieldError
	var prob *Problem
	if errors.As(err, &prob) {
		errs = append(errs, prob.Errors...)
	} else if err != nil {
		return err
	}
	q := store.PackageQuery{OS: c.QueryParam("os"), Category: c.QueryParam("category"), Q: c.QueryParam("q")}
	if q.OS != "" && q.OS != "linux" && q.OS != "windows" {
		errs = append(errs, FieldError{Path: "os", Rule: "enum", Message: fmt.Sprintf("os %q is not linux or windows", q.OS)})
	}
	if q.Category != "" && q.Category != "script" && q.Category != "software" {
		errs = append(errs, FieldError{Path: "category", Rule: "enum", Message: fmt.Sprintf("category %q is not script or software", q.Category)})
	}
	if len(q.Q) > maxQueryLength {
		errs = append(errs, FieldError{Path: "q", Rule: "max_length", Message: fmt.Sprintf("q has at most %d characters", maxQueryLength)})
	}
	if len(errs) > 0 {
		return queryProblem(errs)
	}
	ctx := c.Request().Context()
	view, err := s.libraryView(ctx, principalFrom(c))
	if err != nil {
		return err
	}
	q.Visible, q.Limit, q.Cursor = view.sees, pr.Limit, storeCursor(pr)
	pkgs, next, err := s.store.Packages(ctx, q)
	if errors.Is(err, store.ErrBadCursor) {
		return badCursor()
	}
	if err != nil {
		return err
	}
	out := page[packageJSON]{Items: make([]packageJSON, 0, len(pkgs)), NextCursor: next}
	for _, p := range pkgs {
		out.Items = append(out.Items, toPackageJSON(p))
	}
	return c.JSON(http.StatusOK, out)
}

// pkg loads the package named in the path, or 404 when it does not exist
// or the caller may not see it.
func (s *Server) pkg(c echo.Context) (store.Package, error) {
	ctx := c.Request().Context()
	// UUIDs are stored in lower case, as the manifest validator gives them.
	p, err := s.store.Package(ctx, strings.ToLower(c.Param("uuid")))
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, notFound("package")
	}
	if err != nil {
		return store.Package{}, err
	}
	view, err := s.libraryView(ctx, principalFrom(c))
	if err != nil {
		return store.Package{}, err
	}
	if !view.sees(p) {
		return store.Package{}, notFound("package")
	}
	return p, nil
}

// version loads the package and version named in the path.
func (s *Server) version(c echo.Context) (store.Package, store.Version, error) {
	p, err := s.pkg(c)
	if err != nil {
		return store.Package{}, store.Version{}, err
	}
	v, err := s.store.Version(c.Request().Context(), p.ID, canonicalVersion(c.Param("version")))
	if errors.Is(err, store.ErrNotFound) {
		return store.Package{}, store.Version{}, notFound("version")
	}
	if err != nil {
		return store.Package{}, store.Version{}, err
	}
	return p, v, nil
}

// canonicalVersion spells a semantic version as publishing recorded it
// ("v1.2.0" is 1.2.0); revision numbers and anything else stay as given.
func canonicalVersion(v string) string {
	if sv, err := manifest.ParseVersion(v); err == nil {
		return sv.String()
	}
	return v
}

// getPackage answers GET /packages/{uuid} with its versions, lowest first.
func (s *Server) getPackage(c echo.Context) error {
	p, err := s.pkg(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	vs, err := s.store.Versions(ctx, p.ID)
	if err != nil {
		return err
	}
	out := toPackageJSON(p)
	if out.Fleet, err = s.fleetSummary(ctx, p); err != nil {
		return err
	}
	out.Versions = make([]versionItem, 0, len(vs))
	for _, name := range vs {
		v, err := s.store.Version(ctx, p.ID, name)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return err
		}
		out.Versions = append(out.Versions, versionItem{
			Version: v.Version, SHA256: v.SHA256, Size: v.Size,
			PublishedAt: v.PublishedAt.UTC(), PublishedBy: v.PublishedBy, Active: v.Version == p.ActiveVersion,
		})
	}
	return c.JSON(http.StatusOK, out)
}

// getVersion answers GET /packages/{uuid}/versions/{version}.
func (s *Server) getVersion(c echo.Context) error {
	p, v, err := s.version(c)
	if err != nil {
		return err
	}
	out := versionJSON{
		PackageID: v.PackageID, Version: v.Version, Active: v.Version == p.ActiveVersion,
		Manifest: v.Manifest, Parameters: []manifest.Field{}, Files: nonNil(v.Files), Requires: nonNil(v.Requires),
		SHA256: v.SHA256, Size: v.Size, PublishedAt: v.PublishedAt.UTC(), PublishedBy: v.PublishedBy,
		UploadID: v.UploadID, Warnings: publicProblems(v.Warnings),
	}
	var m manifest.Manifest
	if err := json.Unmarshal(v.Manifest, &m); err == nil {
		out.Parameters = m.Form()
	} else {
		s.log(c).Warn("decode a stored manifest", "package", p.ID, "version", v.Version, "err", err)
	}
	return c.JSON(http.StatusOK, out)
}

// getArchive answers GET /packages/{uuid}/versions/{version}/archive
// with the .zip as published (ranges and conditional requests work).
func (s *Server) getArchive(c echo.Context) error {
	p, v, err := s.version(c)
	if err != nil {
		return err
	}
	bs, err := s.blobStore()
	if err != nil {
		return err
	}
	obj, err := bs.Open(c.Request().Context(), v.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		s.log(c).Error("the archive of a published version is missing", "package", p.ID, "version", v.Version, "key", v.BlobKey)
		return notFound("archive")
	}
	if err != nil {
		return fmt.Errorf("open archive: %w", err)
	}
	defer func() { _ = obj.Close() }() // read-only: nothing to lose
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "application/zip")
	h.Set(echo.HeaderContentDisposition, fmt.Sprintf("attachment; filename=%q", archiveName(p.Name, v.Version)))
	h.Set("ETag", `"`+v.SHA256+`"`)
	http.ServeContent(c.Response(), c.Request(), "", v.PublishedAt, obj)
	return nil
}

// archiveName is the download's file name: the package name and version,
// with anything but letters, digits and ". _ -" turned into "-".
func archiveName(name, version string) string {
	clean := strings.Map(func(r rune) rune {
		if r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return r
		}
		return '-'
	}, name+"-"+version)
	return clean + ".zip"
}

// deleteVersion answers DELETE /packages/{uuid}/versions/{version}. The
// caller must manage the owning account (its own or a sub-account); a
// vendor's package is only deleted by the vendor (403 for anyone else);
// the active version, a version an active closure holds and a version a
// schedule deploys are never deleted (409).
func (s *Server) deleteVersion(c echo.Context) error {
	p, v, err := s.version(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	caller := principalFrom(c)
	ok, err := s.canSee(ctx, caller, p.AccountID)
	if err != nil {
		return err
	}
	if !ok {
		return newProblem(http.StatusForbidden, "", "only the account that owns a package (or one above it) deletes its versions")
	}
	scheds, err := s.store.SchedulesUsingVersion(ctx, p.ID, v.Version)
	if err != nil {
		return err
	}
	if len(scheds) > 0 {
		return newProblem(http.StatusConflict, "", fmt.Sprintf("version %s of %s is deployed by the schedule %q (%s); change or delete the schedule first",
			v.Version, p.ID, scheds[0].Name, scheds[0].ID))
	}
	removed, err := s.store.DeleteVersion(ctx, p.ID, v.Version, caller.AccountID)
	var ce *store.ConflictError
	switch {
	case errors.Is(err, store.ErrVendorLocked) && errors.As(err, &ce):
		return newProblem(http.StatusForbidden, "", ce.Message).withCause(err)
	case errors.As(err, &ce):
		return newProblem(http.StatusConflict, "", ce.Message).withCause(err)
	case errors.Is(err, store.ErrNotFound):
		return notFound("version")
	case err != nil:
		return err
	}
	if bs, err := s.blobStore(); err == nil {
		if err := bs.Delete(context.WithoutCancel(ctx), removed.BlobKey); err != nil {
			s.log(c).Warn("delete the archive of a deleted version", "key", removed.BlobKey, "err", err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}
