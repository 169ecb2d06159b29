package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// runActivateCommand asks for a version to be activated and installed on
// every node, optionally waiting until every node reported.
func runActivateCommand(ctx context.Context, e env, args []string) error {
	var force, wait *bool
	var retryMax *int
	return runVerb(ctx, e, "activate", verb{
		usage: "Usage: packflow activate PACKAGE_UUID VERSION [-force] [-retry-max N] [-wait]\n\n" +
			"Makes VERSION the package's active version and installs it, with its dependencies, on\n" +
			"every live worker node. With -wait, waits until every node installed it or failed, and\n" +
			"prints where it stands (exit 1 when a node failed).",
		flags: func(f *flagSet) {
			force = f.fs.Bool("force", false, "re-install where the version is installed already")
			retryMax = f.fs.Int("retry-max", 0, "retries of each node's install (default 3)")
			wait = f.fs.Bool("wait", false, "wait until every node installed the version or failed")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 2, "PACKAGE_UUID and VERSION"); err != nil {
				return err
			}
			body := map[string]any{"force": *force}
			if *retryMax != 0 {
				body["retry"] = map[string]any{"max": *retryMax}
			}
			pkg := url.PathEscape(f.args[0])
			var accepted struct {
				TaskID string `json:"task_id"`
			}
			path := "/api/v1/packages/" + pkg + "/versions/" + url.PathEscape(f.args[1]) + "/activate-install"
			if err := c.call(ctx, http.MethodPost, path, body, "", &accepted); err != nil {
				return err
			}
			if !*wait {
				return e.out.print(accepted, nil)
			}
			return waitActivation(ctx, c, e, pkg, accepted.TaskID)
		},
	}, args)
}

// waitActivation waits for an activation task, then for every node's
// install, and prints where it stands.
func waitActivation(ctx context.Context, c *apiClient, e env, pkg, task string) error {
	if _, err := waitTask(ctx, c, task); err != nil {
		return err
	}
	st, err := waitInstalls(ctx, c, e, pkg, task)
	if st != nil {
		if perr := printInstalls(e, st); perr != nil {
			return perr
		}
	}
	return err
}

// installsStatus is what the client reads of GET /packages/{uuid}/installs.
type installsStatus struct {
	ActivationID string `json:"activation_id"`
	Pending      int    `json:"pending"`
	Failed       int    `json:"failed"`
	Summary      string `json:"summary"`
}

// waitInstalls polls the installs of pkg until activation has no pending
// node, and returns the last answer as it came.
func waitInstalls(ctx context.Context, c *apiClient, e env, pkg, activation string) (json.RawMessage, error) {
	path := "/api/v1/packages/" + pkg + "/installs?limit=500"
	last := ""
	for {
		var raw json.RawMessage
		if err := c.call(ctx, http.MethodGet, path, nil, "", &raw); err != nil {
			return nil, err
		}
		var st installsStatus
		if err := json.Unmarshal(raw, &st); err != nil {
			return nil, fmt.Errorf("installs of %s: %w", pkg, err)
		}
		if st.Summary != last {
			progressLine(e.stderr, st.Summary, st.Pending == 0)
			last = st.Summary
		}
		if st.ActivationID != activation {
			return raw, fmt.Errorf("the package was activated again since (activation %s)", st.ActivationID)
		}
		if st.Pending == 0 {
			if st.Failed > 0 {
				return raw, errors.New(st.Summary)
			}
			return raw, nil
		}
		select {
		case <-ctx.Done():
			return raw, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// runInstallsCommand prints where a package's active version is installed.
func runInstallsCommand(ctx context.Context, e env, args []string) error {
	return runVerb(ctx, e, "installs", verb{
		usage: "Usage: packflow installs PACKAGE_UUID\n\n" +
			"Shows every live node's install of the package's active version: installed, pending or\n" +
			"failed, with the error and the attempts.",
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one PACKAGE_UUID"); err != nil {
				return err
			}
			var out json.RawMessage
			if err := c.call(ctx, http.MethodGet, "/api/v1/packages/"+url.PathEscape(f.args[0])+"/installs?limit=500", nil, "", &out); err != nil {
				return err
			}
			return printInstalls(e, out)
		},
	}, args)
}

// printInstalls prints an installs answer: for people, its summary and a
// table of nodes.
func printInstalls(e env, raw json.RawMessage) error {
	if e.out.format != "table" {
		return e.out.print(raw, nil)
	}
	var st struct {
		Summary string `json:"summary"`
		Items   []any  `json:"items"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		return fmt.Errorf("installs: %w", err)
	}
	printf(e.stdout, "%s\n", st.Summary)
	if st.Items == nil {
		st.Items = []any{}
	}
	return e.out.print(st.Items, installCols)
}

// progressLine shows progress on stderr: redrawn in place on a terminal,
// one plain line per change when piped. final ends the redrawn line.
func progressLine(w io.Writer, line string, final bool) {
	if !isTerminal(w) {
		printf(w, "%s\n", line)
		return
	}
	printf(w, "\r\033[K%s", line)
	if final {
		printf(w, "\n")
	}
}

// progressReader shows how much of an upload was sent: a line redrawn on
// a terminal at most every 100 ms, and one line at the end when piped.
type progressReader struct {
	r     io.Reader
	total int64
	sent  int64
	w     io.Writer
	tty   bool
	last  time.Time
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	p.sent += int64(n)
	if p.tty && time.Since(p.last) >= 100*time.Millisecond {
		p.last = time.Now()
		printf(p.w, "\r\033[Kuploading %s / %s", humanBytes(p.sent), humanBytes(p.total))
	}
	return n, err
}

// done ends the progress line.
func (p *progressReader) done() {
	if p.tty {
		printf(p.w, "\r\033[K")
	}
	printf(p.w, "uploaded %s of %s\n", humanBytes(p.sent), humanBytes(p.total))
}
