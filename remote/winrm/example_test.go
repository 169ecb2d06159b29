package winrm_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/packflow/packflow/internal/winrmtest"
	"github.com/packflow/packflow/remote"
	"github.com/packflow/packflow/remote/winrm"
)

// Upload a package to a Windows host and run its command from the package
// root, here against the test endpoint.
func Example() {
	host := winrmtest.NewFakeHost(winrmtest.FakeHostOptions{})
	srv := winrmtest.NewTLS(winrmtest.Options{Handler: host, Down: host.Down})
	defer srv.Close()

	ctx := context.Background()
	c, err := winrm.Dial(ctx, winrm.Options{
		Host: srv.Host, Port: srv.Port,
		CACertPEM: srv.CACertPEM, // the host's certificate is verified
		User:      winrmtest.DefaultUser, Password: winrmtest.DefaultPassword,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = c.Close() }()

	src, err := os.MkdirTemp("", "example")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer func() { _ = os.RemoveAll(src) }()
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello from the package"), 0o644); err != nil {
		fmt.Println(err)
		return
	}

	dir, err := winrm.PackageDir("6f1c2a8e-0d4b-4c1e-9a57-2f5d1b7e3c90", "1.0.0")
	if err != nil {
		fmt.Println(err)
		return
	}
	if err := c.Upload(ctx, src, dir); err != nil {
		fmt.Println(err)
		return
	}
	err = c.Run(ctx, &remote.Cmd{Shell: remote.ShellCmd, Dir: dir, Command: "type hello.txt", Stdout: os.Stdout})
	fmt.Println()
	fmt.Println("run:", err)
	// Output:
	// hello from the package
	// run: <nil>
}
