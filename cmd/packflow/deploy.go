package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// paramFlags are the -param Var=value and -param-file flags of a deploy.
type paramFlags struct {
	pairs stringList
	file  *string
}

func (p *paramFlags) declare(f *flagSet) {
	f.fs.Var(&p.pairs, "param", "a parameter value, Var=value (repeatable; wins over -param-file)")
	p.file = f.fs.String("param-file", "", "parameter values: a JSON object, or Var=value lines (# comments)")
}

// values merges the file's values with the -param ones.
func (p *paramFlags) values(e env) (map[string]string, error) {
	out := map[string]string{}
	if *p.file != "" {
		data, err := readSecret(e, *p.file)
		if err != nil {
			return nil, err
		}
		if t := strings.TrimSpace(data); strings.HasPrefix(t, "{") {
			var m map[string]any
			if err := json.Unmarshal([]byte(t), &m); err != nil {
				return nil, usageError{fmt.Errorf("-param-file %s: %w", *p.file, err)}
			}
			for k, v := range m {
				if s, ok := v.(string); ok {
					out[k] = s
				} else {
					b, _ := json.Marshal(v)
					out[k] = string(b)
				}
			}
		} else {
			for i, line := range strings.Split(data, "\n") {
				line = strings.TrimRight(line, "\r")
				if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
					continue
				}
				k, v, ok := strings.Cut(line, "=")
				if !ok || strings.TrimSpace(k) == "" {
					return nil, usageError{fmt.Errorf("-param-file %s line %d: want Var=value", *p.file, i+1)}
				}
				out[strings.TrimSpace(k)] = v
			}
		}
	}
	for _, pair := range p.pairs {
		k, v, ok := strings.Cut(pair, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Errorf("-param %q: want Var=value", pair)}
		}
		out[k] = v
	}
	return out, nil
}

func runDeployCommand(ctx context.Context, e env, args []string) error {
	var servers stringList
	var params paramFlags
	var blueprint, timeout *string
	var follow, plan *bool
	var retryMax *int
	return runVerb(ctx, e, "deploy", verb{
		usage: "Usage: packflow deploy PACKAGE[@VERSION] -server S [-server S2 …] [-param Var=value …]\n" +
			"                      [-param-file FILE] [-retry-max N] [-timeout D] [-follow | -plan]\n" +
			"       packflow deploy -blueprint ID -server S … (the same flags)\n\n" +
			"Deploys one package (its active version unless @VERSION) or a blueprint to servers (ID or name).\n" +
			"-follow streams the steps and their output until every server ended, and exits 0 when the\n" +
			"execution succeeded, 1 when it failed, 3 when it was cancelled or timed out. -plan shows each\n" +
			"server's steps with the commands as they would run (secrets masked) and every problem, and runs\n" +
			"nothing (exit 1 when there are problems).",
		flags: func(f *flagSet) {
			f.fs.Var(&servers, "server", "a target server, ID or name (repeatable)")
			params.declare(f)
			blueprint = f.fs.String("blueprint", "", "deploy this blueprint instead of one package")
			timeout = f.fs.String("timeout", "", "longest the whole execution may take, e.g. 1h")
			retryMax = f.fs.Int("retry-max", -1, "retries of each server's run (default the platform's, 3)")
			follow = f.fs.Bool("follow", false, "stream the execution until it ends; the exit status says how it ended")
			plan = f.fs.Bool("plan", false, "show what would run, and every problem, without running anything")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if *blueprint == "" && len(f.args) != 1 || *blueprint != "" && len(f.args) != 0 {
				return usageError{errors.New("want one PACKAGE[@VERSION], or -blueprint ID")}
			}
			if len(servers) == 0 {
				return usageError{errors.New("want at least one -server")}
			}
			if *follow && *plan {
				return usageError{errors.New("-follow and -plan exclude each other")}
			}
			p, err := params.values(e)
			if err != nil {
				return err
			}
			body := map[string]any{"servers": []string(servers), "parameters": p}
			if *timeout != "" {
				body["timeout"] = *timeout
			}
			if *retryMax >= 0 {
				body["retry"] = map[string]any{"max": *retryMax}
			}
			path := "/api/v1/executions"
			if *blueprint != "" {
				path = "/api/v1/blueprints/" + esc(*blueprint) + "/deploy"
			} else {
				pkg, version, _ := strings.Cut(f.args[0], "@")
				body["package"], body["version"] = pkg, version
			}
			if *plan {
				return runPlan(ctx, c, e, path, body)
			}
			var accepted map[string]any
			if err := c.call(ctx, http.MethodPost, path, body, "", &accepted); err != nil {
				return err
			}
			id, _ := accepted["execution_id"].(string)
			if !*follow {
				return e.out.print(accepted, nil)
			}
			printf(e.stderr, "execution %s\n", id)
			return followExecution(ctx, c, e, id)
		},
	}, args)
}

func runLogsCommand(ctx context.Context, e env, args []string) error {
	var follow *bool
	var server *string
	return runVerb(ctx, e, "logs", verb{
		usage: "Usage: packflow logs EXECUTION [-follow] [-server S]\n\n" +
			"Prints an execution's log. -follow streams it live (resuming where it stopped when the\n" +
			"connection drops) until every server ended, with the exit status of deploy -follow.",
		flags: func(f *flagSet) {
			follow = f.fs.Bool("follow", false, "stream the log until the execution ends")
			server = f.fs.String("server", "", "only this server's lines (without -follow)")
		},
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one EXECUTION"); err != nil {
				return err
			}
			if *follow {
				return followExecution(ctx, c, e, f.args[0])
			}
			path := "/api/v1/executions/" + esc(f.args[0]) + "/log"
			if *server != "" {
				path += "?" + url.Values{"server": {*server}}.Encode()
			}
			res, err := c.stream(ctx, path, nil)
			if err != nil {
				return err
			}
			defer func() { _ = res.Body.Close() }()
			_, err = io.Copy(e.stdout, res.Body)
			return err
		},
	}, args)
}

func runCancelCommand(ctx context.Context, e env, args []string) error {
	return runVerb(ctx, e, "cancel", verb{
		usage: "Usage: packflow cancel EXECUTION\n\nStops an execution's running steps and skips the rest.",
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one EXECUTION"); err != nil {
				return err
			}
			return sendPrint(ctx, c, e, http.MethodPost, "/api/v1/executions/"+esc(f.args[0])+"/cancel", nil, nil)
		},
	}, args)
}

func runRerunCommand(ctx context.Context, e env, args []string) error {
	var follow *bool
	return runVerb(ctx, e, "rerun", verb{
		usage: "Usage: packflow rerun EXECUTION [-follow]\n\n" +
			"Runs an execution's failed and cancelled servers again from their first unfinished step.",
		flags: func(f *flagSet) { follow = f.fs.Bool("follow", false, "stream the execution until it ends") },
		run: func(ctx context.Context, c *apiClient, f *flagSet, e env) error {
			if err := wantArgs(f, 1, "one EXECUTION"); err != nil {
				return err
			}
			var accepted map[string]any
			if err := c.call(ctx, http.MethodPost, "/api/v1/executions/"+esc(f.args[0])+"/rerun", nil, "", &accepted); err != nil {
				return err
			}
			if !*follow {
				return e.out.print(accepted, nil)
			}
			return followExecution(ctx, c, e, f.args[0])
		},
	}, args)
}

// stream sends GET path with headers and returns the answer, open, when
// it succeeded.
func (c *apiClient) stream(ctx context.Context, path string, headers map[string]string) (*http.Response, error) {
	ref, err := url.Parse(path)
	if err != nil {
		return nil, err
	}
	u := c.base.JoinPath(ref.EscapedPath())
	u.RawQuery = ref.RawQuery
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	if res.StatusCode >= 400 {
		defer func() { _ = res.Body.Close() }()
		p := &problemError{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		_ = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(p)
		return nil, p
	}
	return res, nil
}

// sseEvent is one Server-Sent Event of an execution's stream.
type sseEvent struct {
	ID, Name string
	Data     struct {
		Kind   string `json:"kind"`
		Server string `json:"server"`
		Step   int    `json:"step"`
		Stream string `json:"stream"`
		Line   string `json:"line"`
		Status string `json:"status"`
	}
}

// followExecution streams an execution's events until the stream's end
// event, reconnecting after the last event seen when the connection
// drops, then returns how the execution ended as an exit status.
func followExecution(ctx context.Context, c *apiClient, e env, id string) error {
	last := ""
	failures := 0
	path := "/api/v1/executions/" + esc(id) + "/events"
	for {
		ended, err := readEvents(ctx, c, e, path, &last)
		if ended {
			break
		}
		if ctx.Err() != nil {
			return fmt.Errorf("stopped following; the execution goes on (packflow logs %s -follow): %w", id, ctx.Err())
		}
		var p *problemError
		if errors.As(err, &p) {
			return err
		}
		failures++
		if failures > 10 {
			return fmt.Errorf("follow execution %s: %w", id, err)
		}
		printf(e.stderr, "packflow: stream interrupted (%v); resuming\n", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Duration(failures) * 200 * time.Millisecond):
		}
	}
	var ex map[string]any
	if err := c.call(ctx, http.MethodGet, "/api/v1/executions/"+esc(id), nil, "", &ex); err != nil {
		return err
	}
	return executionOutcome(ex)
}

// executionOutcome turns how an execution ended into an error carrying
// the exit status: none when it succeeded, 3 when it was cancelled or
// timed out, 1 otherwise.
func executionOutcome(ex map[string]any) error {
	status, _ := ex["status"].(string)
	switch status {
	case "succeeded":
		return nil
	case "cancelled":
		return exitStatusError{exitCancelled, fmt.Errorf("execution %v was cancelled", ex["id"])}
	}
	servers, _ := ex["servers"].([]any)
	var why []string
	timedOut := false
	for _, s := range servers {
		sm, _ := s.(map[string]any)
		if msg, _ := sm["error"].(string); msg != "" {
			why = append(why, fmt.Sprintf("%v: %s", sm["name"], msg))
			if strings.Contains(msg, "timed out") || strings.Contains(msg, "deadline exceeded") {
				timedOut = true
			}
		}
	}
	err := fmt.Errorf("execution %v %s: %s", ex["id"], status, strings.Join(why, "; "))
	if timedOut {
		return exitStatusError{exitCancelled, err}
	}
	return exitStatusError{exitError, err}
}

// readEvents reads one connection's events, printing each, and reports
// whether the end event came. last is the ID to resume after.
func readEvents(ctx context.Context, c *apiClient, e env, path string, last *string) (bool, error) {
	h := map[string]string{"Accept": "text/event-stream"}
	if *last != "" {
		h["Last-Event-ID"] = *last
	}
	res, err := c.stream(ctx, path, h)
	if err != nil {
		return false, err
	}
	defer func() { _ = res.Body.Close() }()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var ev sseEvent
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name == "" && data.Len() == 0 {
				continue
			}
			if ev.Name == "end" {
				return true, nil
			}
			if err := json.Unmarshal([]byte(data.String()), &ev.Data); err == nil {
				printEvent(e, ev)
			}
			if ev.ID != "" {
				*last = ev.ID
			}
			ev = sseEvent{}
			data.Reset()
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "id:"):
			ev.ID = strings.TrimSpace(strings.TrimPrefix(line, "id:"))
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(strings.TrimPrefix(line, "data:"), " "))
		}
	}
	if err := sc.Err(); err != nil {
		return false, err
	}
	return false, io.ErrUnexpectedEOF
}

// printEvent writes one event as a line: log lines on stdout, state
// changes on stderr, so that piping a follow keeps the output alone.
func printEvent(e env, ev sseEvent) {
	d := ev.Data
	switch d.Kind {
	case "log":
		printf(e.stdout, "%s step %d %s: %s\n", d.Server, d.Step+1, d.Stream, d.Line)
	case "state":
		if d.Step < 0 {
			printf(e.stderr, "%s: %s\n", d.Server, d.Status)
			return
		}
		printf(e.stderr, "%s step %d: %s\n", d.Server, d.Step+1, d.Status)
	}
}

// runPlan asks the API for the plan of a deployment and prints it.
func runPlan(ctx context.Context, c *apiClient, e env, deployPath string, body map[string]any) error {
	var plan map[string]any
	if err := c.call(ctx, http.MethodPost, deployPath+"/plan", body, "", &plan); err != nil {
		return err
	}
	if e.out.format != "table" {
		if err := e.out.print(plan, nil); err != nil {
			return err
		}
	} else if err := printPlan(e, plan); err != nil {
		return err
	}
	if probs, _ := plan["problems"].([]any); len(probs) > 0 {
		return fmt.Errorf("the deployment has %d problem(s)", len(probs))
	}
	return nil
}

// printPlan prints a plan for people: per server, each step's command,
// then the problems.
func printPlan(e env, plan map[string]any) error {
	servers, _ := plan["servers"].([]any)
	for _, s := range servers {
		sm, _ := s.(map[string]any)
		printf(e.stdout, "%v (%v):\n", sm["name"], sm["address"])
		steps, _ := sm["steps"].([]any)
		for i, st := range steps {
			stm, _ := st.(map[string]any)
			if skip, _ := stm["skip"].(string); skip != "" {
				printf(e.stdout, "  %d. %v %v: skipped (%s)\n", i+1, stm["package"], stm["version"], skip)
				continue
			}
			printf(e.stdout, "  %d. %v %v: $ %v\n", i+1, stm["package"], stm["version"], stm["command"])
		}
	}
	probs, _ := plan["problems"].([]any)
	if len(probs) > 0 {
		printf(e.stdout, "problems:\n")
	}
	for _, p := range probs {
		pm, _ := p.(map[string]any)
		printf(e.stdout, "  %v: %v (%v)\n", pm["path"], pm["message"], pm["rule"])
	}
	return nil
}
