package winrmtest

import (
	"slices"
	"strings"
)

// Process is a process of a FakeHost: the cmd.exe that runs each command
// line, and each program it starts other than cmd.exe's built-in commands
// and PowerShell's cmdlets.
type Process struct {
	// PID identifies the process; like Windows PIDs, a multiple of 4.
	PID int
	// CommandLine is the command line the process was started with.
	CommandLine string
}

// processTable records the running processes of a host and those that
// were killed.
type processTable struct {
	nextPID int
	running map[int]Process
	killed  []Process
}

// start records a new process and returns its PID.
func (h *FakeHost) start(commandLine string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.procs.running == nil {
		h.procs.running = make(map[int]Process)
		h.procs.nextPID = 4000
	}
	h.procs.nextPID += 4
	pid := h.procs.nextPID
	h.procs.running[pid] = Process{PID: pid, CommandLine: commandLine}
	return pid
}

// end records that a process ended; killed means its command was
// terminated while it ran.
func (h *FakeHost) end(pid int, killed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	p, ok := h.procs.running[pid]
	if !ok {
		return
	}
	delete(h.procs.running, pid)
	if killed {
		h.procs.killed = append(h.procs.killed, p)
	}
}

// Processes returns the running processes, by PID.
func (h *FakeHost) Processes() []Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := make([]Process, 0, len(h.procs.running))
	for _, p := range h.procs.running {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(a, b Process) int { return a.PID - b.PID })
	return ps
}

// Killed returns the processes that ended because the client terminated
// their command (a Signal or the deletion of their shell), in the order
// they ended.
func (h *FakeHost) Killed() []Process {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.procs.killed)
}

// cmdBuiltins are commands cmd.exe runs itself, without a process. In
// PowerShell the same names are aliases or keywords.
var cmdBuiltins = map[string]bool{
	"cd": true, "dir": true, "echo": true, "exit": true, "md": true, "mkdir": true, "set": true, "type": true,
}

// isProcess reports whether running the program name starts a process:
// not for cmd.exe built-ins, PowerShell cmdlets (Verb-Noun) and .NET
// calls.
func isProcess(name string) bool {
	return !cmdBuiltins[strings.ToLower(name)] && !strings.ContainsAny(name, "-[$")
}
