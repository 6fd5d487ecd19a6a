package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Hidden says how a scope treats hidden customers.
type Hidden int

// Hidden modes. The zero value excludes hidden customers.
const (
	HiddenExclude Hidden = iota // hidden customers are absent
	HiddenInclude               // hidden and visible customers
	HiddenOnly                  // only hidden customers
)

// Scope is the set of customers a principal may see, computed by
// internal/access and applied here as a SQL predicate. A customer is in
// scope when it is live, passes the Hidden mode, and is reached by one of
// the grounds: All; owned by UserID; owned by a user holding one of
// OwnerRoles; shared (in force at Now) with UserID or Role; or in the public
// pool when Pool is set. The zero Scope reaches nothing.
type Scope struct {
	All        bool
	UserID     string
	Role       string
	OwnerRoles []string
	Pool       bool
	Hidden     Hidden
	Now        time.Time
}

// predicate returns the SQL condition on the customers alias a and its args.
func (s Scope) predicate(a string) (string, []any) {
	var args []any
	hidden := ""
	switch s.Hidden {
	case HiddenExclude:
		hidden = a + ".hidden = 0 AND "
	case HiddenOnly:
		hidden = a + ".hidden = 1 AND "
	}
	if s.All {
		return "(" + hidden + "1=1)", nil
	}
	var parts []string
	if s.UserID != "" {
		parts = append(parts, a+".owner_id = ?")
		args = append(args, s.UserID)
	}
	if len(s.OwnerRoles) > 0 {
		parts = append(parts, a+".owner_id IN (SELECT u.id FROM users u WHERE u.role IN ("+placeholders(len(s.OwnerRoles))+"))")
		for _, r := range s.OwnerRoles {
			args = append(args, r)
		}
	}
	if s.UserID != "" || s.Role != "" {
		// Shares reach owned customers only: the pool is reached by claim.
		parts = append(parts, a+".owner_id IS NOT NULL AND EXISTS (SELECT 1 FROM shares s WHERE s.customer_id = "+a+".id AND s.revoked_at IS NULL"+
			" AND (s.expires_at IS NULL OR s.expires_at > ?) AND (s.user_id = ? OR s.role = ?))")
		args = append(args, Micros(s.Now), s.UserID, s.Role)
	}
	if s.Pool {
		parts = append(parts, a+".owner_id IS NULL")
	}
	if len(parts) == 0 {
		return "1=0", nil
	}
	return "(" + hidden + "(" + strings.Join(parts, " OR ") + "))", args
}

// Customer is a stored customer. Byte fields are ciphertext.
type Customer struct {
	ID         string
	Kind       string
	OwnerID    string // "" for the public pool
	Industry   string
	Level      string
	Source     string
	Status     string
	KeyVersion uint32
	Name       []byte
	Phones     []byte
	Emails     []byte
	Address    []byte
	IDNumber   []byte
	Tags       []byte
	Notes      []byte
	CreatedBy  string
	CreatedAt  time.Time
	UpdatedAt  time.Time
	DeletedAt  *time.Time
	Version    int64

	Hidden          bool
	LastActivityAt  time.Time // last interaction, claim or assignment
	PoolWarnedAt    *time.Time
	PreviousOwnerID string // who owned it before it went to the pool
	ReleasedAt      *time.Time
	OwnerRole       string // role of the owner (read only, "" in the pool)
}

const customerCols = `c.id, c.kind, c.owner_id, c.industry, c.level, c.source, c.status, c.key_version, c.name, c.phones, c.emails, c.address, c.id_number, c.tags, c.notes, c.created_by, c.created_at, c.updated_at, c.deleted_at, c.version,
	c.hidden, c.last_activity_at, c.pool_warned_at, c.previous_owner_id, c.released_at, COALESCE((SELECT u.role FROM users u WHERE u.id = c.owner_id), '')`

func scanCustomer(s interface{ Scan(...any) error }) (Customer, error) {
	var c Customer
	var owner sql.NullString
	var created, updated int64
	var deleted, warned, released sql.NullInt64
	var hidden int
	var activity int64
	var prev sql.NullString
	err := s.Scan(&c.ID, &c.Kind, &owner, &c.Industry, &c.Level, &c.Source, &c.Status, &c.KeyVersion,
		&c.Name, &c.Phones, &c.Emails, &c.Address, &c.IDNumber, &c.Tags, &c.Notes, &c.CreatedBy, &created, &updated, &deleted, &c.Version,
		&hidden, &activity, &warned, &prev, &released, &c.OwnerRole)
	if err != nil {
		return Customer{}, mapErr(err)
	}
	c.Hidden, c.LastActivityAt, c.PoolWarnedAt, c.PreviousOwnerID, c.ReleasedAt = hidden != 0, FromMicros(activity), timePtr(warned), prev.String, timePtr(released)
	c.OwnerID = owner.String
	c.CreatedAt, c.UpdatedAt = FromMicros(created), FromMicros(updated)
	c.DeletedAt = timePtr(deleted)
	return c, nil
}

// InsertCustomer stores a new customer.
func (tx *Tx) InsertCustomer(ctx context.Context, c Customer) error {
	activity := c.LastActivityAt
	if activity.IsZero() {
		activity = c.CreatedAt
	}
	_, err := tx.exec(ctx, `INSERT INTO customers (id, kind, owner_id, industry, level, source, status, key_version, name, phones, emails, address, id_number, tags, notes, created_by, created_at, updated_at, version, hidden, last_activity_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)`,
		c.ID, c.Kind, nullString(c.OwnerID), c.Industry, c.Level, c.Source, c.Status, c.KeyVersion,
		c.Name, c.Phones, c.Emails, c.Address, c.IDNumber, c.Tags, c.Notes, c.CreatedBy, Micros(c.CreatedAt), Micros(c.UpdatedAt),
		boolInt(c.Hidden), Micros(activity))
	return err
}

// GetCustomer loads a live customer inside scope; ErrNotFound otherwise, so
// that a customer outside the scope is indistinguishable from a missing one.
func (tx *Tx) GetCustomer(ctx context.Context, scope Scope, id string) (Customer, error) {
	pred, args := scope.predicate("c")
	q := `SELECT ` + customerCols + ` FROM customers c WHERE c.id = ? AND c.deleted_at IS NULL AND ` + pred
	return scanCustomer(tx.queryRow(ctx, q, append([]any{id}, args...)...))
}

// CustomerQuery selects customers for a list, search or export.
type CustomerQuery struct {
	Scope Scope
	// Terms, when non-nil, restricts to customers matching any alternative;
	// an alternative matches when every one of its blind-index terms does.
	Terms    [][][]byte
	OwnerID  string // optional filter
	Kind     string
	Level    string
	Status   string
	PoolOnly bool   // only customers in the public pool
	Before   string // cursor: only ids past this one in the order (below it, newest first)
	// Oldest orders the results oldest first (ids ascending; Before is
	// then a lower bound).
	Oldest bool
	Limit  int // 0: no limit
}

// where builds the WHERE clause of q (without ordering or limit). ok is
// false when q can match nothing (an empty set of search alternatives).
func (q CustomerQuery) where() (clause string, args []any, ok bool, err error) {
	pred, args := q.Scope.predicate("c")
	var b strings.Builder
	b.WriteString(` WHERE c.deleted_at IS NULL AND ` + pred)
	if q.Terms != nil {
		if len(q.Terms) == 0 {
			return "", nil, false, nil
		}
		var alts []string
		for _, alt := range q.Terms {
			if len(alt) == 0 {
				return "", nil, false, fmt.Errorf("store: empty search alternative")
			}
			sel := make([]string, len(alt))
			for i, term := range alt {
				sel[i] = `SELECT customer_id FROM search_terms WHERE term = ?`
				args = append(args, term)
			}
			alts = append(alts, "c.id IN ("+strings.Join(sel, " INTERSECT ")+")")
		}
		b.WriteString(" AND (" + strings.Join(alts, " OR ") + ")")
	}
	for _, f := range []struct{ col, val string }{{"owner_id", q.OwnerID}, {"kind", q.Kind}, {"level", q.Level}, {"status", q.Status}} {
		if f.val != "" {
			b.WriteString(" AND c." + f.col + " = ?")
			args = append(args, f.val)
		}
	}
	if q.PoolOnly {
		b.WriteString(" AND c.owner_id IS NULL")
	}
	if q.Before != "" {
		if q.Oldest {
			b.WriteString(" AND c.id > ?")
		} else {
			b.WriteString(" AND c.id < ?")
		}
		args = append(args, q.Before)
	}
	return b.String(), args, true, nil
}

// ListCustomers returns live customers matching q, newest first (or
// oldest first).
func (tx *Tx) ListCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	where, args, ok, err := q.where()
	if err != nil || !ok {
		return nil, err
	}
	order := ` ORDER BY c.id DESC`
	if q.Oldest {
		order = ` ORDER BY c.id`
	}
	query := `SELECT ` + customerCols + ` FROM customers c` + where + order
	if q.Limit > 0 {
		query += " LIMIT ?"
		args = append(args, q.Limit)
	}
	rows, err := tx.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Customer
	for rows.Next() {
		c, err := scanCustomer(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CountCustomers counts the live customers matching q (Before and Limit ignored).
func (tx *Tx) CountCustomers(ctx context.Context, q CustomerQuery) (int, error) {
	q.Before, q.Limit = "", 0
	where, args, ok, err := q.where()
	if err != nil || !ok {
		return 0, err
	}
	var n int
	err = tx.queryRow(ctx, `SELECT COUNT(*) FROM customers c`+where, args...).Scan(&n)
	return n, mapErr(err)
}

// UpdateCustomer writes c if its stored version is still c.Version, and bumps
// the version. ErrConflict when someone else changed it first.
func (tx *Tx) UpdateCustomer(ctx context.Context, c Customer) error {
	res, err := tx.exec(ctx, `UPDATE customers SET kind = ?, owner_id = ?, industry = ?, level = ?, source = ?, status = ?, key_version = ?,
		name = ?, phones = ?, emails = ?, address = ?, id_number = ?, tags = ?, notes = ?, updated_at = ?, version = version + 1,
		hidden = ?, last_activity_at = ?, pool_warned_at = ?, previous_owner_id = ?, released_at = ?
		WHERE id = ? AND version = ? AND deleted_at IS NULL`,
		c.Kind, nullString(c.OwnerID), c.Industry, c.Level, c.Source, c.Status, c.KeyVersion,
		c.Name, c.Phones, c.Emails, c.Address, c.IDNumber, c.Tags, c.Notes, Micros(c.UpdatedAt),
		boolInt(c.Hidden), Micros(c.LastActivityAt), nullMicros(c.PoolWarnedAt), nullString(c.PreviousOwnerID), nullMicros(c.ReleasedAt),
		c.ID, c.Version)
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return fmt.Errorf("%w: customer was changed by someone else", ErrConflict)
	}
	return nil
}

// SoftDeleteCustomer marks a customer deleted and drops its search terms.
func (tx *Tx) SoftDeleteCustomer(ctx context.Context, id string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE customers SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND deleted_at IS NULL`, Micros(at), Micros(at), id)
	if err != nil {
		return err
	}
	if err := affected(res); err != nil {
		return err
	}
	_, err = tx.exec(ctx, `DELETE FROM search_terms WHERE customer_id = ?`, id)
	return err
}

// ReplaceTerms sets the blind-index terms that source contributes to a
// customer. Only the terms that differ are deleted or inserted: an edit
// that leaves most of them as they were writes little (and gives the
// backups' change log little to carry).
func (tx *Tx) ReplaceTerms(ctx context.Context, customerID, source string, terms [][]byte) error {
	rows, err := tx.query(ctx, `SELECT term FROM search_terms WHERE customer_id = ? AND source = ?`, customerID, source)
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for rows.Next() {
		var t []byte
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		have[string(t)] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	want := map[string]bool{}
	var add [][]byte
	for _, t := range terms {
		k := string(t)
		if want[k] {
			continue
		}
		want[k] = true
		if !have[k] {
			add = append(add, t)
		}
	}
	for k := range have {
		if !want[k] {
			if _, err := tx.exec(ctx, `DELETE FROM search_terms WHERE term = ? AND customer_id = ? AND source = ?`, []byte(k), customerID, source); err != nil {
				return err
			}
		}
	}
	terms = add
	const batch = 100
	for start := 0; start < len(terms); start += batch {
		end := min(start+batch, len(terms))
		var b strings.Builder
		b.WriteString(`INSERT INTO search_terms (term, customer_id, source) VALUES `)
		args := make([]any, 0, 3*(end-start))
		for i, t := range terms[start:end] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("(?, ?, ?)")
			args = append(args, t, customerID, source)
		}
		b.WriteString(` ON CONFLICT DO NOTHING`)
		if _, err := tx.exec(ctx, b.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// CountSearchTerms counts the stored terms of a customer (for tests and stats).
func (tx *Tx) CountSearchTerms(ctx context.Context, customerID string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM search_terms WHERE customer_id = ?`, customerID).Scan(&n)
	return n, mapErr(err)
}

// LockCustomer is GetCustomer for a write: on PostgreSQL the row is locked
// (SELECT ... FOR UPDATE) until the transaction ends, so a reassignment
// committed meanwhile cannot slip between the visibility check and the write
// (READ COMMITTED re-checks the scope on the locked row). SQLite's write
// transactions are serialized already.
func (tx *Tx) LockCustomer(ctx context.Context, scope Scope, id string) (Customer, error) {
	pred, args := scope.predicate("c")
	q := `SELECT ` + customerCols + ` FROM customers c WHERE c.id = ? AND c.deleted_at IS NULL AND ` + pred
	if tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	return scanCustomer(tx.queryRow(ctx, q, append([]any{id}, args...)...))
}

// OwnedCustomerIDs lists the live customers a user owns, oldest first.
func (tx *Tx) OwnedCustomerIDs(ctx context.Context, userID string) ([]string, error) {
	rows, err := tx.query(ctx, `SELECT id FROM customers WHERE owner_id = ? AND deleted_at IS NULL ORDER BY id`, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

// CountOwned counts the live customers a user owns.
func (tx *Tx) CountOwned(ctx context.Context, userID string) (int, error) {
	var n int
	err := tx.queryRow(ctx, `SELECT COUNT(*) FROM customers WHERE owner_id = ? AND deleted_at IS NULL`, userID).Scan(&n)
	return n, mapErr(err)
}

// Transfer moves a live customer from one owner to another ("" is the
// public pool), restarting its pool clock. It fails with ErrNotFound unless
// the customer is still owned by from ("" meaning the pool).
func (tx *Tx) Transfer(ctx context.Context, id, from, to string, at time.Time) error {
	set := `owner_id = ?, last_activity_at = ?, pool_warned_at = NULL, updated_at = ?, version = version + 1`
	args := []any{nullString(to), Micros(at), Micros(at)}
	if from != "" { // leaving an owner: remember whose it was, and when it went to the pool
		var released any
		if to == "" {
			released = Micros(at)
		}
		set += `, previous_owner_id = ?, released_at = ?`
		args = append(args, from, released)
	}
	cond := ` AND owner_id IS NULL`
	args = append(args, id)
	if from != "" {
		cond = ` AND owner_id = ?`
		args = append(args, from)
	}
	res, err := tx.exec(ctx, `UPDATE customers SET `+set+` WHERE id = ? AND deleted_at IS NULL`+cond, args...)
	if err != nil {
		return err
	}
	return affected(res)
}

// TouchCustomerActivity restarts a customer's pool clock.
func (tx *Tx) TouchCustomerActivity(ctx context.Context, id string, at time.Time) error {
	_, err := tx.exec(ctx, `UPDATE customers SET last_activity_at = ?, pool_warned_at = NULL WHERE id = ? AND deleted_at IS NULL`, Micros(at), id)
	return err
}

// DormantCustomer is an owned customer whose pool clock has run.
type DormantCustomer struct {
	ID             string
	OwnerID        string
	Level          string
	LastActivityAt time.Time
	Warned         bool
}

// DormantCustomers lists owned live customers with no activity since before,
// oldest activity first, at most limit, after the cursor (activity, id) of
// the previous page (zero time and "" for the first).
func (tx *Tx) DormantCustomers(ctx context.Context, before, afterAt time.Time, afterID string, limit int) ([]DormantCustomer, error) {
	rows, err := tx.query(ctx, `SELECT id, owner_id, level, last_activity_at, pool_warned_at IS NOT NULL FROM customers
		WHERE owner_id IS NOT NULL AND deleted_at IS NULL AND last_activity_at < ?
		AND (last_activity_at > ? OR (last_activity_at = ? AND id > ?)) ORDER BY last_activity_at, id LIMIT ?`,
		Micros(before), Micros(afterAt), Micros(afterAt), afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []DormantCustomer
	for rows.Next() {
		var d DormantCustomer
		var at int64
		var warned bool
		if err := rows.Scan(&d.ID, &d.OwnerID, &d.Level, &at, &warned); err != nil {
			return nil, err
		}
		d.LastActivityAt, d.Warned = FromMicros(at), warned
		out = append(out, d)
	}
	return out, rows.Err()
}

// MarkPoolWarned records that owner was warned of a return to the pool,
// unless the customer changed meanwhile (another owner, new activity, a
// warning already given): it reports whether it marked the customer.
func (tx *Tx) MarkPoolWarned(ctx context.Context, id, owner string, activity, at time.Time) (bool, error) {
	res, err := tx.exec(ctx, `UPDATE customers SET pool_warned_at = ? WHERE id = ? AND owner_id = ? AND last_activity_at = ?
		AND pool_warned_at IS NULL AND deleted_at IS NULL`, Micros(at), id, owner, Micros(activity))
	n, err := rowsAffected(res, err)
	return n == 1, err
}

// RevokeCustomerShares ends every share of a customer (its owner changed:
// the shares were the previous owner's to give).
func (tx *Tx) RevokeCustomerShares(ctx context.Context, customerID string, at time.Time) (int, error) {
	res, err := tx.exec(ctx, `UPDATE shares SET revoked_at = ? WHERE customer_id = ? AND revoked_at IS NULL`, Micros(at), customerID)
	return rowsAffected(res, err)
}

// LockUser loads a user for a write that depends on it (its state, the
// customers it owns): on PostgreSQL the row stays locked until the
// transaction ends, so claims, assignments and offboarding of one user are
// serialized. SQLite's write transactions are serialized already.
func (tx *Tx) LockUser(ctx context.Context, id string) (User, error) {
	q := `SELECT ` + userSelect + ` FROM users WHERE id = ?`
	if tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	return scanUser(tx.queryRow(ctx, q, id))
}
