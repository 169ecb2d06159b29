package tasks_test

import (
	"fmt"
	"time"

	"github.com/packflow/packflow/tasks"
)

func ExampleBackoff_Ceiling() {
	b := tasks.Backoff{Base: 10 * time.Second, Cap: time.Minute}
	for attempt := range 5 {
		fmt.Println(attempt, b.Ceiling(attempt))
	}
	// Output:
	// 0 10s
	// 1 20s
	// 2 40s
	// 3 1m0s
	// 4 1m0s
}

func ExampleWithRetry() {
	jitter := true
	payload, err := tasks.WithRetry([]byte(`{"server":"web-1"}`), tasks.Retry{
		Max:        tasks.Retries(5),
		Backoff:    tasks.Duration(30 * time.Second),
		BackoffMax: tasks.Duration(10 * time.Minute),
		Jitter:     &jitter,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(string(payload))
	r, _ := tasks.RetryFromPayload(payload)
	fmt.Println(r.MaxRetry(), r.Apply(tasks.DefaultBackoff()))
	// Output:
	// {"retry":{"max":5,"backoff":"30s","backoff_max":"10m0s","jitter":true},"server":"web-1"}
	// 5 {30s 10m0s true}
}
