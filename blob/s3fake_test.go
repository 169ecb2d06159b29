package blob

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 is a path-style S3 endpoint for one bucket that checks every
// request's SigV4 signature and payload hash. It pages lists two keys at
// a time so that paging is exercised.
type fakeS3 struct {
	t      testing.TB
	bucket string
	creds  S3Credentials
	mu     sync.Mutex
	objs   map[string][]byte
}

// NewFakeS3 serves a fake bucket "packs" and returns the store URL and the
// credentials that open it.
func NewFakeS3(t testing.TB) (string, S3Credentials) {
	f := &fakeS3{t: t, bucket: "packs", creds: S3Credentials{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret/key+test"}, objs: map[string][]byte{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return "s3://packs/base?region=eu-test-1&path_style=true&endpoint=" + srv.URL, f.creds
}

func (f *fakeS3) fail(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "<Error><Code>%s</Code><Message>%s</Message></Error>", code, msg)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		f.fail(w, 400, "IncompleteBody", err.Error())
		return
	}
	if code, msg := f.verify(r, body); code != "" {
		f.fail(w, http.StatusForbidden, code, msg)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/"+f.bucket)
	if !ok {
		f.fail(w, 404, "NoSuchBucket", r.URL.Path)
		return
	}
	key := strings.TrimPrefix(rest, "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case r.Method == http.MethodGet && key == "":
		f.list(w, r)
	case r.Method == http.MethodPut:
		if r.ContentLength != int64(len(body)) {
			f.fail(w, 411, "MissingContentLength", "send Content-Length")
			return
		}
		f.objs[key] = body
	case r.Method == http.MethodGet:
		b, ok := f.objs[key]
		if !ok {
			f.fail(w, 404, "NoSuchKey", key)
			return
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		_, _ = w.Write(b)
	case r.Method == http.MethodDelete:
		delete(f.objs, key)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.fail(w, 405, "MethodNotAllowed", r.Method)
	}
}

func (f *fakeS3) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var keys []string
	for k := range f.objs {
		if strings.HasPrefix(k, q.Get("prefix")) && k > q.Get("continuation-token") {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	type content struct {
		Key string `xml:"Key"`
	}
	out := struct {
		XMLName   xml.Name  `xml:"ListBucketResult"`
		Contents  []content `xml:"Contents"`
		Truncated bool      `xml:"IsTruncated"`
		Next      string    `xml:"NextContinuationToken,omitempty"`
	}{}
	for i, k := range keys {
		if i == 2 {
			out.Truncated, out.Next = true, keys[1]
			break
		}
		out.Contents = append(out.Contents, content{Key: k})
	}
	_ = xml.NewEncoder(w).Encode(out)
}

// verify recomputes the signature from the request as received.
func (f *fakeS3) verify(r *http.Request, body []byte) (code, msg string) {
	if got := r.Header.Get("X-Amz-Content-Sha256"); got != hexSHA256(body) {
		return "XAmzContentSHA256Mismatch", got
	}
	when, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return "AccessDenied", "bad x-amz-date"
	}
	auth := r.Header.Get("Authorization")
	clone := r.Clone(r.Context())
	clone.Header.Del("Authorization")
	// Only the signed headers take part.
	_, signed, _ := strings.Cut(auth, "SignedHeaders=")
	signed, _, _ = strings.Cut(signed, ",")
	for k := range clone.Header {
		if !slices.Contains(strings.Split(signed, ";"), strings.ToLower(k)) {
			clone.Header.Del(k)
		}
	}
	signV4(clone, f.creds, "eu-test-1", hexSHA256(body), when)
	if clone.Header.Get("Authorization") != auth {
		return "SignatureDoesNotMatch", auth
	}
	return "", ""
}
