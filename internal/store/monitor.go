package store

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"time"
)

// Detector windows (internal/monitor). Counters are kept per key per
// minute, so a sliding window is a sum over the buckets it covers; distinct
// items (customers a user saw) are kept with the last time each was seen.
// Both live in the database, so they hold across restarts and nodes.

func minute(t time.Time) int64 { return t.Unix() / 60 }

// AddCount adds n to key's counter in the minute of at.
func (tx *Tx) AddCount(ctx context.Context, key string, at time.Time, n int) error {
	_, err := tx.exec(ctx, `INSERT INTO monitor_counts (key, bucket, count) VALUES (?, ?, ?)
		ON CONFLICT (key, bucket) DO UPDATE SET count = monitor_counts.count + excluded.count`, key, minute(at), n)
	return err
}

// SumCount sums key's counter over the minutes from since through now.
func (tx *Tx) SumCount(ctx context.Context, key string, since time.Time) (int, error) {
	var n sql.NullInt64
	err := tx.queryRow(ctx, `SELECT SUM(count) FROM monitor_counts WHERE key = ? AND bucket >= ?`, key, minute(since)).Scan(&n)
	return int(n.Int64), mapErr(err)
}

// MarkSeen records that each of items was seen in scope at at, and returns
// how many of them had not been seen since since (new to the window). Items
// seen within the last `fresh` before at keep their time, so re-reading the
// same records writes nothing.
func (tx *Tx) MarkSeen(ctx context.Context, scope string, items []string, at, since time.Time, fresh time.Duration) (int, error) {
	if len(items) == 0 {
		return 0, nil
	}
	uniq := make([]string, 0, len(items))
	dup := make(map[string]bool, len(items))
	for _, it := range items {
		if !dup[it] {
			dup[it] = true
			uniq = append(uniq, it)
		}
	}
	recentSince := at.Add(-fresh)
	if recentSince.Before(since) {
		recentSince = since
	}
	var added int
	const batch = 200
	for start := 0; start < len(uniq); start += batch {
		part := uniq[start:min(start+batch, len(uniq))]
		args := make([]any, 0, len(part)+2)
		args = append(args, scope, Micros(since))
		for _, it := range part {
			args = append(args, it)
		}
		rows, err := tx.query(ctx, `SELECT item, last_at FROM monitor_seen WHERE scope = ? AND last_at >= ? AND item IN (`+placeholders(len(part))+`)`, args...)
		if err != nil {
			return 0, err
		}
		inWindow := map[string]bool{}
		recent := map[string]bool{}
		for rows.Next() {
			var it string
			var last int64
			if err := rows.Scan(&it, &last); err != nil {
				rows.Close()
				return 0, err
			}
			inWindow[it] = true
			recent[it] = last >= Micros(recentSince)
		}
		if err := rows.Close(); err != nil {
			return 0, err
		}
		added += len(part) - len(inWindow)
		var vals []string
		args = args[:0]
		for _, it := range part {
			if recent[it] {
				continue
			}
			vals = append(vals, "(?, ?, ?, ?)")
			args = append(args, scope, it, Micros(at), Micros(at))
		}
		if len(vals) == 0 {
			continue
		}
		if _, err := tx.exec(ctx, `INSERT INTO monitor_seen (scope, item, first_at, last_at) VALUES `+strings.Join(vals, ", ")+`
			ON CONFLICT (scope, item) DO UPDATE SET last_at = CASE WHEN excluded.last_at > monitor_seen.last_at THEN excluded.last_at ELSE monitor_seen.last_at END`,
			args...); err != nil {
			return 0, err
		}
	}
	return added, nil
}

// CountSeen counts the items of scope seen since since, up to limit (0: no
// limit): a threshold check need not count past the threshold.
func (tx *Tx) CountSeen(ctx context.Context, scope string, since time.Time, limit int) (int, error) {
	var n int
	q, args := `SELECT COUNT(*) FROM monitor_seen WHERE scope = ? AND last_at >= ?`, []any{scope, Micros(since)}
	if limit > 0 {
		q = `SELECT COUNT(*) FROM (SELECT 1 FROM monitor_seen WHERE scope = ? AND last_at >= ? LIMIT ?) AS w`
		args = append(args, limit)
	}
	err := tx.queryRow(ctx, q, args...).Scan(&n)
	return n, mapErr(err)
}

// LastSeen returns when item was last seen in scope (ok false: never).
func (tx *Tx) LastSeen(ctx context.Context, scope, item string) (time.Time, bool, error) {
	var at int64
	err := tx.queryRow(ctx, `SELECT last_at FROM monitor_seen WHERE scope = ? AND item = ?`, scope, item).Scan(&at)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, err
	}
	return FromMicros(at), true, nil
}

// PruneMonitor drops counters older than countsBefore and seen items of
// scopes starting with prefix last seen before seenBefore.
func (tx *Tx) PruneMonitor(ctx context.Context, countsBefore time.Time, prefix string, seenBefore time.Time) error {
	if _, err := tx.exec(ctx, `DELETE FROM monitor_counts WHERE bucket < ?`, minute(countsBefore)); err != nil {
		return err
	}
	if prefix == "" {
		return nil
	}
	_, err := tx.exec(ctx, `DELETE FROM monitor_seen WHERE substr(scope, 1, ?) = ? AND last_at < ?`, len(prefix), prefix, Micros(seenBefore))
	return err
}

// MonitorState reads a detector state value (ok false: none). lock takes
// the row lock (PostgreSQL), which serializes nodes on the row.
func (tx *Tx) MonitorState(ctx context.Context, key string, lock bool) (value string, at time.Time, ok bool, err error) {
	q := `SELECT value, at FROM monitor_state WHERE key = ?`
	if lock && tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	var us int64
	err = tx.queryRow(ctx, q, key).Scan(&value, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, false, nil
	}
	if err != nil {
		return "", time.Time{}, false, err
	}
	return value, FromMicros(us), true, nil
}

// PutMonitorState stores a detector state value.
func (tx *Tx) PutMonitorState(ctx context.Context, key, value string, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO monitor_state (key, value, at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at`, key, value, Micros(at))
	return err
}

// EnsureMonitorState creates a state row unless it exists (so that a later
// locking read has a row to lock).
func (tx *Tx) EnsureMonitorState(ctx context.Context, key, value string, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO monitor_state (key, value, at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`, key, value, Micros(at))
	return err
}

// Suspension is a user suspended by a detector.
type Suspension struct {
	UserID  string
	At      time.Time
	Rule    string
	AlertID string
	Reason  string
}

// Suspend records a suspension; false when the user is already suspended.
func (tx *Tx) Suspend(ctx context.Context, s Suspension) (bool, error) {
	res, err := tx.exec(ctx, `INSERT INTO suspensions (user_id, at, rule, alert_id, reason) VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_id) DO NOTHING`,
		s.UserID, Micros(s.At), s.Rule, s.AlertID, s.Reason)
	n, err := rowsAffected(res, err)
	return n > 0, err
}

// GetSuspension returns a user's suspension (ErrNotFound: none).
func (tx *Tx) GetSuspension(ctx context.Context, userID string) (Suspension, error) {
	var s Suspension
	var at int64
	err := tx.queryRow(ctx, `SELECT user_id, at, rule, alert_id, reason FROM suspensions WHERE user_id = ?`, userID).
		Scan(&s.UserID, &at, &s.Rule, &s.AlertID, &s.Reason)
	s.At = FromMicros(at)
	return s, mapErr(err)
}

// Unsuspend lifts a suspension; false when there was none.
func (tx *Tx) Unsuspend(ctx context.Context, userID string) (bool, error) {
	n, err := rowsAffected(tx.exec(ctx, `DELETE FROM suspensions WHERE user_id = ?`, userID))
	return n > 0, err
}

// ClearSeen forgets every item of scope (a reinstated user starts a fresh
// window).
func (tx *Tx) ClearSeen(ctx context.Context, scope string) error {
	_, err := tx.exec(ctx, `DELETE FROM monitor_seen WHERE scope = ?`, scope)
	return err
}

// PruneMonitorState drops state rows whose key starts with prefix and
// whose time is before before.
func (tx *Tx) PruneMonitorState(ctx context.Context, prefix string, before time.Time) error {
	_, err := tx.exec(ctx, `DELETE FROM monitor_state WHERE substr(key, 1, ?) = ? AND at < ?`, len(prefix), prefix, Micros(before))
	return err
}

// SerializeUser takes the row lock of user id until the transaction ends
// (PostgreSQL), so one user's concurrent transactions run one after the
// other. SQLite's single writer serializes them already: a no-op there.
func (tx *Tx) SerializeUser(ctx context.Context, id string) error {
	if tx.dialect != Postgres {
		return nil
	}
	var one int
	err := tx.queryRow(ctx, `SELECT 1 FROM users WHERE id = ? FOR UPDATE`, id).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}
