package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3";
// otherwise the module version or VCS revision is reported.
var version = ""

// Exit statuses (exitCancelled, 3, is in output.go).
const (
	exitOK    = 0
	exitError = 1 // the process failed, or the watched run failed
	exitUsage = 2 // bad command line or configuration
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := runIO(ctx, os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// env is the process environment, passed in so that only main reads it.
type env struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// out prints the records of a client command in its -o format.
	out *printer
}

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, e env, args []string) error
}

func commands() []command {
	return []command{
		{"api", "serve the HTTP API", runAPICommand},
		{"worker", "run tasks as a worker node", runWorkerCommand},
		{"scheduler", "fire schedules into tasks; run any number of replicas", runSchedulerCommand},
		{"dev", "api, worker and scheduler in one process, with an embedded Redis when none is configured", runDevCommand},
		{"validate", "check a package (.zip or directory) as publishing would", runValidateCommand},
		{"pack", "pack a package directory into a .zip", runPackCommand},
		{"version", "print the version", runVersionCommand},
		{"healthcheck", "exit 0 when a process answers its health URL (container health checks)", runHealthcheckCommand},
		{"completion", "print a shell completion script: bash, zsh or fish", runCompletionCommand},
		{"login", "check a token against an API URL and keep both as the current context", runLoginCommand},
		{"context", "list, show, switch or delete client contexts", runContextCommand},
		{"accounts", "list accounts, or create one", runAccountsCommand},
		{"tokens", "list, create or revoke API tokens", runTokensCommand},
		{"upload", "upload a package archive", runUploadCommand},
		{"publish", "publish an upload to the library", runPublishCommand},
		{"packages", "list the library, or show a package", runPackagesCommand},
		{"versions", "list, show or delete a package's versions", runVersionsCommand},
		{"activate", "activate a package version and install it on every node", runActivateCommand},
		{"active-version", "change a package's active version and install it", runActiveVersionCommand},
		{"installs", "show where a package's active version is installed", runInstallsCommand},
		{"credentials", "list, show, create or delete credentials", runCredentialsCommand},
		{"servers", "list, show, create, delete or check servers", runServersCommand},
		{"blueprints", "list, show, create, update or delete blueprints; show their form", runBlueprintsCommand},
		{"deploy", "deploy a package or a blueprint to servers (-follow, -plan)", runDeployCommand},
		{"executions", "list executions, or show one", runExecutionsCommand},
		{"logs", "print an execution's log, or follow it live", runLogsCommand},
		{"cancel", "cancel an execution", runCancelCommand},
		{"rerun", "run an execution's failed servers again", runRerunCommand},
		{"schedules", "list, create, pause, resume, fire or delete schedules; list their runs", runSchedulesCommand},
		{"task", "show a task's state, or wait for it", taskCommand("task")},
		{"tasks", "the same as task", taskCommand("tasks")},
		{"nodes", "list the live worker nodes", runNodesCommand},
	}
}

// usageError is a bad command line or configuration: exit status 2.
type usageError struct{ err error }

func (u usageError) Error() string { return u.err.Error() }
func (u usageError) Unwrap() error { return u.err }

// run is main without the process and with an empty standard input: it
// returns the exit status.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	return runIO(ctx, args, getenv, strings.NewReader(""), stdout, stderr)
}

// runIO is run with a standard input.
func runIO(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := env{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help" {
		printUsage(stderr)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, e, args[1:])
		var ue usageError
		code, hasCode := exitCode(err)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return exitOK
		case hasCode:
			printf(stderr, "packflow %s: %v\n", c.name, err)
			return code
		case errors.As(err, &ue):
			printf(stderr, "packflow %s: %v\n", c.name, err)
			return exitUsage
		default:
			printf(stderr, "packflow %s: %v\n", c.name, err)
			return exitError
		}
	}
	printf(stderr, "packflow: unknown command %q\n\n", args[0])
	printUsage(stderr)
	return exitUsage
}

// printf writes to a terminal stream. A failed write there has nowhere
// better to be reported, so it is dropped.
func printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

func printUsage(w io.Writer) {
	printf(w, "Usage: packflow <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		printf(w, "  %-14s %s\n", c.name, c.summary)
	}
	printf(w, "\nRun packflow <command> --help for its flags.\n")
}

// versionString is the version this binary reports.
func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}

func runVersionCommand(_ context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("packflow version", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() { printf(fs.Output(), "Usage: packflow version\n\nPrints the version of this binary.\n") }
	if err := fs.Parse(args); err != nil {
		return usageErrorOrHelp(err)
	}
	_, err := fmt.Fprintln(e.stdout, "packflow", versionString())
	return err
}

// usageErrorOrHelp passes flag.ErrHelp through and marks other flag
// errors as usage errors.
func usageErrorOrHelp(err error) error {
	if errors.Is(err, flag.ErrHelp) {
		return err
	}
	return usageError{err}
}
