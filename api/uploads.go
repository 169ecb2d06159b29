package api

import (
	"archive/zip"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/hibiken/asynq"
	"github.com/labstack/echo/v4"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// BlobStore keeps package archives; *blob.Store satisfies it.
type BlobStore interface {
	Put(ctx context.Context, key string, r io.Reader, opts ...blob.PutOption) (blob.Info, error)
	Open(ctx context.Context, key string) (*blob.Object, error)
	Delete(ctx context.Context, key string) error
	Ready(ctx context.Context) error
}

// packageRoutes registers uploads, publishing and the library.
func (s *Server) packageRoutes(g *echo.Group) {
	publisher := requireRole(store.RolePublisher)
	g.POST("/uploads", s.createUpload, publisher, bodyLimit(s.opts.UploadLimit))
	g.GET("/uploads", s.listUploads)
	g.GET("/uploads/:id", s.getUpload)
	g.GET("/uploads/:id/manifest", s.getUploadManifest)
	g.POST("/uploads/:id/publish", s.publishUpload, publisher)
	g.DELETE("/uploads/:id", s.deleteUpload, publisher)

	g.GET("/packages", s.listPackages)
	g.GET("/packages/:uuid", s.getPackage)
	g.GET("/packages/:uuid/versions/:version", s.getVersion)
	g.GET("/packages/:uuid/versions/:version/archive", s.getArchive)
	g.DELETE("/packages/:uuid/versions/:version", s.deleteVersion, publisher)
}

// uploadJSON is an upload as the API shows it.
type uploadJSON struct {
	ID        string                `json:"id"`
	AccountID string                `json:"account_id"`
	Status    store.UploadStatus    `json:"status"`
	SHA256    string                `json:"sha256"`
	Size      int64                 `json:"size"`
	Filename  string                `json:"filename,omitempty"`
	CreatedAt time.Time             `json:"created_at"`
	CreatedBy string                `json:"created_by,omitempty"`
	UpdatedAt time.Time             `json:"updated_at"`
	Errors    []store.Problem       `json:"errors"`
	Warnings  []store.Problem       `json:"warnings"`
	PackageID string                `json:"package_id,omitempty"`
	Version   string                `json:"version,omitempty"`
	TaskID    string                `json:"task_id,omitempty"`
	Publish   *store.PublishOptions `json:"publish,omitempty"`
}

func toUploadJSON(u store.Upload) uploadJSON {
	return uploadJSON{
		ID: u.ID, AccountID: u.AccountID, Status: u.Status, SHA256: u.SHA256, Size: u.Size,
		Filename: u.Filename, CreatedAt: u.CreatedAt.UTC(), CreatedBy: u.CreatedBy, UpdatedAt: u.UpdatedAt.UTC(),
		Errors: publicProblems(u.Errors), Warnings: publicProblems(u.Warnings),
		PackageID: u.PackageID, Version: u.Version, TaskID: u.TaskID, Publish: u.Publish,
	}
}

func (s *Server) blobStore() (BlobStore, error) {
	if s.opts.Blob == nil {
		return nil, newProblem(http.StatusServiceUnavailable, "", "package storage is not configured")
	}
	return s.opts.Blob, nil
}

// createUpload answers POST /uploads: the archive is streamed into the
// blob store (never held in memory), its size and sha256 computed on the
// way, and recorded as a pending upload. The body is a multipart form
// whose "package" field holds the file, or the raw .zip
// (application/zip, application/octet-stream). Over the upload limit the
// answer is 413 and nothing is stored.
func (s *Server) createUpload(c echo.Context) error {
	bs, err := s.blobStore()
	if err != nil {
		return err
	}
	req := c.Request()
	ctx := req.Context()
	p := principalFrom(c)
	id := uuid.NewString()
	key := blob.UploadKey(id)

	var (
		info     blob.Info
		filename string
	)
	mediaType, params, _ := mime.ParseMediaType(req.Header.Get(echo.HeaderContentType))
	switch mediaType {
	case "multipart/form-data":
		info, filename, err = s.putMultipart(c, bs, key, params["boundary"])
	case "application/zip", "application/x-zip-compressed", "application/octet-stream":
		filename = rawFilename(req)
		info, err = bs.Put(ctx, key, req.Body, blob.MaxSize(s.opts.UploadLimit))
	default:
		return newProblem(http.StatusUnsupportedMediaType, "",
			"send the package as multipart/form-data (field \"package\") or as a raw application/zip body")
	}
	if err != nil {
		return s.uploadFailed(ctx, bs, key, err)
	}
	if info.Size == 0 {
		_ = bs.Delete(context.WithoutCancel(ctx), key)
		return validationProblem([]FieldError{{Path: "package", Rule: "required", Message: "the package archive is empty; send the .zip"}})
	}
	u, err := s.store.CreateUpload(ctx, store.Upload{
		ID: id, AccountID: p.AccountID, BlobKey: key, SHA256: info.SHA256, Size: info.Size,
		Filename: filename, CreatedBy: p.UserID,
	})
	if err != nil {
		if derr := bs.Delete(context.WithoutCancel(ctx), key); derr != nil {
			s.log(c).Warn("drop the archive of an unrecorded upload", "key", key, "err", derr)
		}
		return fmt.Errorf("record upload: %w", err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/uploads/"+u.ID)
	return c.JSON(http.StatusCreated, toUploadJSON(u))
}

// putMultipart streams the "package" part of a multipart body into the
// blob store; other parts are skipped.
func (s *Server) putMultipart(c echo.Context, bs BlobStore, key, boundary string) (blob.Info, string, error) {
	if boundary == "" {
		return blob.Info{}, "", newProblem(http.StatusBadRequest, "Malformed multipart body", "the multipart/form-data content type has no boundary")
	}
	mr, err := c.Request().MultipartReader()
	if err != nil {
		return blob.Info{}, "", newProblem(http.StatusBadRequest, "Malformed multipart body", err.Error())
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return blob.Info{}, "", validationProblem([]FieldError{{Path: "package", Rule: "required",
				Message: "the form has no \"package\" field; send the .zip in a file field named package"}})
		}
		if err != nil {
			return blob.Info{}, "", malformedMultipart(err)
		}
		if part.FormName() != "package" {
			if _, err := io.Copy(io.Discard, part); err != nil {
				return blob.Info{}, "", malformedMultipart(err)
			}
			continue
		}
		info, err := bs.Put(c.Request().Context(), key, part, blob.MaxSize(s.opts.UploadLimit))
		return info, cleanFilename(part.FileName()), err
	}
}

// malformedMultipart is the answer to a multipart body that cannot be
// read: 413 past the limit, 400 otherwise.
func malformedMultipart(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return err
	}
	return newProblem(http.StatusBadRequest, "Malformed multipart body", err.Error()).withCause(err)
}

// uploadFailed removes whatever an upload left and turns err into the
// answer: 413 over the limit, the problem itself for bad bodies.
func (s *Server) uploadFailed(ctx context.Context, bs BlobStore, key string, err error) error {
	// Put leaves nothing behind on failure; a multipart body that failed
	// after its package part was stored is cleaned up here.
	_ = bs.Delete(context.WithoutCancel(ctx), key)
	var tooLarge *http.MaxBytesError
	if errors.Is(err, blob.ErrTooLarge) || errors.As(err, &tooLarge) {
		return newProblem(http.StatusRequestEntityTooLarge, "",
			fmt.Sprintf("the package is larger than the upload limit of %d bytes", s.opts.UploadLimit)).withCause(err)
	}
	var prob *Problem
	if errors.As(err, &prob) {
		return prob
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return newProblem(http.StatusBadRequest, "", "the upload ended before the whole body arrived; send it again").withCause(err)
	}
	return fmt.Errorf("store upload: %w", err)
}

// rawFilename takes the file name of a raw upload from ?filename= or a
// Content-Disposition header.
func rawFilename(req *http.Request) string {
	if n := req.URL.Query().Get("filename"); n != "" {
		return cleanFilename(n)
	}
	if _, params, err := mime.ParseMediaType(req.Header.Get("Content-Disposition")); err == nil {
		return cleanFilename(params["filename"])
	}
	return ""
}

// cleanFilename keeps the base name, without control characters, at most
// 255 bytes long.
func cleanFilename(n string) string {
	n = path.Base(strings.ReplaceAll(n, `\`, "/"))
	if n == "." || n == "/" {
		return ""
	}
	n = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, n)
	if len(n) > 255 {
		n = n[:255]
	}
	return n
}

// visibleAccounts returns the accounts whose uploads the caller sees: its
// own and its sub-accounts (nil, meaning all, for the root account).
func (s *Server) visibleAccounts(ctx context.Context, p Principal) ([]string, error) {
	if p.AccountID == store.RootAccountID {
		return nil, nil
	}
	kids, err := s.store.Descendants(ctx, p.AccountID)
	if err != nil {
		return nil, fmt.Errorf("sub-accounts of %s: %w", p.AccountID, err)
	}
	return append([]string{p.AccountID}, kids...), nil
}

// listUploads answers GET /uploads: the pending list by default;
// ?status= takes one or more statuses, comma-separated.
func (s *Server) listUploads(c echo.Context) error {
	pr, err := parsePage(c)
	var errs []FieldError
	var prob *Problem
	if errors.As(err, &prob) {
		errs = append(errs, prob.Errors...)
	} else if err != nil {
		return err
	}
	statuses := []store.UploadStatus{store.UploadPending}
	if v := c.QueryParam("status"); v != "" {
		statuses = nil
		for st := range strings.SplitSeq(v, ",") {
			us := store.UploadStatus(strings.TrimSpace(st))
			if !us.Valid() {
				errs = append(errs, FieldError{Path: "status", Rule: "enum",
					Message: fmt.Sprintf("status %q is not pending, publishing, published or rejected", st)})
				continue
			}
			statuses = append(statuses, us)
		}
	}
	if len(errs) > 0 {
		return queryProblem(errs)
	}
	ctx := c.Request().Context()
	accounts, err := s.visibleAccounts(ctx, principalFrom(c))
	if err != nil {
		return err
	}
	ups, next, err := s.store.Uploads(ctx, store.UploadQuery{
		Accounts: accounts, Statuses: statuses, Limit: pr.Limit, Cursor: storeCursor(pr),
	})
	if errors.Is(err, store.ErrBadCursor) {
		return badCursor()
	}
	if err != nil {
		return err
	}
	out := page[uploadJSON]{Items: make([]uploadJSON, 0, len(ups)), NextCursor: next}
	for _, u := range ups {
		out.Items = append(out.Items, toUploadJSON(u))
	}
	return c.JSON(http.StatusOK, out)
}

// storeCursor hands the store back the cursor it produced: parsePage
// decoded the opaque text, the store wants it as it was sent.
func storeCursor(pr pageRequest) string {
	if pr.After == "" {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString([]byte(pr.After))
}

func badCursor() error {
	return queryProblem([]FieldError{{Path: "cursor", Rule: "cursor",
		Message: "cursor must be a next_cursor returned by an earlier page"}})
}

// upload loads the upload named in the path, or 404 when it does not
// exist or the caller may not see it.
func (s *Server) upload(c echo.Context) (store.Upload, error) {
	u, err := s.store.Upload(c.Request().Context(), c.Param("id"))
	if errors.Is(err, store.ErrNotFound) {
		return store.Upload{}, notFound("upload")
	}
	if err != nil {
		return store.Upload{}, err
	}
	if err := s.mustSee(c, u.AccountID, "upload"); err != nil {
		return store.Upload{}, err
	}
	return u, nil
}

func (s *Server) getUpload(c echo.Context) error {
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toUploadJSON(u))
}

// previewJSON is what GET /uploads/{id}/manifest shows: the manifest and
// the form a deployment will ask for, or the problems that stop the
// package from publishing.
type previewJSON struct {
	UploadID string             `json:"upload_id"`
	Valid    bool               `json:"valid"`
	SHA256   string             `json:"sha256"`
	Size     int64              `json:"size"`
	OS       string             `json:"os,omitempty"`
	Manifest *manifest.Manifest `json:"manifest"`
	Form     []manifest.Field   `json:"form"`
	Files    []manifest.File    `json:"files"`
	Errors   []manifest.Problem `json:"errors"`
	Warnings []manifest.Problem `json:"warnings"`
}

// getUploadManifest checks the archive with every package rule and shows
// what publishing would record. An upload's archive never changes, so it
// is checked once and the result kept (per API process): concurrent
// requests share one check, which stops when every requester has gone.
func (s *Server) getUploadManifest(c echo.Context) error {
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	bs, err := s.blobStore()
	if err != nil {
		return err
	}
	errGone := newProblem(http.StatusGone, "", "the archive of this upload is no longer stored")
	pkg, rep, err := s.previews.Check(c.Request().Context(), u.ID+":"+u.SHA256, func(ctx context.Context) (*manifest.Package, manifest.Report, error) {
		obj, err := bs.Open(ctx, u.BlobKey)
		if errors.Is(err, blob.ErrNotFound) {
			return nil, manifest.Report{}, errGone
		}
		if err != nil {
			return nil, manifest.Report{}, fmt.Errorf("open upload archive: %w", err)
		}
		defer func() { _ = obj.Close() }() // read-only: nothing to lose
		return manifest.CheckArchive(ctx, obj, obj.Size(), s.archiveLimits())
	})
	if errors.Is(err, errGone) {
		return errGone
	}
	if err != nil {
		return fmt.Errorf("check upload archive: %w", err)
	}
	out := previewJSON{
		UploadID: u.ID, Valid: rep.OK(), SHA256: u.SHA256, Size: u.Size,
		Form: []manifest.Field{}, Files: []manifest.File{},
		Errors: nonNil(rep.Errors), Warnings: nonNil(rep.Warnings),
	}
	if pkg != nil {
		out.Files = nonNil(pkg.Files)
		if pkg.Manifest != nil {
			out.Manifest = pkg.Manifest
			out.OS = pkg.Manifest.OS()
			out.Form = pkg.Manifest.Form()
		}
	}
	return c.JSON(http.StatusOK, out)
}

// archiveLimits are the package rules' limits: an archive the API
// accepted is never refused for its size when checked. The publish task
// is configured with the same limit.
func (s *Server) archiveLimits() manifest.Limits {
	return manifest.Limits{MaxArchiveSize: s.opts.UploadLimit}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// publishRequest is the body of POST /uploads/{id}/publish.
type publishRequest struct {
	Category   string   `json:"category"`
	OS         string   `json:"os"`
	OSVersions []string `json:"os_versions"`
	Visibility string   `json:"visibility"`
	Force      bool     `json:"force"`
}

// publishUpload answers POST /uploads/{id}/publish: 202 with the task
// that publishes. One publish runs at a time per upload: while one is in
// flight, and once the upload is published, the answer is 409 (naming the
// task). A rejected upload may be published again, for instance with
// force or another OS.
func (s *Server) publishUpload(c echo.Context) error {
	var req publishRequest
	if err := decodeJSON(c, &req); err != nil {
		return err
	}
	opts := store.PublishOptions{
		Category: req.Category, OS: req.OS, OSVersions: nonNil(req.OSVersions), Visibility: req.Visibility, Force: req.Force,
		RequestedBy: principalFrom(c).UserID,
	}
	if probs := store.CheckPublishOptions(opts); len(probs) > 0 {
		errs := make([]FieldError, 0, len(probs))
		for _, p := range probs {
			errs = append(errs, FieldError{Path: p.Path, Rule: p.Rule, Message: p.Message})
		}
		return validationProblem(errs)
	}
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	if s.opts.Enqueuer == nil {
		return newProblem(http.StatusServiceUnavailable, "", "no task queue is configured")
	}
	ctx := c.Request().Context()
	if err := s.checkLibraryRules(ctx, u, opts); err != nil {
		return err
	}
	id := u.ID
	u, err = s.store.BeginPublish(ctx, id, opts)
	if errors.Is(err, store.ErrConflict) {
		cur, _ := s.store.Upload(ctx, id)
		return newProblem(http.StatusConflict, "",
			fmt.Sprintf("upload %s is %s (task %s); only pending and rejected uploads can be published", id, cur.Status, cur.TaskID)).withCause(err)
	}
	if err != nil {
		return err
	}
	task, taskOpts, err := tasks.NewPublishTask(u)
	if err == nil {
		_, err = s.opts.Enqueuer.Enqueue(ctx, u.AccountID, task, taskOpts...)
	}
	if err != nil && !errors.Is(err, asynq.ErrTaskIDConflict) {
		if aerr := s.store.AbortPublish(context.WithoutCancel(ctx), u.ID, u.TaskID); aerr != nil {
			s.log(c).Error("return an upload to pending after a failed enqueue", "upload", u.ID, "err", aerr)
		}
		return newProblem(http.StatusServiceUnavailable, "", "cannot queue the publish now; try again").withCause(err)
	}
	c.Response().Header().Set(echo.HeaderLocation, "/api/v1/tasks/"+u.TaskID)
	return c.JSON(http.StatusAccepted, map[string]string{"task_id": u.TaskID, "upload_id": u.ID, "status": string(u.Status)})
}

// checkLibraryRules refuses at once (409 listing every refusal) a publish
// the library would refuse: an existing version without force, a
// vendor-locked version, another account's UUID, a taken name. It reads
// only the manifest of the archive; an archive or manifest it cannot read
// is left to the publish task, which checks everything again and rejects
// the upload with every problem.
func (s *Server) checkLibraryRules(ctx context.Context, u store.Upload, opts store.PublishOptions) error {
	if s.opts.Blob == nil {
		return nil
	}
	m := s.uploadManifest(ctx, u)
	if m == nil || m.Metadata.UUID == "" {
		return nil
	}
	req := store.PublishRequest{AccountID: u.AccountID, ID: m.Metadata.UUID, Name: m.Metadata.Name, Options: opts}
	if m.Metadata.Version != "" {
		v, err := manifest.ParseVersion(m.Metadata.Version)
		if err != nil {
			return nil
		}
		req.Version = v.String()
	}
	err := s.store.CheckPublish(ctx, req)
	refused := store.Conflicts(err)
	if len(refused) == 0 {
		return err
	}
	p := newProblem(http.StatusConflict, "", fmt.Sprintf("the library refuses this publish: %s", refused[0].Message)).withCause(err)
	for _, ce := range refused {
		p.Errors = append(p.Errors, FieldError{Path: manifestPathOf(ce.Rule), Rule: ce.Rule, Message: ce.Message})
	}
	return p
}

// manifestPathOf is the manifest element a library refusal is about.
func manifestPathOf(rule string) string {
	switch rule {
	case "package.uuid.owner":
		return "/Manifest/Metadata/UUID"
	case "package.name.taken":
		return "/Manifest/Metadata/Name"
	}
	return "/Manifest/Metadata/Version"
}

// uploadManifest parses the manifest at the root of u's archive, or
// returns nil when it cannot.
func (s *Server) uploadManifest(ctx context.Context, u store.Upload) *manifest.Manifest {
	obj, err := s.opts.Blob.Open(ctx, u.BlobKey)
	if err != nil {
		return nil
	}
	defer func() { _ = obj.Close() }() // read-only
	zr, err := zip.NewReader(obj, obj.Size())
	if err != nil {
		return nil
	}
	for _, f := range zr.File {
		if f.Name != "package.manifest" {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil
		}
		b, err := io.ReadAll(io.LimitReader(rc, 1<<20))
		_ = rc.Close()
		if err != nil {
			return nil
		}
		m, _ := manifest.ParseBytes(b)
		return m
	}
	return nil
}

// deleteUpload answers DELETE /uploads/{id}: pending and rejected uploads
// go, with their archive; others answer 409.
func (s *Server) deleteUpload(c echo.Context) error {
	u, err := s.upload(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u, err = s.store.DeleteUpload(ctx, u.ID)
	if errors.Is(err, store.ErrConflict) {
		return newProblem(http.StatusConflict, "", "only pending and rejected uploads can be deleted").withCause(err)
	}
	if err != nil {
		return err
	}
	if bs, err := s.blobStore(); err == nil {
		if err := bs.Delete(context.WithoutCancel(ctx), u.BlobKey); err != nil {
			s.log(c).Warn("delete the archive of a deleted upload", "key", u.BlobKey, "err", err)
		}
	}
	return c.NoContent(http.StatusNoContent)
}
