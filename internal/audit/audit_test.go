package audit_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

func TestRecord(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "a.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 22, 8, 0, 0, 0, time.FixedZone("CST", 8*3600))
	long := strings.Repeat("浏", 200) // 600 bytes
	if err := audit.RecordAlone(ctx, db, now, audit.Event{Actor: "user:1", Action: "customer.view", ObjectType: "customer", ObjectID: "c1",
		Outcome: audit.OK, UserAgent: long, Details: map[string]any{"ids": []string{"c1"}}}); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []audit.Event{{Action: "x", Outcome: "ok"}, {Actor: "a", Outcome: "ok"}, {Actor: "a", Action: "x"}} {
		if err := audit.RecordAlone(ctx, db, now, bad); err == nil {
			t.Fatalf("incomplete event %+v recorded", bad)
		}
	}
	var evs []store.AuditEvent
	_ = db.Read(ctx, func(tx *store.Tx) error { evs, err = tx.AuditEvents(ctx, 0, 10); return err })
	if len(evs) != 1 {
		t.Fatalf("%d events", len(evs))
	}
	e := evs[0]
	if !e.At.Equal(now) || e.At.Location() != time.UTC || e.Details != `{"ids":["c1"]}` {
		t.Fatalf("event %+v", e)
	}
	if len(e.UserAgent) > 256 || !utf8.ValidString(e.UserAgent) {
		t.Fatalf("user agent not cut on a rune boundary: %d bytes", len(e.UserAgent))
	}
}
