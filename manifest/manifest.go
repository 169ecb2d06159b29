package manifest

import (
	"fmt"
	"strings"
	"time"
)

// ManifestName is the name of the manifest file at the root of a package.
const ManifestName = "package.manifest"

// Manifest is a parsed package.manifest.
type Manifest struct {
	Metadata   Metadata    `json:"metadata"`
	Parameters []Parameter `json:"parameters"`
	Execution  Execution   `json:"execution"`
}

// Metadata describes and identifies a package.
type Metadata struct {
	// UUID identifies the package, in lower case without braces.
	UUID string `json:"uuid"`
	// Name is the display name, whitespace collapsed, 1–100 characters.
	Name        string `json:"name"`
	Description string `json:"description"`
	// Version is the semantic version from <Version>, or "" when absent
	// (the library then numbers revisions itself).
	Version string `json:"version,omitempty"`
	// Requires lists packages that must be installed with this one.
	Requires []Requirement `json:"requires,omitempty"`
	// Schedules are default schedules offered when the package is scheduled.
	Schedules []Schedule `json:"schedules,omitempty"`
}

// Requirement is one <Requires><Package UUID= Version= /></Requires> entry.
type Requirement struct {
	UUID string `json:"uuid"`
	// Name is informational only.
	Name string `json:"name,omitempty"`
	// Version is a constraint such as ">=1.2.0 <2.0.0" or "^1.2"; "" allows
	// any version.
	Version string `json:"version,omitempty"`
	// Line is the manifest line of the <Package> element.
	Line int `json:"-"`
}

// Constraint parses the requirement's version constraint.
func (r Requirement) Constraint() (Constraint, error) {
	return ParseConstraint(r.Version)
}

// Schedule is a default schedule: exactly one of Cron and Every is set.
type Schedule struct {
	Name  string `json:"name"`
	Cron  string `json:"cron,omitempty"`
	Every string `json:"every,omitempty"`
}

// ParamType is a parameter type, in its canonical spelling.
type ParamType string

// Parameter types.
const (
	TypeNetwork     ParamType = "Network"
	TypeNumeric     ParamType = "Numeric"
	TypeOption      ParamType = "Option"
	TypeMultiSelect ParamType = "MultiSelect"
	TypePassword    ParamType = "Password"
	TypeServer      ParamType = "Server"
	TypeServerIP    ParamType = "ServerIP"
	TypeString      ParamType = "String"
)

var paramTypes = []ParamType{TypeNetwork, TypeNumeric, TypeOption, TypeMultiSelect, TypePassword, TypeServer, TypeServerIP, TypeString}

// ParseParamType returns the canonical type for s, matched case-insensitively.
func ParseParamType(s string) (ParamType, bool) {
	for _, t := range paramTypes {
		if strings.EqualFold(s, string(t)) {
			return t, true
		}
	}
	return "", false
}

// HasOptions tells whether the type takes <Option> elements.
func (t ParamType) HasOptions() bool { return t == TypeOption || t == TypeMultiSelect }

// Prompt says when a parameter's value is asked for.
type Prompt string

// Prompt values. The first edition's "true" means PromptBuild and "false"
// means PromptNone.
const (
	// PromptNone: never asked; the value comes from Default or, for system
	// parameters, from the platform.
	PromptNone Prompt = "none"
	// PromptBuild: asked for on the deployment form.
	PromptBuild Prompt = "build"
	// PromptDesign: set by the blueprint designer when the package is added
	// to a blueprint, not asked at deployment.
	PromptDesign Prompt = "design"
	// PromptGlobal: asked once per deployment and shared by every package
	// of the blueprint that declares the same Variable.
	PromptGlobal Prompt = "global"
)

// ParsePrompt maps a Prompt attribute value (case-insensitive) to a Prompt.
func ParsePrompt(s string) (Prompt, bool) {
	switch strings.ToLower(s) {
	case "true", "build":
		return PromptBuild, true
	case "false", "none":
		return PromptNone, true
	case "design":
		return PromptDesign, true
	case "global":
		return PromptGlobal, true
	}
	return "", false
}

// Parameter is one <Parameter> of the manifest.
type Parameter struct {
	Name     string    `json:"name"`
	Type     ParamType `json:"type"`
	Variable string    `json:"variable"`
	Hint     string    `json:"hint,omitempty"`
	// Default is the default value; "" when none is given.
	Default  string   `json:"default,omitempty"`
	Prompt   Prompt   `json:"prompt"`
	Global   bool     `json:"global"`
	Required bool     `json:"required"`
	Regex    string   `json:"regex,omitempty"`
	Options  []Option `json:"options,omitempty"`
	// Line is the manifest line the parameter is declared on.
	Line int `json:"-"`
}

// Option is one choice of an Option or MultiSelect parameter.
type Option struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Prompted tells whether anyone is asked for the value (at design or
// deployment time).
func (p Parameter) Prompted() bool { return p.Prompt != PromptNone }

// System tells whether the parameter is one the platform fills in
// (T3.Server.Name and the like).
func (p Parameter) System() bool { return IsSystemVariable(p.Variable) }

// Unfilled tells whether the parameter is a platform variable that packflow
// does not fill in: a T3.* Variable other than the system variables, not
// prompted and without a Default, such as T3.BuildServerTask.GroupID,
// which the original platform filled from the server being built. Its
// value is taken from the deployment's parameters, and a deployment
// without one is refused as missing.
func (p Parameter) Unfilled() bool {
	return !p.System() && !p.Prompted() && p.Default == "" && len(p.Variable) > 3 && strings.EqualFold(p.Variable[:3], "T3.")
}

// Secret tells whether the value must be masked (Password parameters).
func (p Parameter) Secret() bool { return p.Type == TypePassword }

// systemVariables are the variables packflow fills in at execution time:
// T3.Identity.User and T3.Identity.Account with the deploying user and
// account, T3.Server.Name and T3.Server.IPAddress with the server's name
// and address, T3.Server.Password with the password of the server's
// credential (masked everywhere), and T3.Datacenter with the server's
// datacenter.
var systemVariables = []string{
	"T3.Identity.User",
	"T3.Identity.Account",
	"T3.Server.Name",
	"T3.Server.IPAddress",
	"T3.Server.Password",
	"T3.Datacenter",
}

// SystemVariables returns the variables the platform fills in at execution
// time. A package uses one by declaring it with Prompt="None".
func SystemVariables() []string {
	return append([]string(nil), systemVariables...)
}

// IsSystemVariable tells whether v is a system variable (matched
// case-insensitively, as the original platform did).
func IsSystemVariable(v string) bool {
	for _, s := range systemVariables {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// Mode is how a package runs, in its canonical spelling.
type Mode string

// Execution modes.
const (
	// ModeCommand runs the command with cmd.exe on Windows.
	ModeCommand Mode = "Command"
	// ModePowerShell runs the command with PowerShell on Windows.
	ModePowerShell Mode = "PowerShell"
	// ModeSsh runs the command with /bin/sh over SSH on Linux.
	ModeSsh Mode = "Ssh"
)

// ParseMode maps a Mode value (case-insensitive) to a Mode.
func ParseMode(s string) (Mode, bool) {
	for _, m := range []Mode{ModeCommand, ModePowerShell, ModeSsh} {
		if strings.EqualFold(s, string(m)) {
			return m, true
		}
	}
	return "", false
}

// OS returns "linux" for Ssh and "windows" for the other modes ("" when the
// mode is unknown).
func (m Mode) OS() string {
	switch m {
	case ModeSsh:
		return "linux"
	case ModeCommand, ModePowerShell:
		return "windows"
	}
	return ""
}

// Execution says how the package runs.
type Execution struct {
	Mode    Mode   `json:"mode"`
	Command string `json:"command"`
	// Persistent keeps the package on the server after it ran.
	Persistent bool `json:"persistent"`
	// RebootOnSuccess reboots the server after a successful run.
	RebootOnSuccess bool `json:"reboot_on_success"`
	// Timeout bounds one run; 0 means the platform's configured default.
	Timeout Duration `json:"timeout,omitempty"`
	// Line is the manifest line of <Command>.
	Line int `json:"-"`
}

// Duration is a time.Duration that reads and writes JSON as "1h30m0s".
type Duration time.Duration

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("manifest: duration: %w", err)
	}
	*d = Duration(v)
	return nil
}

// OS returns "linux" or "windows" from the execution mode.
func (m *Manifest) OS() string { return m.Execution.Mode.OS() }

// Parameter returns the parameter declaring variable v, if any.
func (m *Manifest) Parameter(v string) (Parameter, bool) {
	for _, p := range m.Parameters {
		if p.Variable == v {
			return p, true
		}
	}
	return Parameter{}, false
}

// Field is one input of the form a deployment shows for a package.
type Field struct {
	Variable string    `json:"variable"`
	Label    string    `json:"label"`
	Type     ParamType `json:"type"`
	Hint     string    `json:"hint,omitempty"`
	Default  string    `json:"default,omitempty"`
	Required bool      `json:"required"`
	// Global fields are shown once for every package of a blueprint.
	Global  bool     `json:"global"`
	Prompt  Prompt   `json:"prompt"`
	Secret  bool     `json:"secret"`
	Regex   string   `json:"regex,omitempty"`
	Options []Option `json:"options,omitempty"`
}

// Form returns the fields a deployment (or a blueprint designer) is asked
// for: prompted parameters in manifest order, and the platform variables
// packflow does not fill in (Unfilled), which a deployment must give;
// system parameters and other parameters with Prompt none are left out.
func (m *Manifest) Form() []Field {
	fields := []Field{}
	for _, p := range m.Parameters {
		if (!p.Prompted() && !p.Unfilled()) || p.System() {
			continue
		}
		if p.Unfilled() && p.Hint == "" {
			p.Hint = "filled in by the original platform; packflow needs its value"
		}
		f := Field{
			Variable: p.Variable, Label: p.Name, Type: p.Type, Hint: p.Hint,
			Default: p.Default, Required: p.Required,
			Global: p.Global || p.Prompt == PromptGlobal, Prompt: p.Prompt,
			Secret: p.Secret(), Options: p.Options,
		}
		if p.Type == TypeString {
			f.Regex = p.Regex
		}
		if f.Secret {
			f.Default = ""
		}
		fields = append(fields, f)
	}
	return fields
}
