package pgtest

import (
	"fmt"
	"os"
	"sync"
	"testing"
)

var shared struct {
	mu     sync.Mutex
	inMain bool    // Main is running m.Run
	srv    *Server // started by Shared
	err    error   // Start's error, reported to every later Shared call
}

// Main is for TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
//
// It runs m.Run. The shared server is started lazily by the first Shared
// call and stopped after m.Run returns. It returns m.Run's exit code, or 1
// if stopping the server failed.
func Main(m *testing.M) int {
	shared.mu.Lock()
	shared.inMain = true
	shared.mu.Unlock()

	code := m.Run()

	shared.mu.Lock()
	srv := shared.srv
	shared.inMain, shared.srv, shared.err = false, nil, nil
	shared.mu.Unlock()
	if err := srv.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: stopping the shared server: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// Shared returns the package's shared server, starting it on first use.
// On failure it calls t.Fatalf with the reason, never t.Skip: a skipped
// test is a failing promise. If starting failed once, later calls fail
// with the same reason without trying again.
//
// The test package must have a TestMain calling Main, which stops the
// server.
func Shared(t testing.TB) *Server {
	t.Helper()
	shared.mu.Lock()
	defer shared.mu.Unlock()
	if !shared.inMain {
		t.Fatalf("pgtest.Shared: the test package has no TestMain calling pgtest.Main; add\n\tfunc TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }")
	}
	if shared.srv == nil && shared.err == nil {
		shared.srv, shared.err = Start()
	}
	if shared.err != nil {
		t.Fatalf("pgtest: starting the shared PostgreSQL server: %v", shared.err)
	}
	return shared.srv
}
