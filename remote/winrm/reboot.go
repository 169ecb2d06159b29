package winrm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packflow/packflow/remote"
)

// Reboot restarts the host with Restart-Computer -Force (or
// opts.Command, a PowerShell command) and waits until a command runs again
// and the host reports a LastBootUpTime other than the one read before the
// restart. Reconnection attempts back off from Options.RebootPoll to
// Options.RebootPollMax. The whole reboot is bounded by opts.Timeout
// (default 15 minutes); running past it returns remote.ErrTimeout.
func (c *Client) Reboot(ctx context.Context, opts remote.RebootOptions) error {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultRebootTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	before, err := c.bootTime(ctx)
	if err != nil {
		return fmt.Errorf("winrm: reboot: read boot time: %w", err)
	}
	c.log.Info("winrm reboot", "boot_time", before)
	// The connection may drop before the answer arrives: that is the
	// reboot happening, not a failure.
	if err := c.runScript(ctx, "reboot", rebootScript(opts.Command), nil, nil); err != nil &&
		!errors.Is(err, remote.ErrDisconnected) && !shellGone(err) {
		return rebootErr(ctx, timeout, err)
	}

	for attempt := 0; ; attempt++ {
		t := time.NewTimer(rebootDelay(attempt, c.opts.RebootPoll, c.opts.RebootPollMax))
		select {
		case <-ctx.Done():
			t.Stop()
			return rebootErr(ctx, timeout, ctx.Err())
		case <-t.C:
		}
		now, err := c.bootTime(ctx)
		switch {
		case err == nil && now != before:
			c.log.Info("winrm host is back", "boot_time", now, "attempts", attempt+1)
			return nil
		case err == nil:
			c.log.Debug("winrm host not down yet", "attempt", attempt+1)
		case remote.Permanent(err):
			return fmt.Errorf("winrm: reboot: %w", err)
		case ctx.Err() != nil:
			return rebootErr(ctx, timeout, err)
		default:
			c.log.Debug("winrm host unreachable while rebooting", "attempt", attempt+1, "err", err)
		}
	}
}

// rebootErr reports the end of a reboot that ran out of time or was
// cancelled.
func rebootErr(ctx context.Context, timeout time.Duration, err error) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return fmt.Errorf("winrm: reboot: host did not come back within %s: %w: %w", timeout, remote.ErrTimeout, err)
	}
	return fmt.Errorf("winrm: reboot: %w", err)
}

// bootTime returns the host's LastBootUpTime as a round-trip string.
func (c *Client) bootTime(ctx context.Context) (string, error) {
	var out tailBuffer
	if err := c.runScript(ctx, "read boot time", bootTimeScript(), nil, &out); err != nil {
		return "", err
	}
	s := strings.TrimSpace(out.String())
	if s == "" {
		return "", errors.New("winrm: read boot time: empty answer")
	}
	return s, nil
}

// rebootDelay is the wait before reconnection attempt n (from 0): base,
// doubling each attempt, capped at maxDelay.
func rebootDelay(n int, base, maxDelay time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 2
	}
	return min(d, maxDelay)
}

// shellGone reports whether err is the fault of a shell the host forgot:
// a request of the reboot script that reached the host after it restarted.
func shellGone(err error) bool {
	var f *FaultError
	return errors.As(err, &f) && f.shellGone()
}
