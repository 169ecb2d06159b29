package ssh_test

import (
	"context"
	"fmt"
	"os"

	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/ssh"
)

// A worker shares one connection per host through a Pool, stages the
// package in a private directory, runs it there and cleans up.
func ExamplePool() {
	ctx := context.Background()
	pool := ssh.NewPool(ssh.PoolOptions{})
	defer func() { _ = pool.Close() }()

	key, err := os.ReadFile("deploy_ed25519")
	if err != nil {
		fmt.Println(err)
		return
	}
	c, err := pool.Get(ctx, ssh.Options{
		Addr: "10.0.0.5:22",
		User: "deploy",
		Auth: ssh.Auth{PrivateKeyPEM: key},
		// The key recorded on the server record; a different one fails
		// with remote.ErrHostKeyMismatch before anything runs.
		HostKey: ssh.HostKeyPolicy{Pinned: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIDCb7EvlMqdR+MmJwcor3uPKK3N66A7LbQVoOf1sY4uH"},
		Sudo:    true,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Close() }()

	dir, err := c.StagingDir(ctx, "my-package-1.0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Remove(ctx, dir) }()
	if err := c.Upload(ctx, "cache/my-package/1.0", dir); err != nil {
		fmt.Println(err)
		return
	}
	err = c.Run(ctx, &remote.Cmd{Command: "./install.sh", Dir: dir, Stdout: os.Stdout, Stderr: os.Stderr})
	if err != nil {
		fmt.Println(err)
	}
}
