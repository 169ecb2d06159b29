package winrmtest_test

import (
	"context"
	"fmt"
	"io"

	"github.com/masterzen/winrm"

	"github.com/packflow/packflow/internal/winrmtest"
)

// A handler answers the commands a real WinRM client runs.
func Example() {
	srv := winrmtest.New(winrmtest.Options{
		Handler: winrmtest.HandlerFunc(func(_ context.Context, cmd *winrmtest.Command, stdout, _ io.Writer) int {
			_, _ = fmt.Fprintf(stdout, "ran %q", cmd.Line)
			return 3
		}),
	})
	defer srv.Close()

	client, err := winrm.NewClient(&winrm.Endpoint{Host: srv.Host, Port: srv.Port},
		winrmtest.DefaultUser, winrmtest.DefaultPassword)
	if err != nil {
		fmt.Println(err)
		return
	}
	stdout, _, code, err := client.RunCmdWithContext(context.Background(), "hostname")
	fmt.Println(stdout, code, err)
	// Output: ran "hostname" 3 <nil>
}
