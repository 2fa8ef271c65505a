package testenv

import "syscall"

// childAttrs puts a child in its own process group, and has the kernel kill
// it when the thread that started it (the spawner's, which lives as long as
// the test binary) dies.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
