//go:build !linux

package testenv

import "syscall"

// childAttrs puts a child in its own process group. Without Linux's
// parent-death signal, a test binary that dies without running Main's
// teardown leaves its servers running.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
