package manifest

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

const validManifest = `<?xml version="1.0" encoding="UTF-8"?>
<Manifest>
  <Metadata>
    <UUID>5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b</UUID>
    <Name>Agent</Name>
    <Description>Installs the agent</Description>
  </Metadata>
  <Parameters>
    <Parameter Name="Port" Type="Numeric" Variable="Port" Default="8080"/>
  </Parameters>
  <Execution>
    <Mode>Ssh</Mode>
    <Command>./install.sh ${Port}</Command>
  </Execution>
</Manifest>
`

// zent describes one entry of a test archive.
type zent struct {
	name string
	body []byte
	// mode, when not zero, is stored as Unix mode bits.
	mode fs.FileMode
	// method defaults to Deflate.
	method uint16
	// raw writes body as already-compressed data with the given header
	// fields (crc, sizes) left as set in hdr.
	hdr *zip.FileHeader
}

func buildZip(t testing.TB, ents ...zent) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range ents {
		if e.hdr != nil {
			w, err := zw.CreateRaw(e.hdr)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(e.body); err != nil {
				t.Fatal(err)
			}
			continue
		}
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.method != 0 {
			h.Method = e.method
		}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func manifestEnt() zent { return zent{name: ManifestName, body: []byte(validManifest), mode: 0o644} }
func scriptEnt() zent {
	return zent{name: "install.sh", body: []byte("#!/bin/sh\necho ok\n"), mode: 0o755}
}

func TestCheckArchiveRules(t *testing.T) {
	t.Parallel()
	zeros := make([]byte, 8<<20)
	crc := crc32.ChecksumIEEE([]byte("hello"))
	tests := []struct {
		name   string
		zip    []byte
		limits Limits
		errs   []string
		warns  []string
	}{
		{name: "valid", zip: buildZip(t, manifestEnt(), scriptEnt())},
		{name: "not a zip", zip: []byte("this is not a zip file at all"), errs: []string{RuleArchiveFormat}},
		{name: "too large", zip: buildZip(t, manifestEnt(), scriptEnt()), limits: Limits{MaxArchiveSize: 100},
			errs: []string{RuleArchiveSize}},
		{name: "too many entries", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "a", body: []byte("a")}),
			limits: Limits{MaxEntries: 2}, errs: []string{RuleArchiveEntries}},
		{name: "total size", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "big.bin", body: make([]byte, 5000)}),
			limits: Limits{MaxTotalSize: 4000}, errs: []string{RuleArchiveUncompressed}},
		{name: "zip bomb ratio", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "zeros.bin", body: zeros}),
			errs: []string{RuleArchiveRatio}},
		{name: "small compressible file is no bomb", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "z.bin", body: zeros[:64<<10]})},
		{name: "absolute", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "/etc/cron.d/x", body: []byte("x")}),
			errs: []string{RulePathAbsolute}},
		{name: "drive letter", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: `C:\Windows\x.dll`, body: []byte("x")}),
			errs: []string{RulePathDrive}},
		{name: "traversal", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "a/../../x.sh", body: []byte("x")}),
			errs: []string{RulePathTraversal}},
		{name: "traversal with backslashes", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: `..\..\x.sh`, body: []byte("x")}),
			errs: []string{RulePathTraversal}},
		{name: "control character", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "a\nb", body: []byte("x")}),
			errs: []string{RulePathInvalid}},
		{name: "not utf-8", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "caf\xe9.txt", body: []byte("x")}),
			errs: []string{RulePathInvalid}},
		{name: "duplicate", zip: buildZip(t, manifestEnt(), scriptEnt(), scriptEnt()), errs: []string{RulePathDuplicate}},
		{name: "file and folder", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "lib", body: []byte("x")},
			zent{name: "lib/a.sh", body: []byte("x")}), errs: []string{RulePathDuplicate}},
		{name: "symlink", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "link", body: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}),
			errs: []string{RuleArchiveSymlink}},
		{name: "device", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{name: "dev", mode: fs.ModeDevice | fs.ModeCharDevice | 0o600}),
			errs: []string{RuleArchiveSpecial}},
		{name: "unsupported method", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{body: []byte("xx"),
			hdr: &zip.FileHeader{Name: "b.bz2", Method: 12, CRC32: 1, CompressedSize64: 2, UncompressedSize64: 2}}),
			errs: []string{RuleArchiveUnsupported}},
		{name: "encrypted", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{body: []byte("hello"),
			hdr: &zip.FileHeader{Name: "secret", Method: zip.Store, Flags: 1, CRC32: crc, CompressedSize64: 5, UncompressedSize64: 5}}),
			errs: []string{RuleArchiveUnsupported}},
		{name: "bad checksum", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{body: []byte("hello"),
			hdr: &zip.FileHeader{Name: "c.txt", Method: zip.Store, CRC32: crc + 1, CompressedSize64: 5, UncompressedSize64: 5}}),
			errs: []string{RuleArchiveCorrupt}},
		{name: "header understates size", zip: buildZip(t, manifestEnt(), scriptEnt(), zent{body: deflate(t, zeros),
			hdr: &zip.FileHeader{Name: "lie.bin", Method: zip.Deflate, CRC32: crc32.ChecksumIEEE(zeros), CompressedSize64: uint64(len(deflate(t, zeros))), UncompressedSize64: 10}}),
			errs: []string{RuleArchiveCorrupt}},
		{name: "manifest missing", zip: buildZip(t, scriptEnt()), errs: []string{RuleManifestMissing}},
		{name: "folder zipped", zip: buildZip(t, zent{name: "agent/", mode: fs.ModeDir | 0o755},
			zent{name: "agent/package.manifest", body: []byte(validManifest)}, zent{name: "agent/install.sh", body: []byte("x"), mode: 0o755}),
			errs: []string{RuleManifestNested}},
		{name: "made on windows: no mode bits", zip: buildZip(t, zent{name: ManifestName, body: []byte(validManifest)},
			zent{name: "install.sh", body: []byte("#!/bin/sh\n")}), warns: []string{RuleExecutableBitMissing}},
		{name: "directories and backslashes", zip: buildZip(t, manifestEnt(), zent{name: "bin/", mode: fs.ModeDir | 0o755},
			zent{name: `bin\tool.sh`, body: []byte("x"), mode: 0o755}, zent{name: "./install.sh", body: []byte("x"), mode: 0o755})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			pkg, rep, err := CheckArchive(context.Background(), bytes.NewReader(tt.zip), int64(len(tt.zip)), tt.limits)
			if err != nil {
				t.Fatalf("CheckArchive: %v", err)
			}
			gotE, gotW := sortedRules(rep)
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.errs)), gotE, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors (-want +got):\n%s\n%s", diff, formatReport(rep))
			}
			if diff := cmp.Diff(slices.Sorted(slices.Values(tt.warns)), gotW, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("warnings (-want +got):\n%s\n%s", diff, formatReport(rep))
			}
			if err := rep.Err(); (err != nil) != (len(tt.errs) > 0) || (err != nil && !errors.Is(err, ErrInvalid)) {
				t.Errorf("Err() = %v", err)
			}
			if rep.OK() && (pkg == nil || pkg.Manifest == nil || len(pkg.SHA256) != 64 || pkg.Size != int64(len(tt.zip))) {
				t.Errorf("valid package incomplete: %+v", pkg)
			}
		})
	}
}

func deflate(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "x", Method: zip.Deflate})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.File[0].OpenRaw()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestCheckArchivePackage(t *testing.T) {
	t.Parallel()
	z := buildZip(t, scriptEnt(), manifestEnt(), zent{name: "lib/", mode: fs.ModeDir | 0o755}, zent{name: "lib/data.txt", body: []byte("data"), mode: 0o640})
	pkg, rep, err := CheckArchive(context.Background(), bytes.NewReader(z), int64(len(z)), Limits{})
	if err != nil || !rep.OK() {
		t.Fatalf("CheckArchive: %v %+v", err, rep)
	}
	want := []File{
		{Path: "install.sh", Size: 18, Mode: 0o755},
		{Path: "lib/data.txt", Size: 4, Mode: 0o640},
		{Path: ManifestName, Size: int64(len(validManifest)), Mode: 0o644},
	}
	if diff := cmp.Diff(want, pkg.Files); diff != "" {
		t.Errorf("files (-want +got):\n%s", diff)
	}
	if pkg.Manifest.Metadata.Name != "Agent" || pkg.Manifest.OS() != "linux" {
		t.Errorf("manifest: %+v", pkg.Manifest)
	}
	sum, err := hashReaderAt(context.Background(), bytes.NewReader(z), int64(len(z)))
	if err != nil || pkg.SHA256 != sum {
		t.Errorf("sha256 = %s, want %s (%v)", pkg.SHA256, sum, err)
	}
}

// failingReader fails every read past off.
type failingReader struct {
	r   io.ReaderAt
	off int64
}

var errDisk = errors.New("disk on fire")

func (f failingReader) ReadAt(p []byte, off int64) (int, error) {
	if off+int64(len(p)) > f.off {
		return 0, errDisk
	}
	return f.r.ReadAt(p, off)
}

func TestCheckArchiveIOErrorIsNotInvalid(t *testing.T) {
	t.Parallel()
	z := buildZip(t, manifestEnt(), scriptEnt())
	for _, off := range []int64{0, 40, int64(len(z)) - 10} {
		_, _, err := CheckArchive(context.Background(), failingReader{bytes.NewReader(z), off}, int64(len(z)), Limits{})
		if !errors.Is(err, errDisk) || errors.Is(err, ErrInvalid) {
			t.Errorf("off %d: err = %v, want the read error and not ErrInvalid", off, err)
		}
	}
}

func TestCheckArchiveCancelled(t *testing.T) {
	t.Parallel()
	z := buildZip(t, manifestEnt(), scriptEnt())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := CheckArchive(ctx, bytes.NewReader(z), int64(len(z)), Limits{})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("err = %v, want context.Canceled", err)
	}
}

func TestLimitsValidate(t *testing.T) {
	t.Parallel()
	if err := (Limits{MaxRatio: -1}).Validate(); err == nil {
		t.Error("negative limit accepted")
	}
	if got := DefaultLimits(); got.MaxArchiveSize != 64<<20 || got.MaxEntries != 10000 || got.MaxTotalSize != 1<<30 || got.MaxRatio != 200 {
		t.Errorf("defaults: %+v", got)
	}
}

func TestReportFormat(t *testing.T) {
	t.Parallel()
	_, rep := ParseBytes([]byte(strings.Replace(validManifest, "<Mode>Ssh</Mode>", "<Mode>Bash</Mode><Extra/>", 1)))
	got := formatReport(rep)
	for _, want := range []string{
		"pkg:12: error [execution.mode.unknown] /Manifest/Execution/Mode:",
		"pkg:12: warning [manifest.element.unknown] /Manifest/Execution/Extra:",
		"pkg: invalid: 1 error, 1 warning",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q:\n%s", want, got)
		}
	}
	var ie *InvalidError
	if err := rep.Err(); !errors.As(err, &ie) || !strings.Contains(err.Error(), "Bash") {
		t.Errorf("Err() = %v", err)
	}
}
