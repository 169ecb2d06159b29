package manifest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseLinesWithBOMAndCRLF(t *testing.T) {
	t.Parallel()
	src := "\ufeff<?xml version=\"1.0\"?>\r\n<Manifest>\r\n  <Metadata>\r\n    <UUID>nope</UUID>\r\n" +
		"    <Name>x</Name>\r\n    <Description>d</Description>\r\n  </Metadata>\r\n  <Parameters>\r\n" +
		"    <Parameter Name=\"A\"\r\n      Type=\"Bogus\" Variable=\"A\"/>\r\n  </Parameters>\r\n" +
		"  <Execution>\r\n    <Mode>Ssh</Mode>\r\n    <Command>./x.sh ${A}\r\n ${B}</Command>\r\n  </Execution>\r\n</Manifest>\r\n"
	m, rep := ParseBytes([]byte(src))
	type pl struct {
		Rule string
		Line int
	}
	var got []pl
	for _, p := range rep.Errors {
		got = append(got, pl{p.Rule, p.Line})
	}
	want := []pl{{RuleUUIDFormat, 4}, {RuleParamTypeUnknown, 9}, {RuleCommandVariable, 14}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if m == nil || strings.Contains(m.Execution.Command, "\r") {
		t.Errorf("command keeps CR: %q", m.Execution.Command)
	}
}

func TestParseNormalises(t *testing.T) {
	t.Parallel()
	m, rep := ParseBytes([]byte(`<Manifest xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:noNamespaceSchemaLocation="package.manifest.xsd">
<Metadata><UUID> {5F0C1B7E-2D3A-4C8E-9B1F-6A7D8E9F0A1B} </UUID><Name>  Two
  words </Name><Description> d </Description><Version>v2.0.0</Version></Metadata>
<Parameters><Parameter Name="A" Type=" multiselect " Variable="A" Prompt="FALSE" Global="TRUE" Required="False" Default="b">
<Option Name="B" Value=" b "/></Parameter></Parameters>
<Execution><Mode> powershell </Mode><Command>.\a.ps1</Command><Persistent>True</Persistent><Timeout>90s</Timeout></Execution></Manifest>`))
	if !rep.OK() || len(rep.Warnings) > 0 {
		t.Fatalf("%+v", rep)
	}
	want := &Manifest{
		Metadata: Metadata{UUID: "5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b", Name: "Two words", Description: "d", Version: "2.0.0"},
		Parameters: []Parameter{{Name: "A", Type: TypeMultiSelect, Variable: "A", Default: "b", Prompt: PromptNone,
			Global: true, Required: false, Options: []Option{{Name: "B", Value: "b"}}, Line: 4}},
		Execution: Execution{Mode: ModePowerShell, Command: `.\a.ps1`, Persistent: true, Timeout: Duration(90e9), Line: 6},
	}
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestParseRefusesHostileXML(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"deep":        strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100),
		"entity":      `<!DOCTYPE Manifest [<!ENTITY e SYSTEM "file:///etc/passwd">]><Manifest>&e;</Manifest>`,
		"two roots":   `<Manifest/><Manifest/>`,
		"empty":       ``,
		"huge":        "<Manifest>" + strings.Repeat(" ", MaxManifestSize) + "</Manifest>",
		"utf16":       "\xff\xfe<\x00M\x00/\x00>\x00",
		"invalid utf": "<Manifest>\xff</Manifest>",
	} {
		m, rep := ParseBytes([]byte(src))
		if m != nil || rep.OK() {
			t.Errorf("%s: accepted: %+v %+v", name, m, rep)
		}
	}
}

func TestReportJSON(t *testing.T) {
	t.Parallel()
	b, err := json.Marshal(Report{Warnings: []Problem{{Path: "/Manifest/X", Line: 3, Rule: RuleManifestElementUnknown, Message: "m"}}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"errors":[],"warnings":[{"path":"/Manifest/X","line":3,"rule":"manifest.element.unknown","message":"m"}]}`
	if string(b) != want {
		t.Errorf("got  %s\nwant %s", b, want)
	}
}
