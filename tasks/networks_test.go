package tasks_test

import (
	"strings"
	"testing"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// TestPlanNetworkValues: a Network value is the name of a network the
// account sees in the datacenter of every target (passed on as given), or
// a CIDR block; anything else is refused with the reason.
func TestPlanNetworkValues(t *testing.T) {
	t.Parallel()
	m := planManifest(
		manifest.Parameter{Variable: "net", Type: manifest.TypeNetwork, Required: true, Prompt: manifest.PromptBuild},
	)
	nets := []store.Network{
		{Name: "backend", Datacenter: "eu-west", CIDR: "10.0.1.0/24"},
		{Name: "backend", Datacenter: "us-east", CIDR: "10.1.1.0/24"},
		{Name: "dmz", Datacenter: "eu-west", CIDR: "192.0.2.0/24"},
	}
	eu := store.Server{Name: "web1", OS: "linux", Datacenter: "eu-west"}
	us := store.Server{Name: "web2", OS: "linux", Datacenter: "us-east"}
	win := store.Server{Name: "win1", OS: "windows", Datacenter: "us-east"}
	tests := []struct {
		name    string
		value   string
		targets []store.Server
		rule    string // "" when accepted
		msg     string // in the problem's message
	}{
		{"name in every target's datacenter", "backend", []store.Server{eu, us}, "", ""},
		{"a CIDR block as before", "10.9.0.0/16", []store.Server{eu, us}, "", ""},
		{"name missing where a target runs", "dmz", []store.Server{eu, us}, manifest.ValueInvalid, "web2 (datacenter us-east)"},
		{"a server the step skips does not count", "dmz", []store.Server{eu, win}, "", ""},
		{"unknown name lists the networks", "ghost", []store.Server{eu}, manifest.ValueInvalid, "backend, dmz"},
		{"names are exact", "Backend", []store.Server{eu}, manifest.ValueInvalid, `did you mean "backend"`},
		{"missing", "", []store.Server{eu}, manifest.ValueMissing, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}},
				Parameters: map[string]string{"net": tc.value}, Servers: tc.targets, Visible: tc.targets, Networks: nets})
			var got *tasks.Problem
			for i := range problems {
				if problems[i].Path == "parameters.net" {
					got = &problems[i]
				}
			}
			switch {
			case tc.rule == "" && got != nil:
				t.Fatalf("refused: %+v", *got)
			case tc.rule == "" && values[0]["net"].Text != tc.value:
				t.Fatalf("the command gets %q, want the value as given, %q", values[0]["net"].Text, tc.value)
			case tc.rule != "" && got == nil:
				t.Fatalf("accepted; problems %+v", problems)
			case tc.rule != "" && (got.Rule != tc.rule || !strings.Contains(got.Message, tc.msg)):
				t.Fatalf("problem %+v, want rule %q and %q in the message", *got, tc.rule, tc.msg)
			}
		})
	}
}

func TestCheckDesignParameterNetwork(t *testing.T) {
	t.Parallel()
	p := manifest.Parameter{Variable: "net", Type: manifest.TypeNetwork, Prompt: manifest.PromptDesign}
	nets := []store.Network{{Name: "backend", Datacenter: "us-east", CIDR: "10.1.1.0/24"}}
	if err := tasks.CheckDesignParameter(p, "backend", nil, nets); err != nil {
		t.Errorf("a network of any datacenter: %v", err)
	}
	if err := tasks.CheckDesignParameter(p, "10.0.0.0/8", nil, nil); err != nil {
		t.Errorf("a CIDR block: %v", err)
	}
	if err := tasks.CheckDesignParameter(p, "ghost", nil, nets); err == nil || !strings.Contains(err.Error(), "no networks") && !strings.Contains(err.Error(), "backend") {
		t.Errorf("an unknown name: %v", err)
	}
}

func TestOfferNetworksFillsNetworkFields(t *testing.T) {
	t.Parallel()
	m := planManifest(
		manifest.Parameter{Name: "Network", Variable: "net", Type: manifest.TypeNetwork, Prompt: manifest.PromptBuild},
		manifest.Parameter{Name: "Other", Variable: "s", Type: manifest.TypeString, Prompt: manifest.PromptBuild},
	)
	nets := []store.Network{
		{Name: "dmz", Datacenter: "eu-west", CIDR: "192.0.2.0/24"},
		{Name: "backend", Datacenter: "us-east", CIDR: "10.1.1.0/24"},
		{Name: "backend", Datacenter: "eu-west", CIDR: "10.0.1.0/24"},
	}
	form := tasks.OfferNetworks(tasks.MergeForm([]tasks.PlanStep{{Manifest: m}}), nets)
	if len(form) != 2 || len(form[1].Options) != 0 {
		t.Fatalf("form %+v", form)
	}
	opts := form[0].Options
	if len(opts) != 2 || opts[0].Value != "backend" || opts[1].Value != "dmz" ||
		opts[0].Name != "backend (eu-west 10.0.1.0/24; us-east 10.1.1.0/24)" {
		t.Fatalf("network options %+v", opts)
	}
}
