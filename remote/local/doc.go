// Package local implements remote.Communicator on the worker's own host:
// commands run under /bin/sh in their own process group (killed whole on
// cancel), uploads copy the tree keeping Unix modes, and Remove deletes
// with guards. Reboot is not supported.
//
// Running packages on the worker itself is off unless the operator set
// PACKFLOW_ALLOW_LOCAL=true ("packflow dev" does, for demos and tests),
// and is for admins of the root account only: a command here runs as the
// worker's user and can read what the worker can. This package does not
// read the environment nor check rights: the caller enforces both gates,
// and New must only be called when they allow it.
//
// Commands never inherit the worker's environment, which holds its
// secrets. Their whole environment is Options.Env, by default DefaultEnv:
// PATH=DefaultPath, HOME (the worker user's home directory from the user
// database) and LANG=C.UTF-8.
package local
