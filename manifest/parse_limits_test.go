package manifest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// manyAttributes returns a manifest whose <Manifest> element has n
// attributes, the shape that cost 37 s of API CPU at n = 80,000.
func manyAttributes(n int) []byte {
	var b bytes.Buffer
	b.WriteString("<Manifest")
	for i := range n {
		fmt.Fprintf(&b, ` a%d="1"`, i)
	}
	b.WriteString("/>")
	return b.Bytes()
}

// TestParseRefusesManyAttributes: 80,000 attributes on one element are
// refused at once with one error, not checked one by one (and not compared
// pairwise), and parsing them allocates little.
func TestParseRefusesManyAttributes(t *testing.T) {
	b := manyAttributes(80000)
	_, rep := ParseBytes(b)
	if errs, warns := rep.Rules(); len(errs) != 1 || errs[0] != RuleManifestLimits || len(warns) != 0 {
		t.Fatalf("rules %v %v, want only %s", errs, warns, RuleManifestLimits)
	}
	// The decoder itself allocates about one per attribute; a warning per
	// attribute, as before, is several more.
	allocs := testing.AllocsPerRun(1, func() { ParseBytes(b) })
	if allocs > 2*80000 {
		t.Errorf("%.0f allocations to refuse 80,000 attributes", allocs)
	}
}

// TestParseIsLinear counts the steps of parsing manifests of growing size
// in each of the shapes hostile input takes: many attributes on one
// element, many elements, many parameters referenced from the command,
// many undeclared references. Doubling the input must at most double the
// work, and the work stays within a small multiple of the bytes.
func TestParseIsLinear(t *testing.T) {
	t.Parallel()
	shapes := map[string]func(n int) []byte{
		"attributes": func(n int) []byte {
			var b bytes.Buffer
			b.WriteString(`<Manifest><Parameters>`)
			for i := range n {
				b.WriteString(`<Parameter`)
				for j := range 60 {
					fmt.Fprintf(&b, ` x%d="%d"`, j, i)
				}
				b.WriteString(`/>`)
			}
			b.WriteString(`</Parameters></Manifest>`)
			return b.Bytes()
		},
		"elements": func(n int) []byte {
			return []byte("<Manifest>" + strings.Repeat("<Unknown/>", n*20) + "</Manifest>")
		},
		"parameters": func(n int) []byte {
			var params, cmd strings.Builder
			for i := range n * 20 {
				fmt.Fprintf(&params, `<Parameter Name="P%d" Type="String" Variable="V%d"/>`, i, i)
				fmt.Fprintf(&cmd, ` ${V%d} ${W%d}`, i, i)
			}
			return []byte(`<Manifest><Parameters>` + params.String() + `</Parameters><Execution><Mode>Ssh</Mode><Command>./x.sh` +
				cmd.String() + `</Command></Execution></Manifest>`)
		},
	}
	for name, shape := range shapes {
		var prev int
		for _, n := range []int{10, 20, 40, 80} {
			b := shape(n)
			wk := newWork(context.Background())
			var rep Report
			parseManifest(wk, b, &rep)
			if rep.Has(RuleManifestLimits) {
				t.Fatalf("%s n=%d: over the limits; the test measures nothing", name, n)
			}
			if wk.steps > len(b) {
				t.Errorf("%s n=%d: %d steps for %d bytes", name, n, wk.steps, len(b))
			}
			if prev > 0 && float64(wk.steps) > 2.1*float64(prev) {
				t.Errorf("%s: %d steps at n=%d, %d at n=%d: not linear", name, prev, n/2, wk.steps, n)
			}
			prev = wk.steps
		}
	}
}

// cancelAfter is a context whose Err turns to Canceled after n looks,
// standing for a client that leaves while its manifest is being parsed.
type cancelAfter struct {
	context.Context
	n int
}

func (c *cancelAfter) Err() error {
	if c.n--; c.n < 0 {
		return context.Canceled
	}
	return nil
}

// TestParseStopsWhenTheCallerLeaves: the parse of an upload looks at its
// context while it works and stops with the context's error.
func TestParseStopsWhenTheCallerLeaves(t *testing.T) {
	t.Parallel()
	b := []byte("<Manifest>" + strings.Repeat("<Unknown/>", 4000) + "</Manifest>")
	ctx := &cancelAfter{Context: context.Background(), n: 1}
	wk := newWork(ctx)
	var rep Report
	if m := parseManifest(wk, b, &rep); m != nil || !errors.Is(wk.err, context.Canceled) {
		t.Errorf("manifest %v, err %v: want the parse stopped with context.Canceled", m, wk.err)
	}
	if wk.steps > 3*checkEvery {
		t.Errorf("%d steps after the context ended; want it noticed within %d", wk.steps, checkEvery)
	}
}
