package blob_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/packflow/packflow/blob"
)

func Example() {
	ctx := context.Background()
	s, err := blob.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	info, err := s.Put(ctx, "uploads/demo.zip", strings.NewReader("hello"), blob.MaxSize(64<<20))
	if err != nil {
		panic(err)
	}
	fmt.Println(info.Size, info.SHA256[:12])

	o, err := s.Open(ctx, "uploads/demo.zip")
	if err != nil {
		panic(err)
	}
	defer func() { _ = o.Close() }()
	b, _ := io.ReadAll(o)
	fmt.Println(string(b))
	// Output:
	// 5 2cf24dba5fb0
	// hello
}
