//go:build unix

package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"sigs.k8s.io/yaml"

	"github.com/packflow/packflow/internal/testenv"
	"github.com/packflow/packflow/tasks"
	"github.com/packflow/packflow/worker"
)

const deployDir = "../../deploy"

// kustomization mirrors the fields of kustomize's Kustomization that
// deploy/k8s uses; strict decoding refuses any other.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources       []string `json:"resources"`
	SecretGenerator []struct {
		Name string   `json:"name"`
		Envs []string `json:"envs"`
	} `json:"secretGenerator"`
	Images []struct {
		Name    string `json:"name"`
		NewName string `json:"newName"`
		NewTag  string `json:"newTag"`
	} `json:"images"`
}

// scaledObject mirrors KEDA's ScaledObject (keda.sh/v1alpha1) as far as
// deploy/k8s/keda.yaml uses it.
type scaledObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Metadata   struct {
		Name string `json:"name"`
	} `json:"metadata"`
	Spec struct {
		ScaleTargetRef struct {
			Name string `json:"name"`
		} `json:"scaleTargetRef"`
		MinReplicaCount *int32 `json:"minReplicaCount"`
		MaxReplicaCount *int32 `json:"maxReplicaCount"`
		PollingInterval *int32 `json:"pollingInterval"`
		CooldownPeriod  *int32 `json:"cooldownPeriod"`
		Advanced        *struct {
			HorizontalPodAutoscalerConfig struct {
				Behavior map[string]any `json:"behavior"`
			} `json:"horizontalPodAutoscalerConfig"`
		} `json:"advanced"`
		Triggers []struct {
			Type     string            `json:"type"`
			Metadata map[string]string `json:"metadata"`
		} `json:"triggers"`
	} `json:"spec"`
}

// manifests is everything deploy/k8s defines, decoded strictly.
type manifests struct {
	kust         kustomization
	configMaps   map[string]corev1.ConfigMap
	deployments  map[string]appsv1.Deployment
	services     map[string]corev1.Service
	pdbs         []policyv1.PodDisruptionBudget
	scaled       []scaledObject
	secretEnvs   map[string]string // keys of the secret generator's example env file
	statefulSets map[string]appsv1.StatefulSet
}

// strict decodes YAML doc into out, refusing unknown and duplicate fields.
func strict(t *testing.T, where string, doc []byte, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, out); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	dir := filepath.Join(deployDir, "k8s")
	m := manifests{configMaps: map[string]corev1.ConfigMap{}, deployments: map[string]appsv1.Deployment{},
		services: map[string]corev1.Service{}, statefulSets: map[string]appsv1.StatefulSet{}}
	b, err := os.ReadFile(filepath.Join(dir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	strict(t, "kustomization.yaml", b, &m.kust)
	files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range files {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(m.kust.Resources, base) {
			t.Errorf("%s is not listed in kustomization.yaml's resources", base)
		}
	}
	for _, res := range m.kust.Resources {
		b, err := os.ReadFile(filepath.Join(dir, res))
		if err != nil {
			t.Fatalf("kustomization resource: %v", err)
		}
		for i, doc := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
			if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(doc, "")) == "" {
				continue
			}
			where := fmt.Sprintf("%s document %d", res, i+1)
			var head struct {
				APIVersion string `json:"apiVersion"`
				Kind       string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			switch head.APIVersion + " " + head.Kind {
			case "v1 Namespace":
				var ns corev1.Namespace
				strict(t, where, []byte(doc), &ns)
			case "v1 ConfigMap":
				var cm corev1.ConfigMap
				strict(t, where, []byte(doc), &cm)
				m.configMaps[cm.Name] = cm
			case "v1 Service":
				var s corev1.Service
				strict(t, where, []byte(doc), &s)
				m.services[s.Name] = s
			case "apps/v1 Deployment":
				var d appsv1.Deployment
				strict(t, where, []byte(doc), &d)
				m.deployments[d.Name] = d
			case "apps/v1 StatefulSet":
				var s appsv1.StatefulSet
				strict(t, where, []byte(doc), &s)
				m.statefulSets[s.Name] = s
			case "policy/v1 PodDisruptionBudget":
				var p policyv1.PodDisruptionBudget
				strict(t, where, []byte(doc), &p)
				m.pdbs = append(m.pdbs, p)
			case "keda.sh/v1alpha1 ScaledObject":
				var so scaledObject
				strict(t, where, []byte(doc), &so)
				m.scaled = append(m.scaled, so)
			default:
				t.Fatalf("%s: no decoder for %s %s: add one to this test", where, head.APIVersion, head.Kind)
			}
		}
	}
	m.secretEnvs = map[string]string{}
	for _, g := range m.kust.SecretGenerator {
		for _, env := range g.Envs {
			// The env file itself is not committed; its example is.
			for k, v := range readEnvFile(t, filepath.Join(dir, env+".example")) {
				m.secretEnvs[k] = v
			}
		}
	}
	return m
}

// readEnvFile reads KEY=value lines, skipping comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=value", path, line)
		}
		out[k] = v
	}
	return out
}

// processSettings maps each process to the variables it reads.
func processSettings() map[string]map[string]bool {
	envOf := map[string]string{}
	for _, s := range settingDefs() {
		envOf[s.flag] = s.env
	}
	out := map[string]map[string]bool{}
	for proc, flags := range map[string][]string{"api": apiSettings(), "worker": workerSettings(), "scheduler": schedulerSettings()} {
		out[proc] = map[string]bool{}
		for _, f := range flags {
			out[proc][envOf[f]] = true
		}
	}
	return out
}

// containerEnv is what a container sees: its ConfigMaps, then its own env.
func containerEnv(t *testing.T, m manifests, c corev1.Container) map[string]string {
	t.Helper()
	env := map[string]string{}
	for _, from := range c.EnvFrom {
		switch {
		case from.ConfigMapRef != nil:
			cm, ok := m.configMaps[from.ConfigMapRef.Name]
			if !ok {
				t.Errorf("container %s reads ConfigMap %q, which deploy/k8s does not define", c.Name, from.ConfigMapRef.Name)
			}
			for k, v := range cm.Data {
				env[k] = v
			}
		case from.SecretRef != nil:
			for k, v := range m.secretEnvs {
				env[k] = v
			}
		}
	}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	return env
}

// TestKubernetesManifests decodes every manifest of deploy/k8s strictly
// and checks it against the binary: each Deployment runs a process of the
// Procfile, sets only variables that process reads, probes routes it
// serves on the port it listens on, requests resources, outlives its
// shutdown timeout, has a PodDisruptionBudget; KEDA scales the workers on
// the lists of the queues they really serve.
func TestKubernetesManifests(t *testing.T) {
	t.Parallel()
	m := loadManifests(t)
	settings := processSettings()
	known := map[string]bool{}
	for _, s := range settingDefs() {
		known[s.env] = true
	}
	for _, cm := range m.configMaps {
		for k := range cm.Data {
			if !known[k] {
				t.Errorf("ConfigMap %s sets %s, which no process reads", cm.Name, k)
			}
		}
	}
	for k := range m.secretEnvs {
		if !known[k] {
			t.Errorf("the Secret sets %s, which no process reads", k)
		}
	}
	procfile := readProcfile(t)
	for _, proc := range []string{"api", "worker", "scheduler"} {
		d, ok := m.deployments[proc]
		if !ok {
			t.Errorf("no Deployment %q", proc)
			continue
		}
		spec := d.Spec.Template.Spec
		if len(spec.Containers) != 1 {
			t.Fatalf("Deployment %s: %d containers, want 1", proc, len(spec.Containers))
		}
		c := spec.Containers[0]
		if want := procfile[proc]; !slices.Equal(c.Args, want) {
			t.Errorf("Deployment %s runs %v, the Procfile %v", proc, c.Args, want)
		}
		env := containerEnv(t, m, c)
		for _, e := range c.Env {
			if !settings[proc][e.Name] {
				t.Errorf("Deployment %s sets %s, which packflow %s does not read", proc, e.Name, proc)
			}
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() {
			t.Errorf("Deployment %s requests no cpu or memory", proc)
		}
		shutdown := 30 * time.Second
		if v, ok := env["PACKFLOW_SHUTDOWN_TIMEOUT"]; ok {
			var err error
			if shutdown, err = time.ParseDuration(v); err != nil {
				t.Fatalf("PACKFLOW_SHUTDOWN_TIMEOUT %q: %v", v, err)
			}
		}
		if g := spec.TerminationGracePeriodSeconds; g == nil || time.Duration(*g)*time.Second <= shutdown {
			t.Errorf("Deployment %s: terminationGracePeriodSeconds %v is not above PACKFLOW_SHUTDOWN_TIMEOUT %v", proc, g, shutdown)
		}
		listenVar := "PACKFLOW_METRICS_LISTEN"
		if proc == "api" {
			listenVar = "PACKFLOW_LISTEN"
		}
		_, listenPort, err := net.SplitHostPort(env[listenVar])
		if err != nil {
			t.Errorf("Deployment %s: %s=%q: %v", proc, listenVar, env[listenVar], err)
		}
		for kind, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
			want := map[string]string{"readiness": "/readyz", "liveness": "/healthz"}[kind]
			if p == nil || p.HTTPGet == nil {
				t.Errorf("Deployment %s has no HTTP %s probe", proc, kind)
				continue
			}
			if p.HTTPGet.Path != want {
				t.Errorf("Deployment %s: %s probe on %s, want %s", proc, kind, p.HTTPGet.Path, want)
			}
			port := p.HTTPGet.Port.String()
			for _, cp := range c.Ports {
				if cp.Name == port {
					port = strconv.Itoa(int(cp.ContainerPort))
				}
			}
			if port != listenPort {
				t.Errorf("Deployment %s: %s probe on port %s, but the process listens on %s (%s)", proc, kind, port, listenPort, listenVar)
			}
		}
		covered := false
		for _, pdb := range m.pdbs {
			if pdb.Spec.Selector != nil && labelsMatch(pdb.Spec.Selector.MatchLabels, d.Spec.Template.Labels) {
				covered = true
			}
		}
		if !covered {
			t.Errorf("no PodDisruptionBudget selects Deployment %s", proc)
		}
		t.Run("probes/"+proc, func(t *testing.T) { probeProcess(t, proc, env, c) })
	}
	if svc, ok := m.services["api"]; !ok || !labelsMatch(svc.Spec.Selector, m.deployments["api"].Spec.Template.Labels) {
		t.Error("no Service selects the api pods")
	}
	checkScaledObject(t, m)
}

// labelsMatch reports whether every label of sel is in labels.
func labelsMatch(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

// probeProcess runs proc in-process with the container's environment (on
// an embedded Redis, loopback addresses and temporary directories) and
// fetches both probe paths: the routes must be served.
func probeProcess(t *testing.T, proc string, env map[string]string, c corev1.Container) {
	mr, _ := testenv.Miniredis(t)
	run := map[string]string{}
	for k, v := range env {
		run[k] = v
	}
	run["PACKFLOW_REDIS_URL"] = "redis://" + mr.Addr() + "/0"
	run["PACKFLOW_BLOB_URL"] = "file://" + filepath.Join(t.TempDir(), "blobs")
	run["PACKFLOW_DATA_DIR"] = t.TempDir()
	run["PACKFLOW_ADMIN_TOKEN"] = "deploy-test-admin-token"
	run["PACKFLOW_SECRET_KEY"] = strings.Repeat("ab", 32)
	run["PACKFLOW_LOG_LEVEL"] = "warn"
	if _, ok := run["PACKFLOW_CACHE_DIR"]; ok {
		run["PACKFLOW_CACHE_DIR"] = t.TempDir()
	}
	listenVar := "PACKFLOW_METRICS_LISTEN"
	if proc == "api" {
		listenVar = "PACKFLOW_LISTEN"
	}
	addr := freeAddr(t)
	run[listenVar] = addr
	for k := range run {
		if !processSettings()[proc][k] {
			delete(run, k)
		}
	}
	stop := runInBackground(t, run, c.Args...)
	defer stop()
	waitUp(t, "http://"+addr+c.ReadinessProbe.HTTPGet.Path)
	waitUp(t, "http://"+addr+c.LivenessProbe.HTTPGet.Path)
}

// asynqList matches the list names KEDA reads.
var asynqList = regexp.MustCompile(`^asynq:\{([^{}]+)\}:(pending|active)$`)

// checkScaledObject checks the KEDA triggers against the queues the
// worker Deployment serves, and the list names against asynq's own.
func checkScaledObject(t *testing.T, m manifests) {
	t.Helper()
	if len(m.scaled) != 1 {
		t.Fatalf("%d ScaledObjects, want 1 (the workers)", len(m.scaled))
	}
	so := m.scaled[0]
	w, ok := m.deployments[so.Spec.ScaleTargetRef.Name]
	if !ok || w.Spec.Template.Spec.Containers[0].Args[0] != "worker" {
		t.Fatalf("ScaledObject scales %q, not the worker Deployment", so.Spec.ScaleTargetRef.Name)
	}
	env := containerEnv(t, m, w.Spec.Template.Spec.Containers[0])
	queues, err := worker.ParseQueues(env["PACKFLOW_QUEUES"])
	if err != nil {
		t.Fatal(err)
	}
	if len(queues) == 0 {
		queues = worker.DefaultQueues()
	}
	for dc := range strings.SplitSeq(env["PACKFLOW_DATACENTERS"], ",") {
		if dc = strings.TrimSpace(dc); dc != "" {
			queues[tasks.ExecQueue(dc)] = 1
		}
	}
	seen := map[string]bool{}
	for _, tr := range so.Spec.Triggers {
		if tr.Type != "redis" {
			t.Errorf("trigger type %q, want redis", tr.Type)
			continue
		}
		list := tr.Metadata["listName"]
		mm := asynqList.FindStringSubmatch(list)
		if mm == nil {
			t.Errorf("trigger on %q, which is not an asynq pending or active list", list)
			continue
		}
		if _, ok := queues[mm[1]]; !ok {
			t.Errorf("trigger on queue %q, which the workers do not serve (%v)", mm[1], queues)
		}
		if n, err := strconv.Atoi(tr.Metadata["listLength"]); err != nil || n <= 0 {
			t.Errorf("trigger on %s: listLength %q", list, tr.Metadata["listLength"])
		}
		if tr.Metadata["address"] == "" {
			t.Errorf("trigger on %s names no Redis address", list)
		}
		seen[list] = true
	}
	// Every queue has both triggers, and the names are asynq's: a task
	// enqueued to each queue lands in the pending list named here.
	mr, rdb := testenv.Miniredis(t)
	client := asynq.NewClientFromRedisClient(rdb)
	defer client.Close()
	for q := range queues {
		for _, kind := range []string{"pending", "active"} {
			if name := "asynq:{" + q + "}:" + kind; !seen[name] {
				t.Errorf("no trigger on %s", name)
			}
		}
		if _, err := client.EnqueueContext(context.Background(), asynq.NewTask("deploy:test", nil), asynq.Queue(q)); err != nil {
			t.Fatal(err)
		}
		if n, err := rdb.LLen(context.Background(), "asynq:{"+q+"}:pending").Result(); err != nil || n != 1 {
			t.Errorf("asynq did not put a task of queue %q in asynq:{%s}:pending (%d, %v): the KEDA list names are wrong", q, q, n, err)
		}
	}
	_ = mr
}

// readProcfile maps each Procfile process to its packflow arguments.
func readProcfile(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../Procfile")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(string(b)), "\n") {
		name, cmd, ok := strings.Cut(line, ":")
		f := strings.Fields(cmd)
		if !ok || len(f) < 2 || f[0] != "packflow" {
			t.Fatalf("Procfile line %q", line)
		}
		out[strings.TrimSpace(name)] = f[1:]
	}
	return out
}

// compose mirrors the parts of deploy/compose.yaml this test checks.
type compose struct {
	Services map[string]struct {
		Image           string            `json:"image"`
		Command         []string          `json:"command"`
		Environment     map[string]string `json:"environment"`
		EnvFile         []string          `json:"env_file"`
		StopGracePeriod string            `json:"stop_grace_period"`
		Healthcheck     *struct {
			Test []string `json:"test"`
		} `json:"healthcheck"`
		Volumes []string `json:"volumes"`
	} `json:"services"`
	Volumes map[string]any `json:"volumes"`
}

// TestCompose checks deploy/compose.yaml against the Procfile and the
// settings: one service per process, running it, with variables it reads;
// Redis durable and never evicting; secrets only from the uncommitted
// env file.
func TestCompose(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile(filepath.Join(deployDir, "compose.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c compose
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	settings := processSettings()
	secret := map[string]bool{}
	for _, s := range settingDefs() {
		if s.secret {
			secret[s.env] = true
		}
	}
	procfile := readProcfile(t)
	for proc, args := range procfile {
		s, ok := c.Services[proc]
		if !ok {
			t.Errorf("compose.yaml has no service %q (Procfile: %v)", proc, args)
			continue
		}
		if !slices.Equal(s.Command, args) {
			t.Errorf("service %s runs %v, the Procfile %v", proc, s.Command, args)
		}
		for k := range s.Environment {
			if !settings[proc][k] {
				t.Errorf("service %s sets %s, which packflow %s does not read", proc, k, proc)
			}
			if secret[k] {
				t.Errorf("service %s sets the secret %s in compose.yaml: put it in .env", proc, k)
			}
		}
		if !slices.Equal(s.EnvFile, []string{".env"}) {
			t.Errorf("service %s reads env files %v, want [.env]", proc, s.EnvFile)
		}
		if g, err := time.ParseDuration(s.StopGracePeriod); err != nil || g <= mustDuration(t, s.Environment["PACKFLOW_SHUTDOWN_TIMEOUT"]) {
			t.Errorf("service %s: stop_grace_period %q is not above PACKFLOW_SHUTDOWN_TIMEOUT", proc, s.StopGracePeriod)
		}
		if proc != "api" && (s.Healthcheck == nil || !strings.Contains(strings.Join(s.Healthcheck.Test, " "),
			strings.TrimPrefix(s.Environment["PACKFLOW_METRICS_LISTEN"], "0.0.0.0"))) {
			t.Errorf("service %s: health check %+v does not probe its PACKFLOW_METRICS_LISTEN port", proc, s.Healthcheck)
		}
	}
	for name, s := range c.Services {
		if s.Image == c.Services["api"].Image && procfile[name] == nil {
			t.Errorf("service %s runs packflow but is not in the Procfile", name)
		}
	}
	redis := strings.Join(c.Services["redis"].Command, " ")
	for _, want := range []string{"--appendonly yes", "--appendfsync everysec", "--maxmemory-policy noeviction"} {
		if !strings.Contains(redis, want) {
			t.Errorf("redis runs %q, without %s", redis, want)
		}
	}
	known := map[string]bool{}
	for _, s := range settingDefs() {
		known[s.env] = true
	}
	for k := range readEnvFile(t, filepath.Join(deployDir, ".env.example")) {
		if !known[k] {
			t.Errorf(".env.example sets %s, which no process reads", k)
		}
	}
	ignore, err := os.ReadFile(filepath.Join(deployDir, ".gitignore"))
	if err != nil || !bytes.Contains(ignore, []byte("\n.env\n")) {
		t.Errorf("deploy/.gitignore must keep .env out of git: %v", err)
	}
}

func mustDuration(t *testing.T, s string) time.Duration {
	t.Helper()
	if s == "" {
		return 30 * time.Second
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}
