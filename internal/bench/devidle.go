package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// DevIdleSuite measures packflow dev at rest: the CPU it and its Redis use
// while nothing is queued, and how soon a task queued on it then runs
// (POST /schedules/{id}/run-now of an install-sync until the task is
// completed). The baseline is the same dev polling every 10 ms, the
// worker's default.
func DevIdleSuite() Suite {
	return Suite{Name: "dev-idle", Run: runDevIdle}
}

// devBannerRe is the first line packflow dev prints.
var devBannerRe = regexp.MustCompile(`^packflow dev: API at (http://\S+), admin token in \S+: (\S+)$`)

type devIdleFigures struct {
	cpuPercent      float64
	pickupP50, pMax time.Duration
}

func runDevIdle(ctx context.Context, env *Env) ([]Result, error) {
	if runtime.GOOS != "linux" {
		return nil, errors.New("dev-idle reads /proc: Linux only")
	}
	bin := filepath.Join(env.Dir, "packflow-dev")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/packflow/packflow/cmd/packflow")
	if out, err := build.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("build packflow: %w\n%s", err, out)
	}
	window, samples := 10*time.Second, 20
	if env.Quick {
		window, samples = 2*time.Second, 3
	}
	dev, err := measureDev(ctx, env, bin, "", window, samples)
	if err != nil {
		return nil, err
	}
	base, err := measureDev(ctx, env, bin, "10ms", window, samples)
	if err != nil {
		return nil, err
	}
	cpu := NewResult("dev idle CPU (dev + its redis-server)", "% of a core", dev.cpuPercent, "dev polling every 10ms", base.cpuPercent, Lower)
	cpu.Note = fmt.Sprintf("goal under 5%%; idle pickup p50 %v, max %v (baseline p50 %v, max %v)",
		dev.pickupP50.Round(time.Millisecond), dev.pMax.Round(time.Millisecond),
		base.pickupP50.Round(time.Millisecond), base.pMax.Round(time.Millisecond))
	pick := NewResult("dev idle pickup p50 (run-now → completed)", "ms", ms(dev.pickupP50), "dev polling every 10ms", ms(base.pickupP50), Lower)
	pick.Note = fmt.Sprintf("max %v vs %v; the default polls every 200ms", dev.pMax.Round(time.Millisecond), base.pMax.Round(time.Millisecond))
	return []Result{cpu, pick}, nil
}

// measureDev starts packflow dev (interval "" for its default), lets it
// settle, measures its idle CPU over window, then the pickup of samples
// tasks queued one at a time, and stops it.
func measureDev(ctx context.Context, env *Env, bin, interval string, window time.Duration, samples int) (devIdleFigures, error) {
	var fig devIdleFigures
	home, err := os.MkdirTemp(env.Dir, "dev-")
	if err != nil {
		return fig, err
	}
	cmd := exec.Command(bin, "dev") //nolint:noctx // stopped with SIGTERM below
	cmd.Env = append(os.Environ(), "HOME="+home, "XDG_CONFIG_HOME="+home, "PACKFLOW_DATA_DIR="+filepath.Join(home, "data"),
		"PACKFLOW_LISTEN=127.0.0.1:0", "PACKFLOW_LOG_LEVEL=warn", "PACKFLOW_REDIS_URL=")
	if interval != "" {
		cmd.Env = append(cmd.Env, "PACKFLOW_TASK_CHECK_INTERVAL="+interval)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fig, err
	}
	if err := cmd.Start(); err != nil {
		return fig, fmt.Errorf("start dev: %w", err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	sc := bufio.NewScanner(stdout)
	if !sc.Scan() {
		return fig, errors.New("dev exited before it was ready")
	}
	m := devBannerRe.FindStringSubmatch(sc.Text())
	if m == nil {
		return fig, fmt.Errorf("unexpected first line of dev: %q", sc.Text())
	}
	url, token := m[1], m[2]
	go func() { _, _ = bufio.NewReader(stdout).WriteTo(discard{}) }()

	if err := sleepCtx(ctx, 3*time.Second); err != nil { // start-up work settles
		return fig, err
	}
	t0, err := treeTicks(cmd.Process.Pid)
	if err != nil {
		return fig, err
	}
	if err := sleepCtx(ctx, window); err != nil {
		return fig, err
	}
	t1, err := treeTicks(cmd.Process.Pid)
	if err != nil {
		return fig, err
	}
	fig.cpuPercent = float64(t1-t0) / 100 / window.Seconds() * 100 // USER_HZ is 100 on Linux

	c := devAPI{url: url, token: token}
	var sched struct {
		ID string `json:"id"`
	}
	if err := c.do(ctx, http.MethodPost, "/api/v1/schedules", map[string]any{"name": "bench", "every": "24h",
		"action": map[string]any{"kind": "install-sync"}, "enabled": true}, &sched); err != nil {
		return fig, err
	}
	var lat []time.Duration
	for range samples {
		if err := sleepCtx(ctx, 500*time.Millisecond); err != nil { // idle again
			return fig, err
		}
		start := time.Now()
		var acc struct {
			TaskID string `json:"task_id"`
		}
		if err := c.do(ctx, http.MethodPost, "/api/v1/schedules/"+sched.ID+"/run-now", nil, &acc); err != nil {
			return fig, err
		}
		for {
			var st struct {
				State string `json:"state"`
			}
			if err := c.do(ctx, http.MethodGet, "/api/v1/tasks/"+acc.TaskID, nil, &st); err != nil {
				return fig, err
			}
			if st.State == "completed" || st.State == "archived" {
				break
			}
			if err := sleepCtx(ctx, 2*time.Millisecond); err != nil {
				return fig, err
			}
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	fig.pickupP50, fig.pMax = lat[len(lat)/2], lat[len(lat)-1]
	return fig, nil
}

// treeTicks sums the user and system CPU ticks of pid and its children.
func treeTicks(pid int) (int64, error) {
	total, err := procTicks(pid)
	if err != nil {
		return 0, err
	}
	kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	for _, k := range strings.Fields(string(kids)) {
		if kp, err := strconv.Atoi(k); err == nil {
			if t, err := procTicks(kp); err == nil {
				total += t
			}
		}
	}
	return total, nil
}

func procTicks(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses and may hold spaces.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("cpu of %d: short /proc stat", pid)
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	s, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("cpu of %d: %w", pid, err)
	}
	return u + s, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// devAPI calls the API of the measured dev.
type devAPI struct{ url, token string }

func (c devAPI) do(ctx context.Context, method, path string, body, out any) error {
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.url+path, r)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = res.Body.Close() }()
	if res.StatusCode >= 300 {
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		return fmt.Errorf("%s %s: %s %s", method, path, res.Status, b.String())
	}
	return json.NewDecoder(res.Body).Decode(out)
}
