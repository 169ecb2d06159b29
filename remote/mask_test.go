package remote

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestMask(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		secrets []string
		in      string
		want    string
	}{
		{"no secrets", nil, "hunter2", "hunter2"},
		{"empty secret ignored", []string{""}, "abc", "abc"},
		{"one", []string{"hunter2"}, "pw=hunter2;", "pw=********;"},
		{"every occurrence", []string{"ab"}, "ab-ab", "********-********"},
		{"adjacent merge", []string{"ab"}, "abab", "********"},
		{"overlapping occurrences", []string{"aa"}, "aaa", "********"},
		{"longer wins", []string{"abc", "abcdef"}, "xabcdefx", "x********x"},
		{"overlapping secrets", []string{"ab", "bcdef"}, "abcdef!", "********!"},
		{"duplicates", []string{"x", "x"}, "axa", "a********a"},
		{"unicode", []string{"pässwörd"}, "[pässwörd]", "[********]"},
	}
	for _, tt := range tests {
		if got := NewMasker(tt.secrets...).Mask(tt.in); got != tt.want {
			t.Errorf("%s: Mask(%q) = %q, want %q", tt.name, tt.in, got, tt.want)
		}
	}
	var nilMasker *Masker
	if got := nilMasker.Mask("abc"); got != "abc" {
		t.Errorf("nil Masker: Mask = %q, want the input", got)
	}
}

// writeChunks writes in through a masking writer in pieces of the given
// sizes (cycled) and returns what reached the underlying writer.
func writeChunks(t *testing.T, m *Masker, in string, sizes []int) string {
	t.Helper()
	var out bytes.Buffer
	w := m.Writer(&out)
	for i := 0; len(in) > 0; i++ {
		n := 1
		if len(sizes) > 0 {
			n = max(1, sizes[i%len(sizes)])
		}
		n = min(n, len(in))
		if got, err := w.Write([]byte(in[:n])); err != nil || got != n {
			t.Fatalf("Write(%q) = %d, %v; want %d, nil", in[:n], got, err, n)
		}
		in = in[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return out.String()
}

func TestMaskerWriter(t *testing.T) {
	t.Parallel()
	m := NewMasker("hunter2", "ab", "bcdef", "aa")
	inputs := []string{
		"",
		"password is hunter2, really hunter2",
		"hunter2hunter2",
		"xxabcdefxx aaa abab hunte",
		"hunter",
	}
	for _, in := range inputs {
		want := m.Mask(in)
		// Every split point and several chunk sizes.
		for size := 1; size <= len(in)+1; size++ {
			if got := writeChunks(t, m, in, []int{size}); got != want {
				t.Errorf("chunks of %d of %q: got %q, want %q", size, in, got, want)
			}
		}
		for cut := 0; cut <= len(in); cut++ {
			if got := writeChunks(t, m, in, []int{cut, len(in)}); got != want {
				t.Errorf("split at %d of %q: got %q, want %q", cut, in, got, want)
			}
		}
	}
}

func TestMaskerWriterHoldsBackOnlyATail(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := NewMasker("secret").Writer(&out)
	if _, err := io.WriteString(w, "hello secr"); err != nil {
		t.Fatal(err)
	}
	// len("secret")-1 = 5 bytes are held back.
	if got, want := out.String(), "hello"; got != want {
		t.Errorf("after a partial secret: %q written, want %q", got, want)
	}
	if _, err := io.WriteString(w, "et!"); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if got, want := out.String(), "hello ********!"; got != want {
		t.Errorf("after Close: %q, want %q", got, want)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close succeeded")
	}
}

func TestMaskerWriterNoSecretsPassesThrough(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	w := NewMasker("").Writer(&out)
	if _, err := io.WriteString(w, "abc"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "abc" {
		t.Errorf("written %q before Close, want everything", out.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestMaskerWriterError(t *testing.T) {
	t.Parallel()
	w := NewMasker("s").Writer(failWriter{})
	if _, err := io.WriteString(w, "abc"); err == nil {
		t.Error("Write succeeded on a failing writer")
	}
}

func FuzzMasker(f *testing.F) {
	f.Add("password hunter2 here", "hunter2", "ter", []byte{3, 1, 7})
	f.Add("aaaa", "aa", "a", []byte{1})
	f.Add("abcdef", "ab", "bcdef", []byte{2, 2, 2})
	f.Add("", "", "x", []byte{})
	f.Fuzz(func(t *testing.T, in, s1, s2 string, sizes []byte) {
		m := NewMasker(s1, s2)
		want := m.Mask(in)
		for _, s := range []string{s1, s2} {
			if s != "" && !strings.Contains(s, "*") && strings.Contains(want, s) {
				t.Fatalf("Mask(%q) = %q still holds secret %q", in, want, s)
			}
		}
		ints := make([]int, len(sizes))
		for i, b := range sizes {
			ints[i] = int(b)
		}
		if got := writeChunks(t, m, in, ints); got != want {
			t.Fatalf("Writer with chunks %v: %q, Mask: %q", sizes, got, want)
		}
	})
}
