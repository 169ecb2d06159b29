package pkgtest

import (
	"bufio"
	"bytes"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// CorpusDir is where the corpus of real manifests lives, relative to a
// folder above the repository (the checkout's parent holds shared/).
const CorpusDir = "shared/real-manifests"

// RealCase is one case of the corpus of real package.manifest files: the
// manifest as found, the files that were shipped beside it, and what the
// original platform did with it.
type RealCase struct {
	// Name is the case's folder name.
	Name string
	// OS is linux or windows, as expected.tsv says.
	OS string
	// Published tells whether the original platform published the package
	// (expected.tsv's "published"); otherwise it rejected it.
	Published bool
	// Why is expected.tsv's explanation.
	Why string
	// Manifest holds the bytes of package.manifest as found.
	Manifest []byte
	// Files are the files shipped beside the manifest (stand-ins are made
	// for them: their content is not part of the corpus).
	Files []CorpusFile
}

// CorpusFile is one file of files.tsv.
type CorpusFile struct {
	Path string
	Mode fs.FileMode
	Size int
}

// FindCorpus returns the corpus folder, looking for shared/real-manifests
// in the working directory and each folder above it, or "" when none has
// it.
func FindCorpus() string {
	dir, err := os.Getwd()
	if err != nil {
		return ""
	}
	for {
		p := filepath.Join(dir, filepath.FromSlash(CorpusDir))
		if fi, err := os.Stat(filepath.Join(p, "expected.tsv")); err == nil && !fi.IsDir() {
			return p
		}
		up := filepath.Dir(dir)
		if up == dir {
			return ""
		}
		dir = up
	}
}

// RealManifests loads every scored case of the corpus. The test is
// skipped, with a message, when the corpus is not found above the working
// directory (it is data beside the checkout, not part of the repository).
func RealManifests(t testing.TB) []RealCase {
	t.Helper()
	root := FindCorpus()
	if root == "" {
		t.Skipf("the corpus of real manifests (%s above the checkout) is absent; these cases are not checked", CorpusDir)
	}
	b, err := os.ReadFile(filepath.Join(root, "expected.tsv"))
	if err != nil {
		t.Fatalf("pkgtest: corpus: %v", err)
	}
	var cases []RealCase
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) < 3 {
			t.Fatalf("pkgtest: corpus: bad expected.tsv line %q", line)
		}
		c := RealCase{Name: cols[0], OS: cols[1], Published: cols[2] == "published"}
		if cols[2] != "published" && cols[2] != "rejected" {
			t.Fatalf("pkgtest: corpus: %s: outcome %q is neither published nor rejected", c.Name, cols[2])
		}
		if len(cols) > 3 {
			c.Why = cols[3]
		}
		dir := filepath.Join(root, c.Name)
		if c.Manifest, err = os.ReadFile(filepath.Join(dir, "package.manifest")); err != nil {
			t.Fatalf("pkgtest: corpus: %v", err)
		}
		if c.Files, err = readFilesTSV(filepath.Join(dir, "files.tsv")); err != nil {
			t.Fatalf("pkgtest: corpus: %s: %v", c.Name, err)
		}
		cases = append(cases, c)
	}
	if len(cases) == 0 {
		t.Fatalf("pkgtest: corpus %s lists no case", root)
	}
	return cases
}

func readFilesTSV(name string) ([]CorpusFile, error) {
	b, err := os.ReadFile(name)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CorpusFile
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		cols := strings.Split(line, "\t")
		if len(cols) != 3 {
			return nil, fmt.Errorf("bad files.tsv line %q", line)
		}
		mode, err1 := strconv.ParseUint(cols[1], 8, 32)
		size, err2 := strconv.Atoi(cols[2])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("bad files.tsv line %q", line)
		}
		out = append(out, CorpusFile{Path: cols[0], Mode: fs.FileMode(mode), Size: size})
	}
	return out, nil
}

// standIn returns size bytes standing in for a file: a shebang for
// scripts, then text that does not compress much (so that large stand-ins
// are not taken for zip bombs), the same for the same path.
func standIn(path string, size int) []byte {
	var b bytes.Buffer
	if strings.HasSuffix(path, ".sh") {
		b.WriteString("#!/bin/sh\n")
	}
	seed := uint64(len(path))
	for _, c := range path {
		seed = seed*31 + uint64(c)
	}
	r := rand.New(rand.NewPCG(seed, 1))
	const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 \n"
	for b.Len() < size {
		b.WriteByte(letters[r.IntN(len(letters))])
	}
	return b.Bytes()[:max(size, 0)]
}

// Entries returns the package's files in archive order: package.manifest
// first, then a stand-in for each shipped file, with its mode.
func (c RealCase) Entries() []File {
	out := []File{{Name: "package.manifest", Body: string(c.Manifest), Mode: 0o644}}
	for _, f := range c.Files {
		if f.Path == "package.manifest" {
			out[0].Mode = f.Mode
			continue
		}
		out = append(out, File{Name: f.Path, Body: string(standIn(f.Path, f.Size)), Mode: f.Mode})
	}
	return out
}

// Zip returns the case as a package archive.
func (c RealCase) Zip(t testing.TB) []byte {
	t.Helper()
	return Zip(t, c.Entries()...)
}

// WriteDir writes the case as an unpacked package into dir.
func (c RealCase) WriteDir(t testing.TB, dir string) {
	t.Helper()
	for _, f := range c.Entries() {
		p := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatalf("pkgtest: %v", err)
		}
		mode := f.Mode
		if mode == 0 {
			mode = 0o644
		}
		if err := os.WriteFile(p, []byte(f.Body), mode); err != nil {
			t.Fatalf("pkgtest: %v", err)
		}
		if err := os.Chmod(p, mode); err != nil { // WriteFile's mode is masked by the umask
			t.Fatalf("pkgtest: %v", err)
		}
	}
}
