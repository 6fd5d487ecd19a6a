// Package audittest tampers with an audit trail directly in SQLite, the way
// someone with access to the database file would, for tests of verification.
package audittest

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/store"

	_ "modernc.org/sqlite" // the "sqlite" driver
)

// Tamperer edits the audit_events table of a SQLite database file with
// the append-only guards dropped.
type Tamperer struct{ DB *sql.DB }

// Open opens path and drops the triggers that stop our own code from
// changing events (an attacker with the file can do the same).
func Open(path string) (*Tamperer, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(15000)")
	if err != nil {
		return nil, err
	}
	for _, tr := range []string{"audit_events_no_update", "audit_events_no_delete", "audit_events_chained", "audit_head_forward"} {
		if _, err := db.Exec(`DROP TRIGGER IF EXISTS ` + tr); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	return &Tamperer{DB: db}, nil
}

// Close closes the database.
func (t *Tamperer) Close() error { return t.DB.Close() }

func (t *Tamperer) exec(q string, args ...any) error {
	res, err := t.DB.Exec(q, args...)
	if err != nil {
		return fmt.Errorf("%s: %w", q, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("%s: no row changed", q)
	}
	return nil
}

// Modify changes one event's details, leaving its hash.
func (t *Tamperer) Modify(seq int64) error {
	return t.exec(`UPDATE audit_events SET details = '{"fields":["phone"],"forged":true}' WHERE seq = ?`, seq)
}

// Delete removes one event.
func (t *Tamperer) Delete(seq int64) error {
	return t.exec(`DELETE FROM audit_events WHERE seq = ?`, seq)
}

// Truncate removes every event from seq on (the head row is left alone
// unless moveHead, which points it at the new last event, as a careful
// attacker would).
func (t *Tamperer) Truncate(seq int64, moveHead bool) error {
	if err := t.exec(`DELETE FROM audit_events WHERE seq >= ?`, seq); err != nil {
		return err
	}
	if moveHead {
		return t.exec(`UPDATE audit_head SET seq = ?, hash = (SELECT hash FROM audit_events WHERE seq = ?)`, seq-1, seq-1)
	}
	return nil
}

// Swap exchanges events seq and seq+1.
func (t *Tamperer) Swap(seq int64) error {
	for _, q := range []struct{ from, to int64 }{{seq, -1}, {seq + 1, seq}, {-1, seq + 1}} {
		if err := t.exec(`UPDATE audit_events SET seq = ? WHERE seq = ?`, q.to, q.from); err != nil {
			return err
		}
	}
	return nil
}

// Insert forges an event at seq, moving the events from seq on one place
// up. The forgery is as good as it gets without the signing key: it links
// to the real event before it and carries a correctly computed hash.
func (t *Tamperer) Insert(seq int64) error {
	var prev []byte
	if err := t.DB.QueryRow(`SELECT hash FROM audit_events WHERE seq = ?`, seq-1).Scan(&prev); err != nil {
		return err
	}
	if err := t.exec(`UPDATE audit_events SET seq = seq + 1000000 WHERE seq >= ?`, seq); err != nil {
		return err
	}
	if err := t.exec(`UPDATE audit_events SET seq = seq - 999999 WHERE seq >= 1000000`); err != nil {
		return err
	}
	e := store.AuditEvent{Seq: seq, Actor: "user:forged", Action: "customer.view", ObjectType: "customer", ObjectID: "forged", Outcome: "ok", Details: "{}"}
	var at int64
	if err := t.DB.QueryRow(`SELECT at FROM audit_events WHERE seq = ?`, seq-1).Scan(&at); err != nil {
		return err
	}
	e.At = store.FromMicros(at)
	h := chain.Hash(prev, seq, at, e.Fields())
	_, err := t.DB.Exec(`INSERT INTO audit_events (seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, prev_hash, hash)
		VALUES (?, ?, ?, '', '', ?, ?, ?, ?, '', '', ?, ?, ?)`, seq, at, e.Actor, e.Action, e.ObjectType, e.ObjectID, e.Outcome, e.Details, prev, h)
	return err
}

// Rewrite changes event seq and recomputes the hash of it and of every
// event after it, and the head: a consistent chain that only signed
// checkpoints can expose.
func (t *Tamperer) Rewrite(ctx context.Context, seq int64) error {
	if err := t.Modify(seq); err != nil {
		return err
	}
	rows, err := t.DB.QueryContext(ctx, `SELECT seq, at, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details, prev_hash
		FROM audit_events WHERE seq >= ? ORDER BY seq`, seq)
	if err != nil {
		return err
	}
	var evs []store.AuditEvent
	var ats []int64
	for rows.Next() {
		var e store.AuditEvent
		var at int64
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.IP, &e.UserAgent, &e.Action, &e.ObjectType, &e.ObjectID, &e.Outcome, &e.Reason, &e.RequestID, &e.Details, &e.PrevHash); err != nil {
			_ = rows.Close()
			return err
		}
		evs, ats = append(evs, e), append(ats, at)
	}
	if err := rows.Close(); err != nil {
		return err
	}
	prev := evs[0].PrevHash
	for i, e := range evs {
		h := chain.Hash(prev, e.Seq, ats[i], e.Fields())
		if err := t.exec(`UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?`, prev, h, e.Seq); err != nil {
			return err
		}
		prev = h
	}
	return t.exec(`UPDATE audit_head SET hash = ?`, prev)
}
