package store

import (
	"context"
	"database/sql"
	"time"
)

// LoginThrottle is the failure counter of one key.
type LoginThrottle struct {
	Key         string
	Failures    int
	WindowStart time.Time
	LockedUntil *time.Time
}

// GetLoginThrottle reads a counter; a missing one is the zero value.
func (tx *Tx) GetLoginThrottle(ctx context.Context, key string) (LoginThrottle, error) {
	t := LoginThrottle{Key: key}
	var ws int64
	var locked sql.NullInt64
	err := tx.queryRow(ctx, `SELECT failures, window_start, locked_until FROM login_throttle WHERE key = ?`, key).Scan(&t.Failures, &ws, &locked)
	if err == sql.ErrNoRows {
		return LoginThrottle{Key: key}, nil
	}
	if err != nil {
		return LoginThrottle{}, mapErr(err)
	}
	t.WindowStart, t.LockedUntil = FromMicros(ws), timePtr(locked)
	return t, nil
}

// RecordLoginFailure counts one failure for key in a single atomic statement:
// the count restarts when the window has passed, and reaching threshold sets
// locked_until = now + lockFor. It returns the counter after the update.
// (A parameter that is only the result of a CASE has no type PostgreSQL can
// infer: the casts make it the column's.)
func (tx *Tx) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, threshold int, lockFor time.Duration) (LoginThrottle, error) {
	n, stale, until := Micros(now), Micros(now.Add(-window)), Micros(now.Add(lockFor))
	var t LoginThrottle
	var ws int64
	var locked sql.NullInt64
	err := tx.queryRow(ctx, `INSERT INTO login_throttle (key, failures, window_start, locked_until)
		VALUES (?, 1, ?, CASE WHEN 1 >= ? THEN CAST(? AS BIGINT) ELSE NULL END)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_throttle.window_start < ? THEN 1 ELSE login_throttle.failures + 1 END,
			window_start = CASE WHEN login_throttle.window_start < ? THEN ? ELSE login_throttle.window_start END,
			locked_until = CASE
				WHEN (CASE WHEN login_throttle.window_start < ? THEN 1 ELSE login_throttle.failures + 1 END) >= ? THEN CAST(? AS BIGINT)
				ELSE login_throttle.locked_until END
		RETURNING failures, window_start, locked_until`,
		key, n, threshold, until,
		stale,
		stale, n,
		stale, threshold, until,
	).Scan(&t.Failures, &ws, &locked)
	if err != nil {
		return LoginThrottle{}, mapErr(err)
	}
	t.Key, t.WindowStart, t.LockedUntil = key, FromMicros(ws), timePtr(locked)
	return t, nil
}

// ClearLoginThrottle removes a counter (successful login, admin unlock).
func (tx *Tx) ClearLoginThrottle(ctx context.Context, key string) error {
	_, err := tx.exec(ctx, `DELETE FROM login_throttle WHERE key = ?`, key)
	return err
}

// RolePolicy is the login policy of a role.
type RolePolicy struct {
	Role        string
	MFARequired bool
	IPAllowlist string // space-separated CIDRs
	LoginHours  string // "HH:MM-HH:MM" or ""
}

// EnsureRolePolicy inserts a role's default policy unless it has one.
func (tx *Tx) EnsureRolePolicy(ctx context.Context, p RolePolicy) error {
	_, err := tx.exec(ctx, `INSERT INTO role_policies (role, mfa_required, ip_allowlist, login_hours) VALUES (?, ?, ?, ?) ON CONFLICT (role) DO NOTHING`,
		p.Role, boolInt(p.MFARequired), p.IPAllowlist, p.LoginHours)
	return err
}

// GetRolePolicy reads a role's policy; a role without one gets the zero policy.
func (tx *Tx) GetRolePolicy(ctx context.Context, role string) (RolePolicy, error) {
	p := RolePolicy{Role: role}
	var mfa int
	err := tx.queryRow(ctx, `SELECT mfa_required, ip_allowlist, login_hours FROM role_policies WHERE role = ?`, role).Scan(&mfa, &p.IPAllowlist, &p.LoginHours)
	if err == sql.ErrNoRows {
		return RolePolicy{Role: role}, nil
	}
	p.MFARequired = mfa != 0
	return p, mapErr(err)
}

// SetRolePolicy writes a role's policy.
func (tx *Tx) SetRolePolicy(ctx context.Context, p RolePolicy) error {
	_, err := tx.exec(ctx, `INSERT INTO role_policies (role, mfa_required, ip_allowlist, login_hours) VALUES (?, ?, ?, ?)
		ON CONFLICT (role) DO UPDATE SET mfa_required = excluded.mfa_required, ip_allowlist = excluded.ip_allowlist, login_hours = excluded.login_hours`,
		p.Role, boolInt(p.MFARequired), p.IPAllowlist, p.LoginHours)
	return err
}

// TOTPFactor is a user's TOTP secret (sealed) and replay guard.
type TOTPFactor struct {
	UserID      string
	Secret      []byte
	KeyVersion  uint32
	CreatedAt   time.Time
	ConfirmedAt *time.Time
	LastStep    int64
}

// PutTOTP stores a new, unconfirmed factor, replacing an unconfirmed one. A
// confirmed factor is not replaced (ErrConflict): remove it first.
func (tx *Tx) PutTOTP(ctx context.Context, f TOTPFactor) error {
	res, err := tx.exec(ctx, `INSERT INTO totp_factors (user_id, secret, key_version, created_at, confirmed_at, last_step) VALUES (?, ?, ?, ?, NULL, 0)
		ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, key_version = excluded.key_version, created_at = excluded.created_at, last_step = 0
		WHERE totp_factors.confirmed_at IS NULL`, f.UserID, f.Secret, f.KeyVersion, Micros(f.CreatedAt))
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return ErrConflict
	}
	return nil
}

// GetTOTP loads a user's factor.
func (tx *Tx) GetTOTP(ctx context.Context, userID string) (TOTPFactor, error) {
	f := TOTPFactor{UserID: userID}
	var c int64
	var conf sql.NullInt64
	err := tx.queryRow(ctx, `SELECT secret, key_version, created_at, confirmed_at, last_step FROM totp_factors WHERE user_id = ?`, userID).
		Scan(&f.Secret, &f.KeyVersion, &c, &conf, &f.LastStep)
	if err != nil {
		return TOTPFactor{}, mapErr(err)
	}
	f.CreatedAt, f.ConfirmedAt = FromMicros(c), timePtr(conf)
	return f, nil
}

// UseTOTPStep records that the code of step was used, only if no later or
// equal step was used before (so two requests with one code cannot both
// pass), and confirms the factor. ErrConflict when the step was already used.
func (tx *Tx) UseTOTPStep(ctx context.Context, userID string, step int64, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE totp_factors SET last_step = ?, confirmed_at = COALESCE(confirmed_at, ?) WHERE user_id = ? AND last_step < ?`,
		step, Micros(at), userID, step)
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return ErrConflict
	}
	return nil
}

// DeleteTOTP removes a user's factor and recovery codes.
func (tx *Tx) DeleteTOTP(ctx context.Context, userID string) error {
	if _, err := tx.exec(ctx, `DELETE FROM totp_factors WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID)
	return err
}

// ReplaceRecoveryCodes stores a new set of recovery code hashes.
func (tx *Tx) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes [][]byte) error {
	if _, err := tx.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = ?`, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		if _, err := tx.exec(ctx, `INSERT INTO recovery_codes (user_id, hash) VALUES (?, ?)`, userID, h); err != nil {
			return err
		}
	}
	return nil
}

// UnusedRecoveryCodes returns the hashes of a user's unused recovery codes.
func (tx *Tx) UnusedRecoveryCodes(ctx context.Context, userID string) ([][]byte, error) {
	rows, err := tx.query(ctx, `SELECT hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL ORDER BY hash`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// UseRecoveryCode marks one code used; ErrConflict if it already was.
func (tx *Tx) UseRecoveryCode(ctx context.Context, userID string, hash []byte, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`, Micros(at), userID, hash)
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return ErrConflict
	}
	return nil
}

// MFAChallenge is a login waiting for its second factor.
type MFAChallenge struct {
	IDHash    []byte
	UserID    string
	IP        string
	CreatedAt time.Time
	ExpiresAt time.Time
	Attempts  int
}

// InsertMFAChallenge stores a challenge.
func (tx *Tx) InsertMFAChallenge(ctx context.Context, c MFAChallenge) error {
	_, err := tx.exec(ctx, `INSERT INTO mfa_challenges (id_hash, user_id, ip, created_at, expires_at, attempts) VALUES (?, ?, ?, ?, ?, 0)`,
		c.IDHash, c.UserID, c.IP, Micros(c.CreatedAt), Micros(c.ExpiresAt))
	return err
}

// GetMFAChallenge loads a challenge.
func (tx *Tx) GetMFAChallenge(ctx context.Context, idHash []byte) (MFAChallenge, error) {
	c := MFAChallenge{IDHash: idHash}
	var cr, ex int64
	err := tx.queryRow(ctx, `SELECT user_id, ip, created_at, expires_at, attempts FROM mfa_challenges WHERE id_hash = ?`, idHash).
		Scan(&c.UserID, &c.IP, &cr, &ex, &c.Attempts)
	if err != nil {
		return MFAChallenge{}, mapErr(err)
	}
	c.CreatedAt, c.ExpiresAt = FromMicros(cr), FromMicros(ex)
	return c, nil
}

// BumpMFAChallenge counts a failed attempt.
func (tx *Tx) BumpMFAChallenge(ctx context.Context, idHash []byte) error {
	_, err := tx.exec(ctx, `UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id_hash = ?`, idHash)
	return err
}

// DeleteMFAChallenge removes a challenge (used or expired).
func (tx *Tx) DeleteMFAChallenge(ctx context.Context, idHash []byte) error {
	_, err := tx.exec(ctx, `DELETE FROM mfa_challenges WHERE id_hash = ?`, idHash)
	return err
}

// RefundLoginAttempt gives back one reserved attempt of key (it proved to be
// a success), lifting a lock that this attempt alone had set.
func (tx *Tx) RefundLoginAttempt(ctx context.Context, key string, threshold int) error {
	_, err := tx.exec(ctx, `UPDATE login_throttle SET failures = failures - 1,
		locked_until = CASE WHEN failures - 1 < ? THEN NULL ELSE locked_until END
		WHERE key = ? AND failures > 0`, threshold, key)
	return err
}

// ClaimMFAAttempt takes one attempt of a live challenge atomically (so
// parallel requests cannot exceed max); ErrNotFound when the challenge is
// gone, expired or out of attempts.
func (tx *Tx) ClaimMFAAttempt(ctx context.Context, idHash []byte, now time.Time, max int) error {
	res, err := tx.exec(ctx, `UPDATE mfa_challenges SET attempts = attempts + 1 WHERE id_hash = ? AND attempts < ? AND expires_at > ?`,
		idHash, max, Micros(now))
	if err != nil {
		return err
	}
	return affected(res)
}
