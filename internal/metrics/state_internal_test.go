package metrics

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/custos/custos/internal/store"
)

// A scrape that runs out of time reads fewer audit events the next time.
func TestScanBudgetShrinksOnTimeout(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	c := newStateCollector(Options{DB: db, Now: time.Now, Timeout: time.Nanosecond, ScanBudget: 8000, Logger: slog.New(slog.DiscardHandler)})
	collect := func() []prometheus.Metric {
		ch := make(chan prometheus.Metric, 100)
		c.Collect(ch)
		close(ch)
		var out []prometheus.Metric
		for m := range ch {
			out = append(out, m)
		}
		return out
	}
	for _, want := range []int64{4000, 2000, 1000, 1000} {
		if ms := collect(); len(ms) != 1 || ms[0].Desc() != descDatabaseOK {
			t.Fatalf("timed-out scrape gave %d metrics", len(ms))
		}
		if c.scan.budget != want {
			t.Fatalf("budget %d, want %d", c.scan.budget, want)
		}
	}
	c.timeout = 5 * time.Second
	if ms := collect(); len(ms) < 3 {
		t.Fatalf("scrape with time: %d metrics", len(ms))
	}
}
