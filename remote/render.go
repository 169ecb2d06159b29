package remote

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
)

// ErrInvalidTemplate means a command template cannot be rendered: its
// syntax is broken, it names a variable that has no value, or it uses
// what the target shell cannot do. Retrying cannot help.
var ErrInvalidTemplate = errors.New("remote: invalid command template")

// Value is the value of one parameter of a command template.
type Value struct {
	// Text is inserted into the command as literal text.
	Text string
	// Secret marks a password: Rendered.Masked and every log masks it.
	Secret bool
}

// ListValue returns the value of a MultiSelect parameter: the selected
// items joined with ",".
func ListValue(items ...string) Value {
	return Value{Text: strings.Join(items, ",")}
}

// RenderOptions tells Render what to render for.
type RenderOptions struct {
	// Shell is the language of the rendered command.
	Shell Shell
	// Values holds the value of each variable the template references.
	Values map[string]Value
	// IsPackageFile reports whether rel, a slash-separated path relative
	// to the package root, names a file of the package. It decides whether
	// the program of a command runs from the package root or is looked up
	// on PATH. When nil, a program holding a slash (or, on Windows, a
	// backslash) is a package path and a bare name is looked up on PATH.
	IsPackageFile func(rel string) bool
}

// Rendered is a rendered command.
type Rendered struct {
	// Command is the command for the shell.
	Command string
	// Masked is Command with every secret replaced by MaskText, for logs,
	// events and API answers.
	Masked string
	// Secrets lists every secret value, and each other spelling a secret
	// takes inside Command, for NewMasker.
	Secrets []string
}

// The rules a RenderProblem can break.
const (
	RuleUnknownVariable     = "unknown-variable"     // ${Var} has no value
	RuleUnclosedVariable    = "unclosed-variable"    // ${ without }
	RuleInvalidVariable     = "invalid-variable"     // ${} or ${a b}
	RuleUnclosedQuote       = "unclosed-quote"       // ' or " without its pair
	RuleSyntax              = "syntax"               // misplaced operator, stray backslash, empty command
	RuleUnsupportedOperator = "unsupported-operator" // an operator the shell lacks
	RuleUnsafeTemplate      = "unsafe-template"      // template text the shell cannot carry
	RuleUnsafeValue         = "unsafe-value"         // a value the shell cannot carry
)

// RenderProblem is one reason a template cannot be rendered.
type RenderProblem struct {
	// Variable names the parameter concerned, if any.
	Variable string
	// Rule is one of the Rule constants.
	Rule string
	// Offset is the byte offset in the template where the problem is.
	Offset int
	// Message says what is wrong. It never holds a secret value.
	Message string
}

// RenderError lists every problem found in a template and its values. It
// matches ErrUnsafeValue when a value was refused and ErrInvalidTemplate
// when the template itself is at fault.
type RenderError struct {
	Problems []RenderProblem
}

func (e *RenderError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Message
	}
	return "remote: render command: " + strings.Join(msgs, "; ")
}

// Unwrap returns ErrUnsafeValue and ErrInvalidTemplate as they apply.
func (e *RenderError) Unwrap() []error {
	var unsafe, invalid bool
	for _, p := range e.Problems {
		if p.Rule == RuleUnsafeValue {
			unsafe = true
		} else {
			invalid = true
		}
	}
	var errs []error
	if unsafe {
		errs = append(errs, ErrUnsafeValue)
	}
	if invalid {
		errs = append(errs, ErrInvalidTemplate)
	}
	return errs
}

// Variables returns the names of the variables template references, each
// once, in order of first reference. Variables are substituted everywhere
// in a template, inside quotes too, so the shell does not matter.
func Variables(template string) ([]string, error) {
	var names []string
	var problems []RenderProblem
	l := &lexer{src: template, substitute: true}
	for i := 0; i < len(template); {
		if !l.isReference(i) {
			i++
			continue
		}
		l.word = nil
		next := l.reference(i)
		if next < 0 {
			break
		}
		if l.word != nil && len(l.word.segs) > 0 {
			if name := l.word.segs[0].text; !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
		i = next
	}
	problems = append(problems, l.problems...)
	if len(problems) > 0 {
		return names, &RenderError{Problems: problems}
	}
	return names, nil
}

// CheckTemplate reports every problem of template for sh that does not
// depend on values: syntax, variable references, operators the shell
// lacks and template text the shell cannot carry. Validators call it when
// a package is published; Render checks the values.
func CheckTemplate(template string, sh Shell) error {
	_, err := render(template, RenderOptions{Shell: sh}, true)
	return err
}

// Render renders template for opts.Shell with opts.Values.
//
// The template is split into words and operators (; && || | > >> < 2>
// 2>> 2>&1 >&2) with the quotes of the template respected, each ${Var}
// is replaced by its value as literal text, and each word is quoted for
// the shell. The program of each command runs from the package root when
// it names a package file. The package comment gives the rules in full.
//
// Every problem found is returned in one *RenderError.
func Render(template string, opts RenderOptions) (Rendered, error) {
	return render(template, opts, false)
}

func render(template string, opts RenderOptions, checkOnly bool) (Rendered, error) {
	switch opts.Shell {
	case ShellPOSIX, ShellCmd, ShellPowerShell:
	default:
		return Rendered{}, fmt.Errorf("%w: unknown shell %q", ErrInvalidTemplate, opts.Shell)
	}
	toks, problems := lex(template, opts.Shell, true)
	if len(problems) > 0 {
		return Rendered{}, &RenderError{Problems: problems}
	}
	cmds, problems := parse(toks, opts.Shell)
	r := &renderer{opts: opts, checkOnly: checkOnly, problems: problems}
	for _, c := range cmds {
		r.command(c)
	}
	if len(r.problems) > 0 {
		return Rendered{}, &RenderError{Problems: r.problems}
	}
	if checkOnly {
		return Rendered{}, nil
	}
	secrets := r.secrets()
	return Rendered{
		Command: strings.Join(r.out, " "),
		Masked:  NewMasker(secrets...).Mask(strings.Join(r.masked, " ")),
		Secrets: secrets,
	}, nil
}

// item is one part of a simple command: a word or an operator.
type item struct {
	tok  token
	role role
}

// role says what a word of a simple command is.
type role int

const (
	roleArg     role = iota // an argument
	roleProgram             // the program to run
	roleTarget              // the file of a redirection
	roleOp                  // an operator, not a word
)

// command is a simple command and the operator that ends it, if any.
type command struct {
	items []item
	sep   token // the separator after the command; zero at the end
}

// parse groups tokens into simple commands and checks the operators.
func parse(toks []token, sh Shell) ([]command, []RenderProblem) {
	var problems []RenderProblem
	add := func(rule string, offset int, format string, args ...any) {
		problems = append(problems, RenderProblem{Rule: rule, Offset: offset, Message: fmt.Sprintf(format, args...)})
	}
	var cmds []command
	var cur command
	hasProgram := false
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.op == "" && !hasProgram && sh == ShellPowerShell && isCallOperator(t) && i+1 < len(toks) && toks[i+1].op == "" {
			continue // Render invokes every program with & itself.
		}
		if t.op == "" {
			r := roleArg
			if !hasProgram {
				r, hasProgram = roleProgram, true
			}
			cur.items = append(cur.items, item{tok: t, role: r})
			continue
		}
		if unsupported(t.op, sh) {
			add(RuleUnsupportedOperator, t.offset, "%s has no %s operator (offset %d)", shellName(sh), t.op, t.offset)
		}
		switch t.op {
		case ";", "&", "&&", "||", "|":
			if !hasProgram {
				add(RuleSyntax, t.offset, "%s at offset %d has no command before it", t.op, t.offset)
			}
			cur.sep = t
			cmds = append(cmds, cur)
			cur, hasProgram = command{}, false
		case "2>&1", ">&2":
			cur.items = append(cur.items, item{tok: t, role: roleOp})
		default: // a redirection that takes a file
			cur.items = append(cur.items, item{tok: t, role: roleOp})
			if i+1 >= len(toks) || toks[i+1].op != "" {
				add(RuleSyntax, t.offset, "%s at offset %d has no file after it", t.op, t.offset)
				continue
			}
			i++
			cur.items = append(cur.items, item{tok: toks[i], role: roleTarget})
		}
	}
	switch {
	case hasProgram:
		cmds = append(cmds, cur)
	case len(cur.items) > 0:
		add(RuleSyntax, cur.items[0].tok.offset, "redirection at offset %d has no command", cur.items[0].tok.offset)
	case len(cmds) == 0:
		add(RuleSyntax, 0, "the command is empty")
	case cmds[len(cmds)-1].sep.op == ";" || cmds[len(cmds)-1].sep.op == "&":
		// A trailing ; (or & for cmd.exe) ends the last command and
		// means nothing more.
		cmds[len(cmds)-1].sep = token{}
	default:
		last := cmds[len(cmds)-1].sep
		add(RuleSyntax, last.offset, "%s at offset %d has no command after it", last.op, last.offset)
	}
	return cmds, problems
}

// isCallOperator reports whether t is the word & or . that PowerShell
// templates may put before a script to run it.
func isCallOperator(t token) bool {
	return len(t.segs) == 1 && !t.segs[0].variable && (t.segs[0].text == "&" || t.segs[0].text == ".")
}

// unsupported reports whether sh lacks op. Windows PowerShell 5.1 has no
// && and ||, reserves <, and cannot redirect output to the error stream.
func unsupported(op string, sh Shell) bool {
	return sh == ShellPowerShell && (op == "&&" || op == "||" || op == "<" || op == ">&2")
}

// shellName names sh in messages.
func shellName(sh Shell) string {
	switch sh {
	case ShellCmd:
		return "cmd.exe"
	case ShellPowerShell:
		return "PowerShell"
	}
	return "sh"
}

// packagePath returns the path, relative to the package root and
// slash-separated, of the package file that program names, and whether it
// names one.
func packagePath(program string, sh Shell, isPackageFile func(string) bool) (string, bool) {
	p := program
	if sh != ShellPOSIX {
		p = strings.ReplaceAll(p, `\`, "/")
		if len(p) >= 2 && p[1] == ':' || strings.HasPrefix(p, "//") {
			return "", false // a drive letter or a UNC path
		}
	}
	rel := path.Clean(strings.TrimLeft(p, "/"))
	if program == "" || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", false
	}
	if isPackageFile != nil {
		return rel, isPackageFile(rel)
	}
	return rel, strings.Contains(p, "/")
}
