package remote_test

import (
	"fmt"
	"io"
	"os"

	"github.com/packflow/packflow/remote"
)

func ExampleMasker_Writer() {
	w := remote.NewMasker("hunter2").Writer(os.Stdout)
	// The secret arrives split across two writes.
	_, _ = io.WriteString(w, "logging in with hun")
	_, _ = io.WriteString(w, "ter2\n")
	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// logging in with ********
}
