package winrm

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/remotetest"
)

// TestConformance runs the suite every Communicator passes against a fake
// Windows host behind a TLS endpoint, speaking cmd.exe and PowerShell.
func TestConformance(t *testing.T) {
	t.Parallel()
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: host, Down: host.Down, ReceiveTimeout: time.Second})
	t.Cleanup(srv.Close)
	var dirs atomic.Int64
	remotetest.Run(t, func(t *testing.T) remote.Communicator {
		c, err := Dial(t.Context(), clientOptions(t, srv))
		if err != nil {
			t.Fatalf("Dial: %v", err)
		}
		return c
	}, remotetest.Capabilities{
		Reboot:  true,
		Dialect: remotetest.Windows(),
		TempDir: func(*testing.T) string {
			dir := fmt.Sprintf(`C:\Windows\Temp\remotetest-%d`, dirs.Add(1))
			host.MkdirAll(dir)
			return dir
		},
	})

	// The cancelled and timed-out sleeps ended because their commands were
	// terminated, not because they finished.
	var killed int
	for _, p := range host.Killed() {
		if strings.HasPrefix(p.CommandLine, "ping -n ") {
			killed++
		}
	}
	if killed != 2 {
		t.Errorf("host saw %d sleeping processes killed, want 2 (cancel and deadline): %v", killed, host.Killed())
	}
	if host.Boots() != 1 {
		t.Errorf("host booted %d times, want 1", host.Boots())
	}
}
