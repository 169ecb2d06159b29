package remote

import (
	"fmt"
	"slices"
	"strings"
)

// renderer turns parsed commands into the text for one shell.
type renderer struct {
	opts      RenderOptions
	checkOnly bool // check the template only; values are not needed

	problems []RenderProblem
	reported map[string]bool // rule and variable of the problems found
	out      []string        // the pieces of Command
	masked   []string        // the pieces of Masked
}

// problem records a problem once per rule and variable.
func (r *renderer) problem(rule, variable string, offset int, format string, args ...any) {
	key := rule + "\x00" + variable
	if variable != "" && r.reported[key] {
		return
	}
	if r.reported == nil {
		r.reported = make(map[string]bool)
	}
	r.reported[key] = true
	r.problems = append(r.problems, RenderProblem{
		Variable: variable,
		Rule:     rule,
		Offset:   offset,
		Message:  fmt.Sprintf(format, args...),
	})
}

// emit appends the same piece to Command and Masked.
func (r *renderer) emit(s string) {
	r.out = append(r.out, s)
	r.masked = append(r.masked, s)
}

// command renders one simple command and the separator after it.
func (r *renderer) command(c command) {
	batch := false
	for _, it := range c.items {
		if it.role == roleProgram {
			text, _, _ := r.expand(it.tok, false, true)
			batch = isBatchFile(text)
		}
	}
	for _, it := range c.items {
		if it.role == roleOp {
			r.emit(it.tok.op)
			continue
		}
		r.word(it, batch)
	}
	switch {
	case c.sep.op == ";" && r.opts.Shell == ShellCmd:
		r.emit("&") // cmd.exe reads ; as a space; & runs commands in turn
	case c.sep.op != "":
		r.emit(c.sep.op)
	}
}

// isBatchFile reports whether program is cmd.exe itself or a Windows
// batch file, which runs in cmd.exe whatever started it: either reads its
// command line with the rules of cmd.exe.
func isBatchFile(program string) bool {
	p := strings.ToLower(program)
	base := p[strings.LastIndexAny(p, `/\`)+1:]
	return strings.HasSuffix(p, ".cmd") || strings.HasSuffix(p, ".bat") || base == "cmd" || base == "cmd.exe"
}

// expand returns the text of a word with its values substituted, the same
// with secret values replaced by MaskText, and whether any value was
// substituted. Unless quiet, it records the problems of the word: unknown
// variables, and values or template text the shell cannot carry. toBatch
// says the word is an argument PowerShell passes to a batch file.
func (r *renderer) expand(t token, toBatch, quiet bool) (text, masked string, substituted bool) {
	sh := r.opts.Shell
	var b, m strings.Builder
	for _, seg := range t.segs {
		if !seg.variable {
			b.WriteString(seg.text)
			m.WriteString(seg.text)
			if !quiet {
				r.checkLiteral(seg)
			}
			continue
		}
		substituted = true
		v, ok := r.opts.Values[seg.text]
		if !ok && !r.checkOnly && !quiet {
			r.problem(RuleUnknownVariable, seg.text, seg.offset, "unknown variable ${%s} at offset %d", seg.text, seg.offset)
		}
		b.WriteString(v.Text)
		if v.Secret && v.Text != "" {
			m.WriteString(MaskText)
		} else {
			m.WriteString(v.Text)
		}
		if quiet {
			continue
		}
		refused, why := "\x00", shellName(sh)+" cannot carry"
		switch {
		case sh == ShellCmd:
			refused, why = cmdRefused, "cmd.exe cannot carry safely"
		case sh == ShellPowerShell && toBatch:
			refused, why = batchRefused, "cmd.exe or a batch file started from PowerShell cannot receive safely"
		}
		if i := strings.IndexAny(v.Text, refused); i >= 0 {
			what := describeByte(v.Text[i])
			if v.Secret {
				what = "a character"
			}
			r.problem(RuleUnsafeValue, seg.text, seg.offset,
				"parameter %s holds %s, which %s (refused: %s)", seg.text, what, why, describeSet(refused))
		}
	}
	return b.String(), m.String(), substituted
}

// checkLiteral records template text the shell cannot carry in a word.
func (r *renderer) checkLiteral(seg segment) {
	refused := "\x00"
	if r.opts.Shell == ShellCmd {
		refused = "\"\r\n\x00"
	}
	if i := strings.IndexAny(seg.text, refused); i >= 0 {
		r.problem(RuleUnsafeTemplate, "", seg.offset+i, "%s cannot carry %s inside a word (offset %d)",
			shellName(r.opts.Shell), describeByte(seg.text[i]), seg.offset+i)
	}
}

// describeSet lists the characters of set for a message.
func describeSet(set string) string {
	names := make([]string, len(set))
	for i := range len(set) {
		names[i] = describeByte(set[i])
	}
	return strings.Join(names, " ")
}

// word renders one word of a command. batch says the program of the
// command is a batch file.
func (r *renderer) word(it item, batch bool) {
	sh := r.opts.Shell
	text, masked, substituted := r.expand(it.tok, sh == ShellPowerShell && batch && it.role == roleArg, false)
	pkg := false
	if it.role == roleProgram {
		if rel, ok := packagePath(text, sh, r.opts.IsPackageFile); ok {
			pkg = true
			if masked == text {
				masked = packageCommand(rel, sh)
			} else {
				mrel, _ := packagePath(masked, sh, nil)
				masked = packageCommand(mrel, sh)
			}
			text = packageCommand(rel, sh)
		}
	}
	bare := !substituted && bareSafe(text, sh)
	switch sh {
	case ShellPOSIX:
		if !bare {
			text, masked = QuotePOSIX(text), QuotePOSIX(masked)
		}
	case ShellPowerShell:
		switch {
		case it.role == roleProgram:
			text, masked = "& "+QuotePowerShell(text), "& "+QuotePowerShell(masked)
		case !bare || numericLike(text):
			text, masked = QuotePowerShell(text), QuotePowerShell(masked)
		}
	case ShellCmd:
		if pkg || !bare {
			if it.role == roleArg && !batch {
				text, masked = doubleTrailingBackslashes(text), doubleTrailingBackslashes(masked)
			}
			text, masked = `"`+text+`"`, `"`+masked+`"`
		}
	}
	r.out = append(r.out, text)
	r.masked = append(r.masked, masked)
}

// packageCommand spells the package file rel so that sh runs it from the
// package root, the working directory, and never looks it up on PATH.
func packageCommand(rel string, sh Shell) string {
	switch sh {
	case ShellPowerShell:
		return `.\` + strings.ReplaceAll(rel, "/", `\`)
	case ShellCmd:
		if !strings.Contains(rel, "/") {
			return `.\` + rel
		}
		return strings.ReplaceAll(rel, "/", `\`)
	}
	return "./" + rel
}

// numericLike reports whether PowerShell could read the bare word s as a
// number (1kb is 1024 in argument mode), so that it must be quoted.
func numericLike(s string) bool {
	s = strings.TrimLeft(s, "+-.")
	return s != "" && s[0] >= '0' && s[0] <= '9'
}

// secrets returns every secret value and the other spellings each takes
// inside the rendered command, sorted.
func (r *renderer) secrets() []string {
	var out []string
	for _, v := range r.opts.Values {
		if !v.Secret || v.Text == "" {
			continue
		}
		out = append(out, v.Text)
		switch r.opts.Shell {
		case ShellPOSIX:
			out = append(out, strings.ReplaceAll(v.Text, "'", `'\''`))
		case ShellPowerShell:
			q := QuotePowerShell(v.Text)
			out = append(out, q[1:len(q)-1])
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
