package store

import (
	"context"
	"database/sql"
	"time"
)

// KeyringEntry is a wrapped key of the keyring (master key, index key).
type KeyringEntry struct {
	Purpose   string
	Version   uint32
	Wrapped   []byte
	WrappedBy string
	CreatedAt time.Time
}

// KeyringEntries returns every entry of the keyring, newest version first per purpose.
func (tx *Tx) KeyringEntries(ctx context.Context) ([]KeyringEntry, error) {
	rows, err := tx.query(ctx, `SELECT purpose, version, wrapped, wrapped_by, created_at FROM keyring ORDER BY purpose, version DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []KeyringEntry
	for rows.Next() {
		var e KeyringEntry
		var at int64
		if err := rows.Scan(&e.Purpose, &e.Version, &e.Wrapped, &e.WrappedBy, &at); err != nil {
			return nil, err
		}
		e.CreatedAt = FromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// InsertKeyringEntry stores a wrapped key; ErrConflict if that version exists.
func (tx *Tx) InsertKeyringEntry(ctx context.Context, e KeyringEntry) error {
	_, err := tx.exec(ctx, `INSERT INTO keyring (purpose, version, wrapped, wrapped_by, created_at) VALUES (?, ?, ?, ?, ?)`,
		e.Purpose, e.Version, e.Wrapped, e.WrappedBy, Micros(e.CreatedAt))
	return err
}

// DataKey is a subject's wrapped data key.
type DataKey struct {
	Subject       string
	Version       uint32
	MasterVersion uint32
	Wrapped       []byte // nil once destroyed
	CreatedAt     time.Time
	DestroyedAt   *time.Time
}

// InsertDataKey stores a wrapped data key.
func (tx *Tx) InsertDataKey(ctx context.Context, k DataKey) error {
	_, err := tx.exec(ctx, `INSERT INTO data_keys (subject, version, master_version, wrapped, created_at) VALUES (?, ?, ?, ?, ?)`,
		k.Subject, k.Version, k.MasterVersion, k.Wrapped, Micros(k.CreatedAt))
	return err
}

// GetDataKey loads one version of a subject's data key.
func (tx *Tx) GetDataKey(ctx context.Context, subject string, version uint32) (DataKey, error) {
	k := DataKey{Subject: subject, Version: version}
	var at int64
	var destroyed sql.NullInt64
	err := tx.queryRow(ctx, `SELECT master_version, wrapped, created_at, destroyed_at FROM data_keys WHERE subject = ? AND version = ?`, subject, version).
		Scan(&k.MasterVersion, &k.Wrapped, &at, &destroyed)
	if err != nil {
		return DataKey{}, mapErr(err)
	}
	k.CreatedAt = FromMicros(at)
	k.DestroyedAt = timePtr(destroyed)
	return k, nil
}

// CountKeyring reports how many keyring entries exist (0: not initialized).
func (tx *Tx) CountKeyring(ctx context.Context) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM keyring`).Scan(&n)
	return n, mapErr(err)
}
