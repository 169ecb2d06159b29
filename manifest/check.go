package manifest

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/packflow/packflow/scheduler/spec"
)

// MaxNameLength is the longest package name, in characters.
const MaxNameLength = 100

// MinScheduleEvery is the shortest interval a default schedule may use.
const MinScheduleEvery = time.Minute

var variablePattern = regexp.MustCompile(`^[A-Za-z0-9_.\-]+$`)

func (w walker) metadata(n *node, md *Metadata) {
	const path = "/Manifest/Metadata"
	w.attrs(n, path)
	kids, _ := w.elems(n, path, []string{"UUID", "Name", "Description", "Version", "Requires", "Schedules"}, "")
	if k := kids["UUID"]; k == nil || k.trimmed() == "" {
		w.rep.errorf(path+"/UUID", lineOf(k, n), RuleUUIDMissing,
			"<UUID> is missing; add a GUID such as 0f8fad5b-d9cb-469f-a165-70867728950e (keep it across minor updates)")
	} else if id, ok := parseGUID(k.trimmed()); ok {
		md.UUID = id
	} else {
		w.rep.errorf(path+"/UUID", k.line, RuleUUIDFormat,
			"<UUID> %q is not a GUID; use 32 hex digits as 8-4-4-4-12, such as 0f8fad5b-d9cb-469f-a165-70867728950e", k.trimmed())
	}
	if k := kids["Name"]; k == nil || collapse(string(k.text)) == "" {
		w.rep.errorf(path+"/Name", lineOf(k, n), RuleNameMissing, "<Name> is missing; give the package a display name")
	} else {
		md.Name = collapse(string(k.text))
		if c := utf8.RuneCountInString(md.Name); c > MaxNameLength {
			w.rep.errorf(path+"/Name", k.line, RuleNameLength,
				"<Name> has %d characters; shorten it to at most %d (put details in <Description>)", c, MaxNameLength)
		}
	}
	if k := kids["Description"]; k == nil || k.trimmed() == "" {
		w.rep.errorf(path+"/Description", lineOf(k, n), RuleDescriptionMissing,
			"<Description> is missing; describe what the package does for the designers who add it")
	} else {
		md.Description = k.trimmed()
	}
	if k := kids["Version"]; k != nil {
		if v, err := ParseVersion(k.trimmed()); err != nil {
			w.rep.errorf(path+"/Version", k.line, RuleVersionFormat,
				"<Version> %q is not a semantic version; use MAJOR.MINOR.PATCH such as 1.4.0", k.trimmed())
		} else {
			md.Version = v.String()
		}
	}
	if k := kids["Requires"]; k != nil {
		md.Requires = w.requires(k, path+"/Requires")
	}
	if k := kids["Schedules"]; k != nil {
		md.Schedules = w.schedules(k, path+"/Schedules")
	}
}

func lineOf(k, parent *node) int {
	if k != nil {
		return k.line
	}
	return parent.line
}

func (w walker) requires(n *node, path string) []Requirement {
	w.attrs(n, path)
	_, pkgs := w.elems(n, path, nil, "Package")
	out := []Requirement{}
	seen := map[string]bool{}
	for i, k := range pkgs {
		p := fmt.Sprintf("%s/Package[%d]", path, i+1)
		a := w.attrs(k, p, "UUID", "Version", "Name")
		r := Requirement{Name: collapse(a["Name"]), Version: strings.TrimSpace(a["Version"]), Line: k.line}
		id, ok := parseGUID(strings.TrimSpace(a["UUID"]))
		if !ok {
			w.rep.errorf(p+"/@UUID", k.line, RuleRequiresUUID,
				"<Package UUID=%q> is not a GUID; give the UUID of the required package", a["UUID"])
		} else if seen[id] {
			w.rep.errorf(p+"/@UUID", k.line, RuleRequiresDuplicate,
				"package %s is required twice; merge the constraints into one <Package>", id)
		} else {
			seen[id] = true
			r.UUID = id
		}
		if _, err := ParseConstraint(r.Version); err != nil {
			w.rep.errorf(p+"/@Version", k.line, RuleRequiresVersion,
				"Version %q is not a version constraint: %v; write e.g. \">=1.2.0 <2.0.0\", \"^1.2\", \"~1.2.3\" or \"1.0.0\"", r.Version, err)
		}
		out = append(out, r)
	}
	return out
}

func (w walker) schedules(n *node, path string) []Schedule {
	w.attrs(n, path)
	_, items := w.elems(n, path, nil, "Schedule")
	out := []Schedule{}
	seen := map[string]bool{}
	for i, k := range items {
		p := fmt.Sprintf("%s/Schedule[%d]", path, i+1)
		a := w.attrs(k, p, "Name", "Cron", "Every")
		s := Schedule{Name: collapse(a["Name"]), Cron: collapse(a["Cron"]), Every: strings.TrimSpace(a["Every"])}
		_, hasCron := a["Cron"]
		_, hasEvery := a["Every"]
		switch {
		case s.Name == "":
			w.rep.errorf(p+"/@Name", k.line, RuleScheduleName, "<Schedule> needs a Name; name it, e.g. Name=\"nightly\"")
		case seen[strings.ToLower(s.Name)]:
			w.rep.errorf(p+"/@Name", k.line, RuleScheduleNameDup, "schedule %q is declared twice; give each schedule its own Name", s.Name)
		default:
			seen[strings.ToLower(s.Name)] = true
		}
		switch {
		case hasCron == hasEvery:
			w.rep.errorf(p, k.line, RuleScheduleSpec,
				"<Schedule> needs exactly one of Cron (e.g. Cron=\"0 2 * * *\") and Every (e.g. Every=\"6h\")")
		case hasCron:
			if err := spec.CheckCron(s.Cron); err != nil {
				w.rep.errorf(p+"/@Cron", k.line, RuleScheduleCron,
					"Cron %q is refused by the scheduler: %v; use five fields (minute hour day-of-month month day-of-week, days of the week 0-6) or @daily and the like", s.Cron, err)
			}
		default:
			if d, ok := parseTimeout(s.Every); !ok {
				w.rep.errorf(p+"/@Every", k.line, RuleScheduleEvery, "Every %q is not a duration; write e.g. \"15m\" or \"6h\"", s.Every)
			} else if d < MinScheduleEvery {
				w.rep.errorf(p+"/@Every", k.line, RuleScheduleEveryRange, "Every %q is shorter than %s; schedule less often", s.Every, MinScheduleEvery)
			} else if err := spec.CheckEvery(d); err != nil {
				w.rep.errorf(p+"/@Every", k.line, RuleScheduleEveryRange, "Every %q is refused by the scheduler: %v", s.Every, err)
			}
		}
		out = append(out, s)
	}
	return out
}

func (w walker) parameters(n *node) []Parameter {
	const path = "/Manifest/Parameters"
	w.attrs(n, path)
	_, items := w.elems(n, path, nil, "Parameter")
	out := make([]Parameter, 0, len(items))
	seen := map[string]int{}
	labels := map[string]int{}
	for i, k := range items {
		pp := fmt.Sprintf("%s/Parameter[%d]", path, i+1)
		p := w.parameter(k, pp, seen)
		if key := strings.ToLower(p.Name); key != "" {
			if line, dup := labels[key]; dup {
				w.rep.warnf(pp+"/@Name", k.line, RuleParamNameDuplicate,
					"Name %q is also the Name of the parameter on line %d; forms label fields by Name, so give each parameter its own", p.Name, line)
			} else {
				labels[key] = k.line
			}
		}
		if p.Unfilled() {
			w.rep.warnf(pp+"/@Variable", k.line, RuleParamPlatformUnknown,
				"%s looks like a variable the original platform filled in, but packflow fills in only %s; "+
					"deployments must give its value (parameters.%s) or the package must set a Default",
				p.Variable, strings.Join(systemVariables, ", "), p.Variable)
		}
		out = append(out, p)
	}
	return out
}

func (w walker) parameter(n *node, path string, seen map[string]int) Parameter {
	a := w.attrs(n, path, "Name", "Type", "Variable", "Hint", "Default", "Prompt", "Global", "Required", "Regex")
	p := Parameter{Name: collapse(a["Name"]), Hint: a["Hint"], Regex: a["Regex"], Required: true, Line: n.line}
	if p.Name == "" {
		w.rep.errorf(path+"/@Name", n.line, RuleParamNameMissing, "<Parameter> needs a Name, the label shown on the form")
	}
	typeOK := false
	if raw, ok := a["Type"]; !ok || strings.TrimSpace(raw) == "" {
		w.rep.errorf(path+"/@Type", n.line, RuleParamTypeMissing, "<Parameter> needs a Type: %s", typeList())
	} else if t, ok := ParseParamType(strings.TrimSpace(raw)); ok {
		p.Type, typeOK = t, true
	} else {
		w.rep.errorf(path+"/@Type", n.line, RuleParamTypeUnknown, "Type %q is not a parameter type; use one of %s", raw, typeList())
	}
	p.Variable = strings.TrimSpace(a["Variable"])
	switch {
	case p.Variable == "":
		w.rep.errorf(path+"/@Variable", n.line, RuleParamVariableMissing,
			"<Parameter> needs a Variable, the name the Command refers to as ${Variable}")
	case !variablePattern.MatchString(p.Variable):
		w.rep.errorf(path+"/@Variable", n.line, RuleParamVariableFormat,
			"Variable %q may use only letters, digits, '_', '.' and '-'; e.g. MyAccount.MyPackage.Port", p.Variable)
	case seen[p.Variable] > 0:
		w.rep.errorf(path+"/@Variable", n.line, RuleParamVariableDuplicate,
			"Variable %q is already declared on line %d; give each parameter its own Variable", p.Variable, seen[p.Variable])
	default:
		seen[p.Variable] = n.line
	}
	p.Prompt = PromptBuild
	if p.System() {
		p.Prompt = PromptNone
	}
	if raw, ok := a["Prompt"]; ok {
		if v, ok := ParsePrompt(strings.TrimSpace(raw)); ok {
			p.Prompt = v
		} else {
			w.rep.errorf(path+"/@Prompt", n.line, RuleParamPrompt,
				"Prompt %q is not known; use None (or false) to hide it, Build (or true) to ask at deployment, Design or Global", raw)
		}
	}
	if raw, ok := a["Global"]; ok {
		if v, ok := parseBool(raw); ok {
			p.Global = v
		} else {
			w.rep.errorf(path+"/@Global", n.line, RuleParamGlobal, "Global %q must be true or false", raw)
		}
	}
	if raw, ok := a["Required"]; ok {
		if v, ok := parseBool(raw); ok {
			p.Required = v
		} else {
			w.rep.errorf(path+"/@Required", n.line, RuleParamRequired, "Required %q must be true or false", raw)
		}
	}
	if p.System() && p.Prompted() {
		w.rep.errorf(path+"/@Prompt", n.line, RuleParamSystemPrompted,
			"%s is a system parameter filled in by the platform; declare it with Prompt=\"None\"", p.Variable)
	}
	regexOK := true
	if _, ok := a["Regex"]; ok {
		if rule, msg := checkRegex(p.Regex); rule != "" {
			regexOK = false
			w.rep.errorf(path+"/@Regex", n.line, rule, "%s", msg)
		} else if typeOK && p.Type != TypeString {
			w.rep.warnf(path+"/@Regex", n.line, RuleParamRegexIgnored,
				"Regex applies to String parameters only and is ignored for Type %s; remove it or make the type String", p.Type)
		}
	}
	w.options(n, path, &p, typeOK)
	if raw, ok := a["Default"]; ok {
		switch {
		case strings.TrimSpace(raw) == "":
			w.rep.warnf(path+"/@Default", n.line, RuleParamDefaultEmpty,
				"Default is empty, so the parameter has no default (as the original platform read it); give a value or remove the attribute")
		case typeOK && regexOK && (!p.Type.HasOptions() || len(p.Options) > 0):
			p.Default = raw
			if err := p.CheckValue(raw); err != nil {
				w.rep.errorf(path+"/@Default", n.line, RuleParamDefaultInvalid,
					"Default is not a valid value for this parameter: %s", valueMessage(err))
			}
		default:
			p.Default = raw
		}
	}
	return p
}

func (w walker) options(n *node, path string, p *Parameter, typeOK bool) {
	_, items := w.elems(n, path, nil, "Option")
	seen := map[string]bool{}
	for i, k := range items {
		op := fmt.Sprintf("%s/Option[%d]", path, i+1)
		a := w.attrs(k, op, "Name", "Value")
		o := Option{Name: collapse(a["Name"]), Value: strings.TrimSpace(a["Value"])}
		if o.Name == "" {
			w.rep.errorf(op+"/@Name", k.line, RuleParamOptionName, "<Option> needs a Name, the label shown for it")
		}
		switch {
		case o.Value == "":
			w.rep.errorf(op+"/@Value", k.line, RuleParamOptionValue, "<Option> needs a Value, what the command receives")
		case seen[o.Value]:
			w.rep.errorf(op+"/@Value", k.line, RuleParamOptionDuplicate, "option value %q appears twice; make each Value unique", o.Value)
		case p.Type == TypeMultiSelect && strings.Contains(o.Value, ","):
			w.rep.errorf(op+"/@Value", k.line, RuleParamOptionComma,
				"MultiSelect option value %q contains a comma, which separates the chosen values; remove the comma", o.Value)
		default:
			seen[o.Value] = true
		}
		p.Options = append(p.Options, o)
	}
	if !typeOK {
		return
	}
	if p.Type.HasOptions() && len(items) == 0 {
		w.rep.errorf(path, n.line, RuleParamOptionMissing,
			"a parameter of Type %s needs one or more <Option Name=\"…\" Value=\"…\"/> elements", p.Type)
	}
	if !p.Type.HasOptions() && len(items) > 0 {
		w.rep.warnf(path+"/Option", items[0].line, RuleParamOptionIgnored,
			"<Option> applies to Option and MultiSelect parameters only and is ignored for Type %s", p.Type)
	}
}

func (w walker) execution(n *node, ex *Execution) {
	const path = "/Manifest/Execution"
	w.attrs(n, path)
	kids, _ := w.elems(n, path, []string{"Mode", "Command", "Persistent", "RebootOnSuccess", "Timeout"}, "")
	if k := kids["Mode"]; k == nil || k.trimmed() == "" {
		w.rep.errorf(path+"/Mode", lineOf(k, n), RuleModeMissing,
			"<Mode> is missing; use Ssh (Linux), Command or PowerShell (Windows)")
	} else if m, ok := ParseMode(k.trimmed()); ok {
		ex.Mode = m
	} else {
		w.rep.errorf(path+"/Mode", k.line, RuleModeUnknown,
			"<Mode> %q is not known; use Ssh (Linux), Command or PowerShell (Windows)", k.trimmed())
	}
	if k := kids["Command"]; k == nil || k.trimmed() == "" {
		w.rep.errorf(path+"/Command", lineOf(k, n), RuleCommandMissing,
			"<Command> is missing; give the command to run from the package root, e.g. ./install.sh ${Port}")
	} else {
		ex.Command, ex.Line = k.trimmed(), k.line
	}
	boolean := func(name, rule string, dst *bool) {
		k := kids[name]
		if k == nil {
			return
		}
		if v, ok := parseBool(k.trimmed()); ok {
			*dst = v
			return
		}
		w.rep.errorf(path+"/"+name, k.line, rule, "<%s> %q must be true or false", name, k.trimmed())
	}
	boolean("Persistent", RulePersistent, &ex.Persistent)
	boolean("RebootOnSuccess", RuleRebootOnSuccess, &ex.RebootOnSuccess)
	if k := kids["Timeout"]; k != nil {
		d, ok := parseTimeout(k.trimmed())
		switch {
		case !ok:
			w.rep.errorf(path+"/Timeout", k.line, RuleTimeoutFormat,
				"<Timeout> %q is not a duration; write e.g. 90s, 30m or 1h30m", k.trimmed())
		case d <= 0:
			w.rep.errorf(path+"/Timeout", k.line, RuleTimeoutRange,
				"<Timeout> must be longer than zero; remove it to use the platform default")
		default:
			ex.Timeout = Duration(d)
		}
	}
}

// commandVariables checks every ${Variable} of the command against the
// declared parameters.
func (w walker) commandVariables(m *Manifest) {
	if m.Execution.Command == "" {
		return
	}
	line := m.Execution.Line
	const path = "/Manifest/Execution/Command"
	segs, err := ParseCommand(m.Execution.Command)
	if err != nil {
		w.rep.errorf(path, line, RuleCommandUnclosed, "%v; close it with } or remove the $", err)
	}
	w.wk.add(len(segs) + len(m.Parameters))
	declared := make(map[string]bool, len(m.Parameters))
	folded := make(map[string]string, len(m.Parameters))
	for _, p := range m.Parameters {
		declared[p.Variable] = true
		folded[strings.ToLower(p.Variable)] = p.Variable
	}
	const maxReported = 50
	reported := map[string]bool{}
	undeclared := 0
	for _, s := range segs {
		if !s.IsVariable() || reported[s.Variable] || declared[s.Variable] {
			continue
		}
		reported[s.Variable] = true
		if undeclared++; undeclared > maxReported {
			continue
		}
		hint := "declare a <Parameter Variable=\"" + s.Variable + "\"> or fix the name"
		if v, ok := folded[strings.ToLower(s.Variable)]; ok {
			hint = "variables are case-sensitive: did you mean ${" + v + "}?"
		}
		if s.Variable == "" {
			hint = "put a declared Variable between the braces"
		}
		w.rep.errorf(path, line, RuleCommandVariable, "${%s} is not a declared parameter; %s", s.Variable, hint)
	}
	if undeclared > maxReported {
		w.rep.errorf(path, line, RuleCommandVariable, "and %d more undeclared ${…} references; declare them or fix the command", undeclared-maxReported)
	}
}

// commandShell warns about a Command-mode package whose command runs a
// PowerShell script: cmd.exe opens a .ps1 with its associated program
// (Notepad by default) instead of running it.
func (w walker) commandShell(m *Manifest) {
	if m.Execution.Mode != ModeCommand {
		return
	}
	if prog, ok := Program(m.Execution.Command); ok && strings.EqualFold(path.Ext(prog), ".ps1") {
		w.rep.warnf("/Manifest/Execution/Command", m.Execution.Line, RuleCommandShell,
			"Mode Command runs the command with cmd.exe, which does not run %s as PowerShell (it opens it with the program .ps1 files are associated with); "+
				"use Mode PowerShell, or run powershell.exe -ExecutionPolicy Bypass -File %s", prog, prog)
	}
}

// parseBool reads an xs:boolean as the original's schema typed it: true,
// false, 1 or 0 (packflow also ignores case).
func parseBool(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// parseTimeout reads a positive-or-zero Go duration without a sign.
func parseTimeout(s string) (time.Duration, bool) {
	if s == "" || s[0] == '-' || s[0] == '+' {
		return 0, false
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, false
	}
	return d, true
}

func typeList() string {
	names := make([]string, len(paramTypes))
	for i, t := range paramTypes {
		names[i] = string(t)
	}
	return strings.Join(names, ", ")
}

// parseGUID accepts a GUID in the forms .NET's Guid.Parse reads (the
// original platform parsed UUIDs with it), surrounding whitespace ignored:
//
//	D  0f8fad5b-d9cb-469f-a165-70867728950e
//	N  0f8fad5bd9cb469fa16570867728950e
//	B  {0f8fad5b-d9cb-469f-a165-70867728950e}
//	P  (0f8fad5b-d9cb-469f-a165-70867728950e)
//	X  {0x0f8fad5b,0xd9cb,0x469f,{0xa1,0x65,0x70,0x86,0x77,0x28,0x95,0x0e}}
//
// and returns it as D, in lower case.
func parseGUID(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 38 && (s[0] == '{' && s[37] == '}' || s[0] == '(' && s[37] == ')') {
		s = s[1:37]
	}
	switch {
	case len(s) == 32:
		if !allHex(s) {
			return "", false
		}
		s = s[:8] + "-" + s[8:12] + "-" + s[12:16] + "-" + s[16:20] + "-" + s[20:]
	case strings.HasPrefix(s, "{0"):
		return parseGUIDHex(s)
	}
	if len(s) != 36 {
		return "", false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return "", false
			}
		default:
			if !isHex(c) {
				return "", false
			}
		}
	}
	return strings.ToLower(s), true
}

// parseGUIDHex reads .NET's X form: {0xAAAAAAAA,0xBBBB,0xCCCC,{0xDD,…}}
// with eight bytes, each number of up to its width in hex digits.
func parseGUIDHex(s string) (string, bool) {
	s = strings.Join(strings.Fields(s), "")
	if !strings.HasPrefix(s, "{") || !strings.HasSuffix(s, "}}") {
		return "", false
	}
	head, tail, ok := strings.Cut(s[1:len(s)-2], ",{")
	if !ok {
		return "", false
	}
	parts := append(strings.Split(head, ","), strings.Split(tail, ",")...)
	widths := []int{8, 4, 4, 2, 2, 2, 2, 2, 2, 2, 2}
	if len(parts) != len(widths) {
		return "", false
	}
	var b strings.Builder
	for i, p := range parts {
		h, ok := strings.CutPrefix(strings.ToLower(p), "0x")
		if !ok || h == "" || len(h) > widths[i] || !allHex(h) {
			return "", false
		}
		b.WriteString(strings.Repeat("0", widths[i]-len(h)) + h)
	}
	hex := b.String()
	return hex[:8] + "-" + hex[8:12] + "-" + hex[12:16] + "-" + hex[16:20] + "-" + hex[20:], true
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHex(s[i]) {
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
