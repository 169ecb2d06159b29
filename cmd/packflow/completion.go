package main

import (
	"context"
	"errors"
	"strings"
)

// runCompletionCommand prints a completion script for a shell: the
// subcommands, and the output formats of -o.
func runCompletionCommand(_ context.Context, e env, args []string) error {
	f := newFlagSet("completion", "Usage: packflow completion bash|zsh|fish\n\n"+
		"Prints a completion script. Load it with:\n"+
		"  bash: source <(packflow completion bash)        (or save it in /etc/bash_completion.d/packflow)\n"+
		"  zsh:  source <(packflow completion zsh)         (after compinit)\n"+
		"  fish: packflow completion fish > ~/.config/fish/completions/packflow.fish",
		nil, nil, e.getenv, e.stderr)
	if err := f.parse(args); err != nil {
		return usageErrorOrHelp(err)
	}
	if f.fs.NArg() != 1 {
		return usageError{errors.New("want one shell: bash, zsh or fish")}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	words := strings.Join(names, " ")
	var script string
	switch f.fs.Arg(0) {
	case "bash":
		script = `# bash completion for packflow
_packflow() {
  local cur prev
  cur="${COMP_WORDS[COMP_CWORD]}"
  prev="${COMP_WORDS[COMP_CWORD-1]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=($(compgen -W "` + words + `" -- "$cur"))
    return
  fi
  case "$prev" in
    -o) COMPREPLY=($(compgen -W "table json yaml" -- "$cur")); return ;;
    use) if [ "${COMP_WORDS[1]}" = context ]; then
           COMPREPLY=($(compgen -W "$(packflow context list -o json 2>/dev/null | sed -n 's/.*"name": "\(.*\)".*/\1/p')" -- "$cur")); return
         fi ;;
  esac
  COMPREPLY=($(compgen -f -- "$cur"))
}
complete -F _packflow packflow
`
	case "zsh":
		script = `#compdef packflow
# zsh completion for packflow
_packflow() {
  if (( CURRENT == 2 )); then
    compadd -- ` + words + `
  elif [[ ${words[CURRENT-1]} == -o ]]; then
    compadd -- table json yaml
  else
    _files
  fi
}
compdef _packflow packflow
`
	case "fish":
		var b strings.Builder
		b.WriteString("# fish completion for packflow\ncomplete -c packflow -f\n")
		for _, c := range commands() {
			b.WriteString("complete -c packflow -n __fish_use_subcommand -a " + c.name + " -d '" + strings.ReplaceAll(c.summary, "'", `\'`) + "'\n")
		}
		b.WriteString("complete -c packflow -n 'not __fish_use_subcommand' -o o -xa 'table json yaml' -d 'output format'\n")
		b.WriteString("complete -c packflow -n 'not __fish_use_subcommand' -F\n")
		script = b.String()
	default:
		return usageError{errors.New("want one shell: bash, zsh or fish")}
	}
	printf(e.stdout, "%s", script)
	return nil
}
