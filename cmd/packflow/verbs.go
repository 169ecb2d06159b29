package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
)

// Client commands: thin wrappers over the API that print its JSON answers.
// They take -api-url and -token (PACKFLOW_API_URL, PACKFLOW_TOKEN); next
// to packflow dev the token defaults to the one it keeps.

func runAccountsCommand(ctx context.Context, e env, args []string) error {
	var parent *string
	var vendor *bool
	return runVerb(ctx, e, "accounts", verb{
		usage: "Usage: packflow accounts [create NAME [-parent ACCOUNT] [-vendor]]\n\n" +
			"Lists the accounts the token sees, or creates a sub-account (admin).",
		flags: func(f *flagSet) {
			parent = f.fs.String("parent", "", "parent account of a new account (ID or name; default the token's)")
			vendor = f.fs.Bool("vendor", false, "create a vendor account, whose packages nobody may overwrite (root admins)")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if len(f.args) == 0 {
				return listAll(ctx, c, "/api/v1/accounts", nil, e, accountCols)
			}
			if f.args[0] != "create" || len(f.args) != 2 {
				return usageError{errors.New("want no arguments, or create NAME")}
			}
			var out any
			body := map[string]any{"name": f.args[1], "parent": *parent, "vendor": *vendor}
			if err := c.call(ctx, http.MethodPost, "/api/v1/accounts", body, "", &out); err != nil {
				return err
			}
			return e.out.print(out, nil)
		},
	}, args)
}

func runTokensCommand(ctx context.Context, e env, args []string) error {
	var account, user, role *string
	return runVerb(ctx, e, "tokens", verb{
		usage: "Usage: packflow tokens [create -user USER -role ROLE [-account ACCOUNT] | revoke ID]\n\n" +
			"Lists tokens (never their secrets), mints one (admin; its secret is shown once) or revokes one.",
		flags: func(f *flagSet) {
			account = f.fs.String("account", "", "account of a new token (ID or name; default the caller's)")
			user = f.fs.String("user", "", "user a new token is for")
			role = f.fs.String("role", "viewer", "role of a new token: admin, publisher, operator or viewer")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			switch {
			case len(f.args) == 0:
				return listAll(ctx, c, "/api/v1/tokens", nil, e, tokenCols)
			case f.args[0] == "create" && len(f.args) == 1:
				var out any
				body := map[string]any{"account": *account, "user": *user, "role": *role}
				if err := c.call(ctx, http.MethodPost, "/api/v1/tokens", body, "", &out); err != nil {
					return err
				}
				return e.out.print(out, nil)
			case f.args[0] == "revoke" && len(f.args) == 2:
				if err := c.call(ctx, http.MethodDelete, "/api/v1/tokens/"+url.PathEscape(f.args[1]), nil, "", nil); err != nil {
					return err
				}
				printf(e.stdout, "revoked %s\n", f.args[1])
				return nil
			}
			return usageError{errors.New("want no arguments, create, or revoke ID")}
		},
	}, args)
}

func runUploadCommand(ctx context.Context, e env, args []string) error {
	return runVerb(ctx, e, "upload", verb{
		usage: "Usage: packflow upload FILE.zip\n\nUploads a package; it waits, pending, to be published.",
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one FILE.zip"); err != nil {
				return err
			}
			file, err := os.Open(f.args[0])
			if err != nil {
				return err
			}
			defer func() { _ = file.Close() }()
			st, err := file.Stat()
			if err != nil {
				return err
			}
			body := &progressReader{r: file, total: st.Size(), w: e.stderr, tty: isTerminal(e.stderr)}
			var out any
			err = c.call(ctx, http.MethodPost, "/api/v1/uploads", body, "application/zip", &out)
			body.done()
			if err != nil {
				return err
			}
			return e.out.print(out, nil)
		},
	}, args)
}

func runPublishCommand(ctx context.Context, e env, args []string) error {
	var category, osName, osVersions, visibility *string
	var force, wait *bool
	return runVerb(ctx, e, "publish", verb{
		usage: "Usage: packflow publish UPLOAD_ID -os linux|windows [-category script|software]\n" +
			"       [-os-versions V1,V2] [-visibility private|shared|public] [-force] [-wait]\n\n" +
			"Publishes an upload to the library. With -wait, waits for the task and prints its outcome.",
		flags: func(f *flagSet) {
			category = f.fs.String("category", "script", "script or software")
			osName = f.fs.String("os", "", "linux or windows")
			osVersions = f.fs.String("os-versions", "", "comma-separated OS versions")
			visibility = f.fs.String("visibility", "private", "private, shared or public")
			force = f.fs.Bool("force", false, "replace an existing version")
			wait = f.fs.Bool("wait", false, "wait for the publish task to finish")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one UPLOAD_ID"); err != nil {
				return err
			}
			versions := []string{}
			for v := range strings.SplitSeq(*osVersions, ",") {
				if v = strings.TrimSpace(v); v != "" {
					versions = append(versions, v)
				}
			}
			body := map[string]any{"category": *category, "os": *osName, "os_versions": versions,
				"visibility": *visibility, "force": *force}
			var accepted struct {
				TaskID string `json:"task_id"`
			}
			if err := c.call(ctx, http.MethodPost, "/api/v1/uploads/"+url.PathEscape(f.args[0])+"/publish", body, "", &accepted); err != nil {
				return err
			}
			if !*wait {
				return e.out.print(accepted, nil)
			}
			st, err := waitTask(ctx, c, accepted.TaskID)
			if st != nil {
				if perr := e.out.print(st, nil); perr != nil {
					return perr
				}
			}
			if res, ok := st["result"].(map[string]any); ok && err == nil && res["outcome"] == "rejected" {
				return fmt.Errorf("upload %s was rejected; GET %v lists its problems", f.args[0], res["upload"])
			}
			return err
		},
	}, args)
}

// taskCommand is the task verb under a name (task, or tasks).
func taskCommand(name string) func(ctx context.Context, e env, args []string) error {
	return func(ctx context.Context, e env, args []string) error { return runTaskCommand(ctx, e, name, args) }
}

func runTaskCommand(ctx context.Context, e env, name string, args []string) error {
	var wait *bool
	return runVerb(ctx, e, name, verb{
		usage: "Usage: packflow " + name + " ID [-wait]\n\nShows a task's state, retries, last error and result.",
		flags: func(f *flagSet) { wait = f.fs.Bool("wait", false, "wait until the task completes or fails") },
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one task ID"); err != nil {
				return err
			}
			if *wait {
				st, err := waitTask(ctx, c, f.args[0])
				if st != nil {
					if perr := e.out.print(st, nil); perr != nil {
						return perr
					}
				}
				return err
			}
			var out any
			if err := c.call(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(f.args[0]), nil, "", &out); err != nil {
				return err
			}
			return e.out.print(out, nil)
		},
	}, args)
}

func runNodesCommand(ctx context.Context, e env, args []string) error {
	return runVerb(ctx, e, "nodes", verb{
		usage: "Usage: packflow nodes\n\nLists the live worker nodes.",
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 0, "no arguments"); err != nil {
				return err
			}
			return listAll(ctx, c, "/api/v1/nodes", nil, e, nodeCols)
		},
	}, args)
}

// listAll prints every item of a paginated list, one JSON array.
func listAll(ctx context.Context, c *apiClient, path string, filter url.Values, e env, columns []column) error {
	items := []any{}
	cursor := ""
	for {
		q := url.Values{"limit": {"500"}}
		for k, v := range filter {
			q[k] = v
		}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		var pg struct {
			Items      []any  `json:"items"`
			NextCursor string `json:"next_cursor"`
		}
		if err := c.call(ctx, http.MethodGet, path+"?"+q.Encode(), nil, "", &pg); err != nil {
			return err
		}
		items = append(items, pg.Items...)
		if pg.NextCursor == "" {
			break
		}
		if pg.NextCursor == cursor {
			return fmt.Errorf("%s: the server repeated cursor %q", path, cursor)
		}
		cursor = pg.NextCursor
	}
	return e.out.print(items, columns)
}
