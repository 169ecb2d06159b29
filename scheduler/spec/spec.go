package spec

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Limits of intervals.
const (
	MinEvery = time.Second
	MaxEvery = 366 * 24 * time.Hour
)

// Spec is what a schedule says about when it fires: exactly one of Cron
// and Every.
type Spec struct {
	Cron  string
	Every time.Duration
	// Timezone is an IANA zone name such as "Europe/Berlin"; "" is UTC.
	// Cron expressions are read on its wall clock.
	Timezone string
	// Anchor is the origin of an interval: it fires at Anchor + k·Every.
	// It is truncated to the second.
	Anchor time.Time
}

var parser = cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// CheckCron reports why expr is not a cron expression packflow accepts.
func CheckCron(expr string) error {
	_, err := parseCron(expr)
	return err
}

func parseCron(expr string) (*cron.SpecSchedule, error) {
	expr = strings.TrimSpace(expr)
	switch {
	case expr == "":
		return nil, errors.New("a cron expression is required")
	case strings.HasPrefix(expr, "@every"):
		return nil, errors.New("@every is not a cron expression; use the every field")
	case strings.Contains(expr, "TZ="):
		return nil, errors.New("name the time zone in the timezone field, not in the expression")
	}
	s, err := parser.Parse(expr)
	if err != nil {
		return nil, fmt.Errorf("cron %q: %w", expr, err)
	}
	ss, ok := s.(*cron.SpecSchedule)
	if !ok {
		return nil, fmt.Errorf("cron %q: not a cron expression", expr)
	}
	// Evaluated on the wall clock as if it were UTC; see Schedule.Next.
	ss.Location = time.UTC
	if ss.Next(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)).IsZero() {
		return nil, fmt.Errorf("cron %q never fires", expr)
	}
	return ss, nil
}

// CheckEvery reports why d is not an interval packflow accepts.
func CheckEvery(d time.Duration) error {
	switch {
	case d < MinEvery:
		return fmt.Errorf("every %s is shorter than %s", d, MinEvery)
	case d > MaxEvery:
		return fmt.Errorf("every %s is longer than %s", d, MaxEvery)
	case d%time.Second != 0:
		return fmt.Errorf("every %s is not a whole number of seconds", d)
	}
	return nil
}

// LoadLocation returns the zone named tz ("" and "UTC" are UTC).
func LoadLocation(tz string) (*time.Location, error) {
	if tz == "" || tz == "UTC" {
		return time.UTC, nil
	}
	if strings.EqualFold(tz, "local") {
		return nil, errors.New("name a zone such as Europe/Berlin; Local depends on the machine")
	}
	loc, err := time.LoadLocation(tz)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q; use an IANA name such as Europe/Berlin", tz)
	}
	return loc, nil
}

// Schedule computes fire times. It is safe for concurrent use.
type Schedule struct {
	cron     *cron.SpecSchedule
	allHours bool
	every    time.Duration
	anchor   time.Time
	loc      *time.Location
}

// Parse checks s and returns its Schedule. The error names every problem.
func Parse(s Spec) (*Schedule, error) {
	var errs []error
	sc := &Schedule{}
	var err error
	if sc.loc, err = LoadLocation(s.Timezone); err != nil {
		errs = append(errs, err)
	}
	switch {
	case (s.Cron == "") == (s.Every == 0):
		errs = append(errs, errors.New("give exactly one of cron and every"))
	case s.Cron != "":
		if sc.cron, err = parseCron(s.Cron); err != nil {
			errs = append(errs, err)
		} else {
			const all = 1<<24 - 1
			sc.allHours = sc.cron.Hour&all == all
		}
	default:
		if err := CheckEvery(s.Every); err != nil {
			errs = append(errs, err)
		}
		sc.every, sc.anchor = s.Every, s.Anchor.Truncate(time.Second)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return sc, nil
}

// Next returns the first fire time strictly after t, in UTC, or the zero
// time when there is none.
func (s *Schedule) Next(t time.Time) time.Time {
	if s.every > 0 {
		return s.nextEvery(t)
	}
	return s.nextCron(t)
}

// NextN returns the next n fire times after t.
func (s *Schedule) NextN(t time.Time, n int) []time.Time {
	out := make([]time.Time, 0, n)
	for range n {
		t = s.Next(t)
		if t.IsZero() {
			break
		}
		out = append(out, t)
	}
	return out
}

// Last returns the latest fire time in (from, t] and how many fire
// times fall there (counted up to 10000), or the zero time and 0.
func (s *Schedule) Last(from, t time.Time) (time.Time, int) {
	if !t.After(from) {
		return time.Time{}, 0
	}
	if s.every > 0 {
		first := s.nextEvery(from)
		if first.After(t) {
			return time.Time{}, 0
		}
		n := t.Sub(first) / s.every
		return first.Add(n * s.every), int(n) + 1
	}
	const limit = 10000
	n := 0
	for x := s.Next(from); !x.IsZero() && !x.After(t) && n < limit; x = s.Next(x) {
		n++
	}
	if n == 0 {
		return time.Time{}, 0
	}
	// The latest: walk from a window before t wide enough to hold one.
	for _, w := range []time.Duration{time.Hour, 25 * time.Hour, 32 * 24 * time.Hour, 367 * 24 * time.Hour, t.Sub(from)} {
		start := t.Add(-w)
		if start.Before(from) {
			start = from
		}
		var last time.Time
		for x := s.Next(start); !x.IsZero() && !x.After(t); x = s.Next(x) {
			last = x
		}
		if !last.IsZero() {
			return last, n
		}
	}
	return time.Time{}, 0
}

func (s *Schedule) nextEvery(t time.Time) time.Time {
	if t.Before(s.anchor) {
		return s.anchor.UTC()
	}
	k := t.Sub(s.anchor)/s.every + 1
	return s.anchor.Add(k * s.every).UTC()
}

// civil returns t's wall clock in the zone as a UTC time, on which cron
// arithmetic has no daylight saving time.
func (s *Schedule) civil(t time.Time) time.Time {
	l := t.In(s.loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// instants returns the instants at which the zone's wall clock shows c:
// none in a gap (then the instant the clocks jump), two in a repeated
// hour (then only the first unless the hour field matches every hour).
func (s *Schedule) instants(c time.Time) []time.Time {
	var out []time.Time
	for _, probe := range []time.Duration{-26 * time.Hour, 0, 26 * time.Hour} {
		_, off := c.Add(probe).In(s.loc).Zone()
		i := c.Add(-time.Duration(off) * time.Second)
		if s.civil(i).Equal(c) && !containsTime(out, i) {
			out = append(out, i)
		}
	}
	if len(out) == 0 {
		return []time.Time{s.jump(c)}
	}
	sortTimes(out)
	if len(out) > 1 && !s.allHours {
		out = out[:1]
	}
	return out
}

// jump returns the instant the clocks jump over the missing wall-clock
// time c: the first instant whose wall clock is after c.
func (s *Schedule) jump(c time.Time) time.Time {
	lo, hi := c.Add(-26*time.Hour), c.Add(26*time.Hour)
	for hi.Sub(lo) > time.Second {
		mid := lo.Add(hi.Sub(lo) / 2).Truncate(time.Second)
		if s.civil(mid).After(c) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return hi.UTC()
}

func (s *Schedule) nextCron(t time.Time) time.Time {
	// Wall-clock times earlier than t's can come after t when the clocks
	// go back: start a few hours before when a change is near.
	c := s.civil(t).Add(-s.margin(t))
	var best time.Time
	for range 100000 {
		c = s.cron.Next(c)
		if c.IsZero() {
			break
		}
		if !best.IsZero() && c.After(s.civil(best).Add(s.margin(best))) {
			break
		}
		for _, i := range s.instants(c) {
			if i.After(t) && (best.IsZero() || i.Before(best)) {
				best = i
			}
		}
	}
	return best.UTC()
}

// margin is how far apart wall-clock order and time order can be near t:
// a few hours when the zone's offset changes within a day of t, else 0.
func (s *Schedule) margin(t time.Time) time.Duration {
	_, a := t.Add(-26 * time.Hour).In(s.loc).Zone()
	_, b := t.Add(26 * time.Hour).In(s.loc).Zone()
	if a == b {
		return 0
	}
	return 3 * time.Hour
}

func containsTime(ts []time.Time, t time.Time) bool {
	for _, x := range ts {
		if x.Equal(t) {
			return true
		}
	}
	return false
}

func sortTimes(ts []time.Time) {
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Before(ts[j-1]); j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
}
