package blob

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
)

// Errors callers branch on.
var (
	// ErrNotFound means no blob has the key.
	ErrNotFound = errors.New("blob: not found")
	// ErrTooLarge means a Put read more than its MaxSize; nothing was
	// stored.
	ErrTooLarge = errors.New("blob: too large")
	// ErrInvalidKey means the key is not a clean relative path of allowed
	// characters.
	ErrInvalidKey = errors.New("blob: invalid key")
)

// Info describes a stored blob.
type Info struct {
	Key  string `json:"key"`
	Size int64  `json:"size"`
	// SHA256 is the hex digest of the content.
	SHA256 string `json:"sha256"`
}

// PutOption changes how Put stores a blob.
type PutOption func(*putConfig)

type putConfig struct {
	maxSize int64
}

// MaxSize makes Put fail with ErrTooLarge, storing nothing, when the reader
// yields more than n bytes. n <= 0 means no limit.
func MaxSize(n int64) PutOption {
	return func(c *putConfig) { c.maxSize = n }
}

// Object is an open blob. It reads sequentially, at offsets and seeks; the
// caller closes it.
type Object struct {
	r    readSeekReaderAt
	c    io.Closer
	size int64
}

type readSeekReaderAt interface {
	io.ReadSeeker
	io.ReaderAt
}

// Read reads the next bytes of the blob.
func (o *Object) Read(p []byte) (int, error) { return o.r.Read(p) }

// ReadAt reads len(p) bytes from offset off.
func (o *Object) ReadAt(p []byte, off int64) (int, error) { return o.r.ReadAt(p, off) }

// Seek sets the offset of the next Read.
func (o *Object) Seek(offset int64, whence int) (int64, error) { return o.r.Seek(offset, whence) }

// Size is the blob's size in bytes.
func (o *Object) Size() int64 { return o.size }

// Close releases the object.
func (o *Object) Close() error {
	if o.c == nil {
		return nil
	}
	return o.c.Close()
}

// backend is one kind of storage. Keys reaching it are already checked.
type backend interface {
	// put stores r under key atomically. r is already limited and hashed
	// by the Store; the backend reports ErrTooLarge it receives from r
	// after removing what it wrote.
	put(ctx context.Context, key string, r io.Reader) error
	open(ctx context.Context, key string) (*Object, error)
	delete(ctx context.Context, key string) error
	list(ctx context.Context, prefix string) ([]string, error)
	ready(ctx context.Context) error
	String() string
}

// Store reads and writes blobs. It is safe for concurrent use.
type Store struct {
	b backend
}

// Options configures stores that need more than their URL.
type Options struct {
	// S3 holds the credentials of s3:// stores.
	S3 S3Credentials
	// HTTPClient sends the requests of s3:// stores. Default
	// http.DefaultClient.
	HTTPClient *http.Client
	// TempDir is where s3:// stores spool blobs. Default os.TempDir().
	TempDir string
}

// Open opens the store named by rawURL: file:///abs/dir (created if
// missing) or mem://. S3 stores need credentials: see OpenWith.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	return OpenWith(ctx, rawURL, Options{})
}

// OpenWith opens the store named by rawURL with opts:
//
//	file:///abs/dir
//	mem://
//	s3://bucket[/prefix][?region=us-east-1][&endpoint=https://host:port][&path_style=true]
//
// An s3:// store talks to AWS S3 (virtual-hosted buckets at
// s3.<region>.amazonaws.com) or, with endpoint and path_style, to an
// S3-compatible server such as MinIO.
func OpenWith(ctx context.Context, rawURL string, opts Options) (*Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("blob: parse url: %w", err)
	}
	switch u.Scheme {
	case "mem":
		return &Store{b: newMem()}, nil
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("blob: file url %q: host must be empty (file:///abs/dir)", rawURL)
		}
		dir := filepath.FromSlash(u.Path)
		if !filepath.IsAbs(dir) {
			return nil, fmt.Errorf("blob: file url %q: path must be absolute", rawURL)
		}
		fb, err := newFile(ctx, dir)
		if err != nil {
			return nil, err
		}
		return &Store{b: fb}, nil
	case "s3":
		sb, err := newS3(u, opts)
		if err != nil {
			return nil, err
		}
		return &Store{b: sb}, nil
	case "":
		return nil, fmt.Errorf("blob: url %q has no scheme (want file://, mem:// or s3://)", rawURL)
	default:
		return nil, fmt.Errorf("blob: unsupported scheme %q (want file://, mem:// or s3://)", u.Scheme)
	}
}

// String names the store's location, for logs.
func (s *Store) String() string { return s.b.String() }

// Put streams r into the blob key, replacing any blob there, and returns
// its size and sha256. With MaxSize, a reader yielding more bytes fails
// with ErrTooLarge and nothing is stored.
func (s *Store) Put(ctx context.Context, key string, r io.Reader, opts ...PutOption) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, err
	}
	var cfg putConfig
	for _, o := range opts {
		o(&cfg)
	}
	h := sha256.New()
	cr := &countingReader{ctx: ctx, r: r, h: h, max: cfg.maxSize}
	if err := s.b.put(ctx, key, cr); err != nil {
		return Info{}, fmt.Errorf("blob: put %s: %w", key, err)
	}
	return Info{Key: key, Size: cr.n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// Open opens the blob key for reading; ErrNotFound when it does not exist.
func (s *Store) Open(ctx context.Context, key string) (*Object, error) {
	if err := CheckKey(key); err != nil {
		return nil, err
	}
	o, err := s.b.open(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("blob: open %s: %w", key, err)
	}
	return o, nil
}

// Copy copies the blob src to dst atomically and returns dst's info.
func (s *Store) Copy(ctx context.Context, src, dst string) (Info, error) {
	o, err := s.Open(ctx, src)
	if err != nil {
		return Info{}, err
	}
	defer func() { _ = o.Close() }() // read-only: nothing to lose
	return s.Put(ctx, dst, o)
}

// Delete removes the blob key. Deleting a missing blob is not an error.
func (s *Store) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	if err := s.b.delete(ctx, key); err != nil {
		return fmt.Errorf("blob: delete %s: %w", key, err)
	}
	return nil
}

// List returns the keys that start with prefix, sorted.
func (s *Store) List(ctx context.Context, prefix string) ([]string, error) {
	keys, err := s.b.list(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("blob: list %q: %w", prefix, err)
	}
	slices.Sort(keys)
	return keys, nil
}

// Ready checks that the store accepts writes.
func (s *Store) Ready(ctx context.Context) error {
	if err := s.b.ready(ctx); err != nil {
		return fmt.Errorf("blob: %s not writable: %w", s.b, err)
	}
	return nil
}

// CheckKey reports whether key is a valid blob key: slash-separated
// segments of letters, digits and ". _ - +", none empty, "." or "..", and
// none starting with "." (names starting with "." are the store's own
// temporary files).
func CheckKey(key string) error {
	if key == "" || len(key) > 1024 {
		return fmt.Errorf("%w: %q", ErrInvalidKey, key)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: %q", ErrInvalidKey, key)
		}
		for _, c := range []byte(seg) {
			if !keyByte(c) {
				return fmt.Errorf("%w: %q has %q", ErrInvalidKey, key, c)
			}
		}
	}
	return nil
}

func keyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '+'
}

// countingReader hashes and counts what it reads, enforces the size limit
// and stops when ctx is done.
type countingReader struct {
	ctx context.Context
	r   io.Reader
	h   hash.Hash
	n   int64
	max int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	if c.max > 0 && int64(len(p)) > c.max-c.n+1 {
		// Read at most one byte past the limit: enough to detect it.
		p = p[:c.max-c.n+1]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.h.Write(p[:n])
	if c.max > 0 && c.n > c.max {
		return n, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, c.max)
	}
	return n, err
}

// UploadKey is the key of an upload's archive until it is published.
func UploadKey(uploadID string) string { return "uploads/" + uploadID + ".zip" }

// PackageKey is the key of a published archive. It is named after the
// upload rather than the version: a revision number is only known once the
// version is recorded, and two uploads racing for one version must never
// write the same blob.
func PackageKey(packageID, uploadID string) string {
	return "packages/" + packageID + "/" + uploadID + ".zip"
}
