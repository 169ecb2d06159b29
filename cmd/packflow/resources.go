package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
)

// Client verbs over the API's records: list, show, create, delete and
// the actions each record has. Every one prints with -o (table, json or
// yaml).

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// esc escapes one path segment.
func esc(s string) string { return url.PathEscape(s) }

// getPrint prints the answer of GET path.
func getPrint(ctx context.Context, c *apiClient, e env, path string, columns []column) error {
	var out any
	if err := c.call(ctx, http.MethodGet, path, nil, "", &out); err != nil {
		return err
	}
	return e.out.print(out, columns)
}

// sendPrint prints the answer of method path with body.
func sendPrint(ctx context.Context, c *apiClient, e env, method, path string, body any, columns []column) error {
	var out any
	if err := c.call(ctx, method, path, body, "", &out); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	return e.out.print(out, columns)
}

// deleteRecord deletes path and says so.
func deleteRecord(ctx context.Context, c *apiClient, e env, path, what string) error {
	if err := c.call(ctx, http.MethodDelete, path, nil, "", nil); err != nil {
		return err
	}
	printf(e.stdout, "deleted %s\n", what)
	return nil
}

// readJSONFile reads a JSON object from path ("-" is standard input).
func readJSONFile(e env, path string) (map[string]any, error) {
	var r io.Reader = e.stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, usageError{err}
		}
		defer func() { _ = f.Close() }()
		r = f
	}
	var out map[string]any
	if err := json.NewDecoder(r).Decode(&out); err != nil {
		return nil, usageError{fmt.Errorf("%s: want a JSON object: %w", path, err)}
	}
	return out, nil
}

// readSecret reads a secret from a file ("-" is standard input), without
// its final newline.
func readSecret(e env, path string) (string, error) {
	var data []byte
	var err error
	if path == "-" {
		data, err = io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return "", usageError{err}
	}
	return strings.TrimRight(string(data), "\r\n"), nil
}

// sub is the subcommand of a verb and its arguments.
func sub(f *flagSet) (string, []string) {
	if len(f.args) == 0 {
		return "list", nil
	}
	return f.args[0], f.args[1:]
}

func badSub(want string) error { return usageError{fmt.Errorf("want %s", want)} }

var (
	packageCols   = cols("id", "name", "os", "category", "visibility", "active_version", "latest_version")
	versionCols   = cols("version", "active", "size", "published_at", "published_by", "sha256")
	installCols   = []column{{"NODE", "node"}, {"VERSION", "version"}, {"STATE", "state"}, {"ATTEMPTS", "attempts"}, {"ERROR", "error"}}
	credCols      = cols("id", "name", "kind", "username", "created_at")
	serverCols    = cols("id", "name", "address", "port", "os", "transport", "credential", "datacenter")
	blueprintCols = cols("id", "name", "description", "updated_at")
	execCols      = cols("id", "status", "blueprint_id", "user", "created_at")
	scheduleCols  = cols("id", "name", "cron", "every", "timezone", "enabled", "action.kind")
	runCols       = cols("scheduled_at", "fired_at", "status", "execution_id", "task_id", "error")
	nodeCols      = cols("id", "hostname", "concurrency", "active", "processed", "failed", "last_seen")
	accountCols   = cols("id", "name", "parent", "vendor", "created_at")
	tokenCols     = cols("id", "account", "user", "role", "created_at", "last_used_at")
)

func runPackagesCommand(ctx context.Context, e env, args []string) error {
	var osName, category, q *string
	return runVerb(ctx, e, "packages", verb{
		usage: "Usage: packflow packages [show PACKAGE_UUID] [-os linux|windows] [-category script|software] [-q TEXT]\n\n" +
			"Lists the library the token sees, or shows one package with its versions.",
		flags: func(f *flagSet) {
			osName = f.fs.String("os", "", "only packages for this OS")
			category = f.fs.String("category", "", "only this category")
			q = f.fs.String("q", "", "only packages whose name or description holds TEXT")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				v := url.Values{}
				for k, p := range map[string]*string{"os": osName, "category": category, "q": q} {
					if *p != "" {
						v.Set(k, *p)
					}
				}
				return listAll(ctx, c, "/api/v1/packages", v, e, packageCols)
			case s == "show" && len(a) == 1:
				return getPrint(ctx, c, e, "/api/v1/packages/"+esc(a[0]), nil)
			}
			return badSub("no arguments, or show PACKAGE_UUID")
		},
	}, args)
}

func runVersionsCommand(ctx context.Context, e env, args []string) error {
	return runVerb(ctx, e, "versions", verb{
		usage: "Usage: packflow versions PACKAGE_UUID [VERSION] | versions delete PACKAGE_UUID VERSION\n\n" +
			"Lists a package's versions, shows one (manifest, parameters, files, requirements), or deletes\n" +
			"one that nothing active or scheduled uses.",
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			a := f.args
			switch {
			case len(a) == 1:
				var pkg struct {
					Versions []any `json:"versions"`
				}
				if err := c.call(ctx, http.MethodGet, "/api/v1/packages/"+esc(a[0]), nil, "", &pkg); err != nil {
					return err
				}
				if pkg.Versions == nil {
					pkg.Versions = []any{}
				}
				return e.out.print(pkg.Versions, versionCols)
			case len(a) == 2 && a[0] != "delete":
				return getPrint(ctx, c, e, "/api/v1/packages/"+esc(a[0])+"/versions/"+esc(a[1]), nil)
			case len(a) == 3 && a[0] == "delete":
				return deleteRecord(ctx, c, e, "/api/v1/packages/"+esc(a[1])+"/versions/"+esc(a[2]), "version "+a[2])
			}
			return badSub("PACKAGE_UUID [VERSION], or delete PACKAGE_UUID VERSION")
		},
	}, args)
}

func runActiveVersionCommand(ctx context.Context, e env, args []string) error {
	var wait *bool
	return runVerb(ctx, e, "active-version", verb{
		usage: "Usage: packflow active-version PACKAGE_UUID VERSION [-wait]\n\n" +
			"Changes the package's active version and installs it on every node. With -wait, waits until\n" +
			"every node installed it or failed (exit 1 when a node failed).",
		flags: func(f *flagSet) {
			wait = f.fs.Bool("wait", false, "wait until every node installed the version or failed")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 2, "PACKAGE_UUID and VERSION"); err != nil {
				return err
			}
			var accepted map[string]any
			if err := c.call(ctx, http.MethodPost, "/api/v1/packages/"+esc(f.args[0])+"/active-version",
				map[string]any{"version": f.args[1]}, "", &accepted); err != nil {
				return err
			}
			id, _ := accepted["task_id"].(string)
			if !*wait || id == "" {
				return e.out.print(accepted, nil)
			}
			return waitActivation(ctx, c, e, esc(f.args[0]), id)
		},
	}, args)
}

func runCredentialsCommand(ctx context.Context, e env, args []string) error {
	var kind, username, secretFile, passFile *string
	return runVerb(ctx, e, "credentials", verb{
		usage: "Usage: packflow credentials [show ID | delete ID |\n" +
			"       create NAME -kind ssh-key|password -username USER -secret-file FILE|- [-passphrase-file FILE]]\n\n" +
			"Lists, shows, creates or deletes credentials. Secrets are read from a file (or standard input\n" +
			"with -), never from the command line, and never shown again.",
		flags: func(f *flagSet) {
			kind = f.fs.String("kind", "ssh-key", "ssh-key or password")
			username = f.fs.String("username", "", "user to log in as")
			secretFile = f.fs.String("secret-file", "", "file holding the private key or password (- for standard input)")
			passFile = f.fs.String("passphrase-file", "", "file holding the private key's passphrase")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				return listAll(ctx, c, "/api/v1/credentials", nil, e, credCols)
			case s == "show" && len(a) == 1:
				return getPrint(ctx, c, e, "/api/v1/credentials/"+esc(a[0]), nil)
			case s == "delete" && len(a) == 1:
				return deleteRecord(ctx, c, e, "/api/v1/credentials/"+esc(a[0]), "credential "+a[0])
			case s == "create" && len(a) == 1:
				if *secretFile == "" {
					return usageError{errors.New("-secret-file is required (a file, or - for standard input)")}
				}
				secret, err := readSecret(e, *secretFile)
				if err != nil {
					return err
				}
				body := map[string]any{"name": a[0], "kind": *kind, "username": *username, "secret": secret}
				if *passFile != "" {
					if body["passphrase"], err = readSecret(e, *passFile); err != nil {
						return err
					}
				}
				return sendPrint(ctx, c, e, http.MethodPost, "/api/v1/credentials", body, nil)
			}
			return badSub("no arguments, show ID, delete ID or create NAME")
		},
	}, args)
}

func runServersCommand(ctx context.Context, e env, args []string) error {
	var address, osName, transport, credential, datacenter, hostKey *string
	var port *int
	var wait *bool
	return runVerb(ctx, e, "servers", verb{
		usage: "Usage: packflow servers [show ID | delete ID | check ID [-wait] |\n" +
			"       create NAME -address HOST [-port N] [-os linux|windows] [-transport ssh|winrm|local]\n" +
			"              -credential CRED [-datacenter DC] [-host-key KEY]]\n\n" +
			"Lists, shows, creates, deletes or checks servers. check connects from a worker of the server's\n" +
			"datacenter, verifies its identity and runs a no-op; -wait prints the outcome (exit 1 when not ok).",
		flags: func(f *flagSet) {
			address = f.fs.String("address", "", "host name or IP address")
			port = f.fs.Int("port", 0, "port (default 22 for ssh, 5985/5986 for winrm)")
			osName = f.fs.String("os", "linux", "linux or windows")
			transport = f.fs.String("transport", "ssh", "ssh, winrm or local")
			credential = f.fs.String("credential", "", "credential (ID or name)")
			datacenter = f.fs.String("datacenter", "", "datacenter (default: default)")
			hostKey = f.fs.String("host-key", "", "pinned host key (authorized_keys format); default: trust on first use")
			wait = f.fs.Bool("wait", false, "with check: wait for the outcome")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				return listAll(ctx, c, "/api/v1/servers", nil, e, serverCols)
			case s == "show" && len(a) == 1:
				return getPrint(ctx, c, e, "/api/v1/servers/"+esc(a[0]), nil)
			case s == "delete" && len(a) == 1:
				return deleteRecord(ctx, c, e, "/api/v1/servers/"+esc(a[0]), "server "+a[0])
			case s == "create" && len(a) == 1:
				body := map[string]any{"name": a[0], "address": *address, "os": *osName, "transport": *transport, "credential": *credential}
				if *port != 0 {
					body["port"] = *port
				}
				if *datacenter != "" {
					body["datacenter"] = *datacenter
				}
				if *hostKey != "" {
					body["host_key"] = *hostKey
				}
				return sendPrint(ctx, c, e, http.MethodPost, "/api/v1/servers", body, nil)
			case s == "check" && len(a) == 1:
				var accepted map[string]any
				if err := c.call(ctx, http.MethodPost, "/api/v1/servers/"+esc(a[0])+"/check", nil, "", &accepted); err != nil {
					return err
				}
				id, _ := accepted["task_id"].(string)
				if !*wait || id == "" {
					return e.out.print(accepted, nil)
				}
				st, err := waitTask(ctx, c, id)
				if err != nil {
					return err
				}
				res, _ := st["result"].(map[string]any)
				if res == nil {
					res = st
				}
				if perr := e.out.print(res, nil); perr != nil {
					return perr
				}
				if ok, _ := res["ok"].(bool); !ok {
					return fmt.Errorf("server %s: check failed: %v", a[0], res["error"])
				}
				return nil
			}
			return badSub("no arguments, show ID, delete ID, check ID or create NAME")
		},
	}, args)
}

func runBlueprintsCommand(ctx context.Context, e env, args []string) error {
	var file *string
	return runVerb(ctx, e, "blueprints", verb{
		usage: "Usage: packflow blueprints [show ID | form ID | delete ID | create -f FILE | update ID -f FILE]\n\n" +
			"Lists, shows, creates, replaces or deletes blueprints; form prints the merged parameter form a\n" +
			"deployment asks for. FILE is the blueprint as JSON ({\"name\", \"description\", \"steps\":[{\"package\",\n" +
			"\"version\", \"parameters\"}]}), - for standard input.",
		flags: func(f *flagSet) { file = f.fs.String("f", "", "the blueprint as a JSON file (- for standard input)") },
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				return listAll(ctx, c, "/api/v1/blueprints", nil, e, blueprintCols)
			case s == "show" && len(a) == 1:
				return getPrint(ctx, c, e, "/api/v1/blueprints/"+esc(a[0]), nil)
			case s == "form" && len(a) == 1:
				return getPrint(ctx, c, e, "/api/v1/blueprints/"+esc(a[0])+"/form", nil)
			case s == "delete" && len(a) == 1:
				return deleteRecord(ctx, c, e, "/api/v1/blueprints/"+esc(a[0]), "blueprint "+a[0])
			case (s == "create" && len(a) == 0) || (s == "update" && len(a) == 1):
				if *file == "" {
					return usageError{errors.New("-f FILE is required")}
				}
				body, err := readJSONFile(e, *file)
				if err != nil {
					return err
				}
				if s == "create" {
					return sendPrint(ctx, c, e, http.MethodPost, "/api/v1/blueprints", body, nil)
				}
				return sendPrint(ctx, c, e, http.MethodPut, "/api/v1/blueprints/"+esc(a[0]), body, nil)
			}
			return badSub("no arguments, show ID, form ID, delete ID, create -f FILE or update ID -f FILE")
		},
	}, args)
}

func runExecutionsCommand(ctx context.Context, e env, args []string) error {
	var status, blueprint, server, since *string
	return runVerb(ctx, e, "executions", verb{
		usage: "Usage: packflow executions [show ID] [-status S] [-blueprint ID] [-server S] [-since TIME]\n\n" +
			"Lists executions, newest first, or shows one: per server, per step, its state.",
		flags: func(f *flagSet) {
			status = f.fs.String("status", "", "only executions in this status: queued, running, succeeded, failed, cancelled")
			blueprint = f.fs.String("blueprint", "", "only executions of this blueprint")
			server = f.fs.String("server", "", "only executions on this server")
			since = f.fs.String("since", "", "only executions created after this time (RFC 3339)")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				v := url.Values{}
				for k, p := range map[string]*string{"status": status, "blueprint": blueprint, "server": server, "since": since} {
					if *p != "" {
						v.Set(k, *p)
					}
				}
				return listAll(ctx, c, "/api/v1/executions", v, e, execCols)
			case s == "show" && len(a) == 1:
				var ex map[string]any
				if err := c.call(ctx, http.MethodGet, "/api/v1/executions/"+esc(a[0]), nil, "", &ex); err != nil {
					return err
				}
				if e.out.format != "table" {
					return e.out.print(ex, nil)
				}
				return printExecution(e, ex)
			}
			return badSub("no arguments, or show ID")
		},
	}, args)
}

// printExecution prints an execution for people: its status, then one
// line per server and step.
func printExecution(e env, ex map[string]any) error {
	printf(e.stdout, "execution %v: %v\n", ex["id"], ex["status"])
	steps, _ := ex["steps"].([]any)
	rows := []any{}
	servers, _ := ex["servers"].([]any)
	for _, s := range servers {
		sm, _ := s.(map[string]any)
		runs, _ := sm["steps"].([]any)
		for i, r := range runs {
			rm, _ := r.(map[string]any)
			name := ""
			if i < len(steps) {
				if st, ok := steps[i].(map[string]any); ok {
					name = fmt.Sprint(st["name"])
				}
			}
			rows = append(rows, map[string]any{"server": sm["name"], "step": strconv.Itoa(i+1) + " " + name,
				"status": rm["status"], "attempts": rm["attempts"], "exit_code": rm["exit_code"],
				"started_at": rm["started_at"], "finished_at": rm["finished_at"], "error": rm["error"]})
		}
		if len(runs) == 0 {
			rows = append(rows, map[string]any{"server": sm["name"], "status": sm["status"], "error": sm["error"]})
		}
	}
	return e.out.print(rows, cols("server", "step", "status", "attempts", "exit_code", "started_at", "finished_at", "error"))
}

func runSchedulesCommand(ctx context.Context, e env, args []string) error {
	var file, cron, every, timezone, blueprint *string
	var installSync, disabled *bool
	var servers stringList
	var params paramFlags
	return runVerb(ctx, e, "schedules", verb{
		usage: "Usage: packflow schedules [show ID | delete ID | pause ID | resume ID | run-now ID | runs ID |\n" +
			"       create NAME (-cron EXPR | -every DURATION) [-timezone TZ] [-disabled]\n" +
			"              (-install-sync | -blueprint ID -server S [-server S2 …] [-param Var=value …]) |\n" +
			"       create -f FILE]\n\n" +
			"Lists, shows, creates, pauses, resumes, fires or deletes schedules, or lists a schedule's runs.",
		flags: func(f *flagSet) {
			file = f.fs.String("f", "", "the schedule as a JSON file (- for standard input)")
			cron = f.fs.String("cron", "", "cron expression (five fields)")
			every = f.fs.String("every", "", "interval, such as 10m")
			timezone = f.fs.String("timezone", "", "IANA time zone of the cron expression (default UTC)")
			blueprint = f.fs.String("blueprint", "", "blueprint the schedule deploys")
			installSync = f.fs.Bool("install-sync", false, "bring every node up to the active versions instead of deploying")
			disabled = f.fs.Bool("disabled", false, "create the schedule paused")
			f.fs.Var(&servers, "server", "server the blueprint deploys to (repeatable)")
			params.declare(f)
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			base := "/api/v1/schedules"
			switch s, a := sub(f); {
			case s == "list" && len(a) == 0:
				return listAll(ctx, c, base, nil, e, scheduleCols)
			case s == "show" && len(a) == 1:
				return getPrint(ctx, c, e, base+"/"+esc(a[0]), nil)
			case s == "delete" && len(a) == 1:
				return deleteRecord(ctx, c, e, base+"/"+esc(a[0]), "schedule "+a[0])
			case (s == "pause" || s == "resume" || s == "run-now") && len(a) == 1:
				return sendPrint(ctx, c, e, http.MethodPost, base+"/"+esc(a[0])+"/"+s, nil, nil)
			case s == "runs" && len(a) == 1:
				return listAll(ctx, c, base+"/"+esc(a[0])+"/runs", nil, e, runCols)
			case s == "create" && len(a) == 0 && *file != "":
				body, err := readJSONFile(e, *file)
				if err != nil {
					return err
				}
				return sendPrint(ctx, c, e, http.MethodPost, base, body, nil)
			case s == "create" && len(a) == 1:
				body := map[string]any{"name": a[0], "enabled": !*disabled}
				if *cron != "" {
					body["cron"] = *cron
				}
				if *every != "" {
					body["every"] = *every
				}
				if *timezone != "" {
					body["timezone"] = *timezone
				}
				if *installSync {
					body["action"] = map[string]any{"kind": "install-sync"}
				} else {
					p, err := params.values(e)
					if err != nil {
						return err
					}
					body["action"] = map[string]any{"kind": "deploy", "blueprint": *blueprint, "servers": []string(servers), "parameters": p}
				}
				return sendPrint(ctx, c, e, http.MethodPost, base, body, nil)
			}
			return badSub("no arguments, show|delete|pause|resume|run-now|runs ID, create NAME or create -f FILE")
		},
	}, args)
}
