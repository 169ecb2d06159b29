package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/tasks"
)

// loadFor parses args for a subcommand with the given settings and env.
func loadFor(t *testing.T, settings []string, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	f := newFlagSet("test", "usage", settings, nil, mapEnv(env), io.Discard)
	if err := f.parse(args); err != nil {
		t.Fatal(err)
	}
	return loadConfig(f)
}

func TestConfigBadValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		env     string
		value   string
		want    string // besides the variable's name
		noCreds bool   // leave the S3 credentials unset
	}{
		{"PACKFLOW_REDIS_URL", "http://localhost:6379", "scheme", false},
		{"PACKFLOW_REDIS_URL", "redis://:hunter2@/0", "no host", false},
		{"PACKFLOW_REDIS_URL", "redis+sentinel:///mymaster", "sentinel", false},
		{"PACKFLOW_REDIS_URL", "redis://localhost:6379/x", "database", false},
		{"PACKFLOW_LISTEN", "8080", "host:port", false},
		{"PACKFLOW_LISTEN", "127.0.0.1:99999", "port", false},
		{"PACKFLOW_DATA_DIR", " ", "directory", false},
		{"PACKFLOW_BLOB_URL", "gs://bucket", "file:///abs/dir, mem:// or s3://", false},
		{"PACKFLOW_BLOB_URL", "s3:///prefix", "bucket", false},
		{"PACKFLOW_BLOB_URL", "s3://b?endpoint=minio:9000", "http(s)", false},
		{"PACKFLOW_BLOB_URL", "s3://bucket/packs", "PACKFLOW_S3_ACCESS_KEY_ID", true},
		{"PACKFLOW_BLOB_URL", "file://relative/dir", "absolute", false},
		{"PACKFLOW_SECRET_KEY", "not-hex-nor-base64!", "hex or base64", false},
		{"PACKFLOW_SECRET_KEY", "00ff", "at least 32", false},
		{"PACKFLOW_ADMIN_TOKEN", "short", "16 characters", false},
		{"PACKFLOW_ADMIN_TOKEN", "has a space in the middle", "spaces", false},
		{"PACKFLOW_NODE_ID", "node/1", "letters, digits", false},
		{"PACKFLOW_CACHE_KEEP", "-1", "0 to 1000", false},
		{"PACKFLOW_CONCURRENCY", "lots", "whole number", false},
		{"PACKFLOW_CONCURRENCY", "0", "1 to 10000", false},
		{"PACKFLOW_QUEUES", "publish=high", "weight", false},
		{"PACKFLOW_QUEUES", "a=1,a=2", "twice", false},
		{"PACKFLOW_DATACENTERS", "eu,us east", "datacenter", false},
		{"PACKFLOW_TASK_CHECK_INTERVAL", "10", "duration", false},
		{"PACKFLOW_TASK_CHECK_INTERVAL", "-1s", "positive", false},
		{"PACKFLOW_SCHEDULER_POLL_INTERVAL", "fast", "duration", false},
		{"PACKFLOW_SCHEDULER_GRACE", "0s", "positive", false},
		{"PACKFLOW_ALLOW_LOCAL", "maybe", "true or false", false},
		{"PACKFLOW_TRUST_PROXY", "yes please", "true or false", false},
		{"PACKFLOW_RETRY_BACKOFF", "fast", "duration", false},
		{"PACKFLOW_RETRY_BACKOFF_MAX", "1s", "below the retry backoff", false},
		{"PACKFLOW_RETRY_JITTER", "some", "true or false", false},
		{"PACKFLOW_UPLOAD_LIMIT", "1PB", "size", false},
		{"PACKFLOW_UPLOAD_LIMIT", "0", "positive", false},
		{"PACKFLOW_BODY_LIMIT", "lots", "size", false},
		{"PACKFLOW_SHUTDOWN_TIMEOUT", "soon", "duration", false},
		{"PACKFLOW_LOG_LEVEL", "verbose", "debug, info, warn or error", false},
		{"PACKFLOW_LOG_LEVEL", "info+2", "debug, info, warn or error", false},
		{"PACKFLOW_LOG_FORMAT", "xml", "text or json", false},
	}
	for _, tc := range tests {
		t.Run(tc.env+"="+tc.value, func(t *testing.T) {
			env := map[string]string{tc.env: tc.value, "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "example"}
			if tc.noCreds {
				delete(env, "AWS_ACCESS_KEY_ID")
			}
			_, err := loadFor(t, devSettings(), env)
			if err == nil {
				t.Fatal("accepted")
			}
			msg := err.Error()
			if !strings.HasPrefix(msg, tc.env) || !strings.Contains(msg, tc.want) || strings.Count(msg, "\n") != 0 {
				t.Errorf("error %q: want one line naming %s and saying %q", msg, tc.env, tc.want)
			}
			if strings.Contains(msg, "hunter2") {
				t.Errorf("error %q shows the Redis password", msg)
			}
			if tc.env == "PACKFLOW_SECRET_KEY" && strings.Contains(msg, tc.value) {
				t.Errorf("error %q shows the secret key", msg)
			}
		})
	}
}

func TestConfigReportsEveryBadValue(t *testing.T) {
	t.Parallel()
	_, err := loadFor(t, devSettings(), map[string]string{"PACKFLOW_CONCURRENCY": "x", "PACKFLOW_LOG_FORMAT": "xml"}, "-listen", "nope")
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"PACKFLOW_CONCURRENCY=", "PACKFLOW_LOG_FORMAT=", `-listen="nope"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %s", err, want)
		}
	}
}

func TestConfigSources(t *testing.T) {
	t.Parallel()
	key := strings.Repeat("ab", 32)
	env := map[string]string{
		"PACKFLOW_REDIS_URL":    "redis+sentinel://s1:26379,s2/mymaster/2",
		"PACKFLOW_CONCURRENCY":  "8",
		"PACKFLOW_QUEUES":       "publish=6,default=3",
		"PACKFLOW_SECRET_KEY":   key,
		"PACKFLOW_DATA_DIR":     "/var/lib/packflow",
		"PACKFLOW_UPLOAD_LIMIT": "2GiB",
	}
	cfg, err := loadFor(t, devSettings(), env, "-concurrency", "16", "-datacenters", "eu-west, us-east")
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		RedisURL:          env["PACKFLOW_REDIS_URL"],
		Listen:            "127.0.0.1:8080",
		DataDir:           "/var/lib/packflow",
		BlobURL:           "file:///var/lib/packflow/blobs",
		CacheDir:          "/var/lib/packflow/cache",
		CacheKeep:         2,
		SecretKey:         bytes.Repeat([]byte{0xab}, 32),
		Concurrency:       16, // the flag wins over the variable
		Queues:            map[string]int{"publish": 6, "default": 3},
		Datacenters:       []string{"eu-west", "us-east"},
		TaskCheckInterval: 10 * time.Millisecond,
		Retry:             tasks.Backoff{Base: 10 * time.Second, Cap: 10 * time.Minute, Jitter: true},
		UploadLimit:       2 << 30,
		BodyLimit:         1 << 20,
		ShutdownTimeout:   30 * time.Second,
		LogFormat:         "text",

		ExecutionRetention: 30 * 24 * time.Hour,
		StepTimeout:        time.Hour,
		SchedulerPoll:      250 * time.Millisecond,
		SchedulerGrace:     5 * time.Second,

		EventStreamsPerToken: 20,
	}
	if diff := cmp.Diff(want, cfg); diff != "" {
		t.Errorf("config (-want +got):\n%s", diff)
	}
}

func TestHelpAndUsage(t *testing.T) {
	t.Parallel()
	env := mapEnv(map[string]string{"PACKFLOW_ADMIN_TOKEN": "do-not-print-this-token", "PACKFLOW_CONCURRENCY": "7"})
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := run(context.Background(), []string{c.name, "--help"}, env, &stdout, &stderr); code != exitOK {
				t.Fatalf("--help: exit %d; %s", code, stderr.String())
			}
			help := stderr.String()
			if !strings.Contains(help, "Usage: packflow "+c.name) {
				t.Errorf("help lacks a usage line:\n%s", help)
			}
			if strings.Contains(help, "do-not-print-this-token") {
				t.Errorf("help prints the admin token:\n%s", help)
			}
			if c.name == "worker" && !strings.Contains(help, `(default "7")`) || c.name == "worker" && !strings.Contains(help, "$PACKFLOW_CONCURRENCY") {
				t.Errorf("worker help does not show the variable and its value as default:\n%s", help)
			}
		})
	}
	tests := []struct {
		args []string
		env  map[string]string
		code int
		want string
	}{
		{nil, nil, exitUsage, "Commands:"},
		{[]string{"frobnicate"}, nil, exitUsage, `unknown command "frobnicate"`},
		{[]string{"api"}, nil, exitUsage, "PACKFLOW_REDIS_URL (or -redis-url) is required"},
		{[]string{"worker", "-concurrency", "many"}, nil, exitUsage, `-concurrency="many"`},
		{[]string{"api", "extra"}, nil, exitUsage, "unexpected arguments"},
		{[]string{"api", "-no-such-flag"}, nil, exitUsage, "flag provided but not defined"},
		{[]string{"validate"}, nil, exitUsage, "want one PATH"},
		{[]string{"pack", "dir"}, nil, exitUsage, "-o FILE.zip"},
	}
	for _, tc := range tests {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), tc.args, mapEnv(tc.env), &stdout, &stderr)
		if code != tc.code || !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("packflow %v: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.want)
		}
	}
	var stdout bytes.Buffer
	if code := run(context.Background(), []string{"version"}, env, &stdout, io.Discard); code != exitOK || !strings.HasPrefix(stdout.String(), "packflow ") {
		t.Errorf("version: exit %d, %q", code, stdout.String())
	}
}

func TestConfigS3Credentials(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"PACKFLOW_BLOB_URL":         "s3://packs/prod?region=eu-west-1",
		"AWS_ACCESS_KEY_ID":         "AKIDFROMAWS",
		"PACKFLOW_S3_ACCESS_KEY_ID": "AKIDFROMPACKFLOW",
		"AWS_SECRET_ACCESS_KEY":     "aws-secret",
	}
	cfg, err := loadFor(t, apiSettings(), env)
	if err != nil {
		t.Fatal(err)
	}
	want := blob.S3Credentials{AccessKeyID: "AKIDFROMPACKFLOW", SecretAccessKey: "aws-secret"}
	if cfg.S3 != want || cfg.BlobURL != env["PACKFLOW_BLOB_URL"] {
		t.Errorf("S3 %+v, blob %s; want %+v", cfg.S3, cfg.BlobURL, want)
	}
	var help bytes.Buffer
	run(context.Background(), []string{"api", "--help"}, mapEnv(env), io.Discard, &help)
	if strings.Contains(help.String(), "aws-secret") || !strings.Contains(help.String(), "$AWS_SECRET_ACCESS_KEY]") {
		t.Errorf("help shows the secret or hides its variable:\n%s", help.String())
	}
}
