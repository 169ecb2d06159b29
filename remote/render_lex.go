package remote

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// segment is a piece of a word: literal text, or a ${Var} reference.
type segment struct {
	text     string // the literal text, or the variable name
	variable bool
	offset   int // byte offset in the template
}

// token is a word or an operator of a command template.
type token struct {
	op     string    // the operator; empty for a word
	segs   []segment // the pieces of a word
	offset int       // byte offset in the template
}

// operators lists the operators of the template language, longest first
// among those sharing a prefix. Those starting with a digit are operators
// only at the start of a word. A single & is an operator in cmd.exe
// templates only, where it runs commands in turn.
var operators = []string{"2>&1", "2>>", "2>", ">&2", ">>", "&&", "||", ">", "<", "|", ";", "&"}

// lexer splits a command template into words and operators.
type lexer struct {
	src string
	// escapes turns on the POSIX backslash rules: outside quotes a
	// backslash makes the next character literal; inside double quotes it
	// does so for \ " $ and `.
	escapes bool
	// substitute turns on ${Var} references. Off, ${ is plain text.
	substitute bool
	// amp makes a single & an operator (cmd.exe).
	amp bool

	tokens   []token
	word     *token // the word being read, nil between words
	problems []RenderProblem
}

// lex splits src, a template for sh, into tokens. It stops at the first
// problem that leaves the rest of src meaningless (an unclosed ${ or
// quote).
func lex(src string, sh Shell, substitute bool) ([]token, []RenderProblem) {
	l := &lexer{src: src, escapes: sh == ShellPOSIX, substitute: substitute, amp: sh == ShellCmd}
	l.run()
	return l.tokens, l.problems
}

func (l *lexer) problem(rule, variable string, offset int, format string, args ...any) {
	l.problems = append(l.problems, RenderProblem{
		Variable: variable,
		Rule:     rule,
		Offset:   offset,
		Message:  fmt.Sprintf(format, args...),
	})
}

// startWord makes sure a word is being read, starting at offset.
func (l *lexer) startWord(offset int) {
	if l.word == nil {
		l.word = &token{offset: offset}
	}
}

func (l *lexer) endWord() {
	if l.word != nil {
		l.tokens = append(l.tokens, *l.word)
		l.word = nil
	}
}

func (l *lexer) literal(offset int, s string) {
	l.startWord(offset)
	if n := len(l.word.segs); n > 0 && !l.word.segs[n-1].variable {
		l.word.segs[n-1].text += s
		return
	}
	l.word.segs = append(l.word.segs, segment{text: s, offset: offset})
}

// reference reads the ${Var} at i and returns the offset after it, or -1
// when it is not closed.
func (l *lexer) reference(i int) int {
	end := strings.IndexByte(l.src[i+2:], '}')
	if end < 0 {
		l.problem(RuleUnclosedVariable, "", i, "unclosed ${ at offset %d", i)
		return -1
	}
	name := strings.TrimSpace(l.src[i+2 : i+2+end])
	l.startWord(i)
	if !validVariableName(name) {
		l.problem(RuleInvalidVariable, name, i, "invalid variable name %q at offset %d", name, i)
	} else {
		l.word.segs = append(l.word.segs, segment{text: name, variable: true, offset: i})
	}
	return i + 2 + end + 1
}

// isReference reports whether a ${ reference starts at i.
func (l *lexer) isReference(i int) bool {
	return l.substitute && strings.HasPrefix(l.src[i:], "${")
}

// escaped reads the character after the backslash at i as literal text
// and returns the offset after it, or -1 on a problem.
func (l *lexer) escaped(i int) int {
	if i+1 >= len(l.src) {
		l.problem(RuleSyntax, "", i, "backslash at the end of the command")
		return -1
	}
	if l.isReference(i + 1) {
		l.problem(RuleSyntax, "", i, "a backslash cannot escape ${ at offset %d: variables are substituted everywhere", i+1)
		return -1
	}
	_, size := utf8.DecodeRuneInString(l.src[i+1:])
	l.literal(i, l.src[i+1:i+1+size])
	return i + 1 + size
}

func (l *lexer) run() {
	src := l.src
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case l.isReference(i):
			if i = l.reference(i); i < 0 {
				return
			}
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			l.endWord()
			i++
		case c == '\\' && l.escapes:
			if i = l.escaped(i); i < 0 {
				return
			}
		case c == '\'' || c == '"':
			if i = l.quoted(i); i < 0 {
				return
			}
		default:
			if op := l.operatorAt(i); op != "" {
				l.endWord()
				l.tokens = append(l.tokens, token{op: op, offset: i})
				i += len(op)
				continue
			}
			_, size := utf8.DecodeRuneInString(src[i:])
			l.literal(i, src[i:i+size])
			i += size
		}
	}
	l.endWord()
}

// operatorAt returns the operator starting at i, if any.
func (l *lexer) operatorAt(i int) string {
	for _, op := range operators {
		if !strings.HasPrefix(l.src[i:], op) {
			continue
		}
		if op[0] == '2' && l.word != nil || op == "&" && !l.amp {
			continue
		}
		return op
	}
	return ""
}

// quoted reads the quoted text opening at i and returns the offset after
// the closing quote, or -1 when it is not closed.
func (l *lexer) quoted(i int) int {
	q := l.src[i]
	l.startWord(i)
	// An empty quoted word is still a word: make sure it has a segment.
	l.literal(i, "")
	for j := i + 1; j < len(l.src); {
		c := l.src[j]
		switch {
		case c == q:
			return j + 1
		case l.isReference(j):
			if j = l.reference(j); j < 0 {
				return -1
			}
		case c == '\\' && q == '"' && l.escapes && j+1 < len(l.src) && strings.IndexByte("\\\"$`", l.src[j+1]) >= 0:
			if l.isReference(j + 1) {
				l.problem(RuleSyntax, "", j, "a backslash cannot escape ${ at offset %d: variables are substituted everywhere", j+1)
				return -1
			}
			l.literal(j, l.src[j+1:j+2])
			j += 2
		default:
			_, size := utf8.DecodeRuneInString(l.src[j:])
			l.literal(j, l.src[j:j+size])
			j += size
		}
	}
	l.problem(RuleUnclosedQuote, "", i, "unclosed %c quote at offset %d", q, i)
	return -1
}

// validVariableName reports whether name may be referenced as ${name}:
// letters, digits, '_', '.' and '-', as in T3.Server.Name. Spaces around
// the name inside the braces are ignored before.
func validVariableName(name string) bool {
	if name == "" {
		return false
	}
	for _, r := range name {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && r != '_' && r != '.' && r != '-' {
			return false
		}
	}
	return true
}
