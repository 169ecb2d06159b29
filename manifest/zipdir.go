package manifest

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// Zip record layout (APPNOTE.TXT), as archive/zip reads it.
const (
	zipDirHeaderSig = 0x02014b50
	zipDirEndSig    = 0x06054b50
	zip64LocSig     = 0x07064b50
	zip64EndSig     = 0x06064b50
	zipDirHeaderLen = 46
	zipDirEndLen    = 22
	zip64LocLen     = 20
	zip64EndLen     = 56
)

// errNoZip means the end of central directory record was not found or is
// unreadable: archive/zip will say why.
var errNoZip = errors.New("no readable end of central directory")

// zipDirectory is what the end of central directory record says.
type zipDirectory struct {
	// Entries is the declared number of entries (the zip64 record's when
	// there is one).
	Entries uint64
	// start is where archive/zip starts reading directory headers.
	start int64
}

// readZipDirectory reads the end of central directory record of the zip
// (r, size) the way archive/zip does, without reading the directory
// itself: a count of entries there decides whether the archive is worth
// reading at all. I/O errors are returned as they are; a record that is
// not there or not valid gives errNoZip.
func readZipDirectory(r io.ReaderAt, size int64) (zipDirectory, error) {
	var (
		buf    []byte
		endOff int64 = -1
	)
	for i, n := range []int64{1024, 65 * 1024} {
		n = min(n, size)
		buf = make([]byte, n)
		if _, err := r.ReadAt(buf, size-n); err != nil && !errors.Is(err, io.EOF) {
			return zipDirectory{}, err
		}
		if p := findDirEnd(buf); p >= 0 {
			buf, endOff = buf[p:], size-n+int64(p)
			break
		}
		if i == 1 || n == size {
			return zipDirectory{}, errNoZip
		}
	}
	le := binary.LittleEndian
	entries := uint64(le.Uint16(buf[10:]))
	dirSize := uint64(le.Uint32(buf[12:]))
	dirOff := uint64(le.Uint32(buf[16:]))
	if entries == 0xffff || dirSize == 0xffff || dirOff == 0xffffffff {
		if p, ok, err := findZip64End(r, endOff); err != nil {
			return zipDirectory{}, err
		} else if ok {
			rec := make([]byte, zip64EndLen)
			if _, err := r.ReadAt(rec, p); err != nil {
				if errors.Is(err, io.EOF) {
					return zipDirectory{}, errNoZip
				}
				return zipDirectory{}, err
			}
			if le.Uint32(rec) != zip64EndSig {
				return zipDirectory{}, errNoZip
			}
			endOff = p
			entries, dirSize, dirOff = le.Uint64(rec[32:]), le.Uint64(rec[40:]), le.Uint64(rec[48:])
		}
	}
	const maxInt64 = 1<<63 - 1
	if dirSize > maxInt64 || dirOff > maxInt64 {
		return zipDirectory{}, errNoZip
	}
	base := endOff - int64(dirSize) - int64(dirOff)
	if o := base + int64(dirOff); o < 0 || o >= size {
		return zipDirectory{}, errNoZip
	}
	if base > 0 {
		// archive/zip ignores a base offset when a directory header sits
		// at the declared offset itself.
		h := make([]byte, 4)
		if _, err := r.ReadAt(h, int64(dirOff)); err == nil && le.Uint32(h) == zipDirHeaderSig {
			base = 0
		}
	}
	return zipDirectory{Entries: entries, start: base + int64(dirOff)}, nil
}

// findDirEnd returns the offset of the end of central directory record in
// b, or -1.
func findDirEnd(b []byte) int {
	for i := len(b) - zipDirEndLen; i >= 0; i-- {
		if binary.LittleEndian.Uint32(b[i:]) == zipDirEndSig {
			n := int(binary.LittleEndian.Uint16(b[i+zipDirEndLen-2:]))
			if n+zipDirEndLen+i > len(b) {
				return -1
			}
			return i
		}
	}
	return -1
}

// findZip64End returns the offset of the zip64 end record named by the
// locator just before the end record at endOff.
func findZip64End(r io.ReaderAt, endOff int64) (int64, bool, error) {
	locOff := endOff - zip64LocLen
	if locOff < 0 {
		return 0, false, nil
	}
	b := make([]byte, zip64LocLen)
	if _, err := r.ReadAt(b, locOff); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, false, nil
		}
		return 0, false, err
	}
	le := binary.LittleEndian
	if le.Uint32(b) != zip64LocSig || le.Uint32(b[4:]) != 0 || le.Uint32(b[16:]) != 1 {
		return 0, false, nil
	}
	p := le.Uint64(b[8:])
	if p > 1<<63-1 {
		return 0, false, nil
	}
	return int64(p), true, nil
}

// countDirHeaders counts the central directory headers from d.start, as
// archive/zip walks them (header after header while the signature holds,
// whatever count the end record declares), up to limit+1, reading through
// a small buffer: nothing is kept per entry.
func countDirHeaders(r io.ReaderAt, size int64, d zipDirectory, limit int) (int, error) {
	br := bufio.NewReaderSize(io.NewSectionReader(r, d.start, size-d.start), 32<<10)
	var h [zipDirHeaderLen]byte
	n := 0
	for n <= limit {
		if _, err := io.ReadFull(br, h[:]); err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return n, nil
			}
			return n, err
		}
		le := binary.LittleEndian
		if le.Uint32(h[:]) != zipDirHeaderSig {
			return n, nil
		}
		skip := int64(le.Uint16(h[28:])) + int64(le.Uint16(h[30:])) + int64(le.Uint16(h[32:]))
		if _, err := br.Discard(int(skip)); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			return n, err
		}
		n++
	}
	return n, nil
}
