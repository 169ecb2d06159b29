package cache

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestPrune(t *testing.T) {
	t.Parallel()
	type install struct {
		uuid, version string
		at            int // minutes after the start
	}
	semver := []install{
		{uuidA, "1.0.0", 0}, {uuidA, "1.1.0", 1}, {uuidA, "2.0.0", 2}, {uuidA, "2.1.0", 3}, {uuidA, "10.0.0", 4},
	}
	tests := []struct {
		name     string
		keep     int
		installs []install
		active   map[string][]string
		removed  []string
	}{
		{
			name:     "default keeps two inactive besides the active",
			installs: semver,
			active:   map[string][]string{uuidA: {"1.0.0"}},
			removed:  []string{"1.1.0", "2.0.0"},
		},
		{
			name:     "keep none",
			keep:     -1,
			installs: semver,
			active:   map[string][]string{uuidA: {"2.0.0"}},
			removed:  []string{"1.0.0", "1.1.0", "2.1.0", "10.0.0"},
		},
		{
			name:     "a package with no active version keeps its newest",
			keep:     1,
			installs: semver,
			removed:  []string{"1.0.0", "1.1.0", "2.0.0", "2.1.0"},
		},
		{
			name: "revisions numerically, before semantic versions",
			keep: 2,
			installs: []install{
				{uuidA, "2", 0}, {uuidA, "10", 1}, {uuidA, "9", 2}, {uuidA, "1.0.0", 3}, {uuidA, "1", 4},
			},
			active:  map[string][]string{uuidA: {"1"}},
			removed: []string{"2", "9"},
		},
		{
			name: "install time breaks ties of equal precedence",
			keep: 1,
			installs: []install{
				{uuidA, "1.0.0+b", 0}, {uuidA, "1.0.0+a", 1},
			},
			removed: []string{"1.0.0+b"},
		},
		{
			name:     "enough room: nothing removed",
			keep:     5,
			installs: semver,
		},
		{
			name:     "packages are counted apart",
			keep:     1,
			installs: []install{{uuidA, "1.0.0", 0}, {uuidB, "1.0.0", 1}, {uuidB, "2.0.0", 2}},
			active:   map[string][]string{uuidB: {"1.0.0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			var now time.Time
			c := openCache(t, "", Options{Keep: tt.keep, Now: func() time.Time { return now }})
			a := sample(t, "x")
			for _, in := range tt.installs {
				now = start.Add(time.Duration(in.at) * time.Minute)
				if _, err := c.Install(context.Background(), a.request(in.uuid, in.version)); err != nil {
					t.Fatal(err)
				}
			}
			removed, err := c.Prune(context.Background(), tt.active)
			if err != nil {
				t.Fatalf("Prune: %v", err)
			}
			var got []string
			for _, e := range removed {
				got = append(got, e.Version)
				if _, ok := c.Path(e.UUID, e.Version); ok {
					t.Errorf("%s@%s is still installed", e.UUID, e.Version)
				}
			}
			if diff := cmp.Diff(tt.removed, got); diff != "" {
				t.Errorf("removed (-want +got):\n%s", diff)
			}
			list, err := c.List()
			if err != nil {
				t.Fatal(err)
			}
			if len(list)+len(removed) != len(tt.installs) {
				t.Errorf("%d left and %d removed of %d", len(list), len(removed), len(tt.installs))
			}
			for uuid, versions := range tt.active {
				for _, v := range versions {
					if _, ok := c.Path(uuid, v); !ok {
						t.Errorf("active %s@%s was pruned", uuid, v)
					}
				}
			}
			if ws := workspace(t, c); len(ws) != 0 {
				t.Errorf("work space left: %v", ws)
			}
		})
	}
}

func TestPruneCancelled(t *testing.T) {
	t.Parallel()
	c := openCache(t, "", Options{Keep: -1})
	a := sample(t, "x")
	if _, err := c.Install(context.Background(), a.request(uuidA, "1.0.0")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	removed, err := c.Prune(ctx, nil)
	if err == nil || len(removed) != 0 {
		t.Errorf("Prune with a cancelled ctx: %v, %v", removed, err)
	}
	if _, ok := c.Path(uuidA, "1.0.0"); !ok {
		t.Error("a cancelled prune removed a version")
	}
}

func TestCompareVersions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int
	}{
		{"1", "2", -1},
		{"10", "9", 1},
		{"3", "3", 0},
		{"99", "0.0.1", -1},
		{"1.0.0", "1", 1},
		{"1.0.0-rc.1", "1.0.0", -1},
		{"1.10.0", "1.9.0", 1},
		{"1.0.0+a", "1.0.0+b", 0},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
