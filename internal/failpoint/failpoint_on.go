//go:build failpoint

package failpoint

import (
	"os"
	"syscall"
)

// Hit kills the process with SIGKILL when CUSTOS_FAILPOINT names this
// point: no deferred function, no rollback, no flush runs.
func Hit(name string) {
	if os.Getenv("CUSTOS_FAILPOINT") == name {
		_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {} // the signal is on its way
	}
}
