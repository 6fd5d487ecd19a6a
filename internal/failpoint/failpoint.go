//go:build !failpoint

// Package failpoint lets crash tests stop a process at a named point inside
// a transaction. In a normal build Hit does nothing and costs nothing; a
// build with -tags failpoint kills the process with SIGKILL when the
// environment variable CUSTOS_FAILPOINT names the point ("name", or
// "name@N" for its Nth hit).
package failpoint

// Hit marks a named point.
func Hit(string) {}
