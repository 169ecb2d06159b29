package manifest

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// directoryOnlyZip writes a zip made of a central directory of n headers
// (names only, no data) and an end record declaring declared entries;
// zip64 adds a zip64 end record and locator carrying the count, as
// archives of more than 65,535 entries do.
func directoryOnlyZip(n int, declared uint64, zip64 bool) []byte {
	var b bytes.Buffer
	le := binary.LittleEndian
	for i := range n {
		name := fmt.Sprintf("%06d", i)
		h := make([]byte, zipDirHeaderLen)
		le.PutUint32(h, zipDirHeaderSig)
		le.PutUint16(h[4:], 20)
		le.PutUint16(h[6:], 20)
		le.PutUint16(h[28:], uint16(len(name)))
		b.Write(h)
		b.WriteString(name)
	}
	dirSize := b.Len()
	if zip64 {
		end64 := b.Len()
		r := make([]byte, zip64EndLen)
		le.PutUint32(r, zip64EndSig)
		le.PutUint64(r[4:], zip64EndLen-12)
		le.PutUint64(r[24:], declared)
		le.PutUint64(r[32:], declared)
		le.PutUint64(r[40:], uint64(dirSize))
		b.Write(r)
		loc := make([]byte, zip64LocLen)
		le.PutUint32(loc, zip64LocSig)
		le.PutUint64(loc[8:], uint64(end64))
		le.PutUint32(loc[16:], 1)
		b.Write(loc)
	}
	e := make([]byte, zipDirEndLen)
	le.PutUint32(e, zipDirEndSig)
	count := uint16(declared)
	if zip64 {
		count = 0xffff
	}
	le.PutUint16(e[8:], count)
	le.PutUint16(e[10:], count)
	le.PutUint32(e[12:], uint32(dirSize))
	b.Write(e)
	return b.Bytes()
}

// TestArchiveEntriesRefusedFromTheEndRecord: an archive whose end record
// declares 700,000 entries is refused for its entries, from that count,
// before its directory is read.
func TestArchiveEntriesRefusedFromTheEndRecord(t *testing.T) {
	t.Parallel()
	z := directoryOnlyZip(3, 700000, true)
	_, rep, err := CheckArchive(context.Background(), bytes.NewReader(z), int64(len(z)), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if errs, _ := rep.Rules(); len(errs) != 1 || errs[0] != RuleArchiveEntries || !strings.Contains(rep.Errors[0].Message, "700000") {
		t.Errorf("want only %s naming the declared 700000:\n%s", RuleArchiveEntries, formatReport(rep))
	}
}

// TestArchiveEntriesCostLittleMemory: a directory of 65,541 headers whose
// end record says 5 (archive/zip compares counts modulo 65,536, so it
// would read them all) is refused without keeping anything per entry.
// Not parallel: it measures the process's allocations.
func TestArchiveEntriesCostLittleMemory(t *testing.T) {
	z := directoryOnlyZip(65541, 5, false)
	check := func() {
		_, rep, err := CheckArchive(context.Background(), bytes.NewReader(z), int64(len(z)), Limits{})
		if err != nil || !rep.Has(RuleArchiveEntries) {
			t.Errorf("err %v, report:\n%s", err, formatReport(rep))
		}
	}
	check()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	allocs := testing.AllocsPerRun(1, check)
	runtime.ReadMemStats(&after)
	// archive/zip allocates two or more objects and some 250 bytes per
	// entry it reads: 130,000 objects and 16 MB here.
	if allocs > 10000 {
		t.Errorf("%.0f allocations to refuse 65,541 entries", allocs)
	}
	if bytes := (after.TotalAlloc - before.TotalAlloc) / 2; bytes > 4<<20 {
		t.Errorf("%d bytes allocated to refuse 65,541 entries", bytes)
	}
}
