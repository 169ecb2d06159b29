package tasks

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// PlanStep is one step of a deployment being planned: the version to run,
// its manifest and the values the blueprint's designer set.
type PlanStep struct {
	Version  store.Version
	Manifest manifest.Manifest
	// Parameters are the blueprint step's values, by Variable.
	Parameters map[string]string
}

// PlanRequest is what Plan checks.
type PlanRequest struct {
	Steps []PlanStep
	// Parameters are the values given at deployment, by Variable. A value
	// applies to every step declaring the variable (so a Global parameter
	// is given once).
	Parameters map[string]string
	// Servers are the targets.
	Servers []store.Server
	// Visible are the servers the deploying account may see: Server
	// values name one of them, ServerIP values are one's address (or
	// name) or a literal IP address.
	Visible []store.Server
	// Networks are the networks the deploying account sees: Network
	// values name one of them (see checkPlanValue).
	Networks []store.Network
}

// Problem is one reason a deployment cannot start.
type Problem struct {
	Path    string `json:"path"`
	Rule    string `json:"rule"`
	Message string `json:"message"`
}

// Plan checks every parameter of every step and returns the values of
// each step (system parameters left out: the worker fills them per
// server), or every problem found. Rules are named after the original
// platform's errors: missing, invalid value, wrong type.
func Plan(req PlanRequest) ([]map[string]store.Value, []Problem) {
	var problems []Problem
	add := func(path, rule, msg string) {
		problems = append(problems, Problem{Path: path, Rule: rule, Message: msg})
	}
	declared := map[string]bool{}
	values := make([]map[string]store.Value, len(req.Steps))
	reported := map[string]bool{} // a deploy-level value is reported once
	for i, st := range req.Steps {
		values[i] = map[string]store.Value{}
		for k := range st.Parameters {
			if _, ok := st.Manifest.Parameter(k); !ok {
				add(fmt.Sprintf("steps[%d].parameters.%s", i, k), manifest.ValueInvalid,
					fmt.Sprintf("package %s declares no parameter %q", st.Manifest.Metadata.Name, k))
			}
		}
		for _, p := range st.Manifest.Parameters {
			declared[p.Variable] = true
			if p.System() {
				continue
			}
			v, path, fromDeploy := "", fmt.Sprintf("steps[%d].parameters.%s", i, p.Variable), false
			// A platform variable packflow does not fill in takes the
			// deployment's value like a prompted one (never dropped).
			if dv, ok := req.Parameters[p.Variable]; ok && (p.Prompted() || p.Unfilled()) {
				v, path, fromDeploy = dv, "parameters."+p.Variable, true
			} else if sv, ok := st.Parameters[p.Variable]; ok {
				v = sv
			}
			if v == "" {
				v = p.Default
			}
			if v == "" && p.Unfilled() && p.Required {
				path = "parameters." + p.Variable
				if !reported[path] {
					add(path, manifest.ValueMissing, fmt.Sprintf("%s was filled in by the original platform; packflow does not fill it, so give its value in parameters", p.Variable))
					reported[path] = true
				}
				continue
			}
			if v == "" && p.Prompted() && p.Prompt != manifest.PromptDesign {
				// Asked for at deployment: a missing value is reported
				// where it is given, once for every step declaring it.
				path, fromDeploy = "parameters."+p.Variable, true
			}
			if fromDeploy && reported[path] {
				// Checked against an earlier step's declaration already;
				// check again only when this declaration differs.
				if err := req.checkPlanValue(p, v, st.Manifest.OS()); err == nil {
					values[i][p.Variable] = store.Value{Text: resolveValue(p, v, req.Visible), Secret: p.Secret()}
				}
				continue
			}
			if err := req.checkPlanValue(p, v, st.Manifest.OS()); err != nil {
				var ve *manifest.ValueError
				rule, msg := manifest.ValueInvalid, err.Error()
				if as(err, &ve) {
					rule, msg = ve.Rule, ve.Message
				}
				// A secret's message never holds its value (see
				// manifest.ValueError), so it is shown as written: masking
				// it would garble packflow's own words ("the ******** is
				// too weak") and reveal the value by doing so.
				add(path, rule, msg)
				reported[path] = true
				continue
			}
			if fromDeploy {
				reported[path] = true
			}
			values[i][p.Variable] = store.Value{Text: resolveValue(p, v, req.Visible), Secret: p.Secret()}
		}
	}
	for k := range req.Parameters {
		if !declared[k] {
			add("parameters."+k, manifest.ValueInvalid, fmt.Sprintf("no step declares a parameter %q", k))
		}
	}
	problems = append(problems, checkTargets(req)...)
	if len(problems) == 0 {
		problems = append(problems, checkRender(req, values)...)
	}
	sort.SliceStable(problems, func(a, b int) bool { return problems[a].Path < problems[b].Path })
	return values, problems
}

// checkValue applies the manifest's rules and the account's servers.
func checkValue(p manifest.Parameter, v string, visible []store.Server) error {
	if err := p.CheckValue(vForCheck(p, v, visible)); err != nil {
		return err
	}
	if v == "" {
		return nil
	}
	switch p.Type {
	case manifest.TypeServer:
		if findServer(visible, v) == nil {
			return &manifest.ValueError{Variable: p.Variable, Rule: manifest.ValueInvalid,
				Message: fmt.Sprintf("%q is not the name of a server this account sees", v)}
		}
	case manifest.TypeServerIP:
		if findServer(visible, v) == nil && !isIP(v) {
			return &manifest.ValueError{Variable: p.Variable, Rule: manifest.ValueWrongType,
				Message: fmt.Sprintf("%q is neither a server this account sees nor an IP address", v)}
		}
	}
	return nil
}

// vForCheck lets a server name through CheckValue's ServerIP rule (it
// accepts literal addresses only).
func vForCheck(p manifest.Parameter, v string, visible []store.Server) string {
	if p.Type == manifest.TypeServerIP && v != "" && !isIP(v) {
		if sv := findServer(visible, v); sv != nil && isIP(sv.Address) {
			return sv.Address
		}
		if sv := findServer(visible, v); sv != nil {
			return "127.0.0.1" // a host name: valid, resolved by the host
		}
	}
	return v
}

// resolveValue turns a ServerIP naming a server into its address.
func resolveValue(p manifest.Parameter, v string, visible []store.Server) string {
	if p.Type == manifest.TypeServerIP && !isIP(v) {
		if sv := findServer(visible, v); sv != nil {
			return sv.Address
		}
	}
	return v
}

func isIP(v string) bool {
	_, err := netip.ParseAddr(v)
	return err == nil
}

func findServer(visible []store.Server, v string) *store.Server {
	for i := range visible {
		if visible[i].Name == v || visible[i].Address == v {
			return &visible[i]
		}
	}
	return nil
}

// checkTargets reports servers that no step can run on.
func checkTargets(req PlanRequest) []Problem {
	var out []Problem
	if len(req.Servers) == 0 {
		out = append(out, Problem{Path: "servers", Rule: manifest.ValueMissing, Message: "at least one server is required"})
	}
	for i, sv := range req.Servers {
		ok := false
		for _, st := range req.Steps {
			if st.Manifest.OS() == sv.OS {
				ok = true
			}
		}
		if !ok {
			out = append(out, Problem{Path: fmt.Sprintf("servers[%d]", i), Rule: manifest.ValueInvalid,
				Message: fmt.Sprintf("server %s runs %s; no step of this deployment is for %s", sv.Name, sv.OS, sv.OS)})
		}
	}
	return out
}

// checkRender renders each step's command with its values (and
// placeholders for system values) so that values the target shell cannot
// carry are refused before anything runs.
func checkRender(req PlanRequest, values []map[string]store.Value) []Problem {
	var out []Problem
	for i, st := range req.Steps {
		vals := map[string]remote.Value{}
		for k, v := range values[i] {
			vals[k] = remote.Value{Text: v.Text, Secret: v.Secret}
		}
		for _, p := range st.Manifest.Parameters {
			if _, ok := vals[p.Variable]; !ok {
				vals[p.Variable] = remote.Value{Text: "x"}
			}
		}
		_, err := remote.Render(st.Manifest.Execution.Command, remote.RenderOptions{
			Shell: ShellFor(st.Manifest.Execution.Mode), Values: vals,
		})
		var re *remote.RenderError
		if as(err, &re) {
			for _, p := range re.Problems {
				path := fmt.Sprintf("steps[%d].command", i)
				if p.Variable != "" {
					path = "parameters." + p.Variable
				}
				out = append(out, Problem{Path: path, Rule: manifest.ValueInvalid, Message: p.Message})
			}
		} else if err != nil {
			out = append(out, Problem{Path: fmt.Sprintf("steps[%d].command", i), Rule: manifest.ValueInvalid, Message: err.Error()})
		}
	}
	return out
}

// ShellFor maps an execution mode to the shell its command is rendered
// for.
func ShellFor(m manifest.Mode) remote.Shell {
	switch m {
	case manifest.ModeCommand:
		return remote.ShellCmd
	case manifest.ModePowerShell:
		return remote.ShellPowerShell
	}
	return remote.ShellPOSIX
}

// FormField is one input of a blueprint's merged deployment form.
type FormField struct {
	manifest.Field
	// Steps lists the steps (0-based) that use the value.
	Steps []int `json:"steps"`
}

// MergeForm merges the forms of steps: a Global parameter appears once
// for every step declaring it; system parameters are hidden; defaults and
// options are shown. Parameters already set by the blueprint's designer
// show that value as their default.
func MergeForm(steps []PlanStep) []FormField {
	var out []FormField
	index := map[string]int{}
	for i, st := range steps {
		for _, f := range st.Manifest.Form() {
			if v, ok := st.Parameters[f.Variable]; ok && !f.Secret {
				f.Default = v
			}
			if j, ok := index[f.Variable]; ok && (f.Global || out[j].Global) {
				if !slices.Contains(out[j].Steps, i) {
					out[j].Steps = append(out[j].Steps, i)
				}
				out[j].Required = out[j].Required || f.Required
				continue
			}
			if _, ok := index[f.Variable]; !ok {
				index[f.Variable] = len(out)
			}
			out = append(out, FormField{Field: f, Steps: []int{i}})
		}
	}
	if out == nil {
		out = []FormField{}
	}
	return out
}

// CheckParameter checks one value of parameter p: the manifest's rules,
// then Server and ServerIP against the servers the account sees.
func CheckParameter(p manifest.Parameter, v string, visible []store.Server) error {
	return checkValue(p, v, visible)
}
