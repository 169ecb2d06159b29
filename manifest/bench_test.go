package manifest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"
)

// benchPackage builds a package of 200 files (a third text-like, the rest
// random) in memory.
func benchPackage(b *testing.B) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	ents := []zent{manifestEnt(), scriptEnt()}
	for i := range 200 {
		body := make([]byte, 16<<10)
		if i%3 == 0 {
			body = body[:0]
			for len(body) < 48<<10 {
				body = fmt.Appendf(body, "line %d value=%d\n", i, rng.IntN(1000))
			}
		} else {
			for j := range body {
				body[j] = byte(rng.Uint32())
			}
		}
		ents = append(ents, zent{name: fmt.Sprintf("data/f%03d", i), body: body, mode: 0o644})
	}
	return buildZip(b, ents...)
}

// BenchmarkCheckArchive checks the whole package: archive rules, manifest
// and sha256.
func BenchmarkCheckArchive(b *testing.B) {
	z := benchPackage(b)
	b.SetBytes(int64(len(z)))
	b.ReportAllocs()
	for b.Loop() {
		_, rep, err := CheckArchive(context.Background(), bytes.NewReader(z), int64(len(z)), Limits{})
		if err != nil || !rep.OK() {
			b.Fatal(err, rep)
		}
	}
}

// BenchmarkExtract unpacks the package to disk.
func BenchmarkExtract(b *testing.B) {
	z := benchPackage(b)
	base := b.TempDir()
	b.SetBytes(int64(len(z)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		dst := filepath.Join(base, strconv.Itoa(i))
		if err := Extract(context.Background(), bytes.NewReader(z), int64(len(z)), dst, Limits{}); err != nil {
			b.Fatal(err)
		}
	}
}
