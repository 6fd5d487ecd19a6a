package store

import (
	"context"
	"time"
)

// Queries for the Prometheus collector (internal/metrics). Each is cheap at
// scrape time — a primary-key range, a one-row table or a table of a few
// rows — and none returns a personal value: actions, sequence numbers,
// times and key purposes only.

// AuditMark is one audit event found by NewestAuditOK.
type AuditMark struct {
	Seq int64
	At  time.Time
}

// NewestAuditOK returns, for each of actions, the newest event with outcome
// "ok" among the events with lo < seq <= hi (actions without one are
// absent). It reads that range of the primary key and nothing else, so a
// caller that remembers how far it has looked reads each event once.
func (tx *Tx) NewestAuditOK(ctx context.Context, actions []string, lo, hi int64) (map[string]AuditMark, error) {
	out := map[string]AuditMark{}
	if len(actions) == 0 || hi <= lo {
		return out, nil
	}
	args := make([]any, 0, len(actions)+2)
	args = append(args, lo, hi)
	for _, a := range actions {
		args = append(args, a)
	}
	rows, err := tx.query(ctx, `SELECT action, MAX(seq) FROM audit_events
		WHERE seq > ? AND seq <= ? AND outcome = 'ok' AND action IN (`+placeholders(len(actions))+`) GROUP BY action`, args...)
	if err != nil {
		return nil, err
	}
	seqs := map[string]int64{}
	for rows.Next() {
		var action string
		var seq int64
		if err := rows.Scan(&action, &seq); err != nil {
			rows.Close()
			return nil, err
		}
		seqs[action] = seq
	}
	err = rows.Err()
	rows.Close() // before the next query: one connection per transaction
	if err != nil {
		return nil, err
	}
	for action, seq := range seqs {
		var at int64
		if err := tx.queryRow(ctx, `SELECT at FROM audit_events WHERE seq = ?`, seq).Scan(&at); err != nil {
			return nil, mapErr(err)
		}
		out[action] = AuditMark{Seq: seq, At: FromMicros(at)}
	}
	return out, nil
}

// NewestKeys returns when the newest version of each keyring purpose
// ("master", "index") was created: a rotation adds a version. It never
// reads the wrapped keys.
func (tx *Tx) NewestKeys(ctx context.Context) (map[string]time.Time, error) {
	rows, err := tx.query(ctx, `SELECT purpose, MAX(created_at) FROM keyring GROUP BY purpose`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var purpose string
		var at int64
		if err := rows.Scan(&purpose, &at); err != nil {
			return nil, err
		}
		out[purpose] = FromMicros(at)
	}
	return out, rows.Err()
}
