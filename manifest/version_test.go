package manifest

import "testing"

func TestParseVersion(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1.2.3", "0.0.0", "v1.0.0", "1.0.0-rc.1", "1.0.0-alpha-1+build.5", "10.20.30"} {
		if _, err := ParseVersion(s); err != nil {
			t.Errorf("ParseVersion(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "1", "1.2", "1.2.3.4", "01.2.3", "1.2.x", "1.2.3-", "1.2.3-01", "1.2.3+", "a.b.c", "1.2.3-rc..1"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
	if v, _ := ParseVersion("v1.2.3-rc.1+b"); v.String() != "1.2.3-rc.1+b" {
		t.Errorf("String = %q", v)
	}
}

func TestVersionCompare(t *testing.T) {
	t.Parallel()
	// semver.org's precedence example, in order.
	order := []string{"1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
		"1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.1.0", "2.0.0"}
	for i := range order {
		for j := range order {
			a, _ := ParseVersion(order[i])
			b, _ := ParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("1.0.0+a")
	b, _ := ParseVersion("1.0.0+b")
	if a.Compare(b) != 0 {
		t.Error("build metadata affects precedence")
	}
}

func TestConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		c        string
		allow    []string
		disallow []string
	}{
		{"", []string{"0.0.1", "9.9.9"}, []string{"1.0.0-rc.1"}},
		{"*", []string{"1.0.0"}, nil},
		{"1.2.3", []string{"1.2.3", "1.2.3+b"}, []string{"1.2.4", "1.2.3-rc.1"}},
		{"=1.0.0", []string{"1.0.0"}, []string{"1.0.1"}},
		{"1.2", []string{"1.2.0", "1.2.9"}, []string{"1.3.0", "1.1.9"}},
		{"1.x", []string{"1.0.0", "1.9.0"}, []string{"2.0.0"}},
		{">=1.2.0 <2.0.0", []string{"1.2.0", "1.9.9"}, []string{"1.1.9", "2.0.0", "2.0.0-rc.1"}},
		{">= 1.2.0, < 2.0.0", []string{"1.5.0"}, []string{"2.1.0"}},
		{"^1.2", []string{"1.2.0", "1.99.0"}, []string{"1.1.0", "2.0.0"}},
		{"^1.2.3", []string{"1.2.3", "1.3.0"}, []string{"1.2.2", "2.0.0"}},
		{"^0.2.3", []string{"0.2.3", "0.2.9"}, []string{"0.3.0"}},
		{"^0.0.3", []string{"0.0.3"}, []string{"0.0.4"}},
		{"~1.2.3", []string{"1.2.3", "1.2.9"}, []string{"1.3.0", "1.2.2"}},
		{"~1", []string{"1.0.0", "1.9.0"}, []string{"2.0.0"}},
		{">1.2", []string{"1.3.0"}, []string{"1.2.9"}},
		{"<=1.2", []string{"1.2.9"}, []string{"1.3.0"}},
		{"!=1.4.0", []string{"1.3.0", "1.5.0"}, []string{"1.4.0"}},
		{"<1.0.0 || >=2.0.0", []string{"0.5.0", "2.1.0"}, []string{"1.5.0"}},
		{">=1.0.0-rc.1", []string{"1.0.0-rc.2", "1.0.0", "1.1.0"}, []string{"1.1.0-rc.1", "1.0.0-beta"}},
	}
	for _, tt := range tests {
		c, err := ParseConstraint(tt.c)
		if err != nil {
			t.Errorf("ParseConstraint(%q): %v", tt.c, err)
			continue
		}
		for _, s := range tt.allow {
			if v, _ := ParseVersion(s); !c.Allows(v) {
				t.Errorf("%q should allow %s", tt.c, s)
			}
		}
		for _, s := range tt.disallow {
			if v, _ := ParseVersion(s); c.Allows(v) {
				t.Errorf("%q should not allow %s", tt.c, s)
			}
		}
	}
	for _, bad := range []string{">=", "1.x.2", "^a", ">=1.2.3 ||", "!=1.2", "=>1.0.0"} {
		if _, err := ParseConstraint(bad); err == nil {
			t.Errorf("ParseConstraint(%q) accepted", bad)
		}
	}
}
