package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Passkey is a stored WebAuthn credential. Credential is the credential record
// of the WebAuthn library (public key, flags, authenticator data) as JSON; the
// store treats it as opaque. SignCount repeats the signature counter held in
// Credential so that a use can be recorded conditionally on it.
type Passkey struct {
	ID         []byte // credential id chosen by the authenticator
	UserID     string
	Name       string
	Credential []byte
	SignCount  int64
	CreatedAt  time.Time
	LastUsedAt *time.Time
}

const passkeyCols = `id, user_id, name, credential, sign_count, created_at, last_used_at`

func scanPasskey(s interface{ Scan(...any) error }) (Passkey, error) {
	var p Passkey
	var c int64
	var l sql.NullInt64
	if err := s.Scan(&p.ID, &p.UserID, &p.Name, &p.Credential, &p.SignCount, &c, &l); err != nil {
		return Passkey{}, mapErr(err)
	}
	p.CreatedAt, p.LastUsedAt = FromMicros(c), timePtr(l)
	return p, nil
}

// InsertPasskey stores a new passkey; ErrConflict when its id is taken.
func (tx *Tx) InsertPasskey(ctx context.Context, p Passkey) error {
	_, err := tx.exec(ctx, `INSERT INTO webauthn_credentials (`+passkeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		p.ID, p.UserID, p.Name, p.Credential, p.SignCount, Micros(p.CreatedAt), nullMicros(p.LastUsedAt))
	return err
}

// GetPasskey loads a passkey by credential id.
func (tx *Tx) GetPasskey(ctx context.Context, id []byte) (Passkey, error) {
	return scanPasskey(tx.queryRow(ctx, `SELECT `+passkeyCols+` FROM webauthn_credentials WHERE id = ?`, id))
}

// UserPasskeys lists a user's passkeys, oldest first.
func (tx *Tx) UserPasskeys(ctx context.Context, userID string) ([]Passkey, error) {
	rows, err := tx.query(ctx, `SELECT `+passkeyCols+` FROM webauthn_credentials WHERE user_id = ? ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CountUserPasskeys counts a user's passkeys.
func (tx *Tx) CountUserPasskeys(ctx context.Context, userID string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?`, userID).Scan(&n)
	return n, mapErr(err)
}

// DeletePasskey removes a passkey of userID; ErrNotFound when the user has no
// passkey with that id.
func (tx *Tx) DeletePasskey(ctx context.Context, userID string, id []byte) error {
	res, err := tx.exec(ctx, `DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`, id, userID)
	if err != nil {
		return err
	}
	return affected(res)
}

// RecordPasskeyUse stores the credential record and signature counter after a
// successful assertion, provided the stored counter is still prevCount; it
// returns ErrConflict otherwise (a concurrent use of the same credential got
// there first), so two assertions can never both advance from one counter.
func (tx *Tx) RecordPasskeyUse(ctx context.Context, id, credential []byte, prevCount, signCount int64, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE webauthn_credentials SET credential = ?, sign_count = ?, last_used_at = ? WHERE id = ? AND sign_count = ?`,
		credential, signCount, Micros(at), id, prevCount)
	if err != nil {
		return err
	}
	if err := affected(res); errors.Is(err, ErrNotFound) {
		return ErrConflict
	} else if err != nil {
		return err
	}
	return nil
}

// PasskeySession is the state of a WebAuthn ceremony between its begin and
// finish steps. IDHash is the SHA-256 of the token the browser holds; UserID
// is empty for a discoverable login, where the user is not yet known; Data is
// the library's session data as JSON.
type PasskeySession struct {
	IDHash    []byte
	UserID    string
	Kind      string // "register" or "login"
	Data      []byte
	CreatedAt time.Time
	ExpiresAt time.Time
}

// InsertPasskeySession stores a ceremony in progress.
func (tx *Tx) InsertPasskeySession(ctx context.Context, s PasskeySession) error {
	_, err := tx.exec(ctx, `INSERT INTO webauthn_sessions (id_hash, user_id, kind, data, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.IDHash, nullString(s.UserID), s.Kind, s.Data, Micros(s.CreatedAt), Micros(s.ExpiresAt))
	return err
}

// TakePasskeySession removes a ceremony and returns it, so that each can be
// finished at most once; ErrNotFound when there is none with that hash.
// Expiry is the caller's to check.
func (tx *Tx) TakePasskeySession(ctx context.Context, idHash []byte) (PasskeySession, error) {
	s := PasskeySession{IDHash: idHash}
	var user sql.NullString
	var c, e int64
	err := tx.queryRow(ctx, `DELETE FROM webauthn_sessions WHERE id_hash = ? RETURNING user_id, kind, data, created_at, expires_at`, idHash).
		Scan(&user, &s.Kind, &s.Data, &c, &e)
	if err != nil {
		return PasskeySession{}, mapErr(err)
	}
	s.UserID, s.CreatedAt, s.ExpiresAt = user.String, FromMicros(c), FromMicros(e)
	return s, nil
}

// DeleteExpiredPasskeySessions removes ceremonies that expired before now.
func (tx *Tx) DeleteExpiredPasskeySessions(ctx context.Context, now time.Time) error {
	_, err := tx.exec(ctx, `DELETE FROM webauthn_sessions WHERE expires_at < ?`, Micros(now))
	return err
}
