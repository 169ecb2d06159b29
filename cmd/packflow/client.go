package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/packflow/packflow/api"
)

// clientSettings are the settings of the command-line client verbs.
func clientSettings() []string { return []string{"api-url", "token", "context", "data-dir"} }

// apiClient calls a packflow API with a bearer token.
type apiClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

// problemError is an error answer of the API (application/problem+json).
type problemError struct {
	Status int    `json:"status"`
	Title  string `json:"title"`
	Detail string `json:"detail"`
	Errors []struct {
		Path    string `json:"path"`
		Rule    string `json:"rule"`
		Message string `json:"message"`
	} `json:"errors"`
}

func (p *problemError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", p.Status, p.Title, p.Detail)
	for _, e := range p.Errors {
		fmt.Fprintf(&b, "\n  %s: %s (%s)", e.Path, e.Message, e.Rule)
	}
	return b.String()
}

// newHTTPClient is the client's HTTP client: no overall timeout, since
// uploads and followed streams run as long as they need; ctx bounds them.
func newHTTPClient() *http.Client { return &http.Client{} }

// newClient resolves where the client commands go and with which token.
// The API URL is the first of: -api-url or PACKFLOW_API_URL; the context
// named by -context or PACKFLOW_CONTEXT; http://$PACKFLOW_LISTEN (the
// variable packflow dev listens by); the current context (packflow login,
// packflow context use, or the "dev" context a running packflow dev
// keeps); http://127.0.0.1:8080. The token is the first of: -token or
// PACKFLOW_TOKEN; the chosen context's; that of a context with the same
// URL; <data dir>/admin.token, which packflow dev writes.
func newClient(f *flagSet) (*apiClient, error) {
	cfg, cfgPath, cfgErr := loadContexts(f.getenv)
	raw, src, _ := f.value("api-url")
	var ctxTok *clientContext
	if name, csrc, _ := f.value("context"); name != "" {
		if cfgErr != nil {
			return nil, usageError{cfgErr}
		}
		c, ok := cfg.Contexts[name]
		if !ok {
			return nil, usageError{fmt.Errorf("%s=%q: no such context in %s (packflow context list)", csrc, name, cfgPath)}
		}
		ctxTok = &c
		if raw == "" {
			raw, src = c.APIURL, "context "+name
		}
	}
	if raw == "" {
		if l := strings.TrimSpace(f.getenv("PACKFLOW_LISTEN")); l != "" {
			raw, src = dialURL(l), "PACKFLOW_LISTEN"
		}
	}
	if raw == "" {
		if c, ok := cfg.Contexts[cfg.Current]; ok && cfgErr == nil {
			raw, src = c.APIURL, "context "+cfg.Current
		}
	}
	if raw == "" {
		raw, src = "http://"+api.DefaultListen, "the default API URL"
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usageError{fmt.Errorf("%s=%q: must be an http(s) URL such as http://127.0.0.1:8080", src, raw)}
	}
	token, _, _ := f.value("token")
	if token == "" && ctxTok != nil {
		token = ctxTok.Token
	}
	if token == "" && cfgErr == nil {
		same := func(c clientContext) bool { return strings.TrimRight(c.APIURL, "/") == strings.TrimRight(raw, "/") }
		if c, ok := cfg.Contexts[cfg.Current]; ok && same(c) {
			token = c.Token
		} else {
			names := make([]string, 0, len(cfg.Contexts))
			for n := range cfg.Contexts {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				if c := cfg.Contexts[n]; same(c) && c.Token != "" {
					token = c.Token
					break
				}
			}
		}
	}
	if token == "" {
		dir, _, _ := f.value("data-dir")
		if data, err := os.ReadFile(filepath.Join(dir, adminTokenFile)); err == nil {
			token = strings.TrimSpace(string(data))
		}
	}
	if token == "" {
		return nil, usageError{fmt.Errorf("no token for %s: run packflow login URL, or set PACKFLOW_TOKEN (or -token)", raw)}
	}
	return &apiClient{base: u, token: token, http: newHTTPClient()}, nil
}

// call sends method path with body (JSON-encoded unless an io.Reader,
// sent as contentType) and decodes a JSON answer into out when set.
func (c *apiClient) call(ctx context.Context, method, path string, body any, contentType string, out any) error {
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case io.Reader:
		r = b
	default:
		data, err := json.Marshal(b)
		if err != nil {
			return err
		}
		r, contentType = bytes.NewReader(data), "application/json"
	}
	ref, err := url.Parse(path)
	if err != nil {
		return err
	}
	u := c.base.JoinPath(ref.EscapedPath())
	u.RawQuery = ref.RawQuery
	req, err := http.NewRequestWithContext(ctx, method, u.String(), r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode >= 400 {
		p := &problemError{Status: res.StatusCode, Title: http.StatusText(res.StatusCode)}
		_ = json.NewDecoder(io.LimitReader(res.Body, 1<<20)).Decode(p)
		return p
	}
	if out == nil || res.StatusCode == http.StatusNoContent {
		return nil
	}
	if err := json.NewDecoder(res.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decode the answer: %w", method, path, err)
	}
	return nil
}

// printJSON writes v indented, one value per call.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// verb is one client subcommand: its flags beyond the client's, its
// arguments and what it does with them.
type verb struct {
	usage string
	flags func(f *flagSet) // declares extra flags
	run   func(ctx context.Context, c *apiClient, f *flagSet, e env) error
}

// runVerb parses a verb's command line and runs it.
func runVerb(ctx context.Context, e env, name string, v verb, args []string) error {
	f := newFlagSet(name, v.usage, clientSettings(), nil, e.getenv, e.stderr)
	format := addOutputFlag(f)
	if v.flags != nil {
		v.flags(f)
	}
	if err := parseInterspersed(f, args); err != nil {
		return usageErrorOrHelp(err)
	}
	out, err := newPrinter(e.stdout, *format)
	if err != nil {
		return err
	}
	e.out = out
	c, err := newClient(f)
	if err != nil {
		return err
	}
	return v.run(ctx, c, f, e)
}

// parseInterspersed parses flags before and after positional arguments
// (packflow publish ID -os linux), leaving the positionals in f.args.
func parseInterspersed(f *flagSet, args []string) error {
	var pos []string
	for {
		if err := f.parse(args); err != nil {
			return err
		}
		if f.fs.NArg() == 0 {
			break
		}
		pos = append(pos, f.fs.Arg(0))
		args = f.fs.Args()[1:]
	}
	f.args = pos
	return nil
}

// wantArgs checks the number of positional arguments.
func wantArgs(f *flagSet, n int, what string) error {
	if len(f.args) != n {
		return usageError{fmt.Errorf("want %s", what)}
	}
	return nil
}

// waitTask polls a task until it completes or is archived, printing
// nothing; ctx bounds the wait.
func waitTask(ctx context.Context, c *apiClient, id string) (map[string]any, error) {
	for {
		var st map[string]any
		if err := c.call(ctx, http.MethodGet, "/api/v1/tasks/"+url.PathEscape(id), nil, "", &st); err != nil {
			return nil, err
		}
		switch st["state"] {
		case "completed":
			return st, nil
		case "archived":
			return st, fmt.Errorf("task %s failed: %v", id, st["last_error"])
		}
		select {
		case <-ctx.Done():
			return st, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
