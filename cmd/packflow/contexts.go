package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
)

// A context is a named API URL and token the client commands use, kept in
// the user's config dir (contextsFile, mode 0600). packflow login adds one
// and makes it current; packflow context use switches; packflow dev keeps
// a context named "dev" pointing at itself, made current when no other is.

// contextsFile is the name of the client's config file in the config dir.
const contextsFile = "config.json"

// devContext is the name of the context packflow dev writes.
const devContext = "dev"

// clientContext is one named API and its token.
type clientContext struct {
	APIURL string `json:"api_url"`
	Token  string `json:"token,omitempty"`
}

// clientConfig is the client's config file.
type clientConfig struct {
	Current  string                   `json:"current,omitempty"`
	Contexts map[string]clientContext `json:"contexts"`
}

// userConfigDir is os.UserConfigDir read through getenv, so that tests
// and the process agree on where the client's config lives.
func userConfigDir(getenv func(string) string) (string, error) {
	switch runtime.GOOS {
	case "windows":
		if d := getenv("AppData"); d != "" {
			return d, nil
		}
		return "", errors.New("%AppData% is not set")
	case "darwin", "ios":
		if h := getenv("HOME"); h != "" {
			return filepath.Join(h, "Library", "Application Support"), nil
		}
		return "", errors.New("$HOME is not set")
	}
	if d := getenv("XDG_CONFIG_HOME"); d != "" && filepath.IsAbs(d) {
		return d, nil
	}
	if h := getenv("HOME"); h != "" {
		return filepath.Join(h, ".config"), nil
	}
	return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set")
}

// contextsPath is where the client's config file lives.
func contextsPath(getenv func(string) string) (string, error) {
	dir, err := userConfigDir(getenv)
	if err != nil {
		return "", fmt.Errorf("client config dir: %w", err)
	}
	return filepath.Join(dir, "packflow", contextsFile), nil
}

// loadContexts reads the client's config; a missing file is an empty one.
func loadContexts(getenv func(string) string) (clientConfig, string, error) {
	cfg := clientConfig{Contexts: map[string]clientContext{}}
	path, err := contextsPath(getenv)
	if err != nil {
		return cfg, "", err
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return cfg, path, nil
	}
	if err != nil {
		return cfg, path, fmt.Errorf("read %s: %w", path, err)
	}
	if err := json.Unmarshal(data, &cfg); err != nil {
		return cfg, path, fmt.Errorf("%s: %w (fix or delete the file)", path, err)
	}
	if cfg.Contexts == nil {
		cfg.Contexts = map[string]clientContext{}
	}
	return cfg, path, nil
}

// saveContexts writes the client's config atomically, readable by its
// owner only: it holds tokens.
func saveContexts(path string, cfg clientConfig) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("client config dir: %w", err)
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".config-*.json")
	if err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	defer func() { _ = os.Remove(tmp.Name()) }()
	if err := tmp.Chmod(0o600); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write client config: %w", err)
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write client config: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write client config: %w", err)
	}
	return nil
}

// dialURL is the URL a client on this machine reaches a listener at: an
// unspecified host (0.0.0.0, ::, empty) becomes the loopback address.
func dialURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "http://" + listen
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port)
}

// recordDevContext makes the "dev" context point at a running packflow
// dev, and current when no other context is, so that client commands find
// it without set-up.
func recordDevContext(getenv func(string) string, apiURL, token string) (string, error) {
	cfg, path, err := loadContexts(getenv)
	if err != nil {
		return "", err
	}
	cfg.Contexts[devContext] = clientContext{APIURL: apiURL, Token: token}
	if _, ok := cfg.Contexts[cfg.Current]; !ok {
		cfg.Current = devContext
	}
	return path, saveContexts(path, cfg)
}

// runLoginCommand checks a token against an API and keeps both as a
// context, made current.
func runLoginCommand(ctx context.Context, e env, args []string) error {
	f := newFlagSet("login", "Usage: packflow login URL [-token TOKEN] [-name NAME]\n\n"+
		"Checks TOKEN against the API at URL and keeps both, as context NAME (default: the URL's host), in\n"+
		"the client's config file (<user config dir>/packflow/config.json, mode 0600); NAME becomes the\n"+
		"current context. Without -token or PACKFLOW_TOKEN the token is read from standard input.",
		[]string{"token"}, nil, e.getenv, e.stderr)
	name := f.fs.String("name", "", "name of the context (default: the URL's host)")
	if err := parseInterspersed(f, args); err != nil {
		return usageErrorOrHelp(err)
	}
	if err := wantArgs(f, 1, "one URL"); err != nil {
		return err
	}
	u, err := url.Parse(f.args[0])
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("URL %q: must be an http(s) URL such as https://packflow.example.com", f.args[0])}
	}
	token, _, _ := f.value("token")
	if token == "" {
		printf(e.stderr, "Token: ")
		line, err := bufio.NewReader(e.stdin).ReadString('\n')
		if err != nil && line == "" {
			return usageError{errors.New("no token: give -token, set PACKFLOW_TOKEN or type it on standard input")}
		}
		token = strings.TrimSpace(line)
	}
	c := &apiClient{base: u, token: token, http: newHTTPClient()}
	var page struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	if err := c.call(ctx, http.MethodGet, "/api/v1/accounts?limit=1", nil, "", &page); err != nil {
		return fmt.Errorf("check the token against %s: %w", u, err)
	}
	if *name == "" {
		*name = u.Host
	}
	cfg, path, err := loadContexts(e.getenv)
	if err != nil {
		return err
	}
	cfg.Contexts[*name] = clientContext{APIURL: strings.TrimRight(u.String(), "/"), Token: token}
	cfg.Current = *name
	if err := saveContexts(path, cfg); err != nil {
		return err
	}
	acct := ""
	if len(page.Items) > 0 {
		acct = " as account " + page.Items[0].Name
	}
	printf(e.stdout, "logged in to %s%s; context %q is current (%s)\n", u, acct, *name, path)
	return nil
}

// runContextCommand lists, shows, switches and deletes contexts.
func runContextCommand(_ context.Context, e env, args []string) error {
	f := newFlagSet("context", "Usage: packflow context [list | current | use NAME | delete NAME] [-o table|json|yaml]\n\n"+
		"Lists the client's contexts (the current one marked *), names the current one, switches to\n"+
		"another or forgets one. Tokens are never printed.", nil, nil, e.getenv, e.stderr)
	format := addOutputFlag(f)
	if err := parseInterspersed(f, args); err != nil {
		return usageErrorOrHelp(err)
	}
	out, err := newPrinter(e.stdout, *format)
	if err != nil {
		return err
	}
	cfg, path, err := loadContexts(e.getenv)
	if err != nil {
		return err
	}
	verb := "list"
	if len(f.args) > 0 {
		verb = f.args[0]
	}
	switch {
	case verb == "list" && len(f.args) <= 1:
		names := make([]string, 0, len(cfg.Contexts))
		for n := range cfg.Contexts {
			names = append(names, n)
		}
		sort.Strings(names)
		rows := []any{}
		for _, n := range names {
			cur := ""
			if n == cfg.Current {
				cur = "*"
			}
			rows = append(rows, map[string]any{"current": cur, "name": n, "api_url": cfg.Contexts[n].APIURL})
		}
		return out.print(rows, cols("current", "name", "api_url"))
	case verb == "current" && len(f.args) == 1:
		if cfg.Current == "" {
			return errors.New("no current context: run packflow login URL")
		}
		printf(e.stdout, "%s\n", cfg.Current)
		return nil
	case verb == "use" && len(f.args) == 2:
		if _, ok := cfg.Contexts[f.args[1]]; !ok {
			return usageError{fmt.Errorf("no context %q in %s (packflow context list)", f.args[1], path)}
		}
		cfg.Current = f.args[1]
		if err := saveContexts(path, cfg); err != nil {
			return err
		}
		printf(e.stdout, "context %q is current\n", cfg.Current)
		return nil
	case verb == "delete" && len(f.args) == 2:
		if _, ok := cfg.Contexts[f.args[1]]; !ok {
			return usageError{fmt.Errorf("no context %q in %s", f.args[1], path)}
		}
		delete(cfg.Contexts, f.args[1])
		if cfg.Current == f.args[1] {
			cfg.Current = ""
		}
		if err := saveContexts(path, cfg); err != nil {
			return err
		}
		printf(e.stdout, "deleted context %q\n", f.args[1])
		return nil
	}
	return usageError{errors.New("want list, current, use NAME or delete NAME")}
}
