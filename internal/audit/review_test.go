package audit_test

// Regressions from the security review of the audit trail: each was a way
// to change the trail that verification missed.

import (
	"bytes"
	"compress/gzip"
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/audittest"
	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/store"
)

func rowHash(t *testing.T, tm *audittest.Tamperer, seq int64) []byte {
	t.Helper()
	var h []byte
	if err := tm.DB.QueryRow(`SELECT hash FROM audit_events WHERE seq = ?`, seq).Scan(&h); err != nil {
		t.Fatal(err)
	}
	return h
}

// Deleting a checkpointed prefix, moving the prune mark and forging an
// audit.prune event at the tail is a deletion, and no checkpoint is signed
// over it.
func TestPruneMarkNeedsASignedPrune(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 30, t0)
	tr.checkpoint(t)
	tr.tamper(t, func(tm *audittest.Tamperer) error {
		h20, h30 := rowHash(t, tm, 20), rowHash(t, tm, 30)
		if _, err := tm.DB.Exec(`DELETE FROM audit_events WHERE seq <= 20`); err != nil {
			return err
		}
		if _, err := tm.DB.Exec(`UPDATE audit_head SET base_seq = 20, base_hash = ?`, h20); err != nil {
			return err
		}
		d, _ := json.Marshal(map[string]any{"from_seq": 1, "through_seq": 20, "through_hash": hex.EncodeToString(h20)})
		e := store.AuditEvent{Seq: 31, At: t0.Add(time.Hour), Actor: "system", Action: "audit.prune", ObjectType: "audit", Outcome: "ok", Details: string(d)}
		h := chain.Hash(h30, 31, store.Micros(e.At), e.Fields())
		if _, err := tm.DB.Exec(`INSERT INTO audit_events (seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, prev_hash, hash)
			VALUES (31, ?, 'system', '', '', 'audit.prune', 'audit', '', 'ok', '', '', ?, ?, ?)`, store.Micros(e.At), e.Details, h30, h); err != nil {
			return err
		}
		_, err := tm.DB.Exec(`UPDATE audit_head SET seq = 31, hash = ?`, h)
		return err
	})
	if rep := tr.verify(t); rep.OK() || rep.Problem.Kind != audit.Deleted || rep.Problem.Seq != 1 {
		t.Fatalf("forged prune: %+v", rep.Problem)
	}
	_, wrote, err := tr.cp.Checkpoint(ctx)
	var te *audit.TamperError
	if wrote || !errors.As(err, &te) {
		t.Fatalf("the checkpointer signed over a forged prune: wrote=%v err=%v", wrote, err)
	}
}

// An event at or below the start of the trail is reported, and queries do
// not return it; the insert guard refuses it in the first place.
func TestEventsBelowTheStart(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 10, t0)
	tr.checkpoint(t)
	insert := func(db *sql.DB) error {
		_, err := db.Exec(`INSERT INTO audit_events (seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, prev_hash, hash)
			VALUES (-7, ?, 'user:u1', '', '', 'customer.export', 'customer', 'c5', 'ok', '', '', '{}', x'00', x'00')`, store.Micros(t0))
		return err
	}
	plain, err := sql.Open("sqlite", "file:"+tr.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := insert(plain); err == nil {
		t.Fatal("the insert guard let an event in below the head")
	}
	_ = plain.Close()
	tr.tamper(t, func(tm *audittest.Tamperer) error { return insert(tm.DB) })
	if rep := tr.verify(t); rep.OK() || rep.Problem.Kind != audit.Inserted || rep.Problem.Seq != -7 {
		t.Fatalf("event at -7: %+v", rep.Problem)
	}
	var evs []store.AuditEvent
	_ = tr.db.Read(ctx, func(tx *store.Tx) error {
		evs, err = tx.QueryAudit(ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "customer.export"})
		return err
	})
	if len(evs) != 0 {
		t.Fatalf("the query returned the forged event: %+v", evs)
	}
}

// The customer index refuses updates and deletes above the prune mark.
func TestSubjectIndexIsGuarded(t *testing.T) {
	tr := newTrail(t)
	tr.append(t, 10, t0)
	plain, err := sql.Open("sqlite", "file:"+tr.path)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	for _, q := range []string{`DELETE FROM audit_subjects WHERE customer_id = 'c4'`, `UPDATE audit_subjects SET customer_id = 'c9' WHERE customer_id = 'c4'`} {
		if _, err := plain.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v", q, err)
		}
	}
}

// A prune committed while verification walks the trail is not tampering.
func TestVerifyDuringPrune(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 40, t0.AddDate(0, 0, -400))
	tr.checkpoint(t)
	tr.append(t, 5, t0)
	cps, _ := audit.LoadCheckpoints(ctx, tr.db, tr.cp.Log)
	var once sync.Once
	rep, err := audit.Verify(ctx, tr.db, audit.VerifyOptions{Checkpoints: cps, Trusted: tr.cp.Trusted(), PageSize: 10,
		Reload: func(ctx context.Context) ([]audit.Checkpoint, error) {
			return audit.LoadCheckpoints(ctx, tr.db, tr.cp.Log)
		},
		Progress: func(int64) {
			once.Do(func() {
				if _, err := audit.Prune(ctx, tr.db, audit.PruneOptions{Now: t0, RetentionDays: 365, ArchiveDir: filepath.Join(t.TempDir(), "a"),
					Checkpointer: tr.cp, Actor: "system"}); err != nil {
					t.Errorf("prune: %v", err)
				}
			})
		}})
	if err != nil || !rep.OK() {
		t.Fatalf("verify across a prune: %v %v", err, rep.Problem)
	}
}

// An archive whose beginning was cut (header moved forward) is refused: its
// end checkpoint signs where the segment began.
func TestArchivePrefixCut(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 20, t0.AddDate(0, 0, -400))
	tr.checkpoint(t)
	tr.append(t, 3, t0)
	rep, err := audit.Prune(ctx, tr.db, audit.PruneOptions{Now: t0, RetentionDays: 365, ArchiveDir: filepath.Join(t.TempDir(), "a"), Checkpointer: tr.cp})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := os.Open(rep.Archive)
	zr, _ := gzip.NewReader(f)
	raw, _ := io.ReadAll(zr)
	f.Close()
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var hdr map[string]any
	_ = json.Unmarshal([]byte(lines[0]), &hdr)
	var ev10 struct {
		Event struct {
			Hash string `json:"hash"`
		} `json:"event"`
	}
	_ = json.Unmarshal([]byte(lines[10]), &ev10)
	hdr["from_seq"], hdr["base_hash"] = 11, ev10.Event.Hash
	hb, _ := json.Marshal(hdr)
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, _ = zw.Write([]byte(strings.Join(append([]string{string(hb)}, lines[11:]...), "\n") + "\n"))
	_ = zw.Close()
	cut := filepath.Join(t.TempDir(), "cut.jsonl.gz")
	_ = os.WriteFile(cut, buf.Bytes(), 0o600)
	if v, err := audit.VerifyArchive(cut, tr.cp.Trusted()); err != nil || v.OK() || v.Problem.Kind != audit.Deleted {
		t.Fatalf("archive without events 1-10: %+v %v", v.Problem, err)
	}
}

// A missing head row is a finding, not a failure to run.
func TestHeadMissing(t *testing.T) {
	tr := newTrail(t)
	tr.append(t, 5, t0)
	tr.tamper(t, func(tm *audittest.Tamperer) error {
		_, _ = tm.DB.Exec(`DROP TRIGGER IF EXISTS audit_head_kept`)
		_, err := tm.DB.Exec(`DELETE FROM audit_head`)
		return err
	})
	rep, err := audit.Verify(context.Background(), tr.db, audit.VerifyOptions{})
	if err != nil || rep.OK() || rep.Problem.Kind != audit.Deleted {
		t.Fatalf("head deleted: %v %+v", err, rep.Problem)
	}
}
