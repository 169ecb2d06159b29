package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// runHealthcheckCommand fetches a packflow process's health URL and
// succeeds on 200: the probe of container images that have no shell or
// curl (deploy/Dockerfile's HEALTHCHECK).
func runHealthcheckCommand(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("packflow healthcheck", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	target := fs.String("url", "http://127.0.0.1:8080/healthz", "the URL to check: /healthz or /readyz of the API, or of a worker's or scheduler's PACKFLOW_METRICS_LISTEN")
	timeout := fs.Duration("timeout", 3*time.Second, "longest wait for the answer")
	fs.Usage = func() {
		printf(e.stderr, "Usage: packflow healthcheck [-url URL] [-timeout D]\n\nExit 0 when URL answers 200, 1 otherwise.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	u, err := url.Parse(*target)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{fmt.Errorf("-url %q: want http://host:port/path", *target)}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("request %s: %w", u, err)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("check %s: %w", u, err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("check %s: %s", u, res.Status)
	}
	return nil
}
