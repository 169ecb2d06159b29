package manifest

import (
	"fmt"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/packflow/packflow/scheduler/spec"
)

func scheduleManifest(attrs string) []byte {
	return fmt.Appendf(nil, `<Manifest>
  <Metadata><UUID>5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b</UUID><Name>n</Name><Description>d</Description>
    <Schedules><Schedule Name="s" %s/></Schedules></Metadata>
  <Execution><Mode>Ssh</Mode><Command>./install.sh</Command></Execution>
</Manifest>`, attrs)
}

// TestScheduleCronIsTheSchedulersRule checks that a manifest's default
// schedule is accepted exactly when the scheduler accepts its cron
// expression: one checker, so that no schedule is stored that the
// scheduler then refuses to fire.
func TestScheduleCronIsTheSchedulersRule(t *testing.T) {
	t.Parallel()
	for _, expr := range []string{
		// Refused by the scheduler; accepted by the manifest's own checker of old.
		"0 0 * * 7", "0 0 * * 5-7", "0 0 31 2 *", "0 0 30 2 *",
		// Accepted by both.
		"* * * * *", "*/15 * * * *", "0 2 * * MON-FRI", "0 0 1,15 jan-jun ?", "@daily", "0 0 * * 0-6",
		// Refused by both.
		"", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "5-1 * * * *", "@often", "a b c d e", "@every 5m",
	} {
		_, rep := ParseBytes(scheduleManifest(`Cron="` + expr + `"`))
		refused := rep.Has(RuleScheduleCron) || rep.Has(RuleScheduleSpec)
		if schedErr := spec.CheckCron(expr); (schedErr != nil) != refused {
			t.Errorf("cron %q: manifest refuses=%v, scheduler says %v\n%s", expr, refused, schedErr, formatReport(rep))
		}
	}
	for _, every := range []string{"1m", "6h", "8784h", "9000h", "30s", "90s500ms"} {
		_, rep := ParseBytes(scheduleManifest(`Every="` + every + `"`))
		d, _ := parseTimeout(every)
		schedOK := spec.CheckEvery(d) == nil && d >= MinScheduleEvery
		if refused := !rep.OK(); refused == schedOK {
			t.Errorf("every %q: manifest refuses=%v, scheduler accepts=%v\n%s", every, refused, schedOK, formatReport(rep))
		}
	}
}

// TestSchedulerSpecIsALeaf keeps scheduler/spec free of packflow imports,
// so that manifest (which must import nothing that imports it back) may
// use its cron checker.
func TestSchedulerSpecIsALeaf(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob(filepath.Join("..", "scheduler", "spec", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no sources of scheduler/spec: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, im := range af.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if strings.HasPrefix(p, "github.com/packflow/packflow/") {
				t.Errorf("%s imports %s; scheduler/spec must stay a leaf package", f, p)
			}
		}
	}
}
