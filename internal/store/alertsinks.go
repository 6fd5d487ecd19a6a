package store

import (
	"context"
	"database/sql"
	"time"
)

// Alert delivery statuses.
const (
	DeliveryPending = "pending"
	DeliverySent    = "sent"
	DeliveryFailed  = "failed" // given up
)

// AlertSink is a place alerts are sent to. Config is sealed (it holds URLs
// and secrets); Target is a redacted description for listings. The status
// fields describe the latest attempts; LastError never holds a secret.
type AlertSink struct {
	Name        string
	Kind        string
	MinSeverity string
	Enabled     bool
	Target      string
	Config      []byte // sealed JSON
	KeySubject  string // the data key that seals Config
	KeyVersion  uint32
	CreatedAt   time.Time
	UpdatedAt   time.Time

	LastOKAt            *time.Time
	LastErrorAt         *time.Time
	LastError           string
	ConsecutiveFailures int
}

const alertSinkCols = `name, kind, min_severity, enabled, target, config, key_subject, key_version, created_at, updated_at,
	last_ok_at, last_error_at, last_error, consecutive_failures`

func scanAlertSink(s interface{ Scan(...any) error }) (AlertSink, error) {
	var k AlertSink
	var enabled int
	var created, updated int64
	var ok, failed sql.NullInt64
	if err := s.Scan(&k.Name, &k.Kind, &k.MinSeverity, &enabled, &k.Target, &k.Config, &k.KeySubject, &k.KeyVersion, &created, &updated,
		&ok, &failed, &k.LastError, &k.ConsecutiveFailures); err != nil {
		return AlertSink{}, err
	}
	k.Enabled = enabled != 0
	k.CreatedAt, k.UpdatedAt = FromMicros(created), FromMicros(updated)
	k.LastOKAt, k.LastErrorAt = timePtr(ok), timePtr(failed)
	return k, nil
}

// InsertAlertSink stores a new sink; ErrConflict when the name is taken.
func (tx *Tx) InsertAlertSink(ctx context.Context, k AlertSink) error {
	_, err := tx.exec(ctx, `INSERT INTO alert_sinks (name, kind, min_severity, enabled, target, config, key_subject, key_version, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		k.Name, k.Kind, k.MinSeverity, boolInt(k.Enabled), k.Target, k.Config, k.KeySubject, k.KeyVersion, Micros(k.CreatedAt), Micros(k.UpdatedAt))
	return err
}

// UpdateAlertSink stores a sink's settings (severity, enabled, target,
// sealed config); its status fields are left alone. ErrNotFound when there
// is no such sink.
func (tx *Tx) UpdateAlertSink(ctx context.Context, k AlertSink) error {
	res, err := tx.exec(ctx, `UPDATE alert_sinks SET min_severity = ?, enabled = ?, target = ?, config = ?, key_version = ?, updated_at = ? WHERE name = ?`,
		k.MinSeverity, boolInt(k.Enabled), k.Target, k.Config, k.KeyVersion, Micros(k.UpdatedAt), k.Name)
	if err != nil {
		return err
	}
	return affected(res)
}

// DeleteAlertSink removes a sink with its deliveries; ErrNotFound when there
// is no such sink.
func (tx *Tx) DeleteAlertSink(ctx context.Context, name string) error {
	if _, err := tx.exec(ctx, `DELETE FROM alert_deliveries WHERE sink = ?`, name); err != nil {
		return err
	}
	res, err := tx.exec(ctx, `DELETE FROM alert_sinks WHERE name = ?`, name)
	if err != nil {
		return err
	}
	return affected(res)
}

// DestroyDataKeys crypto-shreds every version of subject's data key (used
// for keys that sealed nothing but one record's secrets, such as a deleted
// alert sink's configuration, so that no backup can reopen them).
func (tx *Tx) DestroyDataKeys(ctx context.Context, subject string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE data_keys SET wrapped = NULL, destroyed_at = ? WHERE subject = ? AND destroyed_at IS NULL`, Micros(at), subject)
	return err
}

// GetAlertSink returns one sink.
func (tx *Tx) GetAlertSink(ctx context.Context, name string) (AlertSink, error) {
	k, err := scanAlertSink(tx.queryRow(ctx, `SELECT `+alertSinkCols+` FROM alert_sinks WHERE name = ?`, name))
	return k, mapErr(err)
}

// AlertSinks lists every sink by name.
func (tx *Tx) AlertSinks(ctx context.Context) ([]AlertSink, error) {
	rows, err := tx.query(ctx, `SELECT `+alertSinkCols+` FROM alert_sinks ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertSink
	for rows.Next() {
		k, err := scanAlertSink(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
	}
	return out, rows.Err()
}

// RecordAlertSinkAttempt updates a sink's status after an attempt at at:
// errText "" is a success (clears the failure count), anything else a
// failure (the text must already be free of secrets).
func (tx *Tx) RecordAlertSinkAttempt(ctx context.Context, name string, at time.Time, errText string) error {
	var err error
	if errText == "" {
		_, err = tx.exec(ctx, `UPDATE alert_sinks SET last_ok_at = ?, consecutive_failures = 0 WHERE name = ?`, Micros(at), name)
	} else {
		_, err = tx.exec(ctx, `UPDATE alert_sinks SET last_error_at = ?, last_error = ?, consecutive_failures = consecutive_failures + 1 WHERE name = ?`,
			Micros(at), errText, name)
	}
	return err
}

// AlertDelivery is one alert to send to one sink.
type AlertDelivery struct {
	AlertID      string
	Sink         string
	Status       string
	Attempts     int
	NextAt       time.Time
	ClaimedUntil *time.Time
	Claim        string
	LastError    string
	CreatedAt    time.Time
	SentAt       *time.Time
}

const deliveryCols = `alert_id, sink, status, attempts, next_at, claimed_until, claim, last_error, created_at, sent_at`

func scanDelivery(s interface{ Scan(...any) error }) (AlertDelivery, error) {
	var d AlertDelivery
	var next, created int64
	var claimed, sent sql.NullInt64
	if err := s.Scan(&d.AlertID, &d.Sink, &d.Status, &d.Attempts, &next, &claimed, &d.Claim, &d.LastError, &created, &sent); err != nil {
		return AlertDelivery{}, err
	}
	d.NextAt, d.CreatedAt = FromMicros(next), FromMicros(created)
	d.ClaimedUntil, d.SentAt = timePtr(claimed), timePtr(sent)
	return d, nil
}

// EnqueueAlertDeliveries adds a pending delivery of alert alertID, due at
// at, to every enabled sink whose minimum severity is one of severities
// (the severities at or below the alert's). It returns how many it added.
func (tx *Tx) EnqueueAlertDeliveries(ctx context.Context, alertID string, severities []string, at time.Time) (int, error) {
	if len(severities) == 0 {
		return 0, nil
	}
	args := []any{alertID, DeliveryPending, Micros(at), Micros(at)}
	for _, s := range severities {
		args = append(args, s)
	}
	res, err := tx.exec(ctx, `INSERT INTO alert_deliveries (alert_id, sink, status, attempts, next_at, created_at)
		SELECT ?, name, ?, 0, ?, ? FROM alert_sinks WHERE enabled = 1 AND min_severity IN (`+placeholders(len(severities))+`)`, args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ClaimAlertDeliveries claims up to limit pending deliveries due at now for
// enabled sinks (except those named in skip), oldest due first, that no
// other claim holds: each gets claim, a lease until until, and one more
// attempt. A delivery claimed here is claimed by no one else until the
// lease ends, on every node.
func (tx *Tx) ClaimAlertDeliveries(ctx context.Context, now, until time.Time, claim string, limit int, skip []string) ([]AlertDelivery, error) {
	q := `SELECT d.alert_id, d.sink FROM alert_deliveries d JOIN alert_sinks s ON s.name = d.sink
		WHERE d.status = ? AND d.next_at <= ? AND (d.claimed_until IS NULL OR d.claimed_until <= ?) AND s.enabled = 1`
	args := []any{DeliveryPending, Micros(now), Micros(now)}
	if len(skip) > 0 {
		q += ` AND d.sink NOT IN (` + placeholders(len(skip)) + `)`
		for _, k := range skip {
			args = append(args, k)
		}
	}
	q += ` ORDER BY d.next_at, d.alert_id, d.sink LIMIT ?`
	args = append(args, limit)
	if tx.dialect == Postgres {
		q += ` FOR UPDATE OF d SKIP LOCKED`
	}
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	var keys [][2]string
	for rows.Next() {
		var k [2]string
		if err := rows.Scan(&k[0], &k[1]); err != nil {
			rows.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []AlertDelivery
	for _, k := range keys {
		// The conditions again: on PostgreSQL under READ COMMITTED a row
		// another transaction claimed meanwhile no longer matches.
		res, err := tx.exec(ctx, `UPDATE alert_deliveries SET claimed_until = ?, claim = ?, attempts = attempts + 1
			WHERE alert_id = ? AND sink = ? AND status = ? AND (claimed_until IS NULL OR claimed_until <= ?)`,
			Micros(until), claim, k[0], k[1], DeliveryPending, Micros(now))
		if err != nil {
			return nil, err
		}
		if n, err := res.RowsAffected(); err != nil {
			return nil, err
		} else if n == 0 {
			continue
		}
		d, err := scanDelivery(tx.queryRow(ctx, `SELECT `+deliveryCols+` FROM alert_deliveries WHERE alert_id = ? AND sink = ?`, k[0], k[1]))
		if err != nil {
			return nil, mapErr(err)
		}
		out = append(out, d)
	}
	return out, nil
}

// DeliveryOutcome is how an attempt ended.
type DeliveryOutcome struct {
	Status    string     // DeliverySent, DeliveryPending (retry at NextAt) or DeliveryFailed
	NextAt    time.Time  // when to retry (pending)
	SentAt    *time.Time // when it was sent (sent)
	LastError string     // free of secrets
}

// FinishAlertDelivery records the outcome of the attempt made under claim
// and ends the lease. It reports false, changing nothing, when the claim
// was lost (the lease ran out and another notifier claimed the delivery).
func (tx *Tx) FinishAlertDelivery(ctx context.Context, alertID, sink, claim string, o DeliveryOutcome) (bool, error) {
	res, err := tx.exec(ctx, `UPDATE alert_deliveries SET status = ?, next_at = ?, sent_at = ?, last_error = ?, claimed_until = NULL, claim = ''
		WHERE alert_id = ? AND sink = ? AND claim = ? AND status = ?`,
		o.Status, Micros(o.NextAt), nullMicros(o.SentAt), o.LastError, alertID, sink, claim, DeliveryPending)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// ReleaseAlertDelivery gives up a claim without recording an attempt (the
// notifier is stopping): the delivery is due again at once.
func (tx *Tx) ReleaseAlertDelivery(ctx context.Context, alertID, sink, claim string) error {
	_, err := tx.exec(ctx, `UPDATE alert_deliveries SET claimed_until = NULL, claim = '', attempts = attempts - 1
		WHERE alert_id = ? AND sink = ? AND claim = ? AND status = ?`, alertID, sink, claim, DeliveryPending)
	return err
}

// AlertDeliveries lists the deliveries of one alert (alertID set) or to one
// sink (sink set), oldest first.
func (tx *Tx) AlertDeliveries(ctx context.Context, alertID, sink string, limit int) ([]AlertDelivery, error) {
	q := `SELECT ` + deliveryCols + ` FROM alert_deliveries WHERE 1 = 1`
	var args []any
	if alertID != "" {
		q += ` AND alert_id = ?`
		args = append(args, alertID)
	}
	if sink != "" {
		q += ` AND sink = ?`
		args = append(args, sink)
	}
	q += ` ORDER BY created_at, alert_id, sink`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []AlertDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// CountAlertDeliveries counts deliveries by sink and status (for sink
// listings and metrics).
func (tx *Tx) CountAlertDeliveries(ctx context.Context) (map[[2]string]int, error) {
	rows, err := tx.query(ctx, `SELECT sink, status, COUNT(*) FROM alert_deliveries GROUP BY sink, status`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[2]string]int{}
	for rows.Next() {
		var sink, status string
		var n int
		if err := rows.Scan(&sink, &status, &n); err != nil {
			return nil, err
		}
		out[[2]string{sink, status}] = n
	}
	return out, rows.Err()
}
