package store

import (
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
)

// UploadStatus is where an upload stands on its way into the library.
type UploadStatus string

// Upload statuses:
//
//	pending ──publish──▶ publishing ──▶ published
//	   ▲                     │
//	   └──── (enqueue failed)┤
//	                         ▼
//	                     rejected ──publish again──▶ publishing
const (
	UploadPending    UploadStatus = "pending"
	UploadPublishing UploadStatus = "publishing"
	UploadPublished  UploadStatus = "published"
	UploadRejected   UploadStatus = "rejected"
)

// Valid tells whether s is a known status.
func (s UploadStatus) Valid() bool {
	switch s {
	case UploadPending, UploadPublishing, UploadPublished, UploadRejected:
		return true
	}
	return false
}

// Problem is one reason an upload was rejected, or a warning about it.
type Problem struct {
	Path    string `json:"path"`
	Line    int    `json:"line,omitempty"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// PublishOptions is what the publisher chose for the library entry.
type PublishOptions struct {
	// Category is "script" or "software".
	Category string `json:"category"`
	// OS is "linux" or "windows"; it must agree with the manifest's Mode.
	OS         string   `json:"os"`
	OSVersions []string `json:"os_versions"`
	// Visibility is "private", "shared" or "public".
	Visibility string `json:"visibility"`
	// Force overwrites an existing version.
	Force bool `json:"force"`
	// RequestedBy is the user who asked for the publish; the version
	// records it as its publisher.
	RequestedBy string `json:"requested_by,omitempty"`
}

// Upload is an archive waiting to be published (pending), being published,
// published, or rejected with every problem found.
type Upload struct {
	ID        string       `json:"id"`
	AccountID string       `json:"account_id"`
	Status    UploadStatus `json:"status"`
	// BlobKey is where the archive is in the blob store.
	BlobKey   string    `json:"blob_key"`
	SHA256    string    `json:"sha256"`
	Size      int64     `json:"size"`
	Filename  string    `json:"filename,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
	UpdatedAt time.Time `json:"updated_at"`
	Errors    []Problem `json:"errors"`
	Warnings  []Problem `json:"warnings"`
	// PackageID and Version name the library entry once published.
	PackageID string `json:"package_id,omitempty"`
	Version   string `json:"version,omitempty"`
	// TaskID is the publish task of the latest publish request.
	TaskID string `json:"task_id,omitempty"`
	// Publish holds the options of the latest publish request.
	Publish *PublishOptions `json:"publish,omitempty"`
	// Attempts counts publish requests; it makes each request's task ID
	// distinct, since asynq keeps finished tasks' IDs for a while.
	Attempts int `json:"attempts"`
}

// Keys of packages, versions and uploads share one hash tag so that a
// publish (upload, package, name and version written together) is one
// transaction on one Redis Cluster slot.
func (s *Store) uploadKey(id string) string { return s.key("{pkg}", "upload", id) }
func (s *Store) uploadsKey() string         { return s.key("{pkg}", "uploads") }

// maxTxAttempts bounds optimistic transaction retries under contention.
const maxTxAttempts = 50

// pkgTx runs fn in a WATCH transaction on keys, retrying while other
// clients change the watched keys under it.
func (s *Store) pkgTx(ctx context.Context, fn func(tx *redis.Tx) error, keys ...string) error {
	var err error
	for range maxTxAttempts {
		err = s.rdb.Watch(ctx, fn, keys...)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return fmt.Errorf("store: transaction kept failing under contention: %w", err)
}

// getJSON reads the JSON record at key into v; ErrNotFound when missing.
func getJSON(ctx context.Context, c redis.Cmdable, key string, v any) error {
	b, err := c.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return ErrNotFound
	}
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// getRecord reads the JSON record at key. A missing key is ErrNotFound
// naming the record (what and args, formatted only on error); any other
// failure is wrapped as a store error.
func getRecord[T any](ctx context.Context, c redis.Cmdable, key, what string, args ...any) (T, error) {
	var v T
	if err := getJSON(ctx, c, key, &v); err != nil {
		name := fmt.Sprintf(what, args...)
		if errors.Is(err, ErrNotFound) {
			return v, fmt.Errorf("%s: %w", name, ErrNotFound)
		}
		return v, fmt.Errorf("store: get %s: %w", name, err)
	}
	return v, nil
}

// CreateUpload records u, which must carry its ID, account and blob key.
// An ID in use gives ErrConflict. The status is set to pending.
func (s *Store) CreateUpload(ctx context.Context, u Upload) (Upload, error) {
	if u.ID == "" || u.AccountID == "" || u.BlobKey == "" {
		return Upload{}, errors.New("store: an upload needs an id, an account and a blob key")
	}
	now := time.Now().UTC().Truncate(time.Millisecond)
	if u.CreatedAt.IsZero() {
		u.CreatedAt = now
	}
	u.UpdatedAt = now
	u.Status = UploadPending
	u.Errors, u.Warnings = emptyProblems(u.Errors), emptyProblems(u.Warnings)
	b, err := json.Marshal(u)
	if err != nil {
		return Upload{}, fmt.Errorf("store: encode upload: %w", err)
	}
	key := s.uploadKey(u.ID)
	err = s.pkgTx(ctx, func(tx *redis.Tx) error {
		n, err := tx.Exists(ctx, key).Result()
		if err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: upload %s exists", ErrConflict, u.ID)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, b, 0)
			p.ZAdd(ctx, s.uploadsKey(), redis.Z{Score: float64(u.CreatedAt.UnixMilli()), Member: u.ID})
			return nil
		})
		return err
	}, key)
	if errors.Is(err, ErrConflict) {
		return Upload{}, err
	}
	if err != nil {
		return Upload{}, fmt.Errorf("store: create upload: %w", err)
	}
	return u, nil
}

func emptyProblems(p []Problem) []Problem {
	if p == nil {
		return []Problem{}
	}
	return p
}

// Upload returns the upload with id, or ErrNotFound.
func (s *Store) Upload(ctx context.Context, id string) (Upload, error) {
	return getRecord[Upload](ctx, s.rdb, s.uploadKey(id), "upload %q", id)
}

// updateUpload applies fn to the upload in a transaction. fn returns an
// error to abort without writing.
func (s *Store) updateUpload(ctx context.Context, id string, fn func(*Upload) error) (Upload, error) {
	key := s.uploadKey(id)
	var out Upload
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var u Upload
		if err := getJSON(ctx, tx, key, &u); err != nil {
			return err
		}
		if err := fn(&u); err != nil {
			return err
		}
		u.UpdatedAt = time.Now().UTC().Truncate(time.Millisecond)
		b, err := json.Marshal(u)
		if err != nil {
			return err
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, b, 0)
			return nil
		})
		out = u
		return err
	}, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Upload{}, fmt.Errorf("upload %q: %w", id, ErrNotFound)
	case errors.Is(err, ErrConflict):
		return Upload{}, err
	case err != nil:
		return Upload{}, fmt.Errorf("store: update upload %s: %w", id, err)
	}
	return out, nil
}

// PublishTaskID is the task ID of an upload's n-th publish request.
func PublishTaskID(uploadID string, n int) string {
	return "publish:" + uploadID + ":" + strconv.Itoa(n)
}

// BeginPublish moves a pending or rejected upload to publishing with opts
// and returns it with the task ID the publish must be enqueued under. An
// upload already publishing or published gives ErrConflict: one publish at
// a time, and a published upload stays published.
func (s *Store) BeginPublish(ctx context.Context, id string, opts PublishOptions) (Upload, error) {
	return s.updateUpload(ctx, id, func(u *Upload) error {
		if u.Status != UploadPending && u.Status != UploadRejected {
			return fmt.Errorf("%w: upload %s is %s (task %s)", ErrConflict, id, u.Status, u.TaskID)
		}
		u.Attempts++
		u.Status = UploadPublishing
		u.TaskID = PublishTaskID(id, u.Attempts)
		o := opts
		u.Publish = &o
		u.Errors = []Problem{}
		return nil
	})
}

// AbortPublish moves an upload back from publishing to pending when the
// publish task taskID could not be enqueued.
func (s *Store) AbortPublish(ctx context.Context, id, taskID string) error {
	_, err := s.updateUpload(ctx, id, func(u *Upload) error {
		if u.Status != UploadPublishing || u.TaskID != taskID {
			return fmt.Errorf("%w: upload %s is %s (task %s)", ErrConflict, id, u.Status, u.TaskID)
		}
		u.Status = UploadPending
		return nil
	})
	return err
}

// RejectUpload records why the publish task taskID failed: the upload
// becomes rejected with every problem. It gives ErrConflict when the upload
// is not publishing under taskID (a stale task).
func (s *Store) RejectUpload(ctx context.Context, id, taskID string, errs, warns []Problem) (Upload, error) {
	return s.updateUpload(ctx, id, func(u *Upload) error {
		if u.Status != UploadPublishing || u.TaskID != taskID {
			return fmt.Errorf("%w: upload %s is %s (task %s)", ErrConflict, id, u.Status, u.TaskID)
		}
		u.Status = UploadRejected
		u.Errors = emptyProblems(errs)
		u.Warnings = emptyProblems(warns)
		return nil
	})
}

// DeleteUpload removes a pending or rejected upload and returns it, so the
// caller can delete its blob. Other statuses give ErrConflict.
func (s *Store) DeleteUpload(ctx context.Context, id string) (Upload, error) {
	key := s.uploadKey(id)
	var out Upload
	err := s.pkgTx(ctx, func(tx *redis.Tx) error {
		var u Upload
		if err := getJSON(ctx, tx, key, &u); err != nil {
			return err
		}
		if u.Status != UploadPending && u.Status != UploadRejected {
			return fmt.Errorf("%w: upload %s is %s; only pending and rejected uploads can be deleted", ErrConflict, id, u.Status)
		}
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Del(ctx, key)
			p.ZRem(ctx, s.uploadsKey(), id)
			return nil
		})
		out = u
		return err
	}, key)
	switch {
	case errors.Is(err, ErrNotFound):
		return Upload{}, fmt.Errorf("upload %q: %w", id, ErrNotFound)
	case errors.Is(err, ErrConflict):
		return Upload{}, err
	case err != nil:
		return Upload{}, fmt.Errorf("store: delete upload %s: %w", id, err)
	}
	return out, nil
}

// UploadQuery selects uploads, newest first.
type UploadQuery struct {
	// Accounts limits the answer to uploads of these accounts; nil means
	// every account.
	Accounts []string
	// Statuses limits the answer to these statuses; empty means any.
	Statuses []UploadStatus
	// Limit is the page size (default 50, at most 500).
	Limit int
	// Cursor continues a previous answer (its next cursor).
	Cursor string
}

// Page limits shared by the list methods.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

func pageSize(n int) int {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return n
}

// ErrBadCursor means a list cursor was not produced by the store.
var ErrBadCursor = errors.New("store: bad cursor")

// Uploads lists uploads matching q and returns the cursor of the next page
// ("" at the end).
func (s *Store) Uploads(ctx context.Context, q UploadQuery) ([]Upload, string, error) {
	limit := pageSize(q.Limit)
	top, after, err := decodeUploadCursor(q.Cursor)
	if err != nil {
		return nil, "", err
	}
	out := []Upload{}
	batch := int64(max(limit, 100))
	for {
		zs, err := s.rdb.ZRevRangeByScoreWithScores(ctx, s.uploadsKey(), &redis.ZRangeBy{
			Max: top, Min: "-inf", Count: batch,
		}).Result()
		if err != nil {
			return nil, "", fmt.Errorf("store: list uploads: %w", err)
		}
		ids := make([]string, 0, len(zs))
		scores := map[string]float64{}
		for _, z := range zs {
			id := z.Member.(string)
			// Entries with the cursor's score come in reverse lexical
			// order; skip those at or before the cursor's ID.
			if after.id != "" && z.Score == after.score && id >= after.id {
				continue
			}
			ids = append(ids, id)
			scores[id] = z.Score
		}
		ups, err := s.uploadsByID(ctx, ids)
		if err != nil {
			return nil, "", err
		}
		for _, u := range ups {
			if q.Accounts != nil && !slices.Contains(q.Accounts, u.AccountID) {
				continue
			}
			if len(q.Statuses) > 0 && !slices.Contains(q.Statuses, u.Status) {
				continue
			}
			out = append(out, u)
			if len(out) == limit {
				return out, encodeUploadCursor(scores[u.ID], u.ID), nil
			}
		}
		if int64(len(zs)) < batch {
			return out, "", nil
		}
		last := zs[len(zs)-1]
		after = uploadCursor{score: last.Score, id: last.Member.(string)}
		top = strconv.FormatFloat(last.Score, 'f', -1, 64)
	}
}

func (s *Store) uploadsByID(ctx context.Context, ids []string) ([]Upload, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = s.uploadKey(id)
	}
	vals, err := s.rdb.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, fmt.Errorf("store: list uploads: %w", err)
	}
	out := make([]Upload, 0, len(vals))
	for i, v := range vals {
		str, ok := v.(string)
		if !ok {
			continue // deleted since the index was read
		}
		var u Upload
		if err := json.Unmarshal([]byte(str), &u); err != nil {
			return nil, fmt.Errorf("store: decode upload %s: %w", ids[i], err)
		}
		out = append(out, u)
	}
	return out, nil
}

type uploadCursor struct {
	score float64
	id    string
}

func encodeUploadCursor(score float64, id string) string {
	raw := strconv.FormatFloat(score, 'f', -1, 64) + "|" + id
	return base64.RawURLEncoding.EncodeToString([]byte(raw))
}

func decodeUploadCursor(c string) (string, uploadCursor, error) {
	if c == "" {
		return "+inf", uploadCursor{}, nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return "", uploadCursor{}, ErrBadCursor
	}
	score, id, ok := strings.Cut(string(raw), "|")
	f, err := strconv.ParseFloat(score, 64)
	if !ok || err != nil || id == "" {
		return "", uploadCursor{}, ErrBadCursor
	}
	return score, uploadCursor{score: f, id: id}, nil
}

// Limits of PublishOptions.
const (
	maxOSVersions      = 64
	maxOSVersionLength = 64
)

// CheckPublishOptions reports every problem of o, with paths naming the
// JSON fields of a publish request. The OS is checked against the
// manifest's Mode when the archive is published.
func CheckPublishOptions(o PublishOptions) []Problem {
	var out []Problem
	add := func(path, rule, format string, args ...any) {
		out = append(out, Problem{Path: path, Rule: rule, Message: fmt.Sprintf(format, args...)})
	}
	switch o.Category {
	case "script", "software":
	case "":
		add("category", "required", "category is required: script or software")
	default:
		add("category", "enum", "category %q is not script or software", o.Category)
	}
	switch o.OS {
	case "linux", "windows":
	case "":
		add("os", "required", "os is required: linux or windows")
	default:
		add("os", "enum", "os %q is not linux or windows", o.OS)
	}
	switch o.Visibility {
	case VisibilityPrivate, VisibilityShared, VisibilityPublic:
	case "":
		add("visibility", "required", "visibility is required: private, shared or public")
	default:
		add("visibility", "enum", "visibility %q is not private, shared or public", o.Visibility)
	}
	if len(o.OSVersions) > maxOSVersions {
		add("os_versions", "max_items", "at most %d OS versions", maxOSVersions)
	}
	seen := map[string]bool{}
	for i, v := range o.OSVersions {
		path := fmt.Sprintf("os_versions[%d]", i)
		switch {
		case strings.TrimSpace(v) == "":
			add(path, "required", "an OS version must not be blank")
		case len(v) > maxOSVersionLength:
			add(path, "max_length", "an OS version has at most %d characters", maxOSVersionLength)
		case strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f }):
			add(path, "format", "an OS version must not contain control characters")
		case seen[strings.ToLower(v)]:
			add(path, "unique", "OS version %q is listed twice", v)
		}
		seen[strings.ToLower(v)] = true
	}
	return out
}
