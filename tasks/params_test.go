package tasks_test

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

func planManifest(params ...manifest.Parameter) manifest.Manifest {
	return manifest.Manifest{
		Metadata:   manifest.Metadata{Name: "pkg"},
		Parameters: params,
		Execution:  manifest.Execution{Mode: manifest.ModeSsh, Command: "./run.sh"},
	}
}

func TestPlanRules(t *testing.T) {
	t.Parallel()
	opts := []manifest.Option{{Name: "A", Value: "a"}, {Name: "B", Value: "b"}}
	m := planManifest(
		manifest.Parameter{Variable: "Str", Type: manifest.TypeString, Regex: "^[a-z]+$", Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Num", Type: manifest.TypeNumeric, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Opt", Type: manifest.TypeOption, Options: opts, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Multi", Type: manifest.TypeMultiSelect, Options: opts, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Pw", Type: manifest.TypePassword, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Srv", Type: manifest.TypeServer, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "IP", Type: manifest.TypeServerIP, Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "Def", Type: manifest.TypeString, Default: "dflt", Required: true, Prompt: manifest.PromptBuild},
		manifest.Parameter{Variable: "T3.Server.Name", Type: manifest.TypeString, Prompt: manifest.PromptNone},
	)
	visible := []store.Server{{Name: "db1", Address: "10.0.0.7", OS: "linux"}}
	target := []store.Server{{Name: "web1", Address: "10.0.0.8", OS: "linux"}}
	tests := []struct {
		name   string
		params map[string]string
		want   map[string]string // path -> rule
	}{
		{"every problem", map[string]string{"Str": "ABC", "Num": "12x", "Opt": "c", "Multi": "a,c", "Pw": "password", "Srv": "ghost", "IP": "nowhere", "Nope": "1"},
			map[string]string{"parameters.Str": "invalid value", "parameters.Num": "wrong type", "parameters.Opt": "invalid value",
				"parameters.Multi": "invalid value", "parameters.Pw": "invalid value", "parameters.Srv": "invalid value",
				"parameters.IP": "wrong type", "parameters.Nope": "invalid value"}},
		{"missing", map[string]string{},
			map[string]string{"parameters.Str": "missing", "parameters.Num": "missing", "parameters.Opt": "missing",
				"parameters.Multi": "missing", "parameters.Pw": "missing", "parameters.Srv": "missing", "parameters.IP": "missing"}},
		{"valid", map[string]string{"Str": "abc", "Num": "-1.5", "Opt": "b", "Multi": "b,a", "Pw": "Str0ng-pass", "Srv": "db1", "IP": "db1"}, map[string]string{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			values, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}}, Parameters: tc.params,
				Servers: target, Visible: visible})
			got := map[string]string{}
			for _, p := range problems {
				got[p.Path] = p.Rule
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if len(tc.want) == 0 {
				want := map[string]store.Value{"Str": {Text: "abc"}, "Num": {Text: "-1.5"}, "Opt": {Text: "b"}, "Multi": {Text: "b,a"},
					"Pw": {Text: "Str0ng-pass", Secret: true}, "Srv": {Text: "db1"}, "IP": {Text: "10.0.0.7"}, "Def": {Text: "dflt"}}
				if diff := cmp.Diff(want, values[0]); diff != "" {
					t.Errorf("values (-want +got):\n%s", diff)
				}
			}
		})
	}
}

// TestPlanPasswordMessagesNeverEchoTheValue checks that a problem with a
// password says the same whatever the password is, so it can neither
// quote it nor be garbled by masking: "password" as a password must not
// turn the message into "the ******** is too weak".
func TestPlanPasswordMessagesNeverEchoTheValue(t *testing.T) {
	t.Parallel()
	m := planManifest(manifest.Parameter{Variable: "Pw", Type: manifest.TypePassword, Required: true, Prompt: manifest.PromptBuild})
	message := func(pw string) string {
		t.Helper()
		_, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}}, Parameters: map[string]string{"Pw": pw},
			Servers: []store.Server{{Name: "w", OS: "linux"}}})
		if len(problems) != 1 || problems[0].Path != "parameters.Pw" {
			t.Fatalf("Pw=%q: problems %+v", pw, problems)
		}
		return problems[0].Message
	}
	for _, pair := range [][2]string{{"password", "qwertzui"}, {"pass", "word"}, {"PASSWORD", "QWERTZUI"}} {
		a, b := message(pair[0]), message(pair[1])
		if a != b {
			t.Errorf("messages differ with the value: %q for %q, %q for %q", a, pair[0], b, pair[1])
		}
		if strings.Contains(a, remote.MaskText) {
			t.Errorf("message %q was masked: packflow's own words must stay whole", a)
		}
	}
	if got, want := message("password"), "the password is too weak: mix at least three of lower case, upper case, digits and symbols"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
}

func TestPlanRefusesWhatCmdCannotCarry(t *testing.T) {
	t.Parallel()
	m := planManifest(manifest.Parameter{Variable: "V", Type: manifest.TypeString, Required: true, Prompt: manifest.PromptBuild})
	m.Execution = manifest.Execution{Mode: manifest.ModeCommand, Command: "setup.cmd ${V}"}
	_, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}}, Parameters: map[string]string{"V": `50% "off"`},
		Servers: []store.Server{{Name: "w", OS: "windows"}}})
	if len(problems) != 1 || problems[0].Path != "parameters.V" {
		t.Fatalf("problems %+v", problems)
	}
}

func TestPlanServersOfNoStepsOS(t *testing.T) {
	t.Parallel()
	_, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: planManifest()}},
		Servers: []store.Server{{Name: "w", OS: "windows"}}})
	if len(problems) != 1 || problems[0].Path != "servers[0]" {
		t.Fatalf("problems %+v", problems)
	}
}

func TestMergeFormGlobalOnceSystemHidden(t *testing.T) {
	t.Parallel()
	shared := manifest.Parameter{Name: "Shared", Variable: "Shared", Type: manifest.TypeString, Global: true, Prompt: manifest.PromptBuild, Default: "x"}
	local := manifest.Parameter{Name: "Port", Variable: "Port", Type: manifest.TypeNumeric, Prompt: manifest.PromptBuild, Default: "80"}
	opt := manifest.Parameter{Name: "Size", Variable: "Size", Type: manifest.TypeOption, Prompt: manifest.PromptBuild,
		Options: []manifest.Option{{Name: "S", Value: "s"}}}
	sys := manifest.Parameter{Name: "Me", Variable: "T3.Server.Name", Type: manifest.TypeString, Prompt: manifest.PromptNone}
	form := tasks.MergeForm([]tasks.PlanStep{
		{Manifest: planManifest(shared, local, sys)},
		{Manifest: planManifest(shared, opt, sys), Parameters: map[string]string{"Size": "s"}},
	})
	type row struct {
		Var, Default string
		Steps        []int
		Options      int
	}
	var got []row
	for _, f := range form {
		got = append(got, row{f.Variable, f.Default, f.Steps, len(f.Options)})
	}
	want := []row{{"Shared", "x", []int{0, 1}, 0}, {"Port", "80", []int{0}, 0}, {"Size", "s", []int{1}, 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("form (-want +got):\n%s", diff)
	}
}

// TestPlanPlatformVariables: a T3.* variable packflow does not fill in
// (declared Prompt="false", as real manifests declare
// T3.BuildServerTask.GroupID) takes the deployment's value, and a
// deployment without one is told which value is missing and why.
func TestPlanPlatformVariables(t *testing.T) {
	t.Parallel()
	m := planManifest(
		manifest.Parameter{Variable: "T3.BuildServerTask.GroupID", Type: manifest.TypeString, Required: true, Prompt: manifest.PromptNone},
		manifest.Parameter{Variable: "T3.Identity.User", Type: manifest.TypeString, Required: true, Prompt: manifest.PromptNone},
	)
	target := []store.Server{{Name: "web1", Address: "10.0.0.8", OS: "linux"}}
	values, problems := tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}},
		Parameters: map[string]string{"T3.BuildServerTask.GroupID": "g-42"}, Servers: target})
	if len(problems) != 0 {
		t.Fatalf("problems: %+v", problems)
	}
	if got := values[0]["T3.BuildServerTask.GroupID"].Text; got != "g-42" {
		t.Errorf("value %q, want the deployment's g-42", got)
	}
	_, problems = tasks.Plan(tasks.PlanRequest{Steps: []tasks.PlanStep{{Manifest: m}, {Manifest: m}}, Servers: target})
	if len(problems) != 1 || problems[0].Path != "parameters.T3.BuildServerTask.GroupID" || problems[0].Rule != manifest.ValueMissing ||
		!strings.Contains(problems[0].Message, "original platform") {
		t.Errorf("problems %+v, want one: the platform variable is missing", problems)
	}
}
