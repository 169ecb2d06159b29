package tasks

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"

	"github.com/hibiken/asynq"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
)

// PublishPayload is the payload of package:publish.
type PublishPayload struct {
	UploadID string `json:"upload_id"`
	// TaskID is the task ID the upload recorded for this publish request;
	// a task whose upload has moved on to another request does nothing.
	TaskID string `json:"task_id"`
}

// Outcomes of package:publish.
const (
	OutcomePublished = "published"
	// OutcomeRejected: the package broke a rule (a user error). The task
	// completes, so that the queue monitor does not count it a failure;
	// the upload lists every problem.
	OutcomeRejected = "rejected"
)

// PublishResult is what package:publish writes as its result.
type PublishResult struct {
	Outcome   string `json:"outcome"`
	PackageID string `json:"package_id,omitempty"`
	Version   string `json:"version,omitempty"`
	UploadID  string `json:"upload_id"`
	// Problems counts the problems of a rejected upload and Upload is
	// where they are listed (GET it).
	Problems int    `json:"problems,omitempty"`
	Upload   string `json:"upload,omitempty"`
}

// NewPublishTask returns the package:publish task of an upload and the
// options to enqueue it with: the publish queue and the task ID the upload
// recorded when its publish began (store.Store.BeginPublish), so that a
// repeated enqueue of one request is refused by asynq.
func NewPublishTask(u store.Upload) (*asynq.Task, []asynq.Option, error) {
	if u.ID == "" || u.TaskID == "" {
		return nil, nil, errors.New("tasks: publish task needs an upload that began publishing")
	}
	b, err := json.Marshal(PublishPayload{UploadID: u.ID, TaskID: u.TaskID})
	if err != nil {
		return nil, nil, fmt.Errorf("tasks: encode publish payload: %w", err)
	}
	return asynq.NewTask(TypePublish, b), []asynq.Option{asynq.Queue(QueuePublish), asynq.TaskID(u.TaskID)}, nil
}

// PublishOptions configures the package:publish handler.
type PublishOptions struct {
	Store *store.Store
	Blob  *blob.Store
	// Limits bound the archives accepted (manifest defaults when zero).
	Limits manifest.Limits
	// Logger receives the handler's logs; nil discards.
	Logger *slog.Logger
}

// PublishHandler runs package:publish: it validates an upload's archive
// and records it in the library, or rejects the upload with every problem.
//
// Invalid packages and library conflicts are final: the upload is rejected
// and the task completes with outcome "rejected" (a user error is not a
// task failure). Storage and Redis errors are
// returned as they are, so asynq retries them; every step is safe to
// repeat, and a task that finds its upload already published only writes
// its result again. When the last retry fails too, the upload is rejected
// (rule publish.failed) so that it can be published again.
type PublishHandler struct {
	store  *store.Store
	blob   *blob.Store
	limits manifest.Limits
	log    *slog.Logger
}

// NewPublishHandler returns the package:publish handler.
func NewPublishHandler(o PublishOptions) (*PublishHandler, error) {
	if o.Store == nil || o.Blob == nil {
		return nil, errors.New("tasks: publish handler needs a store and a blob store")
	}
	if err := o.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("tasks: publish handler: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &PublishHandler{store: o.Store, blob: o.Blob, limits: o.Limits, log: o.Logger}, nil
}

// ProcessTask implements asynq.Handler.
func (h *PublishHandler) ProcessTask(ctx context.Context, t *asynq.Task) error {
	var p PublishPayload
	if err := json.Unmarshal(t.Payload(), &p); err != nil || p.UploadID == "" || p.TaskID == "" {
		return fmt.Errorf("tasks: publish: bad payload %q: %w", t.Payload(), asynq.SkipRetry)
	}
	log := h.log.With("task_id", p.TaskID, "upload", p.UploadID)

	u, err := h.store.Upload(ctx, p.UploadID)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("tasks: publish: upload %s is gone: %w", p.UploadID, asynq.SkipRetry)
	}
	if err != nil {
		return fmt.Errorf("tasks: publish: %w", err)
	}
	switch {
	case u.TaskID != p.TaskID:
		return fmt.Errorf("tasks: publish: upload %s is now handled by task %s: %w", u.ID, u.TaskID, asynq.SkipRetry)
	case u.Status == store.UploadPublished:
		// An earlier attempt recorded the version and stopped before
		// finishing: finish now.
		h.dropUploadBlob(ctx, log, u.ID)
		return writeResult(t, PublishResult{Outcome: OutcomePublished, PackageID: u.PackageID, Version: u.Version, UploadID: u.ID})
	case u.Status != store.UploadPublishing:
		return fmt.Errorf("tasks: publish: upload %s is %s: %w", u.ID, u.Status, asynq.SkipRetry)
	}

	res, problems, warnings, err := h.publish(ctx, log, u)
	if err != nil {
		if lastAttempt(ctx) {
			// No retry follows: give the upload back to its owner, who
			// may publish it again, instead of leaving it publishing.
			problem := store.Problem{Rule: "publish.failed", Message: fmt.Sprintf("publishing failed after every retry (%v); publish again", err)}
			if _, rerr := h.store.RejectUpload(context.WithoutCancel(ctx), u.ID, u.TaskID, []store.Problem{problem}, nil); rerr != nil {
				log.ErrorContext(ctx, "reject an upload after the last attempt", "error", rerr)
			}
		}
		return err
	}
	if len(problems) > 0 {
		if _, err := h.store.RejectUpload(ctx, u.ID, u.TaskID, problems, warnings); err != nil {
			return fmt.Errorf("tasks: publish: reject upload %s: %w", u.ID, err)
		}
		log.InfoContext(ctx, "upload rejected", "problems", len(problems), "first", problems[0].Message)
		return writeResult(t, PublishResult{Outcome: OutcomeRejected, UploadID: u.ID, Problems: len(problems), Upload: "/api/v1/uploads/" + u.ID})
	}
	if res.Replaced != nil && res.Replaced.BlobKey != res.Version.BlobKey {
		if err := h.blob.Delete(ctx, res.Replaced.BlobKey); err != nil {
			log.WarnContext(ctx, "delete the archive of an overwritten version", "key", res.Replaced.BlobKey, "error", err)
		}
	}
	h.dropUploadBlob(ctx, log, u.ID)
	log.InfoContext(ctx, "package published", "package", res.Package.ID, "version", res.Version.Version)
	return writeResult(t, PublishResult{Outcome: OutcomePublished, PackageID: res.Package.ID, Version: res.Version.Version, UploadID: u.ID})
}

// publish checks the archive and records it. Problems mean the upload is
// to be rejected; an error means the attempt is to be retried.
func (h *PublishHandler) publish(ctx context.Context, log *slog.Logger, u store.Upload) (store.PublishResult, []store.Problem, []store.Problem, error) {
	var none store.PublishResult
	opts := store.PublishOptions{}
	if u.Publish != nil {
		opts = *u.Publish
	}
	problems := store.CheckPublishOptions(opts)

	obj, err := h.blob.Open(ctx, u.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return none, append(problems, store.Problem{Rule: "upload.archive.missing", Message: "the uploaded archive is missing from storage; upload the package again"}), nil, nil
	}
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: %w", err)
	}
	defer func() { _ = obj.Close() }() // read-only: nothing to lose
	pkg, rep, err := manifest.CheckArchive(ctx, obj, obj.Size(), h.limits)
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: check archive: %w", err)
	}
	problems = append(problems, fromManifest(rep.Errors)...)
	warnings := fromManifest(rep.Warnings)
	if pkg == nil || pkg.Manifest == nil {
		return none, problemsOrInvalid(problems), warnings, nil
	}
	m := pkg.Manifest
	if u.SHA256 != "" && pkg.SHA256 != u.SHA256 {
		problems = append(problems, store.Problem{Rule: "upload.archive.sha256",
			Message: fmt.Sprintf("the stored archive has sha256 %s, not %s as uploaded; upload the package again", pkg.SHA256, u.SHA256)})
	}
	if mos := m.OS(); mos != "" && opts.OS != "" && mos != opts.OS {
		problems = append(problems, store.Problem{Path: "/Manifest/Execution/Mode", Line: m.Execution.Line, Rule: "publish.os.mode",
			Message: fmt.Sprintf("os %q does not agree with Mode %s, which runs on %s; publish with os %q or change the Mode", opts.OS, m.Execution.Mode, mos, mos)})
	}
	version := ""
	if m.Metadata.Version != "" {
		v, err := manifest.ParseVersion(m.Metadata.Version)
		if err != nil {
			problems = append(problems, store.Problem{Path: "/Manifest/Metadata/Version", Rule: "metadata.version.format", Message: err.Error()})
		}
		version = v.String()
	}
	if len(problems) > 0 {
		return none, problems, warnings, nil
	}
	acct, err := h.store.Account(ctx, u.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return none, []store.Problem{{Rule: "upload.account.missing", Message: fmt.Sprintf("the account %s that uploaded the package no longer exists", u.AccountID)}}, warnings, nil
	}
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: account of upload %s: %w", u.ID, err)
	}
	manifestJSON, err := json.Marshal(m)
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: encode manifest: %w", err)
	}

	key := blob.PackageKey(m.Metadata.UUID, u.ID)
	if _, err := obj.Seek(0, 0); err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: rewind archive: %w", err)
	}
	info, err := h.blob.Put(ctx, key, obj)
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: store archive: %w", err)
	}
	if info.SHA256 != pkg.SHA256 {
		return none, nil, nil, fmt.Errorf("tasks: publish: archive changed while copied (sha256 %s, want %s)", info.SHA256, pkg.SHA256)
	}
	req := store.PublishRequest{
		UploadID: u.ID, TaskID: u.TaskID,
		AccountID: u.AccountID, Vendor: acct.Vendor, PublishedBy: cmp.Or(opts.RequestedBy, u.CreatedBy),
		ID: m.Metadata.UUID, Name: m.Metadata.Name, Description: m.Metadata.Description,
		Options: opts, Version: version, Manifest: manifestJSON,
		Files: filesOf(pkg.Files), Requires: requiresOf(m.Metadata.Requires),
		SHA256: pkg.SHA256, Size: pkg.Size, BlobKey: key, Warnings: warnings,
	}
	res, err := h.store.Publish(ctx, req)
	if refused := store.Conflicts(err); len(refused) > 0 {
		// The library refused the version: this upload's copy is not
		// referenced by anything.
		if derr := h.blob.Delete(ctx, key); derr != nil {
			log.WarnContext(ctx, "delete the archive of a refused publish", "key", key, "error", derr)
		}
		for _, ce := range refused {
			problems = append(problems, store.Problem{Path: conflictPath(ce.Rule), Rule: ce.Rule, Message: ce.Message})
		}
		return none, problems, warnings, nil
	}
	if err != nil {
		return none, nil, nil, fmt.Errorf("tasks: publish: record version: %w", err)
	}
	return res, nil, warnings, nil
}

// dropUploadBlob deletes the upload's own copy of the archive once the
// published copy is recorded.
func (h *PublishHandler) dropUploadBlob(ctx context.Context, log *slog.Logger, uploadID string) {
	if err := h.blob.Delete(ctx, blob.UploadKey(uploadID)); err != nil {
		log.WarnContext(ctx, "delete the uploaded archive after publishing", "error", err)
	}
}

func writeResult(t *asynq.Task, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("tasks: encode result: %w", err)
	}
	if w := t.ResultWriter(); w != nil {
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("tasks: write result: %w", err)
		}
	}
	return nil
}

// lastAttempt tells whether the running task gets no retry if it fails.
func lastAttempt(ctx context.Context) bool {
	n, ok1 := asynq.GetRetryCount(ctx)
	m, ok2 := asynq.GetMaxRetry(ctx)
	return ok1 && ok2 && n >= m
}

// problemsOrInvalid makes sure an unreadable archive is rejected with at
// least one problem.
func problemsOrInvalid(p []store.Problem) []store.Problem {
	if len(p) == 0 {
		return []store.Problem{{Rule: "archive.invalid", Message: "the archive could not be read as a package; upload a .zip with package.manifest at its root"}}
	}
	return p
}

func conflictPath(rule string) string {
	switch rule {
	case "package.uuid.owner":
		return "/Manifest/Metadata/UUID"
	case "package.name.taken":
		return "/Manifest/Metadata/Name"
	case "package.version.exists", "package.vendor.locked":
		return "/Manifest/Metadata/Version"
	}
	return ""
}

func fromManifest(ps []manifest.Problem) []store.Problem {
	out := make([]store.Problem, 0, len(ps))
	for _, p := range ps {
		out = append(out, store.Problem{Path: p.Path, Line: p.Line, Rule: p.Rule, Message: p.Message})
	}
	return out
}

func filesOf(fs []manifest.File) []store.PackageFile {
	out := make([]store.PackageFile, 0, len(fs))
	for _, f := range fs {
		out = append(out, store.PackageFile{Path: f.Path, Size: f.Size, Mode: uint32(f.Mode.Perm())})
	}
	return out
}

func requiresOf(rs []manifest.Requirement) []store.Requirement {
	out := make([]store.Requirement, 0, len(rs))
	for _, r := range rs {
		out = append(out, store.Requirement{UUID: r.UUID, Name: r.Name, Version: r.Version})
	}
	return out
}

// publishHandler builds the package:publish handler from the worker's
// dependencies. A worker started without a blob store still runs: its
// publish tasks fail (and retry) with an error saying what is missing.
func publishHandler(d Deps) asynq.Handler {
	h, err := NewPublishHandler(PublishOptions{Store: d.Store, Blob: d.Blob, Limits: d.ArchiveLimits, Logger: d.Logger})
	if err != nil {
		return asynq.HandlerFunc(func(context.Context, *asynq.Task) error { return err })
	}
	return h
}
