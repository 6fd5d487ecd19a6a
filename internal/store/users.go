package store

import (
	"context"
	"database/sql"
	"time"
)

// User is a stored user; Email and Name are sealed.
type User struct {
	ID           string
	EmailBidx    []byte
	Email        []byte
	Name         []byte
	Role         string
	PasswordHash string
	KeyVersion   uint32
	Disabled     bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// MustChangePassword is set by an administrator's reset: the next
	// session may only change the password.
	MustChangePassword bool
	PasswordChangedAt  time.Time
	// Suspended is set while a detector's suspension stands (read only:
	// see Suspend and Unsuspend).
	Suspended bool
}

const userCols = `id, email_bidx, email, name, role, password_hash, key_version, disabled, created_at, updated_at, must_change_password, password_changed_at`

// userSelect reads userCols and whether a detector suspended the user.
const userSelect = userCols + `, EXISTS (SELECT 1 FROM suspensions WHERE suspensions.user_id = users.id)`

func scanUser(s interface{ Scan(...any) error }) (User, error) {
	var u User
	var dis, must int
	var c, up, pc int64
	if err := s.Scan(&u.ID, &u.EmailBidx, &u.Email, &u.Name, &u.Role, &u.PasswordHash, &u.KeyVersion, &dis, &c, &up, &must, &pc, &u.Suspended); err != nil {
		return User{}, mapErr(err)
	}
	u.Disabled, u.MustChangePassword = dis != 0, must != 0
	u.CreatedAt, u.UpdatedAt, u.PasswordChangedAt = FromMicros(c), FromMicros(up), FromMicros(pc)
	return u, nil
}

// InsertUser stores a new user; ErrConflict when the email is taken.
func (tx *Tx) InsertUser(ctx context.Context, u User) error {
	_, err := tx.exec(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.ID, u.EmailBidx, u.Email, u.Name, u.Role, u.PasswordHash, u.KeyVersion, boolInt(u.Disabled), Micros(u.CreatedAt), Micros(u.UpdatedAt),
		boolInt(u.MustChangePassword), Micros(u.PasswordChangedAt))
	return err
}

// GetUser loads a user by id.
func (tx *Tx) GetUser(ctx context.Context, id string) (User, error) {
	return scanUser(tx.queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE id = ?`, id))
}

// GetUserByEmailBidx loads a user by the blind index of their email.
func (tx *Tx) GetUserByEmailBidx(ctx context.Context, bidx []byte) (User, error) {
	return scanUser(tx.queryRow(ctx, `SELECT `+userSelect+` FROM users WHERE email_bidx = ?`, bidx))
}

// Users lists users ordered by id.
func (tx *Tx) Users(ctx context.Context) ([]User, error) {
	rows, err := tx.query(ctx, `SELECT `+userSelect+` FROM users ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// CountUsers counts users.
func (tx *Tx) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM users`).Scan(&n)
	return n, mapErr(err)
}

// UpdateUser stores role, disabled, password hash, key version and sealed fields of u.
func (tx *Tx) UpdateUser(ctx context.Context, u User) error {
	res, err := tx.exec(ctx, `UPDATE users SET email_bidx = ?, email = ?, name = ?, role = ?, password_hash = ?, key_version = ?, disabled = ?, updated_at = ?,
		must_change_password = ?, password_changed_at = ? WHERE id = ?`,
		u.EmailBidx, u.Email, u.Name, u.Role, u.PasswordHash, u.KeyVersion, boolInt(u.Disabled), Micros(u.UpdatedAt),
		boolInt(u.MustChangePassword), Micros(u.PasswordChangedAt), u.ID)
	if err != nil {
		return err
	}
	return affected(res)
}

// Session is a login session; the token itself is never stored.
type Session struct {
	IDHash          []byte
	UserID          string
	CSRFHash        []byte
	IP              string
	UserAgent       string
	CreatedAt       time.Time
	LastSeenAt      time.Time
	ExpiresAt       time.Time
	AuthenticatedAt time.Time  // last proof of identity (login, step-up)
	MFAAt           *time.Time // when a second factor was satisfied
}

const sessionCols = `id_hash, user_id, csrf_hash, ip, user_agent, created_at, last_seen_at, expires_at, authenticated_at, mfa_at`

func scanSession(sc interface{ Scan(...any) error }) (Session, error) {
	var s Session
	var c, l, e, a int64
	var m sql.NullInt64
	if err := sc.Scan(&s.IDHash, &s.UserID, &s.CSRFHash, &s.IP, &s.UserAgent, &c, &l, &e, &a, &m); err != nil {
		return Session{}, mapErr(err)
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt, s.AuthenticatedAt, s.MFAAt = FromMicros(c), FromMicros(l), FromMicros(e), FromMicros(a), timePtr(m)
	return s, nil
}

// InsertSession stores a session.
func (tx *Tx) InsertSession(ctx context.Context, s Session) error {
	_, err := tx.exec(ctx, `INSERT INTO sessions (`+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.IDHash, s.UserID, s.CSRFHash, s.IP, s.UserAgent, Micros(s.CreatedAt), Micros(s.LastSeenAt), Micros(s.ExpiresAt), Micros(s.AuthenticatedAt), nullMicros(s.MFAAt))
	return err
}

// GetSession loads a session by the hash of its token.
func (tx *Tx) GetSession(ctx context.Context, idHash []byte) (Session, error) {
	return scanSession(tx.queryRow(ctx, `SELECT `+sessionCols+` FROM sessions WHERE id_hash = ?`, idHash))
}

// UserSessions lists a user's sessions, newest first.
func (tx *Tx) UserSessions(ctx context.Context, userID string) ([]Session, error) {
	rows, err := tx.query(ctx, `SELECT `+sessionCols+` FROM sessions WHERE user_id = ? ORDER BY created_at DESC`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// TouchSession records activity on a session.
func (tx *Tx) TouchSession(ctx context.Context, idHash []byte, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, Micros(at), idHash)
	return err
}

// MarkSessionAuthenticated records a fresh proof of identity (step-up) and,
// when mfa is set, a satisfied second factor.
func (tx *Tx) MarkSessionAuthenticated(ctx context.Context, idHash []byte, at time.Time, mfa bool) error {
	if mfa {
		res, err := tx.exec(ctx, `UPDATE sessions SET authenticated_at = ?, mfa_at = ? WHERE id_hash = ?`, Micros(at), Micros(at), idHash)
		if err != nil {
			return err
		}
		return affected(res)
	}
	q := `UPDATE sessions SET authenticated_at = ? WHERE id_hash = ?`
	res, err := tx.exec(ctx, q, Micros(at), idHash)
	if err != nil {
		return err
	}
	return affected(res)
}

// DeleteSession removes one session.
func (tx *Tx) DeleteSession(ctx context.Context, idHash []byte) error {
	_, err := tx.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	return err
}

// DeleteOtherSessions removes every session of a user but keep.
func (tx *Tx) DeleteOtherSessions(ctx context.Context, userID string, keep []byte) error {
	_, err := tx.exec(ctx, `DELETE FROM sessions WHERE user_id = ? AND id_hash <> ?`, userID, keep)
	return err
}

// DeleteUserSessions removes every session of a user.
func (tx *Tx) DeleteUserSessions(ctx context.Context, userID string) error {
	_, err := tx.exec(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID)
	return err
}

// APIToken is an API token; only its hash is stored.
type APIToken struct {
	ID         string
	UserID     string
	Name       string
	Hash       []byte
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	LastUsedAt *time.Time
}

const tokenCols = `id, user_id, name, hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(s interface{ Scan(...any) error }) (APIToken, error) {
	var t APIToken
	var c int64
	var e, r, l sql.NullInt64
	if err := s.Scan(&t.ID, &t.UserID, &t.Name, &t.Hash, &c, &e, &r, &l); err != nil {
		return APIToken{}, mapErr(err)
	}
	t.CreatedAt = FromMicros(c)
	t.ExpiresAt, t.RevokedAt, t.LastUsedAt = timePtr(e), timePtr(r), timePtr(l)
	return t, nil
}

// InsertToken stores an API token.
func (tx *Tx) InsertToken(ctx context.Context, t APIToken) error {
	_, err := tx.exec(ctx, `INSERT INTO api_tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		t.ID, t.UserID, t.Name, t.Hash, Micros(t.CreatedAt), nullMicros(t.ExpiresAt), nullMicros(t.RevokedAt), nullMicros(t.LastUsedAt))
	return err
}

// GetTokenByHash loads a token by its hash.
func (tx *Tx) GetTokenByHash(ctx context.Context, hash []byte) (APIToken, error) {
	return scanToken(tx.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE hash = ?`, hash))
}

// GetToken loads a token by id.
func (tx *Tx) GetToken(ctx context.Context, id string) (APIToken, error) {
	return scanToken(tx.queryRow(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE id = ?`, id))
}

// UserTokens lists a user's tokens, newest first.
func (tx *Tx) UserTokens(ctx context.Context, userID string) ([]APIToken, error) {
	rows, err := tx.query(ctx, `SELECT `+tokenCols+` FROM api_tokens WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []APIToken
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken marks a token revoked (idempotent on an already revoked token).
func (tx *Tx) RevokeToken(ctx context.Context, id string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, Micros(at), id)
	if err != nil {
		return err
	}
	return affected(res)
}

// RevokeUserTokens revokes every token of a user.
func (tx *Tx) RevokeUserTokens(ctx context.Context, userID string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, Micros(at), userID)
	return err
}

// TouchToken records the last use of a token.
func (tx *Tx) TouchToken(ctx context.Context, id string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE api_tokens SET last_used_at = ? WHERE id = ?`, Micros(at), id)
	return err
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// UserLang returns the language a user chose for the pages ("" for none).
func (tx *Tx) UserLang(ctx context.Context, id string) (string, error) {
	var lang string
	err := tx.queryRow(ctx, `SELECT lang FROM users WHERE id = ?`, id).Scan(&lang)
	return lang, mapErr(err)
}

// SetUserLang stores the language a user chose for the pages.
func (tx *Tx) SetUserLang(ctx context.Context, id, lang string) error {
	res, err := tx.exec(ctx, `UPDATE users SET lang = ? WHERE id = ?`, lang, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err == nil && n == 0 {
		return ErrNotFound
	}
	return nil
}
