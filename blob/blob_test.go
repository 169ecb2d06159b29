package blob_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/blob"
)

// stores opens one store of each kind for t.
func stores(t *testing.T) map[string]*blob.Store {
	t.Helper()
	ctx := context.Background()
	out := map[string]*blob.Store{}
	s3URL, creds := blob.NewFakeS3(t)
	for name, u := range map[string]string{
		"file": "file://" + filepath.ToSlash(t.TempDir()) + "/blobs",
		"mem":  "mem://",
		"s3":   s3URL,
	} {
		s, err := blob.OpenWith(ctx, u, blob.Options{S3: creds, TempDir: t.TempDir()})
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		out[name] = s
	}
	return out
}

func sum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func TestPutOpenDelete(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			data := bytes.Repeat([]byte("packflow"), 10000)
			info, err := s.Put(ctx, "uploads/a.zip", bytes.NewReader(data), blob.MaxSize(int64(len(data))))
			if err != nil {
				t.Fatalf("Put: %v", err)
			}
			want := blob.Info{Key: "uploads/a.zip", Size: int64(len(data)), SHA256: sum(data)}
			if diff := cmp.Diff(want, info); diff != "" {
				t.Errorf("Put info (-want +got):\n%s", diff)
			}
			o, err := s.Open(ctx, "uploads/a.zip")
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if o.Size() != int64(len(data)) {
				t.Errorf("Size = %d, want %d", o.Size(), len(data))
			}
			got, err := io.ReadAll(o)
			if err != nil || !bytes.Equal(got, data) {
				t.Errorf("ReadAll: %d bytes, %v; want the data back", len(got), err)
			}
			part := make([]byte, 8)
			if _, err := o.ReadAt(part, 8); err != nil || string(part) != "packflow" {
				t.Errorf("ReadAt = %q, %v", part, err)
			}
			if err := o.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}

			cp, err := s.Copy(ctx, "uploads/a.zip", "packages/u/1.0.0+b/a.zip")
			if err != nil || cp.SHA256 != want.SHA256 {
				t.Errorf("Copy = %+v, %v", cp, err)
			}
			keys, err := s.List(ctx, "")
			if diff := cmp.Diff([]string{"packages/u/1.0.0+b/a.zip", "uploads/a.zip"}, keys); err != nil || diff != "" {
				t.Errorf("List: %v (-want +got):\n%s", err, diff)
			}
			if err := s.Delete(ctx, "uploads/a.zip"); err != nil {
				t.Fatalf("Delete: %v", err)
			}
			if err := s.Delete(ctx, "uploads/a.zip"); err != nil {
				t.Errorf("Delete of a missing blob: %v", err)
			}
			if _, err := s.Open(ctx, "uploads/a.zip"); !errors.Is(err, blob.ErrNotFound) {
				t.Errorf("Open after Delete: %v, want ErrNotFound", err)
			}
			if err := s.Ready(ctx); err != nil {
				t.Errorf("Ready: %v", err)
			}
		})
	}
}

func TestPutTooLargeLeavesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			_, err := s.Put(ctx, "uploads/big.zip", strings.NewReader(strings.Repeat("x", 1001)), blob.MaxSize(1000))
			if !errors.Is(err, blob.ErrTooLarge) {
				t.Fatalf("Put over the limit: %v, want ErrTooLarge", err)
			}
			if keys, err := s.List(ctx, ""); err != nil || len(keys) != 0 {
				t.Errorf("List after a refused Put = %v, %v; want nothing", keys, err)
			}
			// Exactly at the limit is fine.
			if _, err := s.Put(ctx, "uploads/ok.zip", strings.NewReader(strings.Repeat("x", 1000)), blob.MaxSize(1000)); err != nil {
				t.Errorf("Put at the limit: %v", err)
			}
		})
	}
}

func TestFileStoreLeavesNoTemporaryFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	s, err := blob.Open(ctx, "file://"+filepath.ToSlash(dir))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "uploads/x.zip", strings.NewReader(strings.Repeat("y", 5000)), blob.MaxSize(10)); !errors.Is(err, blob.ErrTooLarge) {
		t.Fatalf("Put: %v", err)
	}
	failing := io.MultiReader(strings.NewReader("abc"), iotestErr{})
	if _, err := s.Put(ctx, "uploads/y.zip", failing); err == nil {
		t.Fatal("Put from a failing reader succeeded")
	}
	var files []string
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil || len(files) != 0 {
		t.Errorf("files left behind: %v, %v", files, err)
	}
}

type iotestErr struct{}

func (iotestErr) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestPutCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for name, s := range stores(t) {
		t.Run(name, func(t *testing.T) {
			if _, err := s.Put(ctx, "a", strings.NewReader("x")); !errors.Is(err, context.Canceled) {
				t.Errorf("Put with a cancelled ctx: %v", err)
			}
		})
	}
}

func TestCheckKey(t *testing.T) {
	t.Parallel()
	tests := []struct {
		key string
		ok  bool
	}{
		{"uploads/abc.zip", true},
		{"packages/d1672b23-6157-11e5-9d63-60030891ee48/1.2.0-rc.1+build/x.zip", true},
		{"", false},
		{"/abs", false},
		{"a//b", false},
		{"../x", false},
		{"a/../x", false},
		{"a/.hidden", false},
		{"a/b/", false},
		{`a\b`, false},
		{"a b", false},
		{"a/é", false},
	}
	for _, tt := range tests {
		err := blob.CheckKey(tt.key)
		if (err == nil) != tt.ok {
			t.Errorf("CheckKey(%q) = %v, want ok=%v", tt.key, err, tt.ok)
		}
		if err != nil && !errors.Is(err, blob.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", tt.key, err)
		}
	}
}

func TestOpenURL(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	for _, u := range []string{"relative/dir", "file://relative", "file://host/x", "s3://bucket", "s3:///x", "gs://bucket", "::"} {
		if _, err := blob.Open(ctx, u); err == nil {
			t.Errorf("Open(%q) succeeded, want an error", u)
		}
	}
}

func TestS3ListsPagesAndChecksSignatures(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	u, creds := blob.NewFakeS3(t)
	spool := t.TempDir()
	s, err := blob.OpenWith(ctx, u, blob.Options{S3: creds, TempDir: spool})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for i := range 5 {
		key := fmt.Sprintf("packages/p/%d.zip", i)
		if _, err := s.Put(ctx, key, strings.NewReader(key)); err != nil {
			t.Fatalf("Put: %v", err)
		}
		want = append(want, key)
	}
	if _, err := s.Put(ctx, "uploads/empty.zip", strings.NewReader("")); err != nil {
		t.Fatalf("Put of an empty blob: %v", err)
	}
	got, err := s.List(ctx, "packages/")
	if diff := cmp.Diff(want, got); err != nil || diff != "" {
		t.Errorf("List: %v (-want +got):\n%s", err, diff)
	}
	if left, _ := os.ReadDir(spool); len(left) != 0 {
		t.Errorf("spooled files left behind: %v", left)
	}

	bad, err := blob.OpenWith(ctx, u, blob.Options{S3: blob.S3Credentials{AccessKeyID: creds.AccessKeyID, SecretAccessKey: "wrong"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.Put(ctx, "x", strings.NewReader("x")); err == nil || !strings.Contains(err.Error(), "SignatureDoesNotMatch") {
		t.Errorf("Put with a wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	if err := bad.Ready(ctx); err == nil {
		t.Error("Ready with a wrong secret succeeded")
	}
	if _, err := blob.Open(ctx, u); err == nil {
		t.Error("Open of s3 without credentials succeeded")
	}
}
