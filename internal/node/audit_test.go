package node_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/audittest"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

// The serve-time jobs checkpoint after audit.checkpoint_events events,
// verify incrementally before signing, and turn tampering into one critical
// alert instead of a checkpoint over it. Closing the node writes the final
// checkpoint.
func TestAuditJobs(t *testing.T) {
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)
	n, err := node.Open(ctx, cfg, node.Options{Create: true, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	record := func(k int) {
		for range k {
			if err := audit.RecordAlone(ctx, n.DB, now, audit.Event{Actor: "system", Action: "test.event", Outcome: audit.OK}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := n.DB.Write(ctx, func(tx *store.Tx) error {
		return tx.PutSetting(ctx, store.Setting{Key: "audit.checkpoint_events", Value: "5", UpdatedBy: "test", UpdatedAt: now})
	}); err != nil {
		t.Fatal(err)
	}
	jobs := n.AuditJobs()
	jobs.Daily(ctx) // full verification at start
	head := func() int64 {
		var h store.AuditHead
		_ = n.DB.Read(ctx, func(tx *store.Tx) error { h, err = tx.AuditHead(ctx); return err })
		return h.Seq
	}
	record(5)
	if err := jobs.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if n.Audit.Last() != head() {
		t.Fatalf("after 5 events: last checkpoint %d, head %d", n.Audit.Last(), head())
	}
	record(2) // fewer than 5 and less than 60 s: not yet
	before := n.Audit.Last()
	if err := jobs.Step(ctx); err != nil || n.Audit.Last() != before {
		t.Fatalf("checkpoint written early: %d -> %d (%v)", before, n.Audit.Last(), err)
	}
	now = now.Add(61 * time.Second) // the time limit passes
	if err := jobs.Step(ctx); err != nil || n.Audit.Last() != head() {
		t.Fatalf("no checkpoint after 61 s: %d, head %d (%v)", n.Audit.Last(), head(), err)
	}

	// Tampering with an event that is not yet checkpointed.
	record(1)
	tm, err := audittest.Open(cfg.DatabaseDSN())
	if err != nil {
		t.Fatal(err)
	}
	if err := tm.Modify(head()); err != nil {
		t.Fatal(err)
	}
	_ = tm.Close()
	record(5)
	signed := n.Audit.Last()
	for range 2 { // reported once
		if err := jobs.Step(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n.Audit.Last() != signed {
		t.Fatalf("a checkpoint was signed over a tampered chain: %d -> %d", signed, n.Audit.Last())
	}
	var alerts []store.Alert
	_ = n.DB.Read(ctx, func(tx *store.Tx) error {
		alerts, err = tx.Alerts(ctx, monitor.RuleAuditChainBroken, 10)
		return err
	})
	if len(alerts) != 1 || alerts[0].Severity != monitor.Critical {
		t.Fatalf("alerts %+v, want one critical %s", alerts, monitor.RuleAuditChainBroken)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	cps, err := audit.CheckpointLog{Path: cfg.AuditCheckpointPath()}.Read()
	if err != nil || cps[len(cps)-1].Seq != signed {
		t.Fatalf("closing signed over the tampered chain: last checkpoint %+v (%v), want seq %d", cps[len(cps)-1], err, signed)
	}
}
