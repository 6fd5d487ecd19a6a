package web_test

import (
	"testing"

	"go.uber.org/goleak"
)

// The server leaks no goroutine: every test closes what it opened.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
