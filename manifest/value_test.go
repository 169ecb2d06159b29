package manifest

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckValue(t *testing.T) {
	t.Parallel()
	opts := []Option{{Name: "Small", Value: "s"}, {Name: "Medium", Value: "m"}, {Name: "Large", Value: "l"}}
	tests := []struct {
		name  string
		p     Parameter
		value string
		rule  string // "" when valid
	}{
		{"required missing", Parameter{Type: TypeString, Required: true}, "", ValueMissing},
		{"optional empty", Parameter{Type: TypeNumeric}, "", ""},
		{"numeric int", Parameter{Type: TypeNumeric}, "42", ""},
		{"numeric fraction", Parameter{Type: TypeNumeric}, "-3.5", ""},
		{"numeric word", Parameter{Type: TypeNumeric}, "three", ValueWrongType},
		{"numeric hex", Parameter{Type: TypeNumeric}, "0x1p3", ValueWrongType},
		{"numeric inf", Parameter{Type: TypeNumeric}, "Inf", ValueWrongType},
		{"option", Parameter{Type: TypeOption, Options: opts}, "m", ""},
		{"option by name", Parameter{Type: TypeOption, Options: opts}, "Medium", ValueInvalid},
		{"multiselect", Parameter{Type: TypeMultiSelect, Options: opts}, "s, l", ""},
		{"multiselect unknown", Parameter{Type: TypeMultiSelect, Options: opts}, "s,x", ValueInvalid},
		{"multiselect twice", Parameter{Type: TypeMultiSelect, Options: opts}, "s,s", ValueInvalid},
		{"multiselect empty item", Parameter{Type: TypeMultiSelect, Options: opts}, "s,,l", ValueInvalid},
		{"password strong", Parameter{Type: TypePassword}, "Tr0ub4dor", ""},
		{"password symbols", Parameter{Type: TypePassword}, "horse-battery-9", ""},
		{"password short", Parameter{Type: TypePassword}, "Ab1!", ValueInvalid},
		{"password two classes", Parameter{Type: TypePassword}, "alllowercase1", ValueInvalid},
		{"string no regex", Parameter{Type: TypeString}, "anything at all", ""},
		{"string regex match", Parameter{Type: TypeString, Regex: `^[a-z]+\.example\.com$`}, "db.example.com", ""},
		{"string regex unanchored", Parameter{Type: TypeString, Regex: `[0-9]`}, "abc1", ""},
		{"string regex mismatch", Parameter{Type: TypeString, Regex: `^[0-9]+$`}, "12a", ValueInvalid},
		{"regex ignored on numeric", Parameter{Type: TypeNumeric, Regex: `^x$`}, "5", ""},
		{"network cidr", Parameter{Type: TypeNetwork}, "10.0.0.0/24", ""},
		{"network v6", Parameter{Type: TypeNetwork}, "2001:db8::/32", ""},
		{"network name", Parameter{Type: TypeNetwork}, "vlan-12", ValueWrongType},
		{"serverip", Parameter{Type: TypeServerIP}, "192.0.2.1", ""},
		{"serverip v6", Parameter{Type: TypeServerIP}, "::1", ""},
		{"serverip cidr", Parameter{Type: TypeServerIP}, "192.0.2.0/24", ValueWrongType},
		{"serverip bad", Parameter{Type: TypeServerIP}, "999.1.1.1", ValueWrongType},
		{"server", Parameter{Type: TypeServer}, "web-01", ""},
		{"server control", Parameter{Type: TypeServer}, "web\n01", ValueInvalid},
		{"nul", Parameter{Type: TypeString}, "a\x00b", ValueInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.p.Variable = "V"
			err := tt.p.CheckValue(tt.value)
			if tt.rule == "" {
				if err != nil {
					t.Fatalf("CheckValue(%q) = %v, want nil", tt.value, err)
				}
				return
			}
			var ve *ValueError
			if !errors.As(err, &ve) || ve.Rule != tt.rule || ve.Variable != "V" {
				t.Fatalf("CheckValue(%q) = %v, want rule %q", tt.value, err, tt.rule)
			}
		})
	}
}

func TestCheckValueNeverShowsPasswords(t *testing.T) {
	t.Parallel()
	p := Parameter{Type: TypePassword, Variable: "P"}
	for _, v := range []string{"weakpass", "Sh0rt"} {
		if err := p.CheckValue(v); err == nil || strings.Contains(err.Error(), v) {
			t.Errorf("CheckValue(%q) = %v", v, err)
		}
	}
}

// A password that breaks several rules is told every one at once, so
// that one fix is enough.
func TestPasswordRulesAllAtOnce(t *testing.T) {
	t.Parallel()
	p := Parameter{Type: TypePassword, Variable: "P"}
	for v, want := range map[string][]string{
		"abc":          {"use at least 8", "mix at least three"},
		"abcdefghijk":  {"mix at least three"},
		"Ab1!":         {"use at least 8"},
		"Tr0ub4dor&3x": nil,
	} {
		err := p.CheckValue(v)
		if want == nil {
			if err != nil {
				t.Errorf("CheckValue(%q) = %v", v, err)
			}
			continue
		}
		var ve *ValueError
		if !errors.As(err, &ve) {
			t.Fatalf("CheckValue(%q) = %v, want a ValueError", v, err)
		}
		for _, w := range want {
			if !strings.Contains(ve.Message, w) {
				t.Errorf("CheckValue(%q) = %q, lacks %q", v, ve.Message, w)
			}
		}
		if len(want) == 1 && strings.Contains(ve.Message, "; and ") {
			t.Errorf("CheckValue(%q) = %q names a rule it keeps", v, ve.Message)
		}
	}
}

func TestForm(t *testing.T) {
	t.Parallel()
	m, rep := ParseBytes([]byte(`<Manifest><Metadata><UUID>5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b</UUID><Name>F</Name><Description>d</Description></Metadata>
<Parameters>
  <Parameter Name="Server" Type="String" Variable="T3.Server.Name" Prompt="None"/>
  <Parameter Name="Hidden" Type="String" Variable="Hidden" Prompt="false" Default="x"/>
  <Parameter Name="Size" Type="Option" Variable="Size" Hint="How big" Default="s" Required="false"><Option Name="Small" Value="s"/></Parameter>
  <Parameter Name="Pw" Type="Password" Variable="Pw" Prompt="Global" Default="Str0ng-pass"/>
  <Parameter Name="Count" Type="Numeric" Variable="Count" Regex="^1$"/>
</Parameters>
<Execution><Mode>PowerShell</Mode><Command>.\x.ps1 ${Size}</Command></Execution></Manifest>`))
	if !rep.OK() {
		t.Fatalf("%+v", rep)
	}
	form := m.Form()
	if len(form) != 3 {
		t.Fatalf("form %+v, want Size, Pw and Count", form)
	}
	if f := form[0]; f.Variable != "Size" || f.Label != "Size" || f.Hint != "How big" || f.Default != "s" || f.Required || len(f.Options) != 1 {
		t.Errorf("Size field %+v", f)
	}
	if f := form[1]; !f.Secret || f.Default != "" || !f.Global || f.Prompt != PromptGlobal {
		t.Errorf("Pw field %+v", f)
	}
	if f := form[2]; f.Regex != "" || !f.Required {
		t.Errorf("Count field %+v", f)
	}
	if m.OS() != "windows" {
		t.Errorf("OS = %q", m.OS())
	}
	if p, ok := m.Parameter("T3.Server.Name"); !ok || !p.System() || p.Prompted() {
		t.Errorf("system parameter %+v", p)
	}
}
