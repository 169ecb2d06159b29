package manifest

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

var cronFields = []struct {
	name     string
	min, max int
	names    []string // names for min, min+1, …
}{
	{"minute", 0, 59, nil},
	{"hour", 0, 23, nil},
	{"day of month", 1, 31, nil},
	{"month", 1, 12, []string{"jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"}},
	{"day of week", 0, 7, []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun"}},
}

var cronDescriptors = []string{"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}

// CheckCron checks a standard five-field cron expression (minute hour
// day-of-month month day-of-week, with lists, ranges, steps and month or
// weekday names) or one of the descriptors @yearly, @annually, @monthly,
// @weekly, @daily, @midnight and @hourly.
func CheckCron(expr string) error {
	expr = strings.TrimSpace(expr)
	if strings.HasPrefix(expr, "@") {
		for _, d := range cronDescriptors {
			if strings.EqualFold(expr, d) {
				return nil
			}
		}
		return fmt.Errorf("unknown descriptor %s", expr)
	}
	fields := strings.Fields(expr)
	if len(fields) != len(cronFields) {
		return fmt.Errorf("has %d fields, want %d", len(fields), len(cronFields))
	}
	for i, f := range fields {
		spec := cronFields[i]
		for _, item := range strings.Split(f, ",") {
			if err := checkCronItem(item, spec.min, spec.max, spec.names); err != nil {
				return fmt.Errorf("%s field %q: %w", spec.name, f, err)
			}
		}
	}
	return nil
}

func checkCronItem(item string, lo, hi int, names []string) error {
	rng, step, hasStep := strings.Cut(item, "/")
	if hasStep {
		n, err := strconv.Atoi(step)
		if err != nil || n < 1 {
			return fmt.Errorf("step %q must be a positive number", step)
		}
	}
	if rng == "*" || rng == "?" {
		return nil
	}
	a, b, isRange := strings.Cut(rng, "-")
	x, err := cronValue(a, lo, hi, names)
	if err != nil {
		return err
	}
	if !isRange {
		return nil
	}
	y, err := cronValue(b, lo, hi, names)
	if err != nil {
		return err
	}
	if x > y {
		return fmt.Errorf("range %s runs backwards", rng)
	}
	return nil
}

func cronValue(s string, lo, hi int, names []string) (int, error) {
	for i, n := range names {
		if strings.EqualFold(s, n) {
			return lo + i, nil
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, errors.New("\"" + s + "\" is not a number")
	}
	if n < lo || n > hi {
		return 0, fmt.Errorf("%d is outside %d-%d", n, lo, hi)
	}
	return n, nil
}
