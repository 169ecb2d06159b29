package ssh

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/packflow/packflow/remote"
)

// Commands of the reboot protocol, run as they are (no wrapper).
const (
	BootIDCommand        = "cat /proc/sys/kernel/random/boot_id"
	DefaultRebootCommand = "shutdown -r now"
	DefaultRebootTimeout = 15 * time.Minute
)

// Reboot restarts the host and waits until it runs commands again after a
// boot that really happened: it reads the boot id, issues the reboot
// command (opts.Command as given, or "shutdown -r now", prefixed with
// "sudo -n" when the login user is not root), waits for the connection to
// drop, reconnects with exponential backoff, and succeeds once the boot id
// changed and a command ran. The whole is bounded by opts.Timeout (default
// 15 minutes); running past it wraps remote.ErrTimeout.
func (c *Client) Reboot(ctx context.Context, opts remote.RebootOptions) error {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultRebootTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	log := c.h.opts.Logger.With("addr", c.h.opts.Addr)

	before, err := c.bootID(ctx)
	if err != nil {
		return fmt.Errorf("ssh: reboot: read boot id: %w", err)
	}
	command := opts.Command
	if command == "" {
		command, err = c.defaultRebootCommand(ctx)
		if err != nil {
			return fmt.Errorf("ssh: reboot: %w", err)
		}
	}
	cn, err := c.acquire(ctx)
	if err != nil {
		return fmt.Errorf("ssh: reboot: %w", err)
	}
	c.h.release()

	log.Info("ssh: rebooting", "command", command, "boot_id", before)
	if _, err := c.output(ctx, command); err != nil && !rebootCut(err) {
		return fmt.Errorf("ssh: reboot: %w", err)
	}
	select {
	case <-cn.done:
	case <-ctx.Done():
		return fmt.Errorf("ssh: reboot: waiting for the connection to drop: %w", ctxErr(ctx, "reboot"))
	}
	log.Info("ssh: connection dropped, waiting for the host to come back")
	return c.awaitBoot(ctx, before)
}

// rebootCut reports errors a reboot command may end with because the host
// went down under it.
func rebootCut(err error) bool {
	var exit *remote.ExitError
	if errors.As(err, &exit) {
		return exit.Signal != ""
	}
	return errors.Is(err, remote.ErrDisconnected)
}

// awaitBoot reconnects until the boot id differs from before and a command
// runs.
func (c *Client) awaitBoot(ctx context.Context, before string) error {
	delay := c.h.opts.ReconnectInitial
	last := errors.New("no answer yet")
	for {
		id, err := c.bootID(ctx)
		switch {
		case err == nil && id != before:
			if _, err := c.output(ctx, "true"); err == nil {
				c.h.opts.Logger.Info("ssh: host is back", "addr", c.h.opts.Addr, "boot_id", id)
				return nil
			}
		case err == nil:
			last = fmt.Errorf("boot id still %s", id)
		case remote.Permanent(err) || errors.Is(err, ErrClosed):
			return fmt.Errorf("ssh: reboot: reconnect: %w", err)
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("ssh: reboot: host did not come back with a new boot id (last: %w): %w", last, ctxErr(ctx, "reboot"))
		case <-time.After(delay):
		}
		delay = min(2*delay, c.h.opts.ReconnectMax)
	}
}

func (c *Client) bootID(ctx context.Context) (string, error) {
	out, err := c.output(ctx, BootIDCommand)
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(out)
	if id == "" {
		return "", errors.New("empty boot id")
	}
	return id, nil
}

// defaultRebootCommand is "shutdown -r now", through sudo for non-root users.
func (c *Client) defaultRebootCommand(ctx context.Context) (string, error) {
	uid, err := c.output(ctx, "id -u")
	if err != nil {
		return "", fmt.Errorf("find user id: %w", err)
	}
	if strings.TrimSpace(uid) == "0" {
		return DefaultRebootCommand, nil
	}
	return "sudo -n " + DefaultRebootCommand, nil
}
