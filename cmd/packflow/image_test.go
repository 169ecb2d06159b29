//go:build unix

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/testenv"
)

// dockerfileStages splits deploy/Dockerfile at its FROM lines.
func dockerfileStages(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(deployDir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	idx := regexp.MustCompile(`(?m)^FROM `).FindAllStringIndex(string(b), -1)
	var stages []string
	for i, loc := range idx {
		end := len(b)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		stages = append(stages, string(b[loc[0]:end]))
	}
	return stages
}

// TestDockerfile checks deploy/Dockerfile against the Makefile and the
// binary: it builds what `make build` builds (statically), runs as a
// non-root user, carries labels and a health check through a command the
// binary has.
func TestDockerfile(t *testing.T) {
	t.Parallel()
	stages := dockerfileStages(t)
	if len(stages) != 2 {
		t.Fatalf("%d stages, want a build stage and the image", len(stages))
	}
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	recipe := regexp.MustCompile(`\$\(GO\) build (.*) -o \$\(BIN\) (\S+)`).FindSubmatch(mk)
	if recipe == nil {
		t.Fatal("Makefile has no build recipe")
	}
	want := "CGO_ENABLED=0 go build " + string(recipe[1]) + " -o /out/packflow " + string(recipe[2])
	if !strings.Contains(stages[0], want) {
		t.Errorf("the build stage does not run the Makefile's build: want %q", want)
	}
	final := stages[1]
	if !strings.HasPrefix(final, "FROM scratch") && !strings.HasPrefix(final, "FROM gcr.io/distroless/") {
		t.Errorf("the image is not built from scratch or distroless: %q", strings.SplitN(final, "\n", 2)[0])
	}
	user := regexp.MustCompile(`(?m)^USER (\S+)`).FindStringSubmatch(final)
	if user == nil || strings.HasPrefix(user[1], "0") || strings.HasPrefix(user[1], "root") {
		t.Errorf("the image does not run as a non-root user: %v", user)
	}
	for _, label := range []string{"org.opencontainers.image.title", "org.opencontainers.image.source", "org.opencontainers.image.version"} {
		if !strings.Contains(final, label+"=") {
			t.Errorf("the image has no %s label", label)
		}
	}
	hc := regexp.MustCompile(`(?s)HEALTHCHECK .*?CMD \["/packflow", "([a-z]+)"`).FindStringSubmatch(final)
	if hc == nil {
		t.Fatal("the image has no HEALTHCHECK running /packflow")
	}
	found := false
	for _, c := range commands() {
		found = found || c.name == hc[1]
	}
	if !found {
		t.Errorf("HEALTHCHECK runs packflow %s, which is not a command", hc[1])
	}
	if !strings.Contains(final, "ca-certificates.crt") && !strings.Contains(final, "/etc/") {
		t.Error("the image has no CA certificates")
	}
}

// TestImage builds the Dockerfile's image stage with buildah (no Docker
// engine and no registry here: the stage is built from a binary compiled
// by the test, laid out as the build stage lays it out) and runs the
// binary in it as the image's user.
func TestImage(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a container image")
	}
	buildah, err := exec.LookPath("buildah")
	if err != nil {
		testenv.Require(t, "buildah is not installed (apt-get install buildah): the image is not tested")
	}
	stages := dockerfileStages(t)
	// The context: what the build stage leaves in /out.
	ctxDir := t.TempDir()
	out := filepath.Join(ctxDir, "out")
	build := exec.CommandContext(t.Context(), "go", "build", "-trimpath", "-o", filepath.Join(out, "packflow"), ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	certs, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Skipf("no CA bundle on this machine to put in the image: %v", err)
	}
	for name, body := range map[string]string{
		"etc/ssl/certs/ca-certificates.crt": string(certs),
		"etc/passwd":                        "packflow:x:65532:65532:packflow:/data:/sbin/nologin\n",
		"etc/group":                         "packflow:x:65532:\n",
	} {
		p := filepath.Join(out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(out, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	final := strings.ReplaceAll(stages[1], "--from=build ", "")
	final = regexp.MustCompile(`(COPY (?:--chown=\S+ )?)/out/`).ReplaceAllString(final, "${1}out/")
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), []byte(final), 0o644); err != nil {
		t.Fatal(err)
	}
	store := t.TempDir()
	// buildahCmd bounds each call, and stops waiting for output held
	// open by a helper process of buildah, so that a stuck build fails
	// instead of hanging the test binary.
	buildahCmd := func(args ...string) ([]byte, error) {
		ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
		defer cancel()
		full := append([]string{"--storage-driver", "vfs", "--root", filepath.Join(store, "root"), "--runroot", filepath.Join(store, "run")}, args...)
		cmd := exec.CommandContext(ctx, buildah, full...)
		cmd.WaitDelay = 5 * time.Second
		return cmd.CombinedOutput()
	}
	bh := func(args ...string) string {
		t.Helper()
		b, err := buildahCmd(args...)
		if err != nil {
			t.Fatalf("buildah %s: %v\n%s", strings.Join(args, " "), err, b)
		}
		return strings.TrimSpace(string(b))
	}
	const tag = "localhost/packflow-image-test:latest"
	bh("bud", "--isolation", "chroot", "--format", "docker", "-q", "-t", tag, "-f", filepath.Join(ctxDir, "Containerfile"), ctxDir)
	var cfg struct {
		Docker struct {
			Config struct {
				User        string            `json:"User"`
				Entrypoint  []string          `json:"Entrypoint"`
				Labels      map[string]string `json:"Labels"`
				Healthcheck *struct {
					Test []string `json:"Test"`
				} `json:"Healthcheck"`
			} `json:"config"`
		} `json:"Docker"`
	}
	if err := json.Unmarshal([]byte(bh("inspect", "--type", "image", tag)), &cfg); err != nil {
		t.Fatal(err)
	}
	c := cfg.Docker.Config
	if c.User != "65532:65532" || c.Healthcheck == nil || c.Labels["org.opencontainers.image.title"] != "packflow" ||
		len(c.Entrypoint) != 1 || c.Entrypoint[0] != "/packflow" {
		t.Errorf("image config: %+v", c)
	}
	ctr := bh("from", "-q", tag)
	defer bh("rm", ctr)
	if v := bh("run", "--isolation", "chroot", ctr, "--", "/packflow", "version"); !strings.HasPrefix(v, "packflow ") {
		t.Errorf("packflow version in the image: %q", v)
	}
	// The health check's command exists and fails when nothing answers.
	b, err := buildahCmd("run", "--isolation", "chroot", ctr, "--", "/packflow", "healthcheck", "-url", "http://127.0.0.1:1/healthz")
	if err == nil || !strings.Contains(string(b), "packflow healthcheck: check http://127.0.0.1:1/healthz") {
		t.Errorf("healthcheck against a closed port: %v\n%s", err, b)
	}
}
