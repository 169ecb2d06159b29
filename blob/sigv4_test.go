package blob

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSignV4KnownAnswer signs the GET Object example of the Amazon S3
// documentation ("Signature calculations for the Authorization header:
// transferring payload in a single chunk") and expects its signature.
func TestSignV4KnownAnswer(t *testing.T) {
	t.Parallel()
	req, err := http.NewRequest(http.MethodGet, "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Range", "bytes=0-9")
	creds := S3Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	signV4(req, creds, "us-east-1", emptySHA256, time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC))
	want := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, " +
		"SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, " +
		"Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	if got := req.Header.Get("Authorization"); got != want {
		t.Errorf("Authorization =\n%s\nwant\n%s", got, want)
	}
}

func TestURIEncode(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"abc-._~":  "abc-._~",
		"a b+c":    "a%20b%2Bc",
		"é":        "%C3%A9",
		"a/b":      "a%2Fb",
		"1.0.0+b1": "1.0.0%2Bb1",
	} {
		if got := uriEncode(in); got != want {
			t.Errorf("uriEncode(%q) = %q, want %q", in, got, want)
		}
	}
	if got := canonicalQuery(map[string][]string{"prefix": {"a b"}, "list-type": {"2"}}); !strings.HasPrefix(got, "list-type=2&prefix=a%20b") {
		t.Errorf("canonicalQuery = %q", got)
	}
}
