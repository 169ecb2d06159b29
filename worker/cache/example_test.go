package cache_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/packflow/packflow/worker/cache"
)

func Example() {
	dir, err := os.MkdirTemp("", "cache-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(dir) }()

	// An archive as the blob store would hand it over, with the digest
	// the library recorded at publish time.
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.Create("install.sh")
	_, _ = io.WriteString(w, "#!/bin/sh\necho hello\n")
	_ = zw.Close()
	sum := sha256.Sum256(buf.Bytes())

	c, err := cache.Open(dir, cache.Options{Keep: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Close() }()
	req := cache.Request{
		UUID:    "3b1f8a52-7c1e-4d2a-9f60-1e2d3c4b5a69",
		Version: "1.0.0",
		SHA256:  hex.EncodeToString(sum[:]),
		Size:    int64(buf.Len()),
		Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(buf.Bytes())), nil
		},
	}
	res, err := c.Install(context.Background(), req)
	if err != nil {
		fmt.Println(err)
		return
	}
	rel, _ := filepath.Rel(dir, res.Path)
	fmt.Println("installed at", filepath.ToSlash(rel))

	again, _ := c.Install(context.Background(), req)
	fmt.Println("already installed:", again.AlreadyInstalled)

	req.SHA256 = "0000000000000000000000000000000000000000000000000000000000000000"
	req.Version = "1.0.1"
	_, err = c.Install(context.Background(), req)
	fmt.Println(errors.Is(err, cache.ErrChecksum))
	// Output:
	// installed at 3b1f8a52-7c1e-4d2a-9f60-1e2d3c4b5a69/1.0.0
	// already installed: true
	// true
}
