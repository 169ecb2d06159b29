// Package bench owns packflow's end-to-end benchmarks: each suite measures
// a packflow figure and its baseline (bare asynq, OpenSSH scp, unzip,
// Ansible …) in the same run, on the same machine, and reports the ratio.
// cmd/packflow-bench runs the suites, prints a table and writes
// bench-results.json. Timed figures never appear in tests.
package bench
