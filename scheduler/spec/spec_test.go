package spec

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mustParse(t *testing.T, s Spec) *Schedule {
	t.Helper()
	sc, err := Parse(s)
	if err != nil {
		t.Fatalf("Parse(%+v): %v", s, err)
	}
	return sc
}

func at(t *testing.T, tz, v string) time.Time {
	t.Helper()
	loc, err := LoadLocation(tz)
	if err != nil {
		t.Fatal(err)
	}
	x, err := time.ParseInLocation("2006-01-02 15:04:05", v, loc)
	if err != nil {
		t.Fatal(err)
	}
	return x
}

func rfc(ts []time.Time) []string {
	out := make([]string, len(ts))
	for i, x := range ts {
		out[i] = x.Format(time.RFC3339)
	}
	return out
}

func TestParseRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		spec Spec
		want []string // substrings of the error, one per problem
	}{
		{"neither", Spec{}, []string{"exactly one of cron and every"}},
		{"both", Spec{Cron: "* * * * *", Every: time.Minute}, []string{"exactly one"}},
		{"four fields", Spec{Cron: "* * * *"}, []string{"cron"}},
		{"seven fields", Spec{Cron: "0 0 * * * * *"}, []string{"cron"}},
		{"minute out of range", Spec{Cron: "60 * * * *"}, []string{"cron"}},
		{"bad name", Spec{Cron: "0 0 * foo *"}, []string{"cron"}},
		{"@every", Spec{Cron: "@every 5m"}, []string{"use the every field"}},
		{"zone inside", Spec{Cron: "CRON_TZ=UTC 0 * * * *"}, []string{"timezone field"}},
		{"never", Spec{Cron: "0 0 30 2 *"}, []string{"never fires"}},
		{"unknown descriptor", Spec{Cron: "@fortnightly"}, []string{"cron"}},
		{"short every", Spec{Every: 500 * time.Millisecond}, []string{"shorter than 1s"}},
		{"long every", Spec{Every: 400 * 24 * time.Hour}, []string{"longer than"}},
		{"fractional every", Spec{Every: 1500 * time.Millisecond}, []string{"whole number of seconds"}},
		{"bad zone and cron", Spec{Cron: "x", Timezone: "Mars/Olympus"}, []string{"unknown time zone", "cron"}},
		{"local", Spec{Every: time.Minute, Timezone: "Local"}, []string{"machine"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := Parse(tc.spec)
			if err == nil {
				t.Fatalf("Parse(%+v) = nil error", tc.spec)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestNextN(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		spec  Spec
		after time.Time
		want  []string
	}{
		{"every 15 minutes", Spec{Cron: "*/15 * * * *"}, at(t, "UTC", "2026-01-01 10:07:00"),
			[]string{"2026-01-01T10:15:00Z", "2026-01-01T10:30:00Z", "2026-01-01T10:45:00Z"}},
		{"seconds field", Spec{Cron: "*/20 * * * * *"}, at(t, "UTC", "2026-01-01 10:00:00"),
			[]string{"2026-01-01T10:00:20Z", "2026-01-01T10:00:40Z", "2026-01-01T10:01:00Z"}},
		{"hourly", Spec{Cron: "@hourly"}, at(t, "UTC", "2026-01-01 10:00:00"),
			[]string{"2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z", "2026-01-01T13:00:00Z"}},
		{"weekdays by name", Spec{Cron: "0 9 * * mon-fri"}, at(t, "UTC", "2026-01-02 10:00:00"), // a Friday
			[]string{"2026-01-05T09:00:00Z", "2026-01-06T09:00:00Z", "2026-01-07T09:00:00Z"}},
		{"zone", Spec{Cron: "0 2 * * *", Timezone: "America/New_York"}, at(t, "UTC", "2026-01-01 00:00:00"),
			[]string{"2026-01-01T07:00:00Z", "2026-01-02T07:00:00Z", "2026-01-03T07:00:00Z"}},
		{"every anchored", Spec{Every: 10 * time.Minute, Anchor: at(t, "UTC", "2026-01-01 10:03:00")}, at(t, "UTC", "2026-01-01 10:20:00"),
			[]string{"2026-01-01T10:23:00Z", "2026-01-01T10:33:00Z", "2026-01-01T10:43:00Z"}},
		{"every before anchor", Spec{Every: time.Hour, Anchor: at(t, "UTC", "2026-01-01 10:00:00")}, at(t, "UTC", "2026-01-01 08:00:00"),
			[]string{"2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "2026-01-01T12:00:00Z"}},
		{"every ignores zone", Spec{Every: 24 * time.Hour, Timezone: "Europe/Berlin", Anchor: at(t, "UTC", "2026-03-28 12:00:00")},
			at(t, "UTC", "2026-03-28 12:00:00"), []string{"2026-03-29T12:00:00Z", "2026-03-30T12:00:00Z", "2026-03-31T12:00:00Z"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := rfc(mustParse(t, tc.spec).NextN(tc.after, len(tc.want)))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("NextN (-want +got):\n%s", d)
			}
		})
	}
}

// TestDaylightSavingTime: in Berlin clocks jump from 02:00 to 03:00 on
// 2026-03-29 and fall back from 03:00 to 02:00 on 2026-10-25.
func TestDaylightSavingTime(t *testing.T) {
	t.Parallel()
	const berlin = "Europe/Berlin"
	spring := at(t, "UTC", "2026-03-28 20:00:00")
	autumn := at(t, "UTC", "2026-10-24 20:00:00")
	tests := []struct {
		name  string
		cron  string
		after time.Time
		want  []string // in Berlin's time
	}{
		{"skipped time fires at the jump", "30 2 * * *", spring,
			[]string{"2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"}},
		{"time before the gap", "30 1 * * *", spring,
			[]string{"2026-03-29T01:30:00+01:00", "2026-03-30T01:30:00+02:00"}},
		{"hourly across the gap", "0 * * * *", at(t, "UTC", "2026-03-28 23:30:00"),
			[]string{"2026-03-29T01:00:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T04:00:00+02:00"}},
		{"quarter hours across the gap fire once at the jump", "*/15 * * * *", at(t, "UTC", "2026-03-29 00:40:00"),
			[]string{"2026-03-29T01:45:00+01:00", "2026-03-29T03:00:00+02:00", "2026-03-29T03:15:00+02:00"}},
		{"repeated time fires once", "30 2 * * *", autumn,
			[]string{"2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"}},
		{"hourly fires in both repeated hours", "30 * * * *", at(t, "UTC", "2026-10-24 23:00:00"),
			[]string{"2026-10-25T01:30:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:30:00+01:00", "2026-10-25T03:30:00+01:00"}},
		{"quarter hours in time order", "*/15 2 * * *", at(t, "UTC", "2026-10-24 23:50:00"),
			[]string{"2026-10-25T02:00:00+02:00", "2026-10-25T02:15:00+02:00", "2026-10-25T02:30:00+02:00", "2026-10-25T02:45:00+02:00", "2026-10-26T02:00:00+01:00"}},
		{"daily after the change", "0 3 * * *", autumn,
			[]string{"2026-10-25T03:00:00+01:00", "2026-10-26T03:00:00+01:00"}},
	}
	loc, _ := LoadLocation(berlin)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := mustParse(t, Spec{Cron: tc.cron, Timezone: berlin}).NextN(tc.after, len(tc.want))
			for i := range got {
				got[i] = got[i].In(loc)
			}
			if d := cmp.Diff(tc.want, rfc(got)); d != "" {
				t.Errorf("NextN (-want +got):\n%s", d)
			}
		})
	}
}

func TestLast(t *testing.T) {
	t.Parallel()
	from := at(t, "UTC", "2026-01-01 10:00:00")
	tests := []struct {
		name  string
		spec  Spec
		until time.Time
		last  string
		n     int
	}{
		{"none yet", Spec{Cron: "0 * * * *"}, at(t, "UTC", "2026-01-01 10:59:59"), "0001-01-01T00:00:00Z", 0},
		{"hourly", Spec{Cron: "0 * * * *"}, at(t, "UTC", "2026-01-01 13:30:00"), "2026-01-01T13:00:00Z", 3},
		{"every", Spec{Every: 10 * time.Minute, Anchor: from}, at(t, "UTC", "2026-01-01 11:05:00"), "2026-01-01T11:00:00Z", 6},
		{"every second for a day", Spec{Every: time.Second, Anchor: from}, at(t, "UTC", "2026-01-02 10:00:00"), "2026-01-02T10:00:00Z", 86400},
		{"each second for a day counts up to the limit", Spec{Cron: "* * * * * *"}, at(t, "UTC", "2026-01-02 10:00:00"), "2026-01-02T10:00:00Z", 10000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			last, n := mustParse(t, tc.spec).Last(from, tc.until)
			if got := last.UTC().Format(time.RFC3339); got != tc.last || n != tc.n {
				t.Errorf("Last = %s, %d; want %s, %d", got, n, tc.last, tc.n)
			}
		})
	}
}
