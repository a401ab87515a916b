package testenv

import "syscall"

// childProcAttr asks the kernel to kill a component if the test binary dies
// without running its cleanups, so no orphan keeps a port busy.
func childProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
