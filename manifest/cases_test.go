package manifest

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// fixtureCase is one directory of testdata/cases: a package in pkg/ and
// the rules it must produce in want.txt ("error RULE" or "warning RULE"
// lines; "#" starts a comment).
type fixtureCase struct {
	name        string
	dir         string
	errs, warns []string
}

func loadCases(t *testing.T) []fixtureCase {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join("testdata", "cases", "*"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []fixtureCase
	for _, d := range dirs {
		c := fixtureCase{name: filepath.Base(d), dir: filepath.Join(d, "pkg"), errs: []string{}, warns: []string{}}
		b, err := os.ReadFile(filepath.Join(d, "want.txt"))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := strings.TrimSpace(sc.Text())
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			kind, rule, _ := strings.Cut(line, " ")
			switch kind {
			case "error":
				c.errs = append(c.errs, rule)
			case "warning":
				c.warns = append(c.warns, rule)
			default:
				t.Fatalf("%s: bad want line %q", d, line)
			}
		}
		cases = append(cases, c)
	}
	if len(cases) < 40 {
		t.Fatalf("only %d fixture cases", len(cases))
	}
	return cases
}

func sortedRules(r Report) (errs, warns []string) {
	errs, warns = r.Rules()
	errs, warns = append([]string{}, errs...), append([]string{}, warns...)
	slices.Sort(errs)
	slices.Sort(warns)
	return errs, warns
}

func (c fixtureCase) check(t *testing.T, rep Report) {
	t.Helper()
	wantE, wantW := slices.Sorted(slices.Values(c.errs)), slices.Sorted(slices.Values(c.warns))
	gotE, gotW := sortedRules(rep)
	if diff := cmp.Diff(wantE, gotE, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("error rules (-want +got):\n%s\nreport:\n%s", diff, formatReport(rep))
	}
	if diff := cmp.Diff(wantW, gotW, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("warning rules (-want +got):\n%s\nreport:\n%s", diff, formatReport(rep))
	}
	for _, p := range append(slices.Clone(rep.Errors), rep.Warnings...) {
		if p.Message == "" || p.Rule == "" {
			t.Errorf("problem without rule or message: %+v", p)
		}
		if strings.HasPrefix(p.Path, "/Manifest") && p.Line == 0 {
			t.Errorf("manifest problem without a line: %+v", p)
		}
	}
}

func formatReport(r Report) string {
	var b strings.Builder
	_ = r.Format(&b, "pkg")
	return b.String()
}

// TestCases checks every fixture as a directory and, packed, as an archive:
// both must report exactly the expected rules.
func TestCases(t *testing.T) {
	t.Parallel()
	for _, c := range loadCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			pkg, rep, err := CheckDir(ctx, c.dir, Limits{})
			if err != nil {
				t.Fatalf("CheckDir: %v", err)
			}
			c.check(t, rep)
			if pkg == nil {
				t.Fatal("CheckDir returned no package")
			}
			if rep.OK() && pkg.Manifest == nil {
				t.Error("valid package without a manifest")
			}

			var buf bytes.Buffer
			if err := Pack(ctx, c.dir, &buf); err != nil {
				if slices.Contains(c.errs, RuleManifestMissing) || slices.Contains(c.errs, RuleManifestNested) {
					return // Pack refuses a folder without a root manifest
				}
				t.Fatalf("Pack: %v", err)
			}
			zpkg, zrep, err := CheckArchive(ctx, bytes.NewReader(buf.Bytes()), int64(buf.Len()), Limits{})
			if err != nil {
				t.Fatalf("CheckArchive: %v", err)
			}
			c.check(t, zrep)
			if diff := cmp.Diff(pkg.Files, zpkg.Files); diff != "" {
				t.Errorf("files differ between directory and archive (-dir +zip):\n%s", diff)
			}
			if diff := cmp.Diff(pkg.Manifest, zpkg.Manifest); diff != "" {
				t.Errorf("manifest differs between directory and archive (-dir +zip):\n%s", diff)
			}
		})
	}
}
