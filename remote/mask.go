package remote

import (
	"io"
	"slices"
	"strings"
	"sync"
)

// MaskText replaces every secret in masked text.
const MaskText = "********"

// Masker replaces secrets in text with MaskText. Overlapping or adjacent
// occurrences of secrets are replaced by one MaskText, so nothing of any
// secret survives. A nil *Masker masks nothing. A Masker is safe for
// concurrent use.
type Masker struct {
	secrets []string // distinct, non-empty
	longest int      // length in bytes of the longest secret
}

// NewMasker returns a Masker for secrets. Empty secrets are ignored.
func NewMasker(secrets ...string) *Masker {
	m := &Masker{}
	for _, s := range secrets {
		if s == "" || slices.Contains(m.secrets, s) {
			continue
		}
		m.secrets = append(m.secrets, s)
		m.longest = max(m.longest, len(s))
	}
	return m
}

// Mask returns s with every secret replaced.
func (m *Masker) Mask(s string) string {
	if m == nil || len(m.secrets) == 0 {
		return s
	}
	var b strings.Builder
	m.emit(&b, s, -1, len(s))
	return b.String()
}

// span is a half-open byte range [start, end) of masked text.
type span struct{ start, end int }

// spans returns the merged ranges of s covered by secrets, in order.
// Ranges that overlap or touch are merged. When leadEnd >= 0 the range
// [0, leadEnd) counts as covered too.
func (m *Masker) spans(s string, leadEnd int) []span {
	var all []span
	if leadEnd >= 0 {
		all = append(all, span{0, leadEnd})
	}
	for _, sec := range m.secrets {
		for from := 0; from+len(sec) <= len(s); {
			i := strings.Index(s[from:], sec)
			if i < 0 {
				break
			}
			all = append(all, span{from + i, from + i + len(sec)})
			from += i + 1
		}
	}
	slices.SortFunc(all, func(a, b span) int { return a.start - b.start })
	var merged []span
	for _, sp := range all {
		if n := len(merged); n > 0 && sp.start <= merged[n-1].end {
			merged[n-1].end = max(merged[n-1].end, sp.end)
			continue
		}
		merged = append(merged, sp)
	}
	return merged
}

// emit writes s[:cut] to b with secrets masked and returns the end of the
// last masked range when that range reaches cut or beyond, else -1. A
// leadEnd >= 0 says that s[:leadEnd] continues a range already written as
// MaskText.
func (m *Masker) emit(b *strings.Builder, s string, leadEnd, cut int) int {
	pos := 0
	for _, sp := range m.spans(s, leadEnd) {
		if sp.start >= cut {
			break
		}
		b.WriteString(s[pos:sp.start])
		if leadEnd < 0 || sp.start > 0 {
			b.WriteString(MaskText)
		}
		if sp.end >= cut {
			return sp.end
		}
		pos = sp.end
	}
	b.WriteString(s[pos:cut])
	return -1
}

// Writer returns a writer that masks everything written to it and passes
// it on to w. A secret split across Write calls is still masked: the
// writer holds back the last len(longest secret)-1 bytes until more
// arrive or Close is called. Close flushes what is held back; it does not
// close w. The returned writer is safe for concurrent use.
func (m *Masker) Writer(w io.Writer) io.WriteCloser {
	return &maskWriter{m: m, w: w, contEnd: -1}
}

// maskWriter is the writer returned by Masker.Writer.
type maskWriter struct {
	m  *Masker
	w  io.Writer
	mu sync.Mutex
	// buf holds the bytes not yet written to w.
	buf []byte
	// contEnd is, relative to buf, the end of a masked range that began
	// before buf and was already written as MaskText; -1 when none.
	contEnd int
	closed  bool
}

// Write masks p and writes what is safe to write to the underlying writer.
func (mw *maskWriter) Write(p []byte) (int, error) {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if mw.closed {
		return 0, io.ErrClosedPipe
	}
	if mw.m == nil || len(mw.m.secrets) == 0 {
		return mw.w.Write(p)
	}
	mw.buf = append(mw.buf, p...)
	cut := len(mw.buf) - (mw.m.longest - 1)
	if cut <= 0 {
		return len(p), nil
	}
	if err := mw.flush(cut); err != nil {
		return 0, err
	}
	return len(p), nil
}

// flush writes buf[:cut] masked and keeps the rest.
func (mw *maskWriter) flush(cut int) error {
	var b strings.Builder
	s := string(mw.buf)
	end := mw.m.emit(&b, s, mw.contEnd, cut)
	mw.buf = append(mw.buf[:0], s[cut:]...)
	mw.contEnd = -1
	if end >= 0 {
		mw.contEnd = end - cut
	}
	if b.Len() == 0 {
		return nil
	}
	_, err := io.WriteString(mw.w, b.String())
	return err
}

// Close writes what is held back. Further writes fail.
func (mw *maskWriter) Close() error {
	mw.mu.Lock()
	defer mw.mu.Unlock()
	if mw.closed {
		return nil
	}
	mw.closed = true
	if len(mw.buf) == 0 {
		return nil
	}
	return mw.flush(len(mw.buf))
}
