package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

func TestMetricsQueries(t *testing.T) {
	for _, b := range []struct {
		name string
		open func(*testing.T) *store.DB
	}{{"sqlite", openSQLite}, {"postgres", openPostgres}} {
		t.Run(b.name, func(t *testing.T) { testMetricsQueries(t, b.open(t)) })
	}
}

func testMetricsQueries(t *testing.T, db *store.DB) {
	ctx := context.Background()
	t0 := time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)
	events := []struct{ action, outcome string }{
		{"auth.login", "ok"},       // 1
		{"audit.verify", "ok"},     // 2
		{"audit.verify", "error"},  // 3: failed, never the answer
		{"backup.create", "ok"},    // 4
		{"backup.create", "error"}, // 5
		{"audit.verify", "ok"},     // 6
		{"customer.view", "ok"},    // 7
	}
	if err := db.Write(ctx, func(tx *store.Tx) error {
		for i, e := range events {
			if _, err := tx.AppendAudit(ctx, store.AuditEvent{At: t0.Add(time.Duration(i) * time.Minute), Actor: "system",
				Action: e.action, Outcome: e.outcome}); err != nil {
				return err
			}
		}
		for _, k := range []store.KeyringEntry{
			{Purpose: "master", Version: 1, Wrapped: []byte{1}, WrappedBy: "root", CreatedAt: t0},
			{Purpose: "master", Version: 2, Wrapped: []byte{2}, WrappedBy: "root", CreatedAt: t0.Add(48 * time.Hour)},
			{Purpose: "index", Version: 1, Wrapped: []byte{3}, WrappedBy: "master:1", CreatedAt: t0.Add(time.Hour)},
		} {
			if err := tx.InsertKeyringEntry(ctx, k); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	actions := []string{"audit.verify", "backup.create"}
	for _, c := range []struct {
		name   string
		lo, hi int64
		want   map[string]int64 // action -> seq
	}{
		{"everything", 0, 7, map[string]int64{"audit.verify": 6, "backup.create": 4}},
		{"older half", 0, 5, map[string]int64{"audit.verify": 2, "backup.create": 4}},
		{"only failures", 2, 3, map[string]int64{}},
		{"newest only", 6, 7, map[string]int64{}},
		{"empty range", 7, 7, map[string]int64{}},
		{"backwards range", 5, 2, map[string]int64{}},
	} {
		var got map[string]store.AuditMark
		if err := db.Read(ctx, func(tx *store.Tx) error {
			var err error
			got, err = tx.NewestAuditOK(ctx, actions, c.lo, c.hi)
			return err
		}); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if len(got) != len(c.want) {
			t.Errorf("%s: got %v, want seqs %v", c.name, got, c.want)
		}
		for action, seq := range c.want {
			m := got[action]
			if m.Seq != seq || !m.At.Equal(t0.Add(time.Duration(seq-1)*time.Minute)) {
				t.Errorf("%s: %s = %+v, want seq %d at %v", c.name, action, m, seq, t0.Add(time.Duration(seq-1)*time.Minute))
			}
		}
	}
	var keys map[string]time.Time
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		keys, err = tx.NewestKeys(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || !keys["master"].Equal(t0.Add(48*time.Hour)) || !keys["index"].Equal(t0.Add(time.Hour)) {
		t.Fatalf("NewestKeys = %v", keys)
	}
}
