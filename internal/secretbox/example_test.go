package secretbox_test

import (
	"bytes"
	"fmt"

	"github.com/packflow/packflow/internal/secretbox"
)

// A secret is sealed bound to the record it belongs to, and opens only
// with the same key and the same binding.
func Example() {
	box, err := secretbox.New(bytes.Repeat([]byte{0x42}, 32)) // PACKFLOW_SECRET_KEY, decoded
	if err != nil {
		fmt.Println(err)
		return
	}
	sealed, err := box.SealString("s3cr3t-Passw0rd", "credential:abc")
	if err != nil {
		fmt.Println(err)
		return
	}
	plain, err := box.OpenString(sealed, "credential:abc")
	fmt.Println(plain, err)
	_, err = box.OpenString(sealed, "credential:other")
	fmt.Println(err)
	// Output:
	// s3cr3t-Passw0rd <nil>
	// secretbox: sealed value is corrupt
}
