package tasks

import (
	"context"
	"fmt"
	"path"

	"github.com/packflow/packflow/manifest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/store"
)

// DeployPlan is what a deployment would run, checked as Deploy checks it
// and recording nothing: each server's steps with their commands rendered
// as a worker renders them (secret values masked), and every problem.
type DeployPlan struct {
	Servers  []ServerPlan `json:"servers"`
	Problems []Problem    `json:"problems"`
}

// ServerPlan is one server's part of a plan.
type ServerPlan struct {
	ID      string     `json:"id"`
	Name    string     `json:"name"`
	Address string     `json:"address"`
	OS      string     `json:"os"`
	Steps   []StepPlan `json:"steps"`
}

// StepPlan is one step on one server: the command as it would run, or
// why the step is skipped there.
type StepPlan struct {
	Package string `json:"package"`
	Version string `json:"version"`
	Name    string `json:"name"`
	Command string `json:"command,omitempty"`
	Skip    string `json:"skip,omitempty"`
}

// planPassword stands for a server's password, which a plan never reads;
// it is secret, so it shows masked like any other.
const planPassword = "planned-password"

// PlanDeploy checks req with the rules Deploy applies (ResolveSteps, then
// Plan) and renders each step's command for each server with the values
// and system variables a worker would use, secrets masked. It records and
// enqueues nothing. Problems are part of the plan, not an error.
func PlanDeploy(ctx context.Context, st *store.Store, req DeployRequest) (DeployPlan, error) {
	out := DeployPlan{Servers: []ServerPlan{}, Problems: []Problem{}}
	steps, problems, err := ResolveSteps(ctx, st, req.Steps, req.CanUse)
	if err != nil {
		return out, err
	}
	if req.Retry != nil {
		if err := req.Retry.Validate(); err != nil {
			problems = append(problems, Problem{Path: "retry", Rule: manifest.ValueInvalid, Message: err.Error()})
		}
	}
	var values []map[string]store.Value
	if len(problems) == 0 {
		values, problems = Plan(PlanRequest{Steps: steps, Parameters: req.Parameters, Servers: req.Servers, Visible: req.Visible})
	}
	if len(problems) > 0 {
		out.Problems = problems
		return out, nil
	}
	e := store.Execution{User: req.User, AccountName: req.AccountName}
	for j, sv := range req.Servers {
		sp := ServerPlan{ID: sv.ID, Name: sv.Name, Address: sv.Address, OS: sv.OS, Steps: []StepPlan{}}
		for i, ps := range steps {
			m := ps.Manifest
			stp := StepPlan{Package: ps.Version.PackageID, Version: ps.Version.Version, Name: m.Metadata.Name}
			if osName := m.OS(); osName != "" && osName != sv.OS {
				stp.Skip = fmt.Sprintf("the package runs on %s, the server is %s", osName, sv.OS)
				sp.Steps = append(sp.Steps, stp)
				continue
			}
			vals := map[string]remote.Value{}
			for k, v := range values[i] {
				vals[k] = remote.Value{Text: v.Text, Secret: v.Secret}
			}
			for _, p := range m.Parameters {
				if p.System() {
					text, secret := systemValue(p.Variable, e, sv, planPassword)
					vals[p.Variable] = remote.Value{Text: text, Secret: secret}
				}
			}
			files := make(map[string]bool, len(ps.Version.Files))
			for _, f := range ps.Version.Files {
				files[path.Clean(f.Path)] = true
			}
			r, err := remote.Render(m.Execution.Command, remote.RenderOptions{
				Shell: ShellFor(m.Execution.Mode), Values: vals,
				IsPackageFile: func(rel string) bool { return files[path.Clean(rel)] },
			})
			if err != nil {
				out.Problems = append(out.Problems, Problem{Path: fmt.Sprintf("servers[%d].steps[%d]", j, i),
					Rule: manifest.ValueInvalid, Message: "render command: " + err.Error()})
				continue
			}
			stp.Command = r.Masked
			sp.Steps = append(sp.Steps, stp)
		}
		out.Servers = append(out.Servers, sp)
	}
	return out, nil
}
