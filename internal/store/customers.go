package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// Scope is the set of customers a principal may see, computed by
// internal/access and applied here as a SQL predicate.
type Scope struct {
	All    bool     // every customer
	Owners []string // customers owned by these users
	Pool   bool     // unowned customers (the public pool)
}

// predicate returns the SQL condition on the customers alias a and its args.
func (s Scope) predicate(a string) (string, []any) {
	if s.All {
		return "1=1", nil
	}
	var parts []string
	var args []any
	if len(s.Owners) > 0 {
		parts = append(parts, a+".owner_id IN ("+placeholders(len(s.Owners))+")")
		for _, o := range s.Owners {
			args = append(args, o)
		}
	}
	if s.Pool {
		parts = append(parts, a+".owner_id IS NULL")
	}
	if len(parts) == 0 {
		return "1=0", nil
	}
	return "(" + strings.Join(parts, " OR ") + ")", args
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
}

const customerCols = `c.id, c.kind, c.owner_id, c.industry, c.level, c.source, c.status, c.key_version, c.name, c.phones, c.emails, c.address, c.id_number, c.tags, c.notes, c.created_by, c.created_at, c.updated_at, c.deleted_at, c.version`

func scanCustomer(s interface{ Scan(...any) error }) (Customer, error) {
	var c Customer
	var owner sql.NullString
	var created, updated int64
	var deleted sql.NullInt64
	err := s.Scan(&c.ID, &c.Kind, &owner, &c.Industry, &c.Level, &c.Source, &c.Status, &c.KeyVersion,
		&c.Name, &c.Phones, &c.Emails, &c.Address, &c.IDNumber, &c.Tags, &c.Notes, &c.CreatedBy, &created, &updated, &deleted, &c.Version)
	if err != nil {
		return Customer{}, mapErr(err)
	}
	c.OwnerID = owner.String
	c.CreatedAt, c.UpdatedAt = FromMicros(created), FromMicros(updated)
	c.DeletedAt = timePtr(deleted)
	return c, nil
}

// InsertCustomer stores a new customer.
func (tx *Tx) InsertCustomer(ctx context.Context, c Customer) error {
	_, err := tx.exec(ctx, `INSERT INTO customers (id, kind, owner_id, industry, level, source, status, key_version, name, phones, emails, address, id_number, tags, notes, created_by, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		c.ID, c.Kind, nullString(c.OwnerID), c.Industry, c.Level, c.Source, c.Status, c.KeyVersion,
		c.Name, c.Phones, c.Emails, c.Address, c.IDNumber, c.Tags, c.Notes, c.CreatedBy, Micros(c.CreatedAt), Micros(c.UpdatedAt))
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
	Terms   [][][]byte
	OwnerID string // optional filter
	Kind    string
	Level   string
	Status  string
	Before  string // cursor: only ids below this one (results are newest first)
	Limit   int    // 0: no limit
}

// ListCustomers returns live customers matching q, newest first.
func (tx *Tx) ListCustomers(ctx context.Context, q CustomerQuery) ([]Customer, error) {
	pred, args := q.Scope.predicate("c")
	var b strings.Builder
	b.WriteString(`SELECT ` + customerCols + ` FROM customers c WHERE c.deleted_at IS NULL AND ` + pred)
	if q.Terms != nil {
		if len(q.Terms) == 0 {
			return nil, nil
		}
		var alts []string
		for _, alt := range q.Terms {
			if len(alt) == 0 {
				return nil, fmt.Errorf("store: empty search alternative")
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
	if q.Before != "" {
		b.WriteString(" AND c.id < ?")
		args = append(args, q.Before)
	}
	b.WriteString(" ORDER BY c.id DESC")
	if q.Limit > 0 {
		b.WriteString(" LIMIT ?")
		args = append(args, q.Limit)
	}
	rows, err := tx.query(ctx, b.String(), args...)
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

// UpdateCustomer writes c if its stored version is still c.Version, and bumps
// the version. ErrConflict when someone else changed it first.
func (tx *Tx) UpdateCustomer(ctx context.Context, c Customer) error {
	res, err := tx.exec(ctx, `UPDATE customers SET kind = ?, owner_id = ?, industry = ?, level = ?, source = ?, status = ?, key_version = ?,
		name = ?, phones = ?, emails = ?, address = ?, id_number = ?, tags = ?, notes = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ? AND deleted_at IS NULL`,
		c.Kind, nullString(c.OwnerID), c.Industry, c.Level, c.Source, c.Status, c.KeyVersion,
		c.Name, c.Phones, c.Emails, c.Address, c.IDNumber, c.Tags, c.Notes, Micros(c.UpdatedAt), c.ID, c.Version)
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

// ReplaceTerms sets the blind-index terms that source contributes to a customer.
func (tx *Tx) ReplaceTerms(ctx context.Context, customerID, source string, terms [][]byte) error {
	if _, err := tx.exec(ctx, `DELETE FROM search_terms WHERE customer_id = ? AND source = ?`, customerID, source); err != nil {
		return err
	}
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
