package redistest

import "syscall"

// procAttr makes the kernel kill redis-server when the test binary dies, so a
// test timeout (which skips cleanups) leaves no server running.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
