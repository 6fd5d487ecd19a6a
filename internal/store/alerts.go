package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Alert statuses.
const (
	AlertOpen         = "open"
	AlertAcknowledged = "acknowledged"
	AlertResolved     = "resolved"
)

// Alert is a raised alert. Details never hold personal values; the
// resolution note is sealed (under a data key of its own, subject alert:<id>).
type Alert struct {
	ID        string
	At        time.Time
	Rule      string
	Severity  string
	ActorID   string
	Status    string
	Evidence  string // JSON array of audit sequence numbers
	Details   string // JSON object
	UpdatedAt time.Time

	AckedBy        string
	AckedAt        *time.Time
	ResolvedBy     string
	ResolvedAt     *time.Time
	Note           []byte // sealed
	NoteKeyVersion uint32
}

const alertCols = `id, at, rule, severity, actor_id, status, evidence, details, updated_at, acked_by, acked_at, resolved_by, resolved_at, note, note_key_version`

func scanAlert(s interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var at, upd int64
	var acked, resolved sql.NullInt64
	err := s.Scan(&a.ID, &at, &a.Rule, &a.Severity, &a.ActorID, &a.Status, &a.Evidence, &a.Details, &upd,
		&a.AckedBy, &acked, &a.ResolvedBy, &resolved, &a.Note, &a.NoteKeyVersion)
	if err != nil {
		return Alert{}, err
	}
	a.At, a.UpdatedAt = FromMicros(at), FromMicros(upd)
	a.AckedAt, a.ResolvedAt = timePtr(acked), timePtr(resolved)
	return a, nil
}

// InsertAlert stores an alert.
func (tx *Tx) InsertAlert(ctx context.Context, a Alert) error {
	_, err := tx.exec(ctx, `INSERT INTO alerts (id, at, rule, severity, actor_id, status, evidence, details, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, Micros(a.At), a.Rule, a.Severity, a.ActorID, a.Status, a.Evidence, a.Details, Micros(a.UpdatedAt))
	return err
}

// GetAlert returns one alert; lock takes its row lock (PostgreSQL).
func (tx *Tx) GetAlert(ctx context.Context, id string, lock bool) (Alert, error) {
	q := `SELECT ` + alertCols + ` FROM alerts WHERE id = ?`
	if lock && tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	a, err := scanAlert(tx.queryRow(ctx, q, id))
	return a, mapErr(err)
}

// AlertQuery filters alerts. Empty fields do not filter.
type AlertQuery struct {
	Rule     string
	Status   string
	Severity string
	ActorID  string
	Before   string // id: alerts older than this one (paging, newest first)
	Limit    int
}

// Alerts lists alerts, newest first; rule filters when set.
func (tx *Tx) Alerts(ctx context.Context, rule string, limit int) ([]Alert, error) {
	return tx.QueryAlerts(ctx, AlertQuery{Rule: rule, Limit: limit})
}

// QueryAlerts lists the alerts matching q, newest first.
func (tx *Tx) QueryAlerts(ctx context.Context, q AlertQuery) ([]Alert, error) {
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{{"rule", q.Rule}, {"status", q.Status}, {"severity", q.Severity}, {"actor_id", q.ActorID}} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	if q.Before != "" {
		where = append(where, `(at < (SELECT at FROM alerts WHERE id = ?) OR (at = (SELECT at FROM alerts WHERE id = ?) AND id < ?))`)
		args = append(args, q.Before, q.Before, q.Before)
	}
	sqlq := `SELECT ` + alertCols + ` FROM alerts`
	if len(where) > 0 {
		sqlq += ` WHERE ` + strings.Join(where, " AND ")
	}
	sqlq += ` ORDER BY at DESC, id DESC`
	if q.Limit > 0 {
		sqlq += ` LIMIT ?`
		args = append(args, q.Limit)
	}
	rows, err := tx.query(ctx, sqlq, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Alert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// UpdateAlert stores a's workflow fields (status, acknowledgement,
// resolution and note).
func (tx *Tx) UpdateAlert(ctx context.Context, a Alert) error {
	res, err := tx.exec(ctx, `UPDATE alerts SET status = ?, updated_at = ?, acked_by = ?, acked_at = ?, resolved_by = ?, resolved_at = ?,
		note = ?, note_key_version = ? WHERE id = ?`,
		a.Status, Micros(a.UpdatedAt), a.AckedBy, nullMicros(a.AckedAt), a.ResolvedBy, nullMicros(a.ResolvedAt), a.Note, a.NoteKeyVersion, a.ID)
	if err != nil {
		return err
	}
	return affected(res)
}

// CountAlerts counts alerts by rule and status (for metrics).
func (tx *Tx) CountAlerts(ctx context.Context) (map[[2]string]int, error) {
	rows, err := tx.query(ctx, `SELECT rule, status, COUNT(*) FROM alerts GROUP BY rule, status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[2]string]int{}
	for rows.Next() {
		var rule, status string
		var n int
		if err := rows.Scan(&rule, &status, &n); err != nil {
			return nil, err
		}
		out[[2]string{rule, status}] = n
	}
	return out, rows.Err()
}
