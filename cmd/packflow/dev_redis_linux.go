package main

import (
	"os/exec"
	"syscall"
)

var sigterm = syscall.SIGTERM

// setParentDeathSignal has the kernel stop dev's redis-server when dev
// dies, even by SIGKILL, so that no orphan keeps the data dir.
func setParentDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}
