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
func (tx *Tx) RecordLoginFailure(ctx context.Context, key string, now time.Time, window time.Duration, threshold int, lockFor time.Duration) (LoginThrottle, error) {
	n, stale, until := Micros(now), Micros(now.Add(-window)), Micros(now.Add(lockFor))
	var t LoginThrottle
	var ws int64
	var locked sql.NullInt64
	err := tx.queryRow(ctx, `INSERT INTO login_throttle (key, failures, window_start, locked_until)
		VALUES (?, 1, ?, CASE WHEN 1 >= ? THEN ? ELSE NULL END)
		ON CONFLICT (key) DO UPDATE SET
			failures = CASE WHEN login_throttle.window_start < ? THEN 1 ELSE login_throttle.failures + 1 END,
			window_start = CASE WHEN login_throttle.window_start < ? THEN ? ELSE login_throttle.window_start END,
			locked_until = CASE
				WHEN (CASE WHEN login_throttle.window_start < ? THEN 1 ELSE login_throttle.failures + 1 END) >= ? THEN ?
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
