package fleet

import "syscall"

// childAttr ends a runbook with the fleet process that started it (SIGTERM:
// it stops gracefully and its journal says where it was), so a killed
// fleet leaves no runbook behind and resume restarts each from its journal.
func childAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM} }

var syscallZero = syscall.Signal(0)
