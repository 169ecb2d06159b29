package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/packflow/packflow/api"
	"github.com/packflow/packflow/blob"
	"github.com/packflow/packflow/internal/redisconn"
	"github.com/packflow/packflow/scheduler"
	"github.com/packflow/packflow/store"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
	"github.com/packflow/packflow/worker/cache"
)

// setting is one configuration value, settable by flag and by
// environment variable.
type setting struct {
	flag  string // flag name, without the dash
	env   string // environment variable
	def   string // built-in default; "" for none
	usage string
	// alt is a conventional variable read when env is unset
	// (AWS_ACCESS_KEY_ID for the S3 key, …).
	alt string
	// secret settings never show their value in --help or errors.
	secret bool
}

// settingDefs returns every setting a subcommand can take.
func settingDefs() []setting {
	return []setting{
		{flag: "redis-url", env: "PACKFLOW_REDIS_URL", usage: "Redis for queues and records: redis://[user:pass@]host:port/db, rediss://… (TLS), redis+sentinel://h1:26379,h2:26379/master/db or redis+cluster://h1:6379,h2:6379"},
		{flag: "listen", env: "PACKFLOW_LISTEN", def: api.DefaultListen, usage: "address the API listens on (host:port)"},
		{flag: "data-dir", env: "PACKFLOW_DATA_DIR", def: "./data", usage: "directory for local state (the default blob store, dev's token and key)"},
		{flag: "blob-url", env: "PACKFLOW_BLOB_URL", usage: "package archive store: file:///abs/dir, mem:// or s3://bucket/prefix?region=…[&endpoint=https://host:9000&path_style=true] (default file://<data dir>/blobs)"},
		{flag: "s3-access-key-id", env: "PACKFLOW_S3_ACCESS_KEY_ID", alt: "AWS_ACCESS_KEY_ID", usage: "access key of an s3:// blob store"},
		{flag: "s3-secret-access-key", env: "PACKFLOW_S3_SECRET_ACCESS_KEY", alt: "AWS_SECRET_ACCESS_KEY", secret: true, usage: "secret key of an s3:// blob store"},
		{flag: "s3-session-token", env: "PACKFLOW_S3_SESSION_TOKEN", alt: "AWS_SESSION_TOKEN", secret: true, usage: "session token of temporary S3 credentials"},
		{flag: "secret-key", env: "PACKFLOW_SECRET_KEY", secret: true, usage: "key that encrypts secrets at rest: 32 or more random bytes, hex or base64 (openssl rand -hex 32)"},
		{flag: "admin-token", env: "PACKFLOW_ADMIN_TOKEN", secret: true, usage: "admin token of the root account, registered at start (at least 16 characters)"},
		{flag: "metrics-listen", env: "PACKFLOW_METRICS_LISTEN", usage: "address a worker or a scheduler serves /metrics and /healthz on (host:port; default: none)"},
		{flag: "node-id", env: "PACKFLOW_NODE_ID", usage: "this worker node's ID: letters, digits, '.', '_', '-' (default: host name and a random suffix)"},
		{flag: "cache-dir", env: "PACKFLOW_CACHE_DIR", usage: "a worker's install cache, where package versions are unpacked (default <data dir>/cache)"},
		{flag: "cache-keep", env: "PACKFLOW_CACHE_KEEP", def: strconv.Itoa(cache.DefaultKeep), usage: "inactive versions of each package a worker keeps in its cache besides the active ones"},
		{flag: "concurrency", env: "PACKFLOW_CONCURRENCY", def: strconv.Itoa(worker.DefaultConcurrency), usage: "tasks a worker runs at once"},
		{flag: "queues", env: "PACKFLOW_QUEUES", usage: "queues a worker serves with weights, e.g. publish=6,default=3 (default: publish=6,default=3; its node queue is always added)"},
		{flag: "datacenters", env: "PACKFLOW_DATACENTERS", usage: "comma-separated datacenters whose execution queues (exec:<datacenter>) a worker serves (default: default)"},
		{flag: "task-check-interval", env: "PACKFLOW_TASK_CHECK_INTERVAL", def: worker.DefaultTaskCheckInterval.String(), usage: "how long an idle worker waits between polls of its queues"},
		{flag: "retry-backoff", env: "PACKFLOW_RETRY_BACKOFF", def: tasks.DefaultBackoff().Base.String(), usage: "default delay before a task's first retry; it doubles with each retry"},
		{flag: "retry-backoff-max", env: "PACKFLOW_RETRY_BACKOFF_MAX", def: tasks.DefaultBackoff().Cap.String(), usage: "default longest delay between retries"},
		{flag: "retry-jitter", env: "PACKFLOW_RETRY_JITTER", def: strconv.FormatBool(tasks.DefaultBackoff().Jitter), usage: "draw retry delays at random up to the backoff, so tasks failing together retry apart"},
		{flag: "execution-retention", env: "PACKFLOW_EXECUTION_RETENTION", def: store.DefaultExecutionRetention.String(), usage: "how long executions, their logs and events are kept after their last change"},
		{flag: "step-timeout", env: "PACKFLOW_STEP_TIMEOUT", def: tasks.DefaultStepTimeout.String(), usage: "longest run of a package command whose manifest sets no timeout"},
		{flag: "datacenter-limits", env: "PACKFLOW_DATACENTER_LIMITS", usage: "most servers of a datacenter running steps at once across the fleet, e.g. eu-west=20,default=50 (default: no limit)"},
		{flag: "scheduler-poll-interval", env: "PACKFLOW_SCHEDULER_POLL_INTERVAL", def: scheduler.DefaultPollInterval.String(), usage: "longest wait of a scheduler between two looks at the due schedules: how soon a change to a schedule takes effect"},
		{flag: "scheduler-grace", env: "PACKFLOW_SCHEDULER_GRACE", def: scheduler.DefaultGrace.String(), usage: "how late a scheduler may fire a schedule and still be on time; later fires were missed and follow the schedule's catch_up"},
		{flag: "trust-proxy", env: "PACKFLOW_TRUST_PROXY", def: "false", usage: "take client addresses from X-Forwarded-For set by a load balancer on a private address"},
		{flag: "allow-local", env: "PACKFLOW_ALLOW_LOCAL", def: "false", usage: "allow the local transport (commands run on the worker itself)"},
		{flag: "upload-limit", env: "PACKFLOW_UPLOAD_LIMIT", def: "64MiB", usage: "largest package archive accepted (bytes, or with KiB, MiB, GiB)"},
		{flag: "body-limit", env: "PACKFLOW_BODY_LIMIT", def: "1MiB", usage: "largest request body accepted, uploads aside"},
		{flag: "event-streams-per-token", env: "PACKFLOW_EVENT_STREAMS_PER_TOKEN", def: strconv.Itoa(api.DefaultEventStreamsPerToken), usage: "execution event streams one token may hold open at once on each API process (more answer 429)"},
		{flag: "shutdown-timeout", env: "PACKFLOW_SHUTDOWN_TIMEOUT", def: "30s", usage: "how long a graceful stop may take"},
		{flag: "api-url", env: "PACKFLOW_API_URL", usage: "the packflow API the client commands call (default: the context's, else http://$PACKFLOW_LISTEN, else http://" + api.DefaultListen + ")"},
		{flag: "token", env: "PACKFLOW_TOKEN", secret: true, usage: "API token of the client commands (default: the context's, else <data dir>/admin.token, which packflow dev writes)"},
		{flag: "context", env: "PACKFLOW_CONTEXT", usage: "client context to use, from packflow login (default: the current one)"},
		{flag: "log-level", env: "PACKFLOW_LOG_LEVEL", def: "info", usage: "debug, info, warn or error"},
		{flag: "log-format", env: "PACKFLOW_LOG_FORMAT", def: "text", usage: "text or json"},
	}
}

// Setting names each process takes (dev takes the union).
func apiSettings() []string {
	return []string{"redis-url", "listen", "data-dir", "blob-url", "s3-access-key-id", "s3-secret-access-key",
		"s3-session-token", "secret-key", "admin-token", "trust-proxy", "upload-limit", "body-limit", "event-streams-per-token",
		"execution-retention", "shutdown-timeout", "log-level", "log-format"}
}

func workerSettings() []string {
	return []string{"redis-url", "data-dir", "blob-url", "s3-access-key-id", "s3-secret-access-key",
		"s3-session-token", "secret-key", "metrics-listen", "node-id", "cache-dir", "cache-keep", "concurrency", "queues", "datacenters",
		"task-check-interval", "retry-backoff", "retry-backoff-max", "retry-jitter", "allow-local", "upload-limit",
		"step-timeout", "datacenter-limits", "shutdown-timeout", "log-level", "log-format"}
}

// devSettings is every process setting but metrics-listen: in dev the
// API serves the metrics of both.
func devSettings() []string {
	var out []string
	for _, s := range settingDefs() {
		switch s.flag {
		case "metrics-listen", "api-url", "token", "context":
		default:
			out = append(out, s.flag)
		}
	}
	return out
}

// flagSet is a subcommand's flags, each defaulting to its environment
// variable.
type flagSet struct {
	fs *flag.FlagSet
	// args are the positional arguments, for commands that take flags
	// after them.
	args   []string
	defs   map[string]setting
	vals   map[string]*string
	getenv func(string) string
}

// newFlagSet declares the named settings on a FlagSet for subcommand
// name, with defaults overriding built-in defaults. usage is printed by
// --help above the flags.
func newFlagSet(name, usage string, names []string, defaults map[string]string, getenv func(string) string, stderr io.Writer) *flagSet {
	f := &flagSet{
		fs:     flag.NewFlagSet("packflow "+name, flag.ContinueOnError),
		defs:   map[string]setting{},
		vals:   map[string]*string{},
		getenv: getenv,
	}
	f.fs.SetOutput(stderr)
	all := map[string]setting{}
	for _, s := range settingDefs() {
		all[s.flag] = s
	}
	for _, n := range names {
		s, ok := all[n]
		if !ok {
			panic("packflow: undeclared setting " + n) // a programming error, caught by every test
		}
		def := s.def
		if d, ok := defaults[n]; ok {
			def = d
		}
		env, fromEnv := s.lookup(getenv)
		if fromEnv {
			def = env
		}
		help := s.usage + " [$" + s.env
		if s.alt != "" {
			help += " or $" + s.alt
		}
		help += "]"
		if s.secret {
			def = "" // never print secrets in --help; the variable still applies
			if fromEnv {
				help += " (set)"
			}
		}
		f.defs[n] = s
		f.vals[n] = f.fs.String(n, def, help)
	}
	f.fs.Usage = func() {
		printf(f.fs.Output(), "%s\n\nFlags (each defaults to its environment variable):\n", usage)
		f.fs.PrintDefaults()
	}
	return f
}

// lookup returns the setting's value from the environment: its variable,
// else its conventional alternative.
func (s setting) lookup(getenv func(string) string) (string, bool) {
	if v := getenv(s.env); v != "" {
		return v, true
	}
	if s.alt != "" {
		if v := getenv(s.alt); v != "" {
			return v, true
		}
	}
	return "", false
}

// parse parses args; --help gives flag.ErrHelp.
func (f *flagSet) parse(args []string) error { return f.fs.Parse(args) }

// value returns a setting's value and where it came from, for errors:
// "-flag" when given on the command line, else the variable's name.
func (f *flagSet) value(name string) (string, string, bool) {
	p, ok := f.vals[name]
	if !ok {
		return "", "", false
	}
	src := f.defs[name].env
	f.fs.Visit(func(fl *flag.Flag) {
		if fl.Name == name {
			src = "-" + name
		}
	})
	v := *p
	def := f.defs[name]
	if def.alt != "" && src == def.env && f.getenv(def.env) == "" && f.getenv(def.alt) != "" {
		src = def.alt
	}
	if def.secret && src != "-"+name {
		v, _ = def.lookup(f.getenv)
	}
	return strings.TrimSpace(v), src, true
}

// Config is the checked configuration of a process. Each field documents
// its default; loadConfig fills and checks it.
type Config struct {
	// RedisURL names the Redis. Required except for dev, which embeds one
	// when it is empty.
	RedisURL string
	// Listen is the API's address. Default api.DefaultListen.
	Listen string
	// MetricsListen, when set, is where a worker serves /metrics and
	// /healthz. Default: nowhere (the API serves them in dev).
	MetricsListen string
	// DataDir holds local state, absolute. Default ./data.
	DataDir string
	// BlobURL names the archive store. Default file://<DataDir>/blobs.
	BlobURL string
	// S3 are the credentials of an s3:// BlobURL, required with one.
	S3 blob.S3Credentials
	// SecretKey encrypts secrets at rest; dev generates one when unset.
	SecretKey []byte
	// AdminToken is the root account's admin token; dev generates one when
	// unset.
	AdminToken string
	// NodeID names the worker node. Default worker.DefaultNodeID().
	NodeID string
	// CacheDir is the worker's install cache, absolute. Default
	// <DataDir>/cache.
	CacheDir string
	// CacheKeep is how many inactive versions of each package the cache
	// keeps. Default cache.DefaultKeep.
	CacheKeep int
	// Concurrency is the worker's concurrency. Default
	// worker.DefaultConcurrency.
	Concurrency int
	// Queues maps queue names to weights. Default worker.DefaultQueues().
	Queues map[string]int
	// Datacenters are served by the worker's exec queues. Default none.
	Datacenters []string
	// TaskCheckInterval is the idle worker's poll interval. Default
	// worker.DefaultTaskCheckInterval.
	TaskCheckInterval time.Duration
	// Retry is the default retry delay policy of tasks (executions may set
	// their own). Default tasks.DefaultBackoff(): 10s doubling to 10m,
	// jittered.
	Retry tasks.Backoff
	// TrustProxy takes client addresses from X-Forwarded-For. Default
	// false.
	TrustProxy bool
	// AllowLocal permits the local transport. Default false (dev: true).
	AllowLocal bool
	// UploadLimit caps package archives. Default 64 MiB.
	UploadLimit int64
	// BodyLimit caps other request bodies. Default 1 MiB.
	BodyLimit int64
	// EventStreamsPerToken bounds the execution event streams a token
	// holds open on one API process. Default
	// api.DefaultEventStreamsPerToken.
	EventStreamsPerToken int
	// ShutdownTimeout bounds a graceful stop. Default 30s.
	ShutdownTimeout time.Duration
	// ExecutionRetention is how long executions are kept after their last
	// change. Default store.DefaultExecutionRetention (30 days).
	ExecutionRetention time.Duration
	// StepTimeout bounds a package command whose manifest sets no timeout.
	// Default tasks.DefaultStepTimeout (1h).
	StepTimeout time.Duration
	// DatacenterLimits caps the servers of a datacenter running steps at
	// once, across the fleet. Default none.
	DatacenterLimits map[string]int
	// SchedulerPoll is a scheduler's longest wait between two looks at
	// the due schedules. Default scheduler.DefaultPollInterval.
	SchedulerPoll time.Duration
	// SchedulerGrace is how late a fire may be and still be on time.
	// Default scheduler.DefaultGrace.
	SchedulerGrace time.Duration
	// LogLevel and LogFormat ("text" or "json") shape the logs.
	LogLevel  slog.Level
	LogFormat string
}

var (
	nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	sizePattern   = regexp.MustCompile(`^(\d+)\s*([KMGT]I?B?|B)?$`)
)

// loadConfig reads every setting f declares into a Config, reporting each
// bad value (naming its flag or variable) in one error.
func loadConfig(f *flagSet) (Config, error) {
	var cfg Config
	var errs []error
	bad := func(src, v, why string) {
		errs = append(errs, fmt.Errorf("%s=%q: %s", src, v, why))
	}
	get := func(name string) (string, string, bool) { return f.value(name) }

	if v, src, ok := get("redis-url"); ok && v != "" {
		if _, err := redisconn.Parse(v); err != nil {
			red := redisconn.Redacted(v)
			errs = append(errs, fmt.Errorf("%s=%q: %s", src, red, strings.ReplaceAll(err.Error(), v, red)))
		} else {
			cfg.RedisURL = v
		}
	}
	if v, src, ok := get("listen"); ok {
		if err := checkListen(v); err != nil {
			bad(src, v, err.Error())
		}
		cfg.Listen = v
	}
	if v, src, ok := get("metrics-listen"); ok && v != "" {
		if err := checkListen(v); err != nil {
			bad(src, v, err.Error())
		}
		cfg.MetricsListen = v
	}
	if v, src, ok := get("data-dir"); ok {
		abs, err := filepath.Abs(v)
		if v == "" || err != nil {
			bad(src, v, "must name a directory")
		}
		cfg.DataDir = abs
	}
	if v, src, ok := get("blob-url"); ok {
		if v == "" {
			v = "file://" + filepath.ToSlash(filepath.Join(cfg.DataDir, "blobs"))
		}
		if err := checkBlobURL(v); err != nil {
			bad(src, v, err.Error())
		}
		cfg.BlobURL = v
	}
	if v, _, ok := get("s3-access-key-id"); ok {
		cfg.S3.AccessKeyID = v
	}
	if v, _, ok := get("s3-secret-access-key"); ok {
		cfg.S3.SecretAccessKey = v
	}
	if v, _, ok := get("s3-session-token"); ok {
		cfg.S3.SessionToken = v
	}
	if strings.HasPrefix(cfg.BlobURL, "s3://") && (cfg.S3.AccessKeyID == "" || cfg.S3.SecretAccessKey == "") {
		errs = append(errs, errors.New("PACKFLOW_BLOB_URL is an s3:// store: set PACKFLOW_S3_ACCESS_KEY_ID and PACKFLOW_S3_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"))
	}
	if v, src, ok := get("secret-key"); ok && v != "" {
		key, err := parseSecretKey(v)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", src, err)) // never echo the key
		}
		cfg.SecretKey = key
	}
	if v, src, ok := get("admin-token"); ok && v != "" {
		if len(v) < 16 || strings.ContainsFunc(v, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
			errs = append(errs, fmt.Errorf("%s: must be at least 16 characters without spaces or control characters", src))
		}
		cfg.AdminToken = v
	}
	if v, src, ok := get("node-id"); ok && v != "" {
		if !nodeIDPattern.MatchString(v) {
			bad(src, v, "use 1 to 64 letters, digits, '.', '_' or '-'")
		}
		cfg.NodeID = v
	}
	if v, src, ok := get("cache-dir"); ok {
		if v == "" {
			v = filepath.Join(cfg.DataDir, "cache")
		}
		abs, err := filepath.Abs(v)
		if err != nil {
			bad(src, v, "must name a directory")
		}
		cfg.CacheDir = abs
	}
	if v, src, ok := get("cache-keep"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1000 {
			bad(src, v, "must be a whole number from 0 to 1000")
		}
		cfg.CacheKeep = n
	}
	if v, src, ok := get("concurrency"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			bad(src, v, "must be a whole number from 1 to 10000")
		}
		cfg.Concurrency = n
	}
	if v, src, ok := get("queues"); ok && v != "" {
		q, err := worker.ParseQueues(v)
		if err != nil {
			bad(src, v, strings.TrimPrefix(err.Error(), "worker: "))
		}
		cfg.Queues = q
	}
	if v, src, ok := get("datacenters"); ok && v != "" {
		for dc := range strings.SplitSeq(v, ",") {
			dc = strings.TrimSpace(dc)
			if !nodeIDPattern.MatchString(dc) {
				bad(src, v, fmt.Sprintf("datacenter %q: use 1 to 64 letters, digits, '.', '_' or '-', comma-separated", dc))
				break
			}
			cfg.Datacenters = append(cfg.Datacenters, dc)
		}
	}
	if v, src, ok := get("execution-retention"); ok {
		cfg.ExecutionRetention = parseDuration(v, src, bad)
	}
	if v, src, ok := get("scheduler-poll-interval"); ok {
		cfg.SchedulerPoll = parseDuration(v, src, bad)
	}
	if v, src, ok := get("scheduler-grace"); ok {
		cfg.SchedulerGrace = parseDuration(v, src, bad)
	}
	if v, src, ok := get("step-timeout"); ok {
		cfg.StepTimeout = parseDuration(v, src, bad)
	}
	if v, src, ok := get("datacenter-limits"); ok && v != "" {
		q, err := worker.ParseQueues(v)
		if err != nil {
			bad(src, v, "use datacenter=limit pairs separated by commas, each limit a positive whole number")
		}
		cfg.DatacenterLimits = q
	}
	if v, src, ok := get("task-check-interval"); ok {
		cfg.TaskCheckInterval = parseDuration(v, src, bad)
	}
	if v, src, ok := get("shutdown-timeout"); ok {
		cfg.ShutdownTimeout = parseDuration(v, src, bad)
	}
	if v, src, ok := get("allow-local"); ok {
		cfg.AllowLocal = parseBool(v, src, bad)
	}
	if v, src, ok := get("retry-backoff"); ok {
		cfg.Retry.Base = parseDuration(v, src, bad)
	}
	if v, src, ok := get("retry-backoff-max"); ok {
		cfg.Retry.Cap = parseDuration(v, src, bad)
		if cfg.Retry.Base > 0 && cfg.Retry.Cap > 0 && cfg.Retry.Cap < cfg.Retry.Base {
			bad(src, v, fmt.Sprintf("must not be below the retry backoff (%v)", cfg.Retry.Base))
		}
	}
	if v, src, ok := get("retry-jitter"); ok {
		cfg.Retry.Jitter = parseBool(v, src, bad)
	}
	if v, src, ok := get("trust-proxy"); ok {
		cfg.TrustProxy = parseBool(v, src, bad)
	}
	if v, src, ok := get("upload-limit"); ok {
		cfg.UploadLimit = parseSize(v, src, bad)
	}
	if v, src, ok := get("body-limit"); ok {
		cfg.BodyLimit = parseSize(v, src, bad)
	}
	if v, src, ok := get("event-streams-per-token"); ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			bad(src, v, "must be a whole number from 1 to 100000")
		}
		cfg.EventStreamsPerToken = n
	}
	if v, src, ok := get("log-level"); ok {
		if err := cfg.LogLevel.UnmarshalText([]byte(v)); err != nil || !isLevelName(v) {
			bad(src, v, "must be debug, info, warn or error")
		}
	}
	if v, src, ok := get("log-format"); ok {
		cfg.LogFormat = strings.ToLower(v)
		if cfg.LogFormat != "text" && cfg.LogFormat != "json" {
			bad(src, v, "must be text or json")
		}
	}
	return cfg, errors.Join(errs...)
}

// isLevelName accepts only the four level names (slog also takes
// offsets such as "info+2", which would only confuse a config file).
func isLevelName(v string) bool {
	switch strings.ToLower(v) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}

func checkListen(v string) error {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return errors.New("must be host:port, e.g. 127.0.0.1:8080 or :8080")
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q must be a number from 0 to 65535", port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("host %q is not a host name or address", host)
	}
	return nil
}

func checkBlobURL(v string) error {
	switch {
	case v == "mem://":
		return nil
	case strings.HasPrefix(v, "s3://"):
		u, err := url.Parse(v)
		if err != nil || u.Host == "" {
			return errors.New("an s3:// URL names a bucket: s3://bucket/prefix?region=eu-west-1")
		}
		if ep := u.Query().Get("endpoint"); ep != "" {
			e, err := url.Parse(ep)
			if err != nil || (e.Scheme != "http" && e.Scheme != "https") || e.Host == "" {
				return fmt.Errorf("endpoint %q must be an http(s) URL", ep)
			}
		}
		return nil
	case strings.HasPrefix(v, "file://"):
		if !filepath.IsAbs(filepath.FromSlash(strings.TrimPrefix(v, "file://"))) {
			return errors.New("a file:// URL needs an absolute path: file:///var/lib/packflow/blobs")
		}
		return nil
	}
	return errors.New("must be file:///abs/dir, mem:// or s3://bucket/prefix")
}

func parseSecretKey(v string) ([]byte, error) {
	var key []byte
	if b, err := hex.DecodeString(v); err == nil {
		key = b
	} else if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		key = b
	} else if b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(v, "=")); err == nil {
		key = b
	} else {
		return nil, errors.New("must be hex or base64 (openssl rand -hex 32)")
	}
	if len(key) < 32 {
		return nil, fmt.Errorf("must hold at least 32 random bytes, has %d (openssl rand -hex 32)", len(key))
	}
	return key, nil
}

func parseBool(v, src string, bad func(src, v, why string)) bool {
	b, err := strconv.ParseBool(v)
	if err != nil {
		bad(src, v, "must be true or false")
	}
	return b
}

func parseDuration(v, src string, bad func(src, v, why string)) time.Duration {
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		bad(src, v, "must be a positive duration such as 500ms, 10s or 1m")
	}
	return d
}

// parseSize reads a byte count: 1048576, 512KiB, 1MiB, 2GiB (K, M, G and
// T are binary multiples with or without "iB").
func parseSize(v, src string, bad func(src, v, why string)) int64 {
	m := sizePattern.FindStringSubmatch(strings.ToUpper(v))
	if m == nil {
		bad(src, v, "must be a size such as 1048576, 512KiB, 1MiB or 2GiB")
		return 0
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	shift := map[byte]uint{'K': 10, 'M': 20, 'G': 30, 'T': 40}
	var s uint
	if m[2] != "" && m[2] != "B" {
		s = shift[m[2][0]]
	}
	if err != nil || n <= 0 || n > (1<<62)>>s {
		bad(src, v, "must be a positive size below 4 EiB")
		return 0
	}
	return n << s
}
