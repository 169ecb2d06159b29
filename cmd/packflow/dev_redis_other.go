//go:build !linux

package main

import (
	"os"
	"os/exec"
)

var sigterm os.Signal = os.Interrupt

// setParentDeathSignal does nothing where the kernel offers no parent
// death signal; dev stops its redis-server on its way out.
func setParentDeathSignal(*exec.Cmd) {}
