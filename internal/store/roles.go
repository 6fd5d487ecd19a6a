package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Role is a stored role. Permissions and Fields are interpreted by
// internal/access; the store keeps them as text.
type Role struct {
	Name              string
	Label             string
	Parent            string // "" for a root of the hierarchy
	SeeAll            bool
	Permissions       string // space-separated
	Fields            string // JSON object: field -> level
	RevealQuota       int    // reveals per user and day
	ClaimDaily        int    // pool claims per user and day; 0: no cap
	MaxOwned          int    // customers a holder may own before claiming more; 0: no cap
	ClaimCooldownDays int    // days before a previous owner may claim a customer back
	// TemplateVersion > 0 marks a template role nobody has edited: Custos
	// upgrades it when it ships a newer template. Editing sets it to 0.
	TemplateVersion int
	UpdatedAt       time.Time
}

const roleCols = `name, label, parent, see_all, permissions, fields, reveal_quota, claim_daily, max_owned, claim_cooldown_days, template_version, updated_at`

func scanRole(s interface{ Scan(...any) error }) (Role, error) {
	var r Role
	var parent sql.NullString
	var all int
	var upd int64
	if err := s.Scan(&r.Name, &r.Label, &parent, &all, &r.Permissions, &r.Fields, &r.RevealQuota, &r.ClaimDaily, &r.MaxOwned,
		&r.ClaimCooldownDays, &r.TemplateVersion, &upd); err != nil {
		return Role{}, mapErr(err)
	}
	r.Parent, r.SeeAll = parent.String, all != 0
	if upd != 0 {
		r.UpdatedAt = FromMicros(upd)
	}
	return r, nil
}

func roleArgs(r Role) []any {
	fields := r.Fields
	if fields == "" {
		fields = "{}"
	}
	return []any{r.Name, r.Label, nullString(r.Parent), boolInt(r.SeeAll), r.Permissions, fields, r.RevealQuota, r.ClaimDaily,
		r.MaxOwned, r.ClaimCooldownDays, r.TemplateVersion, Micros(r.UpdatedAt)}
}

// EnsureRole seeds a template role: inserted when missing, replaced when it
// is an unedited template of an older version, otherwise left alone.
func (tx *Tx) EnsureRole(ctx context.Context, r Role) error {
	_, err := tx.exec(ctx, `INSERT INTO roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET label = excluded.label, parent = excluded.parent, see_all = excluded.see_all,
			permissions = excluded.permissions, fields = excluded.fields, reveal_quota = excluded.reveal_quota,
			claim_daily = excluded.claim_daily, max_owned = excluded.max_owned, claim_cooldown_days = excluded.claim_cooldown_days,
			template_version = excluded.template_version, updated_at = excluded.updated_at
		WHERE roles.template_version > 0 AND roles.template_version < excluded.template_version`, roleArgs(r)...)
	return err
}

// InsertRole creates a role; ErrConflict when the name is taken.
func (tx *Tx) InsertRole(ctx context.Context, r Role) error {
	_, err := tx.exec(ctx, `INSERT INTO roles (`+roleCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, roleArgs(r)...)
	return err
}

// UpdateRole replaces a role's attributes (not its name).
func (tx *Tx) UpdateRole(ctx context.Context, r Role) error {
	a := roleArgs(r)
	res, err := tx.exec(ctx, `UPDATE roles SET label = ?, parent = ?, see_all = ?, permissions = ?, fields = ?, reveal_quota = ?,
		claim_daily = ?, max_owned = ?, claim_cooldown_days = ?, template_version = ?, updated_at = ? WHERE name = ?`,
		append(a[1:], a[0])...)
	if err != nil {
		return err
	}
	return affected(res)
}

// DeleteRole removes a role that no user holds and no role has as parent.
func (tx *Tx) DeleteRole(ctx context.Context, name string) error {
	var users, children int
	if err := tx.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM users WHERE role = ?), (SELECT COUNT(*) FROM roles WHERE parent = ?)`,
		name, name).Scan(&users, &children); err != nil {
		return mapErr(err)
	}
	if users > 0 || children > 0 {
		return fmt.Errorf("%w: role %q is held by %d users and is the parent of %d roles", ErrConflict, name, users, children)
	}
	if _, err := tx.exec(ctx, `DELETE FROM role_policies WHERE role = ?`, name); err != nil {
		return err
	}
	res, err := tx.exec(ctx, `DELETE FROM roles WHERE name = ?`, name)
	if err != nil {
		return err
	}
	return affected(res)
}

// GetRole loads a role.
func (tx *Tx) GetRole(ctx context.Context, name string) (Role, error) {
	return scanRole(tx.queryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE name = ?`, name))
}

// Roles lists all roles by name.
func (tx *Tx) Roles(ctx context.Context) ([]Role, error) {
	rows, err := tx.query(ctx, `SELECT `+roleCols+` FROM roles ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Role
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// --- shares -------------------------------------------------------------------

// Share gives a user or a role read or edit access to one customer.
type Share struct {
	ID         string
	CustomerID string
	UserID     string // exactly one of UserID and Role is set
	Role       string
	Level      string // "read" or "edit"
	GrantedBy  string
	CreatedAt  time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
}

// Active reports whether the share is in force at now: an expired share
// stops working at once, without a job.
func (s Share) Active(now time.Time) bool {
	return s.RevokedAt == nil && (s.ExpiresAt == nil || s.ExpiresAt.After(now))
}

const shareCols = `id, customer_id, user_id, role, level, granted_by, created_at, expires_at, revoked_at`

func scanShare(sc interface{ Scan(...any) error }) (Share, error) {
	var s Share
	var u, r sql.NullString
	var c int64
	var e, rv sql.NullInt64
	if err := sc.Scan(&s.ID, &s.CustomerID, &u, &r, &s.Level, &s.GrantedBy, &c, &e, &rv); err != nil {
		return Share{}, mapErr(err)
	}
	s.UserID, s.Role, s.CreatedAt, s.ExpiresAt, s.RevokedAt = u.String, r.String, FromMicros(c), timePtr(e), timePtr(rv)
	return s, nil
}

// InsertShare stores a share.
func (tx *Tx) InsertShare(ctx context.Context, s Share) error {
	_, err := tx.exec(ctx, `INSERT INTO shares (`+shareCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		s.ID, s.CustomerID, nullString(s.UserID), nullString(s.Role), s.Level, s.GrantedBy, Micros(s.CreatedAt),
		nullMicros(s.ExpiresAt), nullMicros(s.RevokedAt))
	return err
}

// GetShare loads a share.
func (tx *Tx) GetShare(ctx context.Context, id string) (Share, error) {
	return scanShare(tx.queryRow(ctx, `SELECT `+shareCols+` FROM shares WHERE id = ?`, id))
}

// CustomerShares lists the shares of a customer (active or not), newest first.
func (tx *Tx) CustomerShares(ctx context.Context, customerID string) ([]Share, error) {
	return tx.shares(ctx, `SELECT `+shareCols+` FROM shares WHERE customer_id = ? ORDER BY created_at DESC, id`, customerID)
}

// SharesFor lists the shares in force at now on the given customers that
// reach a user directly or through role.
func (tx *Tx) SharesFor(ctx context.Context, customerIDs []string, userID, role string, now time.Time) ([]Share, error) {
	if len(customerIDs) == 0 {
		return nil, nil
	}
	q := `SELECT ` + shareCols + ` FROM shares WHERE revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?) AND (user_id = ? OR role = ?)
		AND customer_id IN (` + placeholders(len(customerIDs)) + `) ORDER BY id`
	args := []any{Micros(now), userID, role}
	for _, id := range customerIDs {
		args = append(args, id)
	}
	return tx.shares(ctx, q, args...)
}

func (tx *Tx) shares(ctx context.Context, q string, args ...any) ([]Share, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Share
	for rows.Next() {
		s, err := scanShare(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// RevokeShare ends a share.
func (tx *Tx) RevokeShare(ctx context.Context, id string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE shares SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, Micros(at), id)
	if err != nil {
		return err
	}
	return affected(res)
}

// RevokeUserShares ends every share given to a user; it returns how many.
func (tx *Tx) RevokeUserShares(ctx context.Context, userID string, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE shares SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, Micros(at), userID)
	return rowsAffected(res, err)
}

// --- temporary grants -----------------------------------------------------------

// Grant gives one user one extra permission until it expires.
type Grant struct {
	ID         string
	UserID     string
	Permission string
	Reason     []byte // sealed
	KeyVersion uint32
	ApprovedBy string
	CreatedAt  time.Time
	ExpiresAt  time.Time
	RevokedAt  *time.Time
}

const grantCols = `id, user_id, permission, reason, key_version, approved_by, created_at, expires_at, revoked_at`

func scanGrant(sc interface{ Scan(...any) error }) (Grant, error) {
	var g Grant
	var c, e int64
	var r sql.NullInt64
	if err := sc.Scan(&g.ID, &g.UserID, &g.Permission, &g.Reason, &g.KeyVersion, &g.ApprovedBy, &c, &e, &r); err != nil {
		return Grant{}, mapErr(err)
	}
	g.CreatedAt, g.ExpiresAt, g.RevokedAt = FromMicros(c), FromMicros(e), timePtr(r)
	return g, nil
}

// InsertGrant stores a grant.
func (tx *Tx) InsertGrant(ctx context.Context, g Grant) error {
	_, err := tx.exec(ctx, `INSERT INTO grants (`+grantCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		g.ID, g.UserID, g.Permission, g.Reason, g.KeyVersion, g.ApprovedBy, Micros(g.CreatedAt), Micros(g.ExpiresAt), nullMicros(g.RevokedAt))
	return err
}

// ActiveGrants lists a user's grants in force at now.
func (tx *Tx) ActiveGrants(ctx context.Context, userID string, now time.Time) ([]Grant, error) {
	return tx.grants(ctx, `SELECT `+grantCols+` FROM grants WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY id`,
		userID, Micros(now))
}

// Grants lists grants, newest first: a user's when userID is set, else all.
func (tx *Tx) Grants(ctx context.Context, userID string) ([]Grant, error) {
	if userID != "" {
		return tx.grants(ctx, `SELECT `+grantCols+` FROM grants WHERE user_id = ? ORDER BY created_at DESC, id`, userID)
	}
	return tx.grants(ctx, `SELECT `+grantCols+` FROM grants ORDER BY created_at DESC, id`)
}

func (tx *Tx) grants(ctx context.Context, q string, args ...any) ([]Grant, error) {
	rows, err := tx.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// RevokeGrant ends a grant.
func (tx *Tx) RevokeGrant(ctx context.Context, id string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE grants SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`, Micros(at), id)
	if err != nil {
		return err
	}
	return affected(res)
}

// RevokeUserGrants ends every grant of a user; it returns how many were in force.
func (tx *Tx) RevokeUserGrants(ctx context.Context, userID string, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE grants SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL AND expires_at > ?`,
		Micros(at), userID, Micros(at))
	return rowsAffected(res, err)
}

// --- settings, counters, alerts -----------------------------------------------------

// Setting is one stored configuration value.
type Setting struct {
	Key       string
	Value     string
	UpdatedAt time.Time
	UpdatedBy string
}

// Settings returns every stored setting by key.
func (tx *Tx) Settings(ctx context.Context) (map[string]Setting, error) {
	rows, err := tx.query(ctx, `SELECT key, value, updated_at, updated_by FROM settings`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]Setting{}
	for rows.Next() {
		var s Setting
		var at int64
		if err := rows.Scan(&s.Key, &s.Value, &at, &s.UpdatedBy); err != nil {
			return nil, err
		}
		s.UpdatedAt = FromMicros(at)
		out[s.Key] = s
	}
	return out, rows.Err()
}

// PutSetting stores a setting; an empty value deletes it (back to the default).
func (tx *Tx) PutSetting(ctx context.Context, s Setting) error {
	if s.Value == "" {
		_, err := tx.exec(ctx, `DELETE FROM settings WHERE key = ?`, s.Key)
		return err
	}
	_, err := tx.exec(ctx, `INSERT INTO settings (key, value, updated_at, updated_by) VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
		s.Key, s.Value, Micros(s.UpdatedAt), s.UpdatedBy)
	return err
}

// BumpCounter adds one to a daily counter and returns the new count.
func (tx *Tx) BumpCounter(ctx context.Context, key, day string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `INSERT INTO quota_counters (key, day, count) VALUES (?, ?, 1)
		ON CONFLICT (key, day) DO UPDATE SET count = quota_counters.count + 1 RETURNING count`, key, day).Scan(&n)
	return n, mapErr(err)
}

func rowsAffected(res sql.Result, err error) (int, error) {
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}
