package monitor_test

import (
	"os"
	"testing"

	"github.com/custos/custos/internal/pgtest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }
