package store

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Export request statuses.
const (
	ExportPending   = "pending"
	ExportApproved  = "approved"
	ExportRejected  = "rejected"
	ExportCancelled = "cancelled"
	ExportExpired   = "expired"
)

// ExportRequest is a stored export request. Sealed is ciphertext (the list
// query and the password-derived key, under the request's data key); every
// other column is free of personal data.
type ExportRequest struct {
	ID          string
	RequesterID string // user id; "" for the operator at the command line
	Requester   string // the requester's actor
	Status      string
	Format      string
	Reveal      string // space-separated field names
	Filters     string // JSON object
	RowCount    int
	Encryption  string
	Recipient   string
	KeyVersion  uint32
	Sealed      []byte
	CreatedAt   time.Time
	DecidedBy   string
	DeciderID   string
	DecidedAt   *time.Time
	ExpiresAt   *time.Time
	FileRows    int
	FileSize    int64
	Downloads   int
}

const exportCols = `id, requester_id, requester, status, format, reveal, filters, row_count, encryption, recipient, key_version, sealed,
	created_at, decided_by, decider_id, decided_at, expires_at, file_rows, file_size, downloads`

func scanExport(s interface{ Scan(...any) error }) (ExportRequest, error) {
	var r ExportRequest
	var created int64
	var decided, expires sql.NullInt64
	err := s.Scan(&r.ID, &r.RequesterID, &r.Requester, &r.Status, &r.Format, &r.Reveal, &r.Filters, &r.RowCount, &r.Encryption,
		&r.Recipient, &r.KeyVersion, &r.Sealed, &created, &r.DecidedBy, &r.DeciderID, &decided, &expires, &r.FileRows, &r.FileSize, &r.Downloads)
	if err != nil {
		return ExportRequest{}, mapErr(err)
	}
	r.CreatedAt, r.DecidedAt, r.ExpiresAt = FromMicros(created), timePtr(decided), timePtr(expires)
	return r, nil
}

// InsertExportRequest stores a new request.
func (tx *Tx) InsertExportRequest(ctx context.Context, r ExportRequest) error {
	_, err := tx.exec(ctx, `INSERT INTO export_requests (`+exportCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.RequesterID, r.Requester, r.Status, r.Format, r.Reveal, r.Filters, r.RowCount, r.Encryption, r.Recipient, r.KeyVersion, r.Sealed,
		Micros(r.CreatedAt), r.DecidedBy, r.DeciderID, nullMicros(r.DecidedAt), nullMicros(r.ExpiresAt), r.FileRows, r.FileSize, r.Downloads)
	return err
}

// GetExportRequest loads one request; lock takes its row lock (PostgreSQL;
// SQLite write transactions are serialized anyway).
func (tx *Tx) GetExportRequest(ctx context.Context, id string, lock bool) (ExportRequest, error) {
	q := `SELECT ` + exportCols + ` FROM export_requests WHERE id = ?`
	if lock && tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	return scanExport(tx.queryRow(ctx, q, id))
}

// ExportQuery selects requests: those of one requester (RequesterID, or for
// the command-line operator an empty RequesterID and its Actor), plus the
// pending requests of everyone else when OthersPending is set.
type ExportQuery struct {
	RequesterID   string
	Actor         string
	OthersPending bool
	Status        string // "" for every status
	Before        string // id: older requests than this one (paging, newest first)
	Limit         int
}

// ListExportRequests returns requests newest first.
func (tx *Tx) ListExportRequests(ctx context.Context, q ExportQuery) ([]ExportRequest, error) {
	var where []string
	var args []any
	mine := `(requester_id = ? AND requester_id <> '')`
	args = append(args, q.RequesterID)
	if q.RequesterID == "" {
		mine = `(requester_id = '' AND requester = ?)`
		args[0] = q.Actor
	}
	if q.OthersPending {
		mine = `(` + mine + ` OR status = 'pending')`
	}
	where = append(where, mine)
	if q.Status != "" {
		where = append(where, `status = ?`)
		args = append(args, q.Status)
	}
	if q.Before != "" {
		where = append(where, `id < ?`)
		args = append(args, q.Before)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = 100
	}
	args = append(args, limit)
	rows, err := tx.query(ctx, `SELECT `+exportCols+` FROM export_requests WHERE `+strings.Join(where, " AND ")+` ORDER BY id DESC LIMIT ?`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExportRequest
	for rows.Next() {
		r, err := scanExport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ExportDecision moves a request out of a status.
type ExportDecision struct {
	Status    string
	DecidedBy string
	DeciderID string
	DecidedAt time.Time
	ExpiresAt *time.Time
	FileRows  int
	FileSize  int64
}

// DecideExportRequest moves request id from status from to d.Status and
// erases its sealed column. ErrNotFound when the request is not (or no
// longer) in status from: another decision came first.
func (tx *Tx) DecideExportRequest(ctx context.Context, id, from string, d ExportDecision) error {
	res, err := tx.exec(ctx, `UPDATE export_requests SET status = ?, decided_by = ?, decider_id = ?, decided_at = ?, expires_at = ?,
		file_rows = ?, file_size = ?, sealed = NULL WHERE id = ? AND status = ?`,
		d.Status, d.DecidedBy, d.DeciderID, Micros(d.DecidedAt), nullMicros(d.ExpiresAt), d.FileRows, d.FileSize, id, from)
	if err != nil {
		return err
	}
	return affected(res)
}

// DestroyExportKey destroys the data key of export request id (its sealed
// values are then unreadable anywhere, backups included). Only the key of an
// existing export request is touched.
func (tx *Tx) DestroyExportKey(ctx context.Context, id string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE data_keys SET wrapped = NULL, destroyed_at = ?
		WHERE subject = ? AND wrapped IS NOT NULL AND EXISTS (SELECT 1 FROM export_requests e WHERE e.id = data_keys.subject)`, Micros(at), id)
	return err
}

// InsertExportFile stores the encrypted file of an approved request.
func (tx *Tx) InsertExportFile(ctx context.Context, id string, data []byte, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO export_files (request_id, data, created_at) VALUES (?, ?, ?)`, id, data, Micros(at))
	return err
}

// ExportFile returns the encrypted file of request id.
func (tx *Tx) ExportFile(ctx context.Context, id string) ([]byte, error) {
	var data []byte
	err := tx.queryRow(ctx, `SELECT data FROM export_files WHERE request_id = ?`, id).Scan(&data)
	return data, mapErr(err)
}

// CountExportDownload adds one to the downloads of request id and returns
// the new count.
func (tx *Tx) CountExportDownload(ctx context.Context, id string) (int, error) {
	res, err := tx.exec(ctx, `UPDATE export_requests SET downloads = downloads + 1 WHERE id = ?`, id)
	if err != nil {
		return 0, err
	}
	if err := affected(res); err != nil {
		return 0, err
	}
	var n int
	err = tx.queryRow(ctx, `SELECT downloads FROM export_requests WHERE id = ?`, id).Scan(&n)
	return n, mapErr(err)
}

// DueExports lists approved requests whose files expired at or before now.
func (tx *Tx) DueExports(ctx context.Context, now time.Time, limit int) ([]ExportRequest, error) {
	rows, err := tx.query(ctx, `SELECT `+exportCols+` FROM export_requests WHERE status = 'approved' AND expires_at <= ? ORDER BY id LIMIT ?`, Micros(now), limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ExportRequest
	for rows.Next() {
		r, err := scanExport(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ExpireExport marks approved request id expired and deletes its file.
// ErrNotFound when it is not approved (any more).
func (tx *Tx) ExpireExport(ctx context.Context, id string) error {
	res, err := tx.exec(ctx, `UPDATE export_requests SET status = 'expired' WHERE id = ? AND status = 'approved'`, id)
	if err != nil {
		return err
	}
	if err := affected(res); err != nil {
		return err
	}
	_, err = tx.exec(ctx, `DELETE FROM export_files WHERE request_id = ?`, id)
	return err
}
