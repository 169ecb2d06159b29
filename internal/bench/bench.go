package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"text/tabwriter"
)

// Better tells which direction of a figure is good.
type Better string

// Directions of a figure.
const (
	Higher Better = "higher"
	Lower  Better = "lower"
)

// Result is one row of the bench table: a packflow figure and its baseline,
// measured in the same run.
type Result struct {
	Name          string  `json:"name"`
	Value         float64 `json:"value"`
	Unit          string  `json:"unit"`
	Baseline      string  `json:"baseline"`
	BaselineValue float64 `json:"baseline_value"`
	// Ratio is Value/BaselineValue for figures where higher is better and
	// BaselineValue/Value where lower is better, so a ratio above 1 always
	// means packflow did better than the baseline.
	Ratio  float64 `json:"ratio"`
	Better Better  `json:"better"`
	// Goal is the ratio the figure must reach (0 when none is set).
	Goal float64 `json:"goal,omitempty"`
	// Note carries extra figures (allocations, MB/s …).
	Note string `json:"note,omitempty"`
}

// NewResult fills Ratio from the two values and the direction.
func NewResult(name, unit string, value float64, baseline string, baselineValue float64, better Better) Result {
	r := Result{Name: name, Value: value, Unit: unit, Baseline: baseline, BaselineValue: baselineValue, Better: better}
	switch {
	case better == Higher && baselineValue > 0:
		r.Ratio = value / baselineValue
	case better == Lower && value > 0:
		r.Ratio = baselineValue / value
	}
	return r
}

// Env is what every suite gets: a real redis-server on loopback started for
// this run, a scratch directory and a logger.
type Env struct {
	// RedisAddr is host:port of a redis-server started for the run.
	RedisAddr string
	// Dir is a scratch directory removed after the run.
	Dir string
	// Quick asks suites for smaller workloads (used by smoke tests).
	Quick bool
	Log   *slog.Logger
}

// Suite is a named group of measurements.
type Suite struct {
	Name string
	Run  func(ctx context.Context, env *Env) ([]Result, error)
}

// PrintTable writes the results as an aligned table.
func PrintTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if _, err := fmt.Fprintln(tw, "NAME\tVALUE\tBASELINE\tBASELINE VALUE\tRATIO\tGOAL\tNOTE"); err != nil {
		return fmt.Errorf("bench: print table: %w", err)
	}
	for _, r := range results {
		goal := "-"
		if r.Goal > 0 {
			mark := "ok"
			if r.Ratio < r.Goal {
				mark = "MISSED"
			}
			goal = fmt.Sprintf("≥%.2f× %s", r.Goal, mark)
		}
		if _, err := fmt.Fprintf(tw, "%s\t%.4g %s\t%s\t%.4g %s\t%.2f×\t%s\t%s\n",
			r.Name, r.Value, r.Unit, r.Baseline, r.BaselineValue, r.Unit, r.Ratio, goal, r.Note); err != nil {
			return fmt.Errorf("bench: print table: %w", err)
		}
	}
	return tw.Flush()
}

// WriteJSON writes the results to path as a JSON list.
func WriteJSON(path string, results []Result) error {
	b, err := json.MarshalIndent(results, "", "  ")
	if err != nil {
		return fmt.Errorf("bench: encode results: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil { //nolint:gosec // a report to publish, not a secret
		return fmt.Errorf("bench: write %s: %w", path, err)
	}
	return nil
}
