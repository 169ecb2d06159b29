package manifest

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/pkgtest"
)

// realWant is what packflow must say about some cases of the corpus,
// beyond the original platform's outcome: the rules it reports (as errors
// for rejected cases, as warnings for published ones) and words their
// messages hold.
var realWant = map[string]struct {
	errs  []string // exactly these errors
	warns []string // at least these warnings
	words []string
}{
	"neg-checkmk-avocent":        {errs: []string{RuleManifestFormat}, words: []string{"JSON file, not a Blueprint package.manifest"}},
	"neg-firefoxos-podcast":      {errs: []string{RuleManifestFormat}, words: []string{"JSON file, not a Blueprint package.manifest"}},
	"neg-umbraco-bg-icon-picker": {errs: []string{RuleManifestFormat}, words: []string{"JavaScript file, not a Blueprint package.manifest"}},
	"neg-feos-music":             {errs: []string{RuleManifestFormat}, words: []string{`"key: value" lines, not a Blueprint`}},
	"neg-eso-liblazycrafting":    {errs: []string{RuleManifestFormat}, words: []string{"plain text file, not a Blueprint"}},
	"eco-add-nic-src":            {errs: []string{RuleUUIDFormat}, warns: []string{RuleParamDefaultEmpty}},
	"eco-add-nic-built":          {warns: []string{RuleParamDefaultEmpty}},
	"chimera-swarm": {warns: []string{RuleParamDefaultEmpty, RuleParamPlatformUnknown, RuleParamPlatformUnknown},
		words: []string{"T3.BuildServerTask.GroupID looks like", "T3.BuildServerTask.Network looks like"}},
	"chimera-hydra":        {warns: []string{RuleParamNameDuplicate, RuleParamNameDuplicate, RuleParamNameDuplicate}},
	"egw-anycommand":       {warns: []string{RuleParamDefaultEmpty}},
	"egw-yum-check-update": {warns: []string{RuleParamDefaultEmpty}},
	"egw-yum-upgrade":      {warns: []string{RuleParamDefaultEmpty}},
	"eco-puppet-windows":   {warns: []string{RuleCommandShell}, words: []string{"cmd.exe, which does not run install.ps1 as PowerShell"}},
}

// TestRealManifests checks every case of the corpus of real manifests, as
// a directory and as an archive: what the original platform published
// is valid, what it rejected is invalid, with the reasons realWant gives.
func TestRealManifests(t *testing.T) {
	t.Parallel()
	cases := pkgtest.RealManifests(t)
	if len(cases) != 41 {
		t.Errorf("%d cases, want the 41 of the corpus", len(cases))
	}
	for _, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			dir := t.TempDir()
			c.WriteDir(t, dir)
			_, drep, err := CheckDir(ctx, dir, Limits{})
			if err != nil {
				t.Fatal(err)
			}
			z := c.Zip(t)
			_, zrep, err := CheckArchive(ctx, bytes.NewReader(z), int64(len(z)), Limits{})
			if err != nil {
				t.Fatal(err)
			}
			for _, rep := range []Report{drep, zrep} {
				checkRealCase(t, c, rep)
			}
		})
	}
}

func checkRealCase(t *testing.T, c pkgtest.RealCase, rep Report) {
	t.Helper()
	if rep.OK() != c.Published {
		t.Errorf("valid=%v, but the original platform published=%v (%s)\n%s", rep.OK(), c.Published, c.Why, formatReport(rep))
		return
	}
	want, ok := realWant[c.Name]
	if !ok {
		return
	}
	errs, warns := sortedRules(rep)
	if want.errs != nil && !slices.Equal(errs, slices.Sorted(slices.Values(want.errs))) {
		t.Errorf("errors %v, want exactly %v\n%s", errs, want.errs, formatReport(rep))
	}
	for _, w := range want.warns {
		i := slices.Index(warns, w)
		if i < 0 {
			t.Errorf("warnings %v lack %s\n%s", warns, w, formatReport(rep))
			continue
		}
		warns = slices.Delete(warns, i, i+1)
	}
	var text strings.Builder
	for _, p := range append(slices.Clone(rep.Errors), rep.Warnings...) {
		text.WriteString(p.Message + "\n")
	}
	for _, w := range want.words {
		if !strings.Contains(text.String(), w) {
			t.Errorf("no message says %q\n%s", w, formatReport(rep))
		}
	}
}
