package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/packflow/packflow/internal/testenv"
)

// xsdDecidable lists the error rules an XML Schema can decide. For every
// fixture, xmllint must reject the manifest exactly when the validator
// reports one of these errors or an unknown element or attribute (which the
// schema rejects and packflow only warns about).
var xsdDecidable = map[string]bool{
	RuleManifestSyntax: true, RuleManifestRoot: true, RuleManifestElementDuplicate: true, RuleManifestElementMissing: true,
	RuleUUIDMissing: true, RuleUUIDFormat: true, RuleNameMissing: true, RuleNameLength: true, RuleDescriptionMissing: true,
	RuleVersionFormat: true, RuleRequiresUUID: true, RuleScheduleName: true, RuleScheduleEvery: true,
	RuleParamNameMissing: true, RuleParamTypeMissing: true, RuleParamTypeUnknown: true, RuleParamVariableMissing: true,
	RuleParamVariableFormat: true, RuleParamVariableDuplicate: true, RuleParamDefaultEmpty: true, RuleParamPrompt: true,
	RuleParamGlobal: true, RuleParamRequired: true, RuleParamOptionName: true, RuleParamOptionValue: true,
	RuleParamOptionDuplicate: true,
	RuleModeMissing:          true, RuleModeUnknown: true, RuleCommandMissing: true, RulePersistent: true, RuleRebootOnSuccess: true,
	RuleTimeoutFormat: true,
}

func schemaRejects(r Report) bool {
	for _, p := range r.Errors {
		if xsdDecidable[p.Rule] {
			return true
		}
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
		testenv.Require(t, fmt.Sprintf("%s not installed (Debian: libxml2-utils): %v", name, err))
	}
	return p
}

func TestSchemaAgreesWithValidator(t *testing.T) {
	t.Parallel()
	xmllint := requireTool(t, "xmllint")
	xsd := filepath.Join(t.TempDir(), SchemaName)
	if err := os.WriteFile(xsd, Schema(), 0o644); err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, c := range loadCases(t) {
		file := filepath.Join(c.dir, ManifestName)
		b, err := os.ReadFile(file)
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checked++
		t.Run(c.name, func(t *testing.T) {
			_, rep := ParseBytes(b)
			var out bytes.Buffer
			cmd := exec.Command(xmllint, "--noout", "--schema", xsd, file)
			cmd.Stdout, cmd.Stderr = &out, &out
			runErr := cmd.Run()
			var exitErr *exec.ExitError
			if runErr != nil && !errors.As(runErr, &exitErr) {
				t.Fatalf("xmllint: %v", runErr)
			}
			xsdRejects := runErr != nil
			if want := schemaRejects(rep); xsdRejects != want {
				t.Errorf("xmllint rejects=%v, validator decidable problems=%v\nxmllint:\n%s\nvalidator:\n%s",
					xsdRejects, want, out.String(), formatReport(rep))
			}
		})
	}
	if checked < 40 {
		t.Errorf("only %d manifests checked against the schema", checked)
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
