package tasks_test

import (
	"fmt"

	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
)

// An activation fans out one install per node, each into the node's own
// queue under an ID derived from the activation, so that a repeated
// fan-out queues nothing twice.
func ExampleNewInstallTask() {
	a := store.Activation{ID: "activate:42", PackageID: "5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b", Version: "1.2.0",
		Closure: []store.ClosureVersion{{UUID: "5f0c1b7e-2d3a-4c8e-9b1f-6a7d8e9f0a1b", Version: "1.2.0"}}}
	task, opts, err := tasks.NewInstallTask(a, "node-7", &tasks.Retry{Max: tasks.Retries(5)})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(task.Type())
	for _, o := range opts {
		fmt.Println(o)
	}
	r, _ := tasks.RetryFromPayload(task.Payload())
	fmt.Println("retries:", r.MaxRetry())
	// Output:
	// package:install
	// Queue("node:node-7")
	// TaskID("install:activate:42:node-7")
	// retries: 5
}
