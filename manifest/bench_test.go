package manifest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkCheckArchive checks a package of 200 files (a third text-like,
// the rest random) held in memory.
func BenchmarkCheckArchive(b *testing.B) {
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
	z := buildZip(b, ents...)
	b.SetBytes(int64(len(z)))
	b.ReportAllocs()
	for b.Loop() {
		_, rep, err := CheckArchive(context.Background(), bytes.NewReader(z), int64(len(z)), Limits{})
		if err != nil || !rep.OK() {
			b.Fatal(err, rep)
		}
	}
}
