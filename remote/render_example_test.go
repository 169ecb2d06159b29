package remote_test

import (
	"errors"
	"fmt"

	"github.com/packflow/packflow/remote"
)

func ExampleRender() {
	isFile := func(rel string) bool { return rel == "install.sh" }
	r, err := remote.Render(`install.sh -p ${Port} --name "${Name}" --password ${Pass}`, remote.RenderOptions{
		Shell: remote.ShellPOSIX,
		Values: map[string]remote.Value{
			"Port": {Text: "8080"},
			"Name": {Text: "web; rm -rf /"},
			"Pass": {Text: "hunter2", Secret: true},
		},
		IsPackageFile: isFile,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(r.Command)
	fmt.Println(r.Masked)
	// Output:
	// ./install.sh -p '8080' --name 'web; rm -rf /' --password 'hunter2'
	// ./install.sh -p '8080' --name 'web; rm -rf /' --password '********'
}

func ExampleRender_cmd() {
	_, err := remote.Render(`/dir/my.cmd ${Path}`, remote.RenderOptions{
		Shell:  remote.ShellCmd,
		Values: map[string]remote.Value{"Path": {Text: "%SystemRoot%"}},
	})
	fmt.Println(errors.Is(err, remote.ErrUnsafeValue))
	fmt.Println(err)
	// Output:
	// true
	// remote: render command: parameter Path holds '%', which cmd.exe cannot carry safely (refused: '"' '%' CR LF NUL)
}

func ExampleVariables() {
	names, err := remote.Variables(`/dir/my.cmd ${My.Custom.Value} ${T3.Server.Name} ${My.Custom.Value}`)
	fmt.Println(names, err)
	// Output:
	// [My.Custom.Value T3.Server.Name] <nil>
}
