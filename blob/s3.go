package blob

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// s3Backend keeps blobs as objects of an S3-compatible bucket, under an
// optional key prefix. Requests are signed with SigV4.
//
// Put spools the blob to a temporary file first: S3 wants the length and
// the sha256 of the body before it, and the store hands out a size limit
// and an atomic result anyway (an object appears whole when its PUT
// succeeds). Open downloads the object to a temporary file, since zip
// readers make many small reads at offsets; archives are bounded by the
// upload limit.
type s3Backend struct {
	client    *http.Client
	creds     S3Credentials
	region    string
	endpoint  *url.URL // scheme and host, and the bucket as first path segment in path style
	pathStyle bool
	bucket    string
	prefix    string
	tempDir   string
	now       func() time.Time
}

// newS3 parses s3://bucket/prefix?region=&endpoint=&path_style=.
func newS3(u *url.URL, o Options) (*s3Backend, error) {
	if u.Host == "" {
		return nil, errors.New("blob: s3 url needs a bucket: s3://bucket/prefix")
	}
	if o.S3.AccessKeyID == "" || o.S3.SecretAccessKey == "" {
		return nil, errors.New("blob: s3 needs credentials (Options.S3)")
	}
	q := u.Query()
	b := &s3Backend{
		client: o.HTTPClient, creds: o.S3, region: q.Get("region"), bucket: u.Host,
		prefix: strings.Trim(u.Path, "/"), tempDir: o.TempDir, now: time.Now,
	}
	if b.client == nil {
		b.client = http.DefaultClient
	}
	if b.region == "" {
		b.region = "us-east-1"
	}
	if b.prefix != "" {
		if err := CheckKey(b.prefix); err != nil {
			return nil, fmt.Errorf("blob: s3 prefix: %w", err)
		}
		b.prefix += "/"
	}
	if v := q.Get("path_style"); v != "" {
		ps, err := strconv.ParseBool(v)
		if err != nil {
			return nil, fmt.Errorf("blob: s3 path_style %q: %w", v, err)
		}
		b.pathStyle = ps
	}
	ep := q.Get("endpoint")
	if ep == "" {
		ep = "https://s3." + b.region + ".amazonaws.com"
	}
	e, err := url.Parse(ep)
	if err != nil || (e.Scheme != "https" && e.Scheme != "http") || e.Host == "" {
		return nil, fmt.Errorf("blob: s3 endpoint %q must be an http(s) URL", ep)
	}
	if !b.pathStyle {
		e.Host = b.bucket + "." + e.Host
	}
	b.endpoint = &url.URL{Scheme: e.Scheme, Host: e.Host}
	return b, nil
}

func (b *s3Backend) String() string {
	return "s3://" + b.bucket + "/" + b.prefix
}

// objectURL is the URL of key (a full object key, prefix included).
func (b *s3Backend) objectURL(key string, query url.Values) *url.URL {
	u := *b.endpoint
	p := "/" + key
	if b.pathStyle {
		p = "/" + b.bucket + p
	}
	u.Path = p
	u.RawQuery = query.Encode()
	return &u
}

// do signs and sends one request; payloadHash is the body's hex sha256.
func (b *s3Backend) do(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, payloadHash string, hdr http.Header) (*http.Response, error) {
	if body != nil && size == 0 {
		body = http.NoBody // a zero length, not an unknown one
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	signV4(req, b.creds, b.region, payloadHash, b.now())
	return b.client.Do(req)
}

// s3Error reads an error answer.
type s3Error struct {
	Status  int
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

func (e *s3Error) Error() string {
	return fmt.Sprintf("s3: %d %s: %s", e.Status, e.Code, e.Message)
}

func readS3Error(res *http.Response) error {
	e := &s3Error{Status: res.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
	_ = xml.Unmarshal(body, e)
	if e.Code == "" {
		e.Code = http.StatusText(res.StatusCode)
	}
	return e
}

func (b *s3Backend) put(ctx context.Context, key string, r io.Reader) (err error) {
	tmp, err := os.CreateTemp(b.tempDir, "packflow-s3-put-*")
	if err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	defer func() {
		_ = tmp.Close()
		_ = os.Remove(tmp.Name())
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), r)
	if err != nil {
		return err
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("spool: %w", err)
	}
	hdr := http.Header{"Content-Type": {"application/octet-stream"}}
	res, err := b.do(ctx, http.MethodPut, b.objectURL(b.prefix+key, nil), io.NopCloser(tmp), n, hex.EncodeToString(h.Sum(nil)), hdr)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode/100 != 2 {
		return readS3Error(res)
	}
	return nil
}

func (b *s3Backend) open(ctx context.Context, key string) (*Object, error) {
	res, err := b.do(ctx, http.MethodGet, b.objectURL(b.prefix+key, nil), nil, 0, emptySHA256, nil)
	if err != nil {
		return nil, err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode == http.StatusNotFound {
		return nil, ErrNotFound
	}
	if res.StatusCode != http.StatusOK {
		return nil, readS3Error(res)
	}
	tmp, err := os.CreateTemp(b.tempDir, "packflow-s3-get-*")
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	// The open file keeps the data; the name is not needed.
	_ = os.Remove(tmp.Name())
	n, err := io.Copy(tmp, res.Body)
	if err == nil && res.ContentLength >= 0 && n != res.ContentLength {
		err = fmt.Errorf("s3: got %d of %d bytes", n, res.ContentLength)
	}
	if err == nil {
		_, err = tmp.Seek(0, io.SeekStart)
	}
	if err != nil {
		_ = tmp.Close()
		return nil, err
	}
	return &Object{r: tmp, c: tmp, size: n}, nil
}

func (b *s3Backend) delete(ctx context.Context, key string) error {
	res, err := b.do(ctx, http.MethodDelete, b.objectURL(b.prefix+key, nil), nil, 0, emptySHA256, nil)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode/100 != 2 && res.StatusCode != http.StatusNotFound {
		return readS3Error(res)
	}
	return nil
}

// listResult is the part of a ListObjectsV2 answer the store reads.
type listResult struct {
	Contents []struct {
		Key string `xml:"Key"`
	} `xml:"Contents"`
	IsTruncated           bool   `xml:"IsTruncated"`
	NextContinuationToken string `xml:"NextContinuationToken"`
}

// list pages through ListObjectsV2; keys with a segment starting with "."
// are the store's own (readiness probes) and not listed.
func (b *s3Backend) list(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	token := ""
	for {
		q := url.Values{"list-type": {"2"}, "prefix": {b.prefix + prefix}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		u := b.objectURL("", q)
		res, err := b.do(ctx, http.MethodGet, u, nil, 0, emptySHA256, nil)
		if err != nil {
			return nil, err
		}
		body, err := io.ReadAll(io.LimitReader(res.Body, 32<<20))
		_ = res.Body.Close()
		if err != nil {
			return nil, err
		}
		if res.StatusCode != http.StatusOK {
			return nil, readS3Error(&http.Response{StatusCode: res.StatusCode, Body: io.NopCloser(bytes.NewReader(body))})
		}
		var lr listResult
		if err := xml.Unmarshal(body, &lr); err != nil {
			return nil, fmt.Errorf("s3: decode list: %w", err)
		}
		for _, c := range lr.Contents {
			k := strings.TrimPrefix(c.Key, b.prefix)
			if CheckKey(k) == nil {
				keys = append(keys, k)
			}
		}
		if !lr.IsTruncated || lr.NextContinuationToken == "" {
			return keys, nil
		}
		token = lr.NextContinuationToken
	}
}

// ready writes and deletes a small probe object.
func (b *s3Backend) ready(ctx context.Context) error {
	key := b.prefix + ".ready-" + rand.Text()
	res, err := b.do(ctx, http.MethodPut, b.objectURL(key, nil), http.NoBody, 0, emptySHA256, nil)
	if err != nil {
		return err
	}
	if res.StatusCode/100 != 2 {
		err := readS3Error(res)
		_ = res.Body.Close()
		return err
	}
	_ = res.Body.Close()
	res, err = b.do(ctx, http.MethodDelete, b.objectURL(key, nil), nil, 0, emptySHA256, nil)
	if err != nil {
		return err
	}
	_ = res.Body.Close()
	return nil
}
