package manifest

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/packflow/packflow/internal/pkgtest"
)

// xsdDecidable lists the error rules the served XML Schema still decides
// while accepting all that the original platform's schema accepted: when
// the validator reports one of them, xmllint must reject the manifest too.
// The others (blank names, Variable syntax, option values, a missing
// Execution…) the original's schema let through, so ours must as well.
var xsdDecidable = map[string]bool{
	RuleManifestSyntax: true, RuleManifestRoot: true, RuleManifestFormat: true, RuleManifestElementDuplicate: true,
	RuleUUIDMissing: true, RuleUUIDFormat: true,
	RuleVersionFormat: true, RuleRequiresUUID: true, RuleScheduleName: true, RuleScheduleEvery: true,
	RuleParamTypeMissing: true, RuleParamTypeUnknown: true, RuleParamPrompt: true,
	RuleParamGlobal: true, RuleParamRequired: true,
	RuleModeMissing: true, RuleModeUnknown: true, RulePersistent: true, RuleRebootOnSuccess: true,
	RuleTimeoutFormat: true,
}

func decidable(r Report) bool {
	for _, p := range r.Errors {
		if xsdDecidable[p.Rule] {
			return true
		}
	}
	return false
}

// packflowRejects tells whether packflow refuses the manifest or warns
// about a name the schema does not know.
func packflowRejects(r Report) bool {
	if !r.OK() {
		return true
	}
	for _, p := range r.Warnings {
		if p.Rule == RuleManifestElementUnknown || p.Rule == RuleManifestAttributeUnknown {
			return true
		}
	}
	return false
}

func requireTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI (Debian: libxml2-utils): %v", name, err)
		}
		t.Skipf("%s not installed (Debian: libxml2-utils): %v", name, err)
	}
	return p
}

// xsdCheck runs xmllint with one schema over manifests.
type xsdCheck struct {
	xmllint, xsd string
}

func newXSDCheck(t *testing.T, schema []byte) xsdCheck {
	t.Helper()
	x := xsdCheck{xmllint: requireTool(t, "xmllint"), xsd: filepath.Join(t.TempDir(), SchemaName)}
	if err := os.WriteFile(x.xsd, schema, 0o644); err != nil {
		t.Fatal(err)
	}
	return x
}

// accepts tells whether the schema accepts the manifest in file, and
// xmllint's output.
func (x xsdCheck) accepts(t *testing.T, file string) (bool, string) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(x.xmllint, "--noout", "--schema", x.xsd, file)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("xmllint: %v", err)
	}
	return err == nil, out.String()
}

// schemaSample is a manifest to check with both schemas.
type schemaSample struct {
	name, file string
}

// schemaSamples returns the fixture manifests and, when present, the
// corpus of real manifests, written to files.
func schemaSamples(t *testing.T) []schemaSample {
	t.Helper()
	var out []schemaSample
	for _, c := range loadCases(t) {
		file := filepath.Join(c.dir, ManifestName)
		if _, err := os.Stat(file); err == nil {
			out = append(out, schemaSample{"fixture/" + c.name, file})
		}
	}
	if pkgtest.FindCorpus() != "" {
		dir := t.TempDir()
		for _, c := range pkgtest.RealManifests(t) {
			file := filepath.Join(dir, c.Name+".manifest")
			if err := os.WriteFile(file, c.Manifest, 0o644); err != nil {
				t.Fatal(err)
			}
			out = append(out, schemaSample{"real/" + c.Name, file})
		}
	}
	return out
}

// TestSchemaAgreesWithValidator: the served schema never refuses what
// packflow publishes (apart from unknown names, which packflow only warns
// about), and refuses whatever packflow refuses for a rule the schema can
// decide.
func TestSchemaAgreesWithValidator(t *testing.T) {
	t.Parallel()
	x := newXSDCheck(t, Schema())
	samples := schemaSamples(t)
	if len(samples) < 40 {
		t.Errorf("only %d manifests checked against the schema", len(samples))
	}
	for _, s := range samples {
		b, err := os.ReadFile(s.file)
		if err != nil {
			t.Fatal(err)
		}
		_, rep := ParseBytes(b)
		ok, out := x.accepts(t, s.file)
		if !ok && !packflowRejects(rep) {
			t.Errorf("%s: the schema refuses a manifest packflow accepts\nxmllint:\n%s", s.name, out)
		}
		if ok && decidable(rep) {
			t.Errorf("%s: the schema accepts a manifest packflow refuses for a rule it decides\nvalidator:\n%s", s.name, formatReport(rep))
		}
	}
}

// originalOnly are manifests the original platform's schema accepts that
// test its leniency: empty strings where packflow wants text, xs:boolean's
// 1 and 0, no Execution, a nil parameter, elements in any order.
var originalOnly = map[string]string{
	"empty strings": `<Manifest><Metadata><Name></Name><Description></Description><UUID>0f8fad5b-d9cb-469f-a165-70867728950e</UUID></Metadata>
<Parameters><Parameter Name="" Variable="" Type="String" Default="" Regex="" Hint=""><Option Value=""/></Parameter></Parameters>
<Execution><Mode>Ssh</Mode><Command></Command><RebootOnSuccess>0</RebootOnSuccess><Persistent>1</Persistent></Execution></Manifest>`,
	"odd variables": `<Manifest><Parameters><Parameter Name="a b" Variable="a b" Type="Option" Prompt="Design" Global="1" Required="0"><Option Name="x" Value="1"/><Option Value="1"/></Parameter>
<Parameter Name="a b" Variable="a b" Type="Numeric" Prompt="None"/></Parameters>
<Metadata><UUID>0F8FAD5B-D9CB-469F-A165-70867728950E</UUID><Description>d</Description><Name>n</Name></Metadata></Manifest>`,
	"nil parameter": `<Manifest xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><Metadata><UUID>0f8fad5b-d9cb-469f-a165-70867728950e</UUID><Name>n</Name><Description>d</Description></Metadata>
<Parameters><Parameter xsi:nil="true" Name="n" Variable="v" Type="Password"/></Parameters>
<Execution><Persistent>false</Persistent><Command>x</Command><Mode>PowerShell</Mode><RebootOnSuccess>true</RebootOnSuccess></Execution></Manifest>`,
	"nil manifest": `<Manifest xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"/>`,
}

// TestSchemaAcceptsWhatTheOriginalAccepted runs xmllint with the original
// platform's own schema and with packflow's over the corpus, the fixtures
// and manifests written to probe the original's leniency: every manifest
// the original's accepts, packflow's accepts too.
func TestSchemaAcceptsWhatTheOriginalAccepted(t *testing.T) {
	t.Parallel()
	root := pkgtest.FindCorpus()
	if root == "" {
		t.Skipf("the original platform's schema is in %s/_reference, which is absent", pkgtest.CorpusDir)
	}
	orig, err := os.ReadFile(filepath.Join(root, "_reference", "package-manifest.xsd"))
	if err != nil {
		t.Fatal(err)
	}
	theirs, ours := newXSDCheck(t, orig), newXSDCheck(t, Schema())
	samples := schemaSamples(t)
	dir := t.TempDir()
	for name, body := range originalOnly {
		file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".manifest")
		if err := os.WriteFile(file, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if ok, out := theirs.accepts(t, file); !ok {
			t.Errorf("probe %q: the original's schema refuses it, so it probes nothing:\n%s", name, out)
		}
		samples = append(samples, schemaSample{"probe/" + name, file})
	}
	accepted := 0
	for _, s := range samples {
		if ok, _ := theirs.accepts(t, s.file); !ok {
			continue
		}
		accepted++
		if ok, out := ours.accepts(t, s.file); !ok {
			t.Errorf("%s: the original's schema accepts it, packflow's refuses it:\n%s", s.name, out)
		}
	}
	if accepted < len(originalOnly)+3 {
		t.Errorf("only %d manifests pass the original's schema; the comparison shows little", accepted)
	}
}

func TestSchemaIsCopied(t *testing.T) {
	t.Parallel()
	a := Schema()
	a[0] = 'x'
	if Schema()[0] == 'x' {
		t.Error("Schema returns the shared slice")
	}
	if !bytes.Contains(Schema(), []byte(`name="Schedules"`)) || !bytes.Contains(Schema(), []byte(`name="Timeout"`)) {
		t.Error("schema lacks the extensions")
	}
}
