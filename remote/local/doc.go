// Package local implements remote.Communicator on the worker's own host:
// commands run under /bin/sh in their own process group (killed whole on
// cancel), uploads copy the tree keeping Unix modes, and Remove deletes
// with guards. Reboot is not supported.
//
// Running packages on the worker itself is off unless the operator set
// PACKFLOW_ALLOW_LOCAL=true ("packflow dev" does, for demos and tests).
// This package does not read the environment: the caller's configuration
// enforces that gate, and New must only be called when it allows it.
package local
