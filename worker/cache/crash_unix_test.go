//go:build unix

package cache

import (
	"bytes"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// TestHelperInstallAndHang is run as a child process by TestCrashMidInstall:
// it opens the cache, starts an install whose archive stops half way, says
// so in a file and waits to be killed.
func TestHelperInstallAndHang(t *testing.T) {
	if os.Getenv("PACKFLOW_CACHE_CRASH_HELPER") != "1" {
		t.Skip("by design: run by TestCrashMidInstall as a child process")
	}
	wd, err := os.Getwd() // the parent's scratch directory
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(wd, "cache")
	c, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	a := sample(t, "x")
	req := a.request(uuidA, "1.0.0")
	req.Open = func(context.Context) (io.ReadCloser, error) {
		return io.NopCloser(io.MultiReader(bytes.NewReader(a.data[:len(a.data)/2]), hangReader{dir})), nil
	}
	_, _ = c.Install(context.Background(), req)
	t.Fatal("the install ended; it should hang until killed")
}

// hangReader reports that the install is under way, then blocks forever.
type hangReader struct{ dir string }

func (h hangReader) Read([]byte) (int, error) {
	_ = os.WriteFile(filepath.Join(h.dir, "..", "hanging"), nil, 0o600)
	for {
		time.Sleep(time.Hour) // a sleeping goroutine is not a deadlock to the runtime
	}
}

func TestCrashMidInstall(t *testing.T) {
	t.Parallel()
	base := t.TempDir()
	dir := filepath.Join(base, "cache")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperInstallAndHang$", "-test.count=1")
	cmd.Env = append(os.Environ(), "PACKFLOW_CACHE_CRASH_HELPER=1")
	cmd.Dir = base
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	// Wait for the child to be half way through its install.
	for {
		if _, err := os.Stat(filepath.Join(base, "hanging")); err == nil {
			break
		}
		select {
		case <-exited:
			t.Fatalf("child ended early:\n%s", out.String())
		case <-time.After(5 * time.Millisecond):
		}
	}

	// While it lives, another process's Open leaves its work space alone.
	live := openCache(t, dir, Options{})
	sessions := func() int {
		ents, err := os.ReadDir(filepath.Join(dir, tmpName))
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	if n := sessions(); n != 2 {
		t.Fatalf("%d sessions with the child alive, want its and ours", n)
	}
	if err := live.Close(); err != nil {
		t.Fatal(err)
	}

	// Crash it.
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-exited

	c := openCache(t, dir, Options{})
	if n := sessions(); n != 1 {
		t.Errorf("%d sessions after the crash, want only ours", n)
	}
	if _, ok := c.Path(uuidA, "1.0.0"); ok {
		t.Error("the crashed install counts as installed")
	}
	if got := tree(t, dir); len(got) != 2 {
		t.Errorf("left after the crash: %v", got)
	}
	a := sample(t, "x")
	if _, err := c.Install(context.Background(), a.request(uuidA, "1.0.0")); err != nil {
		t.Errorf("install after the crash: %v", err)
	}
}
