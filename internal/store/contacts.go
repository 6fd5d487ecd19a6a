package store

import (
	"context"
	"database/sql"
	"time"
)

// Contact is a person at a customer. Byte fields are ciphertext under the
// customer's data key.
type Contact struct {
	ID         string
	CustomerID string
	KeyVersion uint32
	Name       []byte
	Title      []byte
	Phones     []byte
	Emails     []byte
	Notes      []byte
	CreatedAt  time.Time
	UpdatedAt  time.Time
	Version    int64
}

const contactCols = `t.id, t.customer_id, t.key_version, t.name, t.title, t.phones, t.emails, t.notes, t.created_at, t.updated_at, t.version`

func scanContact(s interface{ Scan(...any) error }) (Contact, error) {
	var c Contact
	var created, updated int64
	if err := s.Scan(&c.ID, &c.CustomerID, &c.KeyVersion, &c.Name, &c.Title, &c.Phones, &c.Emails, &c.Notes, &created, &updated, &c.Version); err != nil {
		return Contact{}, mapErr(err)
	}
	c.CreatedAt, c.UpdatedAt = FromMicros(created), FromMicros(updated)
	return c, nil
}

// InsertContact stores a contact.
func (tx *Tx) InsertContact(ctx context.Context, c Contact) error {
	_, err := tx.exec(ctx, `INSERT INTO contacts (id, customer_id, key_version, name, title, phones, emails, notes, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		c.ID, c.CustomerID, c.KeyVersion, c.Name, c.Title, c.Phones, c.Emails, c.Notes, Micros(c.CreatedAt), Micros(c.UpdatedAt))
	return err
}

// GetContact loads a live contact of a live customer inside scope.
func (tx *Tx) GetContact(ctx context.Context, scope Scope, id string) (Contact, error) {
	pred, args := scope.predicate("c")
	q := `SELECT ` + contactCols + ` FROM contacts t JOIN customers c ON c.id = t.customer_id
		WHERE t.id = ? AND t.deleted_at IS NULL AND c.deleted_at IS NULL AND ` + pred
	return scanContact(tx.queryRow(ctx, q, append([]any{id}, args...)...))
}

// ListContacts returns the live contacts of a customer (the caller has
// already checked the customer is in scope), oldest first.
func (tx *Tx) ListContacts(ctx context.Context, customerID string) ([]Contact, error) {
	rows, err := tx.query(ctx, `SELECT `+contactCols+` FROM contacts t WHERE t.customer_id = ? AND t.deleted_at IS NULL ORDER BY t.id`, customerID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Contact
	for rows.Next() {
		c, err := scanContact(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// UpdateContact writes c if its version is unchanged.
func (tx *Tx) UpdateContact(ctx context.Context, c Contact) error {
	res, err := tx.exec(ctx, `UPDATE contacts SET key_version = ?, name = ?, title = ?, phones = ?, emails = ?, notes = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ? AND deleted_at IS NULL`,
		c.KeyVersion, c.Name, c.Title, c.Phones, c.Emails, c.Notes, Micros(c.UpdatedAt), c.ID, c.Version)
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return ErrConflict
	}
	return nil
}

// SoftDeleteContact marks a contact deleted and drops the terms it contributed.
func (tx *Tx) SoftDeleteContact(ctx context.Context, id string, at time.Time) error {
	var customerID string
	if err := tx.queryRow(ctx, `SELECT customer_id FROM contacts WHERE id = ? AND deleted_at IS NULL`, id).Scan(&customerID); err != nil {
		return mapErr(err)
	}
	if _, err := tx.exec(ctx, `UPDATE contacts SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ?`, Micros(at), Micros(at), id); err != nil {
		return err
	}
	_, err := tx.exec(ctx, `DELETE FROM search_terms WHERE customer_id = ? AND source = ?`, customerID, id)
	return err
}

// Interaction is a call, visit, meeting, email or note; Summary is ciphertext.
type Interaction struct {
	ID           string
	CustomerID   string
	ContactID    string
	Kind         string
	OccurredAt   time.Time
	NextFollowUp string // YYYY-MM-DD or ""
	KeyVersion   uint32
	Summary      []byte
	CreatedBy    string
	CreatedAt    time.Time
	UpdatedAt    time.Time
	Version      int64
}

const interactionCols = `i.id, i.customer_id, i.contact_id, i.kind, i.occurred_at, i.next_follow_up, i.key_version, i.summary, i.created_by, i.created_at, i.updated_at, i.version`

func scanInteraction(s interface{ Scan(...any) error }) (Interaction, error) {
	var it Interaction
	var contact, next sql.NullString
	var occurred, created, updated int64
	if err := s.Scan(&it.ID, &it.CustomerID, &contact, &it.Kind, &occurred, &next, &it.KeyVersion, &it.Summary, &it.CreatedBy, &created, &updated, &it.Version); err != nil {
		return Interaction{}, mapErr(err)
	}
	it.ContactID, it.NextFollowUp = contact.String, next.String
	it.OccurredAt, it.CreatedAt, it.UpdatedAt = FromMicros(occurred), FromMicros(created), FromMicros(updated)
	return it, nil
}

// InsertInteraction stores an interaction.
func (tx *Tx) InsertInteraction(ctx context.Context, it Interaction) error {
	_, err := tx.exec(ctx, `INSERT INTO interactions (id, customer_id, contact_id, kind, occurred_at, next_follow_up, key_version, summary, created_by, created_at, updated_at, version)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
		it.ID, it.CustomerID, nullString(it.ContactID), it.Kind, Micros(it.OccurredAt), nullString(it.NextFollowUp), it.KeyVersion, it.Summary, it.CreatedBy, Micros(it.CreatedAt), Micros(it.UpdatedAt))
	return err
}

// GetInteraction loads a live interaction of a live customer inside scope.
func (tx *Tx) GetInteraction(ctx context.Context, scope Scope, id string) (Interaction, error) {
	pred, args := scope.predicate("c")
	q := `SELECT ` + interactionCols + ` FROM interactions i JOIN customers c ON c.id = i.customer_id
		WHERE i.id = ? AND i.deleted_at IS NULL AND c.deleted_at IS NULL AND ` + pred
	return scanInteraction(tx.queryRow(ctx, q, append([]any{id}, args...)...))
}

// ListInteractions returns a customer's live interactions, most recent first.
func (tx *Tx) ListInteractions(ctx context.Context, customerID string, limit int) ([]Interaction, error) {
	if limit <= 0 {
		limit = 1000
	}
	rows, err := tx.query(ctx, `SELECT `+interactionCols+` FROM interactions i WHERE i.customer_id = ? AND i.deleted_at IS NULL ORDER BY i.occurred_at DESC, i.id DESC LIMIT ?`, customerID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Interaction
	for rows.Next() {
		it, err := scanInteraction(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

// UpdateInteraction writes it if its version is unchanged.
func (tx *Tx) UpdateInteraction(ctx context.Context, it Interaction) error {
	res, err := tx.exec(ctx, `UPDATE interactions SET contact_id = ?, kind = ?, occurred_at = ?, next_follow_up = ?, key_version = ?, summary = ?, updated_at = ?, version = version + 1
		WHERE id = ? AND version = ? AND deleted_at IS NULL`,
		nullString(it.ContactID), it.Kind, Micros(it.OccurredAt), nullString(it.NextFollowUp), it.KeyVersion, it.Summary, Micros(it.UpdatedAt), it.ID, it.Version)
	if err != nil {
		return err
	}
	if affected(res) != nil {
		return ErrConflict
	}
	return nil
}

// SoftDeleteInteraction marks an interaction deleted.
func (tx *Tx) SoftDeleteInteraction(ctx context.Context, id string, at time.Time) error {
	res, err := tx.exec(ctx, `UPDATE interactions SET deleted_at = ?, updated_at = ?, version = version + 1 WHERE id = ? AND deleted_at IS NULL`, Micros(at), Micros(at), id)
	if err != nil {
		return err
	}
	return affected(res)
}

// FollowUpRef is a customer whose latest interaction asks for a follow-up.
type FollowUpRef struct {
	CustomerID, InteractionID string
}

// DueFollowUps lists the live customers owned by ownerID inside scope whose
// latest interaction (by when it happened) asks for a follow-up on or
// before day (YYYY-MM-DD), the earliest due first, at most limit.
func (tx *Tx) DueFollowUps(ctx context.Context, scope Scope, ownerID, day string, limit int) ([]FollowUpRef, error) {
	pred, args := scope.predicate("c")
	q := `SELECT c.id, i.id FROM interactions i JOIN customers c ON c.id = i.customer_id
		WHERE i.deleted_at IS NULL AND i.next_follow_up IS NOT NULL AND i.next_follow_up <> '' AND i.next_follow_up <= ?
		AND c.owner_id = ? AND c.deleted_at IS NULL AND ` + pred + `
		AND i.id = (SELECT j.id FROM interactions j WHERE j.customer_id = c.id AND j.deleted_at IS NULL ORDER BY j.occurred_at DESC, j.id DESC LIMIT 1)
		ORDER BY i.next_follow_up, c.id LIMIT ?`
	rows, err := tx.query(ctx, q, append(append([]any{day, ownerID}, args...), limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []FollowUpRef
	for rows.Next() {
		var f FollowUpRef
		if err := rows.Scan(&f.CustomerID, &f.InteractionID); err != nil {
			return nil, err
		}
		out = append(out, f)
	}
	return out, rows.Err()
}
