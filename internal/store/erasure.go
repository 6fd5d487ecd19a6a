package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Erasure is one row of the erasure ledger: a customer erased
// (crypto-shredded), when and by whom. It holds no personal data.
type Erasure struct {
	CustomerID string
	ErasedAt   time.Time
	ErasedBy   string // the actor ("user:<id>", "cli:<os user>", ...)
}

// ErasureCandidate is what the guarded path needs to know of a customer
// before it erases it, whether the customer is live or soft-deleted.
type ErasureCandidate struct {
	ID         string
	OwnerID    string // "" for the public pool
	OwnerRole  string // role of the owner ("" in the pool)
	Hidden     bool
	Deleted    bool   // soft-deleted: gone from the API, still stored
	KeyVersion uint32 // the newest version of its data key (0: none)
}

// LockErasureCandidate loads customer id, live or soft-deleted, for an
// erasure: on PostgreSQL its row stays locked until the transaction ends, so
// two erasures of one customer are serialized (SQLite's write transactions
// are serialized already). ErrNotFound when there is no such row.
func (tx *Tx) LockErasureCandidate(ctx context.Context, id string) (ErasureCandidate, error) {
	q := `SELECT c.id, c.owner_id, c.hidden, c.deleted_at IS NOT NULL FROM customers c WHERE c.id = ?`
	if tx.dialect == Postgres {
		q += ` FOR UPDATE`
	}
	var c ErasureCandidate
	var owner sql.NullString
	var hidden int
	if err := tx.queryRow(ctx, q, id).Scan(&c.ID, &owner, &hidden, &c.Deleted); err != nil {
		return ErasureCandidate{}, mapErr(err)
	}
	c.OwnerID, c.Hidden = owner.String, hidden != 0
	if c.OwnerID != "" {
		var role sql.NullString
		if err := tx.queryRow(ctx, `SELECT role FROM users WHERE id = ?`, c.OwnerID).Scan(&role); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return ErasureCandidate{}, mapErr(err)
		}
		c.OwnerRole = role.String
	}
	if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM data_keys WHERE subject = ?`, id).Scan(&c.KeyVersion); err != nil {
		return ErasureCandidate{}, mapErr(err)
	}
	return c, nil
}

// EraseCustomerRows deletes everything stored under a customer: its
// interactions, contacts, shares and blind-index terms, and its customers
// row (live or soft-deleted); it crypto-shreds every version of its data key
// and records the erasure in the ledger. Erasing again keeps the first
// ledger row. The audit trail is left alone: its events stay chained, and
// the personal values they keep are sealed under the destroyed key.
// ErrNotFound when there is no such customer and no ledger row.
func (tx *Tx) EraseCustomerRows(ctx context.Context, e Erasure) error {
	var n int
	if err := tx.queryRow(ctx, `SELECT (SELECT COUNT(*) FROM customers WHERE id = ?) + (SELECT COUNT(*) FROM erasure_ledger WHERE customer_id = ?)`,
		e.CustomerID, e.CustomerID).Scan(&n); err != nil {
		return mapErr(err)
	}
	if n == 0 {
		return ErrNotFound
	}
	_, err := tx.eraseRows(ctx, e)
	return err
}

// eraseRows is EraseCustomerRows without the not-found rule; present says
// whether a customers row was there to delete.
func (tx *Tx) eraseRows(ctx context.Context, e Erasure) (present bool, err error) {
	if e.CustomerID == "" || e.ErasedBy == "" || e.ErasedAt.IsZero() {
		return false, fmt.Errorf("store: an erasure needs a customer, a time and an actor")
	}
	// Explicitly, child tables first: the schema's cascades would do it
	// too, but an erasure must not depend on a foreign key being there.
	// Interactions go before contacts (they may name one).
	for _, q := range []string{
		`DELETE FROM interactions WHERE customer_id = ?`,
		`DELETE FROM contacts WHERE customer_id = ?`,
		`DELETE FROM shares WHERE customer_id = ?`,
		`DELETE FROM search_terms WHERE customer_id = ?`,
	} {
		if _, err := tx.exec(ctx, q, e.CustomerID); err != nil {
			return false, err
		}
	}
	n, err := rowsAffected(tx.exec(ctx, `DELETE FROM customers WHERE id = ?`, e.CustomerID))
	if err != nil {
		return false, err
	}
	if err := tx.DestroyDataKeys(ctx, e.CustomerID, e.ErasedAt); err != nil {
		return false, err
	}
	return n > 0, tx.recordErasure(ctx, e)
}

// recordErasure writes e to the ledger unless the customer has a row there
// already (the first erasure is the one on record).
func (tx *Tx) recordErasure(ctx context.Context, e Erasure) error {
	_, err := tx.exec(ctx, `INSERT INTO erasure_ledger (customer_id, erased_at, erased_by) VALUES (?, ?, ?) ON CONFLICT (customer_id) DO NOTHING`,
		e.CustomerID, Micros(e.ErasedAt), e.ErasedBy)
	return err
}

// GetErasure returns the ledger row of a customer; ErrNotFound when it was
// never erased.
func (tx *Tx) GetErasure(ctx context.Context, customerID string) (Erasure, error) {
	e := Erasure{CustomerID: customerID}
	var at int64
	if err := tx.queryRow(ctx, `SELECT erased_at, erased_by FROM erasure_ledger WHERE customer_id = ?`, customerID).Scan(&at, &e.ErasedBy); err != nil {
		return Erasure{}, mapErr(err)
	}
	e.ErasedAt = FromMicros(at)
	return e, nil
}

// ErasureLedger lists every erasure, oldest first (by time, then id).
func (tx *Tx) ErasureLedger(ctx context.Context) ([]Erasure, error) {
	rows, err := tx.query(ctx, `SELECT customer_id, erased_at, erased_by FROM erasure_ledger ORDER BY erased_at, customer_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Erasure
	for rows.Next() {
		var e Erasure
		var at int64
		if err := rows.Scan(&e.CustomerID, &at, &e.ErasedBy); err != nil {
			return nil, err
		}
		e.ErasedAt = FromMicros(at)
		out = append(out, e)
	}
	return out, rows.Err()
}

// ApplyErasures makes every erasure of list true in this database (a
// restore applies the ledger of a newer backup, or of the live system, to
// an older backup): a listed customer still present is erased as by
// EraseCustomerRows, its data keys are destroyed either way, and every
// listed id gets its ledger row (an existing row is kept). It returns how
// many listed customers were present and erased.
func (tx *Tx) ApplyErasures(ctx context.Context, list []Erasure) (int, error) {
	n := 0
	for _, e := range list {
		present, err := tx.eraseRows(ctx, e)
		if err != nil {
			return n, fmt.Errorf("store: apply the erasure of %s: %w", e.CustomerID, err)
		}
		if present {
			n++
		}
	}
	return n, nil
}
