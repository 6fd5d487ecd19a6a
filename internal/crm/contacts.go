package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// reachFor loads a customer p reaches with at least relation min (for the
// purpose what, named in a refusal); lock takes the row lock of a write.
func (s *Service) reachFor(ctx context.Context, tx *store.Tx, p access.Principal, id string, min access.Relation, what string, lock bool) (store.Customer, access.Relation, error) {
	r, rel, err := s.reach(ctx, tx, p, id, s.now(), lock)
	if err != nil {
		return store.Customer{}, rel, err
	}
	return r, rel, needRelation(rel, min, what)
}

// denyOr maps the errors of a guarded action: not found and refusals are
// audited denials, anything else passes through mapStoreErr.
func (s *Service) denyOr(ctx context.Context, p access.Principal, action, objType, id string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, store.ErrNotFound):
		return s.deny(ctx, p, action, objType, id, ErrNotFound)
	case errors.Is(err, access.ErrDenied):
		return s.deny(ctx, p, action, objType, id, err)
	}
	return mapStoreErr(err)
}

func (s *Service) openContact(ctx context.Context, tx *store.Tx, r store.Contact) (Contact, error) {
	dk, err := s.keys.DataKey(ctx, tx, r.CustomerID, r.KeyVersion)
	if err != nil {
		return Contact{}, err
	}
	o := &opener{s: s, key: dk, table: "contacts", id: r.ID}
	c := Contact{ID: r.ID, CustomerID: r.CustomerID, Name: o.str("name", r.Name), Title: o.str("title", r.Title),
		Phones: o.list("phones", r.Phones), Emails: o.list("emails", r.Emails), Notes: o.str("notes", r.Notes),
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: r.Version}
	return c, o.err
}

// presentContactFields names the fields a contact input sets.
func presentContactFields(in ContactFields) []string {
	var out []string
	for _, f := range []struct {
		name string
		set  bool
	}{{"name", in.Name != nil}, {"title", in.Title != nil}, {"notes", in.Notes != nil}, {"phones", in.Phones != nil}, {"emails", in.Emails != nil}} {
		if f.set {
			out = append(out, f.name)
		}
	}
	return out
}

func applyContact(c *Contact, in ContactFields, creating bool) ([]string, error) {
	var p patch
	p.name(&c.Name, in.Name, creating)
	p.str("title", &c.Title, in.Title, text(maxTitle))
	p.str("notes", &c.Notes, in.Notes, text(maxNotes))
	p.list("phones", &c.Phones, in.Phones, maxPhones, normalize.Phone)
	p.list("emails", &c.Emails, in.Emails, maxEmails, normalize.Email)
	nonNil(&c.Phones)
	nonNil(&c.Emails)
	return p.changed, p.err()
}

// contactTerms: a customer is found by its contacts' phones and emails (exact
// terms, so no false positives). Contact names are not indexed for customer
// search.
func (s *Service) contactTerms(c Contact) [][]byte {
	var terms []string
	for _, p := range c.Phones {
		if t, err := normalize.PhoneTerm(p); err == nil {
			terms = append(terms, t)
		}
	}
	for _, e := range c.Emails {
		if t, err := normalize.EmailTerm(e); err == nil {
			terms = append(terms, t)
		}
	}
	return s.hashTerms(terms)
}

// writeContact seals and stores c, a contact of cust, and returns the data
// key it was sealed with (for the audit event's sealed values).
func (s *Service) writeContact(ctx context.Context, tx *store.Tx, cust store.Customer, c Contact, insert bool, version int64) (seal.Key, error) {
	dk, err := s.keys.DataKey(ctx, tx, cust.ID, cust.KeyVersion)
	if err != nil {
		return seal.Key{}, err
	}
	z := &sealer{s: s, key: dk, table: "contacts", id: c.ID}
	row := store.Contact{ID: c.ID, CustomerID: cust.ID, KeyVersion: dk.Version, Name: z.str("name", c.Name), Title: z.str("title", c.Title),
		Phones: z.list("phones", c.Phones), Emails: z.list("emails", c.Emails), Notes: z.str("notes", c.Notes),
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt, Version: version}
	if z.err != nil {
		return seal.Key{}, z.err
	}
	if insert {
		err = tx.InsertContact(ctx, row)
	} else {
		err = tx.UpdateContact(ctx, row)
	}
	if err != nil {
		return seal.Key{}, err
	}
	return dk, tx.ReplaceTerms(ctx, cust.ID, c.ID, s.contactTerms(c))
}

// CreateContact adds a contact to a customer the principal may change.
func (s *Service) CreateContact(ctx context.Context, p access.Principal, customerID string, in ContactFields) (Contact, error) {
	const action = "contact.create"
	if err := access.Require(p, access.Create); err != nil {
		return Contact{}, s.deny(ctx, p, action, "customer", customerID, err)
	}
	var c Contact
	set, err := applyContact(&c, in, true)
	if err != nil {
		return Contact{}, err
	}
	now := s.now().UTC()
	c.ID, c.CustomerID, c.CreatedAt, c.UpdatedAt, c.Version = newID(), customerID, now, now, 1
	var rel access.Relation
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		cust, relation, err := s.reachFor(ctx, tx, p, customerID, access.RelShareEdit, "adding a contact to", true)
		if err != nil {
			return err
		}
		rel = relation
		if err := checkEditable(p, rel, set, true); err != nil {
			return err
		}
		dk, err := s.writeContact(ctx, tx, cust, c, true, 1)
		if err != nil {
			return err
		}
		ev := event(p, action, "contact", c.ID)
		ev.Details = map[string]any{"customer_id": customerID}
		ev.Customers = []string{customerID}
		if err := s.sealChanges(&ev, dk, customerID, set, nil, contactValues(c)); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return Contact{}, s.denyOr(ctx, p, action, "customer", customerID, err)
	}
	return viewContact(p, rel, c), nil
}

// ListContacts returns a visible customer's contacts.
func (s *Service) ListContacts(ctx context.Context, p access.Principal, customerID string) ([]Contact, error) {
	const action = "contact.list"
	if err := access.Require(p, access.Read); err != nil {
		return nil, s.deny(ctx, p, action, "customer", customerID, err)
	}
	out := []Contact{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		_, rel, err := s.reachFor(ctx, tx, p, customerID, access.RelPool, "", false)
		if err != nil {
			return err
		}
		rows, err := tx.ListContacts(ctx, customerID)
		if err != nil {
			return err
		}
		for _, r := range rows {
			c, err := s.openContact(ctx, tx, r)
			if err != nil {
				return err
			}
			out = append(out, viewContact(p, rel, c))
		}
		return nil
	})
	if err != nil {
		return nil, s.denyOr(ctx, p, action, "customer", customerID, err)
	}
	if err := s.recordChildren(ctx, p, action, customerID, len(out), func(i int) string { return out[i].ID }); err != nil {
		return nil, err
	}
	return out, nil
}

// GetContact returns one visible contact.
func (s *Service) GetContact(ctx context.Context, p access.Principal, id string) (Contact, error) {
	const action = "contact.view"
	if err := access.Require(p, access.Read); err != nil {
		return Contact{}, s.deny(ctx, p, action, "contact", id, err)
	}
	var c Contact
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		r, err := tx.GetContact(ctx, access.CustomerScope(p, s.now()), id)
		if err != nil {
			return err
		}
		c.CustomerID = r.CustomerID
		_, rel, err := s.reachFor(ctx, tx, p, r.CustomerID, access.RelPool, "", false)
		if err != nil {
			return err
		}
		if c, err = s.openContact(ctx, tx, r); err != nil {
			return err
		}
		c = viewContact(p, rel, c)
		return nil
	})
	if err != nil {
		return Contact{}, s.denyOr(ctx, p, action, "contact", id, err)
	}
	ev := event(p, action, "contact", id)
	ev.Details = map[string]any{"customer_id": c.CustomerID}
	ev.Customers = []string{c.CustomerID}
	if err := s.recordRead(ctx, p, ev, ev.Customers); err != nil {
		return Contact{}, err
	}
	return c, nil
}

// UpdateContact patches a visible contact.
func (s *Service) UpdateContact(ctx context.Context, p access.Principal, id string, in ContactFields, ifVersion int64) (Contact, error) {
	const action = "contact.update"
	if err := access.Require(p, access.Update); err != nil {
		return Contact{}, s.deny(ctx, p, action, "contact", id, err)
	}
	var c Contact
	var rel access.Relation
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		r, err := tx.GetContact(ctx, access.CustomerScope(p, now), id)
		if err != nil {
			return err
		}
		cust, relation, err := s.reachFor(ctx, tx, p, r.CustomerID, access.RelShareEdit, "changing a contact of", true)
		if err != nil {
			return err
		}
		rel = relation
		if ifVersion > 0 && ifVersion != r.Version {
			return fmt.Errorf("%w: version is %d, not %d", ErrConflict, r.Version, ifVersion)
		}
		if err := checkEditable(p, rel, presentContactFields(in), false); err != nil {
			return err // checked changed or not: a no-op must not confirm a value
		}
		if c, err = s.openContact(ctx, tx, r); err != nil {
			return err
		}
		before := c // applyContact replaces values, never edits them in place
		changed, err := applyContact(&c, in, false)
		if err != nil || len(changed) == 0 {
			return err
		}
		c.UpdatedAt = now
		dk, err := s.writeContact(ctx, tx, cust, c, false, r.Version)
		if err != nil {
			return err
		}
		c.Version = r.Version + 1
		ev := event(p, action, "contact", id)
		ev.Details = map[string]any{"customer_id": r.CustomerID}
		ev.Customers = []string{r.CustomerID}
		if err := s.sealChanges(&ev, dk, r.CustomerID, changed, contactValues(before), contactValues(c)); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return Contact{}, s.denyOr(ctx, p, action, "contact", id, err)
	}
	if err := s.recordReturned(ctx, p, "contact", id, c.CustomerID); err != nil {
		return Contact{}, err
	}
	return viewContact(p, rel, c), nil
}

// DeleteContact soft-deletes a visible contact.
func (s *Service) DeleteContact(ctx context.Context, p access.Principal, id string) error {
	return s.softDelete(ctx, p, "contact.delete", "contact", id, func(tx *store.Tx, now time.Time, ev *audit.Event) error {
		r, err := tx.GetContact(ctx, access.CustomerScope(p, now), id)
		if err != nil {
			return err
		}
		if _, _, err := s.reachFor(ctx, tx, p, r.CustomerID, access.RelShareEdit, "deleting a contact of", true); err != nil {
			return err
		}
		// What was deleted, sealed under the customer's key.
		c, err := s.openContact(ctx, tx, r)
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, r.CustomerID, r.KeyVersion)
		if err != nil {
			return err
		}
		ev.Details = map[string]any{"customer_id": r.CustomerID}
		ev.Customers = []string{r.CustomerID}
		if err := s.sealChanges(ev, dk, r.CustomerID, contactFields(c), contactValues(c), nil); err != nil {
			return err
		}
		return tx.SoftDeleteContact(ctx, id, now)
	})
}

// --- interactions ------------------------------------------------------------

func (s *Service) openInteraction(ctx context.Context, tx *store.Tx, r store.Interaction) (Interaction, error) {
	dk, err := s.keys.DataKey(ctx, tx, r.CustomerID, r.KeyVersion)
	if err != nil {
		return Interaction{}, err
	}
	o := &opener{s: s, key: dk, table: "interactions", id: r.ID}
	it := Interaction{ID: r.ID, CustomerID: r.CustomerID, ContactID: r.ContactID, Kind: r.Kind, OccurredAt: r.OccurredAt,
		Summary: o.str("summary", r.Summary), NextFollowUp: r.NextFollowUp, CreatedBy: r.CreatedBy,
		CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt, Version: r.Version}
	return it, o.err
}

func (s *Service) applyInteraction(it *Interaction, in InteractionFields, creating bool) ([]string, error) {
	var fe fieldErrs
	var changed []string
	if in.Kind != nil {
		k := strings.TrimSpace(*in.Kind)
		if !slices.Contains(InteractionKinds, k) {
			fe.addf("kind", "must be one of %s", strings.Join(InteractionKinds, ", "))
		} else if k != it.Kind {
			it.Kind, changed = k, append(changed, "kind")
		}
	} else if creating {
		fe.addf("kind", "is required")
	}
	if in.Summary != nil {
		v, err := normalize.Text(*in.Summary, maxSummary)
		switch {
		case err != nil:
			fe.add("summary", err)
		case v == "":
			fe.addf("summary", "is required")
		case v != it.Summary:
			it.Summary, changed = v, append(changed, "summary")
		}
	} else if creating {
		fe.addf("summary", "is required")
	}
	if in.OccurredAt != nil {
		t := in.OccurredAt.UTC()
		if t.Year() < 1900 || t.After(s.now().Add(366*24*time.Hour)) {
			fe.addf("occurred_at", "out of range")
		} else if !t.Equal(it.OccurredAt) {
			it.OccurredAt, changed = t, append(changed, "occurred_at")
		}
	} else if creating {
		it.OccurredAt = s.now().UTC()
	}
	if in.NextFollowUp != nil {
		v := strings.TrimSpace(*in.NextFollowUp)
		if v != "" {
			d, err := time.Parse(time.DateOnly, v)
			if err != nil || d.Year() < 1900 || d.Year() > 9999 {
				fe.addf("next_follow_up", "must be a date YYYY-MM-DD")
			}
		}
		if v != it.NextFollowUp {
			it.NextFollowUp, changed = v, append(changed, "next_follow_up")
		}
	}
	if in.ContactID != nil && *in.ContactID != it.ContactID {
		it.ContactID, changed = *in.ContactID, append(changed, "contact_id")
	}
	return changed, fe.err()
}

func (s *Service) checkContactOf(ctx context.Context, tx *store.Tx, contactID, customerID string) error {
	if contactID == "" {
		return nil
	}
	if !validID(contactID) {
		return &ValidationError{Fields: []FieldError{{Field: "contact_id", Message: "not a valid id"}}}
	}
	c, err := tx.GetContact(ctx, store.Scope{All: true}, contactID)
	if errors.Is(err, store.ErrNotFound) || (err == nil && c.CustomerID != customerID) {
		return &ValidationError{Fields: []FieldError{{Field: "contact_id", Message: "no such contact of this customer"}}}
	}
	return err
}

// writeInteraction seals and stores it, an interaction with cust, and returns
// the data key it was sealed with (for the audit event's sealed values).
func (s *Service) writeInteraction(ctx context.Context, tx *store.Tx, cust store.Customer, it Interaction, insert bool, version int64) (seal.Key, error) {
	dk, err := s.keys.DataKey(ctx, tx, cust.ID, cust.KeyVersion)
	if err != nil {
		return seal.Key{}, err
	}
	z := &sealer{s: s, key: dk, table: "interactions", id: it.ID}
	row := store.Interaction{ID: it.ID, CustomerID: cust.ID, ContactID: it.ContactID, Kind: it.Kind, OccurredAt: it.OccurredAt,
		NextFollowUp: it.NextFollowUp, KeyVersion: dk.Version, Summary: z.str("summary", it.Summary), CreatedBy: it.CreatedBy,
		CreatedAt: it.CreatedAt, UpdatedAt: it.UpdatedAt, Version: version}
	if z.err != nil {
		return seal.Key{}, z.err
	}
	if insert {
		return dk, tx.InsertInteraction(ctx, row)
	}
	return dk, tx.UpdateInteraction(ctx, row)
}

// CreateInteraction records a call, visit, meeting, email or note.
func (s *Service) CreateInteraction(ctx context.Context, p access.Principal, customerID string, in InteractionFields) (Interaction, error) {
	const action = "interaction.create"
	if err := access.Require(p, access.Create); err != nil {
		return Interaction{}, s.deny(ctx, p, action, "customer", customerID, err)
	}
	var it Interaction
	if _, err := s.applyInteraction(&it, in, true); err != nil {
		return Interaction{}, err
	}
	now := s.now().UTC()
	it.ID, it.CustomerID, it.CreatedBy, it.CreatedAt, it.UpdatedAt, it.Version = newID(), customerID, p.Actor, now, now, 1
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		cust, rel, err := s.reachFor(ctx, tx, p, customerID, access.RelShareEdit, "following up", true)
		if err != nil {
			return err
		}
		if err := checkEditable(p, rel, []string{"summary"}, true); err != nil {
			return err
		}
		// A follow-up restarts the customer's pool clock.
		if err := tx.TouchCustomerActivity(ctx, customerID, now); err != nil {
			return err
		}
		if err := s.checkContactOf(ctx, tx, it.ContactID, customerID); err != nil {
			return err
		}
		dk, err := s.writeInteraction(ctx, tx, cust, it, true, 1)
		if err != nil {
			return err
		}
		ev := event(p, action, "interaction", it.ID)
		ev.Details = map[string]any{"customer_id": customerID, "kind": it.Kind}
		ev.Customers = []string{customerID}
		if err := s.sealChanges(&ev, dk, customerID, interactionFields(it), nil, interactionValues(it)); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	return it, s.denyOr(ctx, p, action, "customer", customerID, err)
}

// ListInteractions returns a visible customer's timeline, newest first.
func (s *Service) ListInteractions(ctx context.Context, p access.Principal, customerID string) ([]Interaction, error) {
	const action = "interaction.list"
	if err := access.Require(p, access.Read); err != nil {
		return nil, s.deny(ctx, p, action, "customer", customerID, err)
	}
	out := []Interaction{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		_, rel, err := s.reachFor(ctx, tx, p, customerID, access.RelShareRead, "reading the history of", false)
		if err != nil {
			return err
		}
		rows, err := tx.ListInteractions(ctx, customerID, 1000)
		if err != nil {
			return err
		}
		for _, r := range rows {
			it, err := s.openInteraction(ctx, tx, r)
			if err != nil {
				return err
			}
			out = append(out, viewInteraction(p, rel, it))
		}
		return nil
	})
	if err != nil {
		return nil, s.denyOr(ctx, p, action, "customer", customerID, err)
	}
	if err := s.recordChildren(ctx, p, action, customerID, len(out), func(i int) string { return out[i].ID }); err != nil {
		return nil, err
	}
	return out, nil
}

// UpdateInteraction patches a visible interaction.
func (s *Service) UpdateInteraction(ctx context.Context, p access.Principal, id string, in InteractionFields, ifVersion int64) (Interaction, error) {
	const action = "interaction.update"
	if err := access.Require(p, access.Update); err != nil {
		return Interaction{}, s.deny(ctx, p, action, "interaction", id, err)
	}
	var it Interaction
	var rel access.Relation
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		r, err := tx.GetInteraction(ctx, access.CustomerScope(p, now), id)
		if err != nil {
			return err
		}
		cust, relation, err := s.reachFor(ctx, tx, p, r.CustomerID, access.RelShareEdit, "changing the history of", true)
		if err != nil {
			return err
		}
		rel = relation
		if ifVersion > 0 && ifVersion != r.Version {
			return fmt.Errorf("%w: version is %d, not %d", ErrConflict, r.Version, ifVersion)
		}
		if it, err = s.openInteraction(ctx, tx, r); err != nil {
			return err
		}
		before := it
		if in.Summary != nil {
			if err := checkEditable(p, rel, []string{"summary"}, false); err != nil {
				return err
			}
		}
		changed, err := s.applyInteraction(&it, in, false)
		if err != nil || len(changed) == 0 {
			return err
		}
		if err := s.checkContactOf(ctx, tx, it.ContactID, r.CustomerID); err != nil {
			return err
		}
		it.UpdatedAt = now
		dk, err := s.writeInteraction(ctx, tx, cust, it, false, r.Version)
		if err != nil {
			return err
		}
		it.Version = r.Version + 1
		ev := event(p, action, "interaction", id)
		ev.Details = map[string]any{"customer_id": r.CustomerID}
		ev.Customers = []string{r.CustomerID}
		if err := s.sealChanges(&ev, dk, r.CustomerID, changed, interactionValues(before), interactionValues(it)); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return Interaction{}, s.denyOr(ctx, p, action, "interaction", id, err)
	}
	if err := s.recordReturned(ctx, p, "interaction", id, it.CustomerID); err != nil {
		return Interaction{}, err
	}
	return viewInteraction(p, rel, it), nil
}

// DeleteInteraction soft-deletes a visible interaction.
func (s *Service) DeleteInteraction(ctx context.Context, p access.Principal, id string) error {
	return s.softDelete(ctx, p, "interaction.delete", "interaction", id, func(tx *store.Tx, now time.Time, ev *audit.Event) error {
		r, err := tx.GetInteraction(ctx, access.CustomerScope(p, now), id)
		if err != nil {
			return err
		}
		if _, _, err := s.reachFor(ctx, tx, p, r.CustomerID, access.RelShareEdit, "deleting the history of", true); err != nil {
			return err
		}
		it, err := s.openInteraction(ctx, tx, r)
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, r.CustomerID, r.KeyVersion)
		if err != nil {
			return err
		}
		ev.Details = map[string]any{"customer_id": r.CustomerID, "kind": it.Kind}
		ev.Customers = []string{r.CustomerID}
		if err := s.sealChanges(ev, dk, r.CustomerID, interactionFields(it), interactionValues(it), nil); err != nil {
			return err
		}
		return tx.SoftDeleteInteraction(ctx, id, now)
	})
}

// recordChildren records p's view of the n records of one customer (its
// contacts, interactions or shares), naming each by id(i).
func (s *Service) recordChildren(ctx context.Context, p access.Principal, action, customerID string, n int, id func(int) string) error {
	ids := make([]string, n)
	for i := range ids {
		ids[i] = id(i)
	}
	ev := event(p, action, "customer", customerID)
	ev.Details = map[string]any{"ids": ids, "count": n}
	// Reading a customer's contacts or timeline is reading the customer.
	return s.recordRead(ctx, p, ev, []string{customerID})
}
