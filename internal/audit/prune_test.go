package audit_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/audittest"
	"github.com/custos/custos/internal/store"
)

func TestPruneArchivesVerifiably(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 20, t0.AddDate(0, 0, -400))
	tr.checkpoint(t)
	tr.append(t, 10, t0.AddDate(0, 0, -10))
	dir := filepath.Join(t.TempDir(), "archive")
	opts := audit.PruneOptions{Now: t0, RetentionDays: 365, ArchiveDir: dir, Checkpointer: tr.cp, Actor: "cli:test"}

	bad := opts
	bad.RetentionDays = 179
	if _, err := audit.Prune(ctx, tr.db, bad); err == nil || !strings.Contains(err.Error(), "minimum") {
		t.Fatalf("retention below 180 days: %v", err)
	}
	rep, err := audit.Prune(ctx, tr.db, opts)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != 20 || rep.From != 1 || rep.Through != 20 {
		t.Fatalf("prune report %+v, want events 1 to 20", rep)
	}
	// The trail still verifies: the prune is an event naming what it cut.
	if v := tr.verify(t); !v.OK() || v.First != 21 || v.Events != 11 {
		t.Fatalf("after the prune: %+v (%v)", v, v.Problem)
	}
	var evs []store.AuditEvent
	_ = tr.db.Read(ctx, func(tx *store.Tx) error {
		evs, err = tx.QueryAudit(ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "audit.prune"})
		return err
	})
	if len(evs) != 1 || !strings.Contains(evs[0].Details, `"through_seq":20`) || evs[0].Actor != "cli:test" {
		t.Fatalf("prune events: %+v", evs)
	}
	// The archive verifies on its own, with its checkpoints.
	v, err := audit.VerifyArchive(rep.Archive, tr.cp.Trusted())
	if err != nil || !v.OK() || v.Events != 20 || v.Checkpoints == 0 {
		t.Fatalf("archive: %+v %v (%v)", v, err, v.Problem)
	}
	// Nothing more to prune; a second run changes nothing.
	if again, err := audit.Prune(ctx, tr.db, opts); err != nil || again.Events != 0 {
		t.Fatalf("second prune: %+v %v", again, err)
	}

	// A changed archive is caught.
	raw, _ := os.ReadFile(rep.Archive)
	zr, _ := gzip.NewReader(bytes.NewReader(raw))
	plain, _ := io.ReadAll(zr)
	changed := strings.Replace(string(plain), `"i":3`, `"i":4`, 1)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(changed))
	_ = zw.Close()
	forged := filepath.Join(t.TempDir(), "forged.jsonl.gz")
	if err := os.WriteFile(forged, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if v, err := audit.VerifyArchive(forged, tr.cp.Trusted()); err != nil || v.OK() || v.Problem.Kind != audit.Modified || v.Problem.Seq != 4 {
		t.Fatalf("changed archive: %+v %v", v.Problem, err)
	}
}

// Deleting old events and moving the prune mark by hand, without the
// audited prune, is named as a deletion.
func TestPruneWithoutRecordIsDeletion(t *testing.T) {
	tr := newTrail(t)
	tr.append(t, 10, t0)
	tr.tamper(t, func(tm *audittest.Tamperer) error {
		if _, err := tm.DB.Exec(`UPDATE audit_head SET base_seq = 5, base_hash = (SELECT hash FROM audit_events WHERE seq = 5)`); err != nil {
			return err
		}
		_, err := tm.DB.Exec(`DELETE FROM audit_events WHERE seq <= 5`)
		return err
	})
	if v := tr.verify(t); v.OK() || v.Problem.Kind != audit.Deleted || v.Problem.Seq != 1 {
		t.Fatalf("silent prune: %+v", v.Problem)
	}
}
