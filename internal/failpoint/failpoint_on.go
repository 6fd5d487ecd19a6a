//go:build failpoint

package failpoint

import (
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

var hits atomic.Int64

// Hit kills the process with SIGKILL when CUSTOS_FAILPOINT names this
// point ("name", or "name@N" for its Nth hit in this process): no deferred
// function, no rollback, no flush runs.
func Hit(name string) {
	want, nth, _ := strings.Cut(os.Getenv("CUSTOS_FAILPOINT"), "@")
	if want != name {
		return
	}
	if n, err := strconv.ParseInt(nth, 10, 64); err == nil && hits.Add(1) < n {
		return
	}
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}
