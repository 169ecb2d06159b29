package spec_test

import (
	"fmt"
	"time"

	"github.com/packflow/packflow/scheduler/spec"
)

// A cron expression read on Berlin's wall clock: 02:30 does not exist on
// the day the clocks go forward, so that day fires when they jump.
func ExampleSchedule_NextN() {
	s, err := spec.Parse(spec.Spec{Cron: "30 2 * * *", Timezone: "Europe/Berlin"})
	if err != nil {
		fmt.Println(err)
		return
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	for _, t := range s.NextN(time.Date(2026, 3, 28, 12, 0, 0, 0, time.UTC), 3) {
		fmt.Println(t.In(berlin).Format(time.RFC3339))
	}
	// Output:
	// 2026-03-29T03:00:00+02:00
	// 2026-03-30T02:30:00+02:00
	// 2026-03-31T02:30:00+02:00
}
