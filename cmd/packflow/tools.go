package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"github.com/packflow/packflow/manifest"
)

// runValidateCommand checks a package as publishing would and prints every
// problem; the exit status is 1 when there is an error.
func runValidateCommand(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("packflow validate", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON")
	fs.Usage = func() {
		printf(fs.Output(), "Usage: packflow validate [-json] PATH\n\n"+
			"Checks the package at PATH (a .zip or an unpacked directory) with every rule\n"+
			"publishing applies, and lists each problem with its path, line, rule and fix.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return usageErrorOrHelp(err)
	}
	if fs.NArg() != 1 {
		return usageError{errors.New("want one PATH (a .zip or a package directory)")}
	}
	path := fs.Arg(0)
	_, report, err := manifest.Validate(ctx, path, manifest.DefaultLimits())
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return err
		}
	} else if err := report.Format(e.stdout, path); err != nil {
		return err
	}
	if !report.OK() {
		return fmt.Errorf("%s: %d error(s)", path, len(report.Errors))
	}
	return nil
}

// runPackCommand packs a package directory into a .zip.
func runPackCommand(ctx context.Context, e env, args []string) error {
	fs := flag.NewFlagSet("packflow pack", flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	out := fs.String("o", "", "the .zip to write (required)")
	fs.Usage = func() {
		printf(fs.Output(), "Usage: packflow pack DIR -o FILE.zip\n\n"+
			"Packs the package directory DIR into FILE.zip, the same bytes for the same\n"+
			"tree. Run packflow validate first to check it.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	// Accept the flag after DIR too: packflow pack DIR -o FILE.zip.
	var dirs []string
	for rest := args; ; {
		if err := fs.Parse(rest); err != nil {
			return usageErrorOrHelp(err)
		}
		if fs.NArg() == 0 {
			break
		}
		dirs = append(dirs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if len(dirs) != 1 || *out == "" {
		return usageError{errors.New("want one DIR and -o FILE.zip")}
	}
	if err := manifest.PackFile(ctx, dirs[0], *out); err != nil {
		return err
	}
	_, err := fmt.Fprintf(e.stdout, "packed %s into %s\n", dirs[0], *out)
	return err
}
