package manifest

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseCommand(t *testing.T) {
	t.Parallel()
	segs, err := ParseCommand(`./run.sh ${A} --x=${ B }$HOME ${}`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Segment{
		{Text: "./run.sh "}, {Variable: "A", Ref: true}, {Text: " --x="}, {Variable: "B", Ref: true},
		{Text: "$HOME "}, {Variable: "", Ref: true},
	}
	if diff := cmp.Diff(want, segs); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if _, err := ParseCommand("x ${A"); !errors.Is(err, ErrUnclosed) {
		t.Errorf("err = %v, want ErrUnclosed", err)
	}
}

func TestProgram(t *testing.T) {
	t.Parallel()
	tests := []struct {
		cmd  string
		want string
		ok   bool
	}{
		{"./install.sh ${A}", "install.sh", true},
		{"/dir/my.cmd ${My.Custom.Value}", "dir/my.cmd", true},
		{`.\scripts\setup.ps1 -X 1`, "scripts/setup.ps1", true},
		{`"my dir/run.sh" a`, "my dir/run.sh", true},
		{"& ./x.ps1", "x.ps1", true},
		{"bash install.sh", "bash", true},
		{"${Script} x", "", false},
		{"../outside.sh", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, ok := Program(tt.cmd)
		if got != tt.want || ok != tt.ok {
			t.Errorf("Program(%q) = %q, %v; want %q, %v", tt.cmd, got, ok, tt.want, tt.ok)
		}
	}
}
