package secretbox

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

func newBox(t *testing.T, fill byte) *Box {
	t.Helper()
	b, err := New(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSealOpen(t *testing.T) {
	t.Parallel()
	b := newBox(t, 1)
	const secret = "canary-Pa55word!"
	s, err := b.SealString(secret, "cred:1")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(s, secret) {
		t.Fatal("sealed text holds the secret")
	}
	s2, _ := b.SealString(secret, "cred:1")
	if s == s2 {
		t.Error("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := b.OpenString(s, "cred:1")
	if err != nil || got != secret {
		t.Fatalf("OpenString = %q, %v", got, err)
	}
	if _, err := b.OpenString(s, "cred:2"); !errors.Is(err, ErrCorrupt) {
		t.Errorf("open with other aad: %v, want ErrCorrupt", err)
	}
	if _, err := newBox(t, 2).OpenString(s, "cred:1"); !errors.Is(err, ErrWrongKey) {
		t.Errorf("open with other key: %v, want ErrWrongKey", err)
	}
	raw := []byte(s)
	raw[len(raw)-3] ^= 1
	if _, err := b.OpenString(string(raw), "cred:1"); err == nil {
		t.Error("a tampered value opened")
	}
	for _, bad := range []string{"", "!!", "AAAA"} {
		if _, err := b.OpenString(bad, "x"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("OpenString(%q) = %v, want ErrCorrupt", bad, err)
		}
	}
}

func TestNewRefusesShortKey(t *testing.T) {
	t.Parallel()
	if _, err := New(make([]byte, 31)); err == nil {
		t.Fatal("a 31-byte key was accepted")
	}
}
