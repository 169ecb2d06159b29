package manifest

import (
	"errors"
	"strings"
	"testing"
)

// TestMatchRegexIsDotNet: parameter regexes are .NET's, matched
// unanchored as Regex.IsMatch, and bounded in time.
func TestMatchRegexIsDotNet(t *testing.T) {
	t.Parallel()
	const domain = `(?=^.{1,254}$)(?:^[A-Za-z](?:(?:[-A-Za-z0-9]){0,61}[A-Za-z0-9])?(?:\.[A-Za-z](?:(?:[-A-Za-z0-9]){0,61}[A-Za-z0-9])?)*$)`
	tests := []struct {
		pattern, value string
		want           bool
	}{
		{domain, "corp.example.com", true},
		{domain, "-bad.example", false},
		{domain, strings.Repeat("a.", 130) + "com", false}, // longer than 254
		{`(?<!x)y`, "ay", true},
		{`(?<!x)y`, "xy", false},
		{`(a)\1`, "baab", true},
		{`[0-9]+`, "port 80", true}, // unanchored
		{`^[0-9]+$`, "port 80", false},
	}
	for _, tt := range tests {
		got, err := MatchRegex(tt.pattern, tt.value)
		if err != nil || got != tt.want {
			t.Errorf("MatchRegex(%q, %q) = %v, %v; want %v", tt.pattern, tt.value, got, err, tt.want)
		}
	}
	for _, bad := range []string{`[a-z`, `(?P<n>x)`, `a{2,1}`, `(?<n>x)\k<m>`} {
		if _, err := CompileRegex(bad); err == nil {
			t.Errorf("CompileRegex(%q) accepted a pattern .NET refuses", bad)
		}
	}
	if _, err := MatchRegex(`^(a+)+$`, strings.Repeat("a", 40)+"!"); !errors.Is(err, ErrRegexTimeout) {
		t.Errorf("catastrophic backtracking: err = %v, want ErrRegexTimeout", err)
	}
	p := Parameter{Variable: "D", Type: TypeString, Regex: `^(a+)+$`, Required: true}
	var ve *ValueError
	if err := p.CheckValue(strings.Repeat("a", 40) + "!"); !errors.As(err, &ve) || !strings.Contains(ve.Message, "too long") {
		t.Errorf("CheckValue with a hostile pattern: %v", err)
	}
}

func TestParseGUIDReadsDotNetForms(t *testing.T) {
	t.Parallel()
	const want = "0f8fad5b-d9cb-469f-a165-70867728950e"
	for _, in := range []string{
		"0f8fad5b-d9cb-469f-a165-70867728950e", "0F8FAD5BD9CB469FA16570867728950E",
		"{0f8fad5b-d9cb-469f-a165-70867728950e}", "(0F8FAD5B-D9CB-469F-A165-70867728950E)",
		"{0x0f8fad5b,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95,0x0e}}",
		"{0xf8fad5b, 0xd9cb, 0x469f, {0xa1, 0x65, 0x70, 0x86, 0x77, 0x28, 0x95, 0xe}}",
		"\n  0f8fad5b-d9cb-469f-a165-70867728950e\n",
	} {
		if got, ok := parseGUID(in); !ok || got != want {
			t.Errorf("parseGUID(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"x", "{0f8fad5b-d9cb-469f-a165-70867728950e)", "0f8fad5bd9cb469fa16570867728950", "0f8fad5b-d9cb-469f-a165_70867728950e",
		"{0x0f8fad5b1,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95,0x0e}}", "{0x0f8fad5b,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95}}"} {
		if got, ok := parseGUID(in); ok {
			t.Errorf("parseGUID(%q) = %q, accepted", in, got)
		}
	}
}

const compatManifest = `<Manifest>
  <Metadata><UUID>0f8fad5b-d9cb-469f-a165-70867728950e</UUID><Name>n</Name><Description>d</Description></Metadata>
  <Parameters>
    <Parameter Name="Mode" Type="Option" Variable="M" Default="" Required="1" Global="0"><Option Name="a" Value="a"/></Parameter>
    <Parameter Name="Group" Type="String" Variable="T3.BuildServerTask.GroupID" Prompt="false"/>
    <Parameter Name="Net" Type="String" Variable="t3.buildservertask.network" Prompt="None" Default="vlan"/>
    <Parameter Name="Custom" Type="String" Variable="T3.Custom.Thing"/>
    <Parameter Name="Server" Type="String" Variable="T3.Server.Name" Prompt="false"/>
  </Parameters>
  <Execution><Mode>Ssh</Mode><Command>./x.sh ${M} ${T3.BuildServerTask.GroupID}</Command><Persistent>0</Persistent><RebootOnSuccess>1</RebootOnSuccess></Execution>
</Manifest>`

// TestCompatEmptyDefaultAndPlatformVariables: Default="" is no default
// (a warning says so); a T3.* variable packflow does not fill is published
// with a warning naming it and shows on the form; xs:boolean's 1 and 0
// are booleans.
func TestCompatEmptyDefaultAndPlatformVariables(t *testing.T) {
	t.Parallel()
	m, rep := ParseBytes([]byte(compatManifest))
	if !rep.OK() {
		t.Fatalf("refused:\n%s", formatReport(rep))
	}
	_, warns := rep.Rules()
	if strings.Join(warns, " ") != RuleParamDefaultEmpty+" "+RuleParamPlatformUnknown {
		t.Errorf("warnings %v\n%s", warns, formatReport(rep))
	}
	if !strings.Contains(formatReport(rep), "T3.BuildServerTask.GroupID looks like a variable the original platform filled in") {
		t.Errorf("the warning does not name the variable:\n%s", formatReport(rep))
	}
	if p := m.Parameters[0]; p.Default != "" || !p.Required || p.Global {
		t.Errorf("parameter M: %+v", p)
	}
	if !m.Execution.RebootOnSuccess || m.Execution.Persistent {
		t.Errorf("execution: %+v", m.Execution)
	}
	var form []string
	for _, f := range m.Form() {
		form = append(form, f.Variable)
	}
	if strings.Join(form, " ") != "M T3.BuildServerTask.GroupID T3.Custom.Thing" {
		t.Errorf("form %v: want the prompted parameters and the unfilled platform variable", form)
	}
	if err := m.Parameters[0].CheckValue(""); err == nil {
		t.Error("an empty Default filled a required value")
	}
}
