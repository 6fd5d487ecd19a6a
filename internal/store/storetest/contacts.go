package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

func newContact(customerID string) store.Contact {
	id := newID()
	return store.Contact{
		ID:         id,
		CustomerID: customerID,
		KeyVersion: 1,
		Name:       []byte("sealed-name:" + id),
		Title:      []byte("sealed-title:" + id),
		Phones:     []byte("sealed-phones:" + id),
		Emails:     []byte("sealed-emails:" + id),
		Notes:      []byte("sealed-notes:" + id),
		CreatedAt:  at(0),
		UpdatedAt:  at(time.Second),
	}
}

func getContact(t *testing.T, db *store.DB, scope store.Scope, id string) (store.Contact, error) {
	t.Helper()
	return read(t, db, func(ctx context.Context, tx *store.Tx) (store.Contact, error) { return tx.GetContact(ctx, scope, id) })
}

func contactIDs(t *testing.T, db *store.DB, customerID string) []string {
	t.Helper()
	cs := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Contact, error) {
		return tx.ListContacts(ctx, customerID)
	})
	var ids []string
	for _, c := range cs {
		if c.CustomerID != customerID {
			t.Errorf("ListContacts(%s) returned a contact of %s", customerID, c.CustomerID)
		}
		ids = append(ids, c.ID)
	}
	return ids
}

func testContacts(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	a, b := users[0].ID, users[1].ID
	cust, otherCust := newCustomer(a), newCustomer("")
	insertCustomers(t, db, cust, otherCust)
	k1, k2, k3 := newContact(cust.ID), newContact(cust.ID), newContact(cust.ID)
	k3.Title, k3.Phones, k3.Emails, k3.Notes = nil, nil, nil, nil // optional columns
	k3.KeyVersion = 5
	elsewhere := newContact(otherCust.ID)
	// Inserted out of order: listing is by id (oldest first).
	for _, c := range []store.Contact{k3, k1, elsewhere, k2} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertContact(ctx, c) })
	}
	storedContact := func(c store.Contact) store.Contact { c.Version = 1; return c }
	for _, c := range []store.Contact{k1, k2, k3, elsewhere} {
		got, err := getContact(t, db, store.Scope{All: true}, c.ID)
		if err != nil || !reflect.DeepEqual(got, storedContact(c)) {
			t.Fatalf("GetContact = %+v, %v\nwant %+v", got, err, storedContact(c))
		}
	}
	if got, want := contactIDs(t, db, cust.ID), []string{k1.ID, k2.ID, k3.ID}; !slices.Equal(got, want) {
		t.Fatalf("ListContacts = %v, want oldest first %v", got, want)
	}
	if got := contactIDs(t, db, newID()); len(got) != 0 {
		t.Fatalf("ListContacts(unknown customer) = %v, want none", got)
	}
	dup := newContact(cust.ID)
	dup.ID = k1.ID
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertContact(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Errorf("InsertContact with an existing id: err = %v, want ErrConflict", err)
	}
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertContact(ctx, newContact(newID())) }); err == nil {
		t.Errorf("InsertContact for an unknown customer succeeded, want a foreign key error")
	}

	// Scope applies through the customer.
	scopes := []struct {
		name    string
		scope   store.Scope
		visible bool // k1 (customer owned by a)
	}{
		{"all", store.Scope{All: true}, true},
		{"owner", store.Scope{UserID: a}, true},
		{"owners by role", store.Scope{OwnerRoles: []string{memberRole}}, true},
		{"other owner", store.Scope{UserID: b}, false},
		{"pool", store.Scope{Pool: true}, false},
		{"empty", store.Scope{}, false},
	}
	for _, tc := range scopes {
		_, err := getContact(t, db, tc.scope, k1.ID)
		if tc.visible && err != nil {
			t.Errorf("GetContact, scope %s: %v, want visible", tc.name, err)
		}
		if !tc.visible && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetContact, scope %s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
	if _, err := getContact(t, db, store.Scope{Pool: true}, elsewhere.ID); err != nil {
		t.Errorf("GetContact of a pool customer's contact with the pool scope: %v", err)
	}
	if _, err := getContact(t, db, store.Scope{All: true}, newID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetContact(unknown): err = %v, want ErrNotFound", err)
	}

	// Update with version check.
	upd := storedContact(k2)
	upd.KeyVersion, upd.Name, upd.Title, upd.Phones, upd.Emails, upd.Notes = 2, []byte("n2"), nil, []byte("p2"), []byte("e2"), []byte("o2")
	upd.UpdatedAt = at(time.Hour)
	upd.CreatedAt = at(99 * time.Hour) // not updatable
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateContact(ctx, upd) })
	want := upd
	want.Version, want.CreatedAt = 2, k2.CreatedAt
	if got, err := getContact(t, db, store.Scope{All: true}, k2.ID); err != nil || !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateContact: %+v, %v\nwant %+v", got, err, want)
	}
	stale := upd // version 1
	stale.Name = []byte("stale")
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateContact(ctx, stale) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateContact with a stale version: err = %v, want ErrConflict", err)
	}
	if got, _ := getContact(t, db, store.Scope{All: true}, k2.ID); !reflect.DeepEqual(got, want) {
		t.Fatalf("refused UpdateContact changed the contact: %+v", got)
	}
	if got, _ := getContact(t, db, store.Scope{All: true}, k1.ID); !reflect.DeepEqual(got, storedContact(k1)) {
		t.Fatalf("UpdateContact changed another contact: %+v", got)
	}

	// Soft delete drops the contact's terms only.
	replaceTerms(t, db, cust.ID, "customer", "acme")
	replaceTerms(t, db, cust.ID, k1.ID, "alice", "shared")
	replaceTerms(t, db, cust.ID, k2.ID, "bob", "shared")
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteContact(ctx, k1.ID, at(2*time.Hour))
	})
	search := func(w string) []string {
		return listIDs(t, db, store.CustomerQuery{Scope: store.Scope{All: true}, Terms: terms([]string{w})})
	}
	if got := search("alice"); len(got) != 0 {
		t.Errorf("deleted contact's term still finds the customer: %v", got)
	}
	for _, w := range []string{"acme", "bob", "shared"} {
		if got := search(w); !slices.Equal(got, []string{cust.ID}) {
			t.Errorf("term %q after deleting another contact: %v, want the customer", w, got)
		}
	}
	if n := countTerms(t, db, cust.ID); n != 3 {
		t.Errorf("CountSearchTerms after SoftDeleteContact = %d, want 3", n)
	}
	if _, err := getContact(t, db, store.Scope{All: true}, k1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetContact after SoftDeleteContact: err = %v, want ErrNotFound", err)
	}
	if got, want := contactIDs(t, db, cust.ID), []string{k2.ID, k3.ID}; !slices.Equal(got, want) {
		t.Errorf("ListContacts after delete = %v, want %v", got, want)
	}
	for name, id := range map[string]string{"second delete": k1.ID, "unknown": newID()} {
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.SoftDeleteContact(ctx, id, at(3*time.Hour)) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SoftDeleteContact, %s: err = %v, want ErrNotFound", name, err)
		}
	}
	for _, v := range []int64{1, 2} { // SoftDeleteContact bumped the version to 2
		deleted := storedContact(k1)
		deleted.Version = v
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateContact(ctx, deleted) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("UpdateContact of a deleted contact (version %d): err = %v, want ErrConflict", v, err)
		}
	}
	if _, err := getContact(t, db, store.Scope{All: true}, k1.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted contact came back: %v", err)
	}
}

func newInteraction(customerID string, occurred time.Duration) store.Interaction {
	id := newID()
	return store.Interaction{
		ID:         id,
		CustomerID: customerID,
		Kind:       "call",
		OccurredAt: at(occurred),
		KeyVersion: 1,
		Summary:    []byte("sealed-summary:" + id),
		CreatedBy:  "author",
		CreatedAt:  at(occurred + time.Minute),
		UpdatedAt:  at(occurred + time.Minute),
	}
}

func getInteraction(t *testing.T, db *store.DB, scope store.Scope, id string) (store.Interaction, error) {
	t.Helper()
	return read(t, db, func(ctx context.Context, tx *store.Tx) (store.Interaction, error) {
		return tx.GetInteraction(ctx, scope, id)
	})
}

func interactionIDs(t *testing.T, db *store.DB, customerID string, limit int) []string {
	t.Helper()
	its := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Interaction, error) {
		return tx.ListInteractions(ctx, customerID, limit)
	})
	var ids []string
	for _, it := range its {
		if it.CustomerID != customerID {
			t.Errorf("ListInteractions(%s) returned an interaction of %s", customerID, it.CustomerID)
		}
		ids = append(ids, it.ID)
	}
	return ids
}

func testInteractions(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	a, b := users[0].ID, users[1].ID
	cust, other := newCustomer(a), newCustomer(b)
	insertCustomers(t, db, cust, other)
	contact := newContact(cust.ID)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertContact(ctx, contact) })

	i1 := newInteraction(cust.ID, 3*time.Hour)
	i1.ContactID = contact.ID
	i1.NextFollowUp = "2025-04-01"
	i1.Kind = "visit"
	i2 := newInteraction(cust.ID, time.Hour)
	i3 := newInteraction(cust.ID, 2*time.Hour)
	i4 := newInteraction(cust.ID, 2*time.Hour) // same time as i3: id breaks the tie
	i5 := newInteraction(other.ID, 5*time.Hour)
	for _, it := range []store.Interaction{i4, i2, i5, i1, i3} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertInteraction(ctx, it) })
	}
	storedIt := func(it store.Interaction) store.Interaction { it.Version = 1; return it }
	for _, it := range []store.Interaction{i1, i2, i3, i4, i5} {
		got, err := getInteraction(t, db, store.Scope{All: true}, it.ID)
		if err != nil || !reflect.DeepEqual(got, storedIt(it)) {
			t.Fatalf("GetInteraction = %+v, %v\nwant %+v", got, err, storedIt(it))
		}
	}
	want := []string{i1.ID, i4.ID, i3.ID, i2.ID} // most recent first, then id descending
	if got := interactionIDs(t, db, cust.ID, 0); !slices.Equal(got, want) {
		t.Fatalf("ListInteractions = %v, want %v", got, want)
	}
	if got := interactionIDs(t, db, cust.ID, 2); !slices.Equal(got, want[:2]) {
		t.Fatalf("ListInteractions(limit 2) = %v, want %v", got, want[:2])
	}
	if got := interactionIDs(t, db, newID(), 0); len(got) != 0 {
		t.Fatalf("ListInteractions(unknown customer) = %v, want none", got)
	}

	// Scope through the customer.
	for _, tc := range []struct {
		name    string
		scope   store.Scope
		visible bool
	}{
		{"all", store.Scope{All: true}, true},
		{"owner", store.Scope{UserID: a}, true},
		{"other owner", store.Scope{UserID: b}, false},
		{"pool", store.Scope{Pool: true}, false},
		{"empty", store.Scope{}, false},
	} {
		_, err := getInteraction(t, db, tc.scope, i1.ID)
		if tc.visible && err != nil {
			t.Errorf("GetInteraction, scope %s: %v, want visible", tc.name, err)
		}
		if !tc.visible && !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetInteraction, scope %s: err = %v, want ErrNotFound", tc.name, err)
		}
	}
	if _, err := getInteraction(t, db, store.Scope{All: true}, newID()); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInteraction(unknown): err = %v, want ErrNotFound", err)
	}
	// References must exist.
	badContact := newInteraction(cust.ID, 0)
	badContact.ContactID = newID()
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertInteraction(ctx, badContact) }); err == nil {
		t.Errorf("InsertInteraction with an unknown contact succeeded, want a foreign key error")
	}
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertInteraction(ctx, newInteraction(newID(), 0))
	}); err == nil {
		t.Errorf("InsertInteraction for an unknown customer succeeded, want a foreign key error")
	}

	// Update with version check; clearing the contact and follow-up works.
	upd := storedIt(i1)
	upd.ContactID, upd.NextFollowUp, upd.Kind = "", "", "email"
	upd.OccurredAt = at(30 * time.Minute) // now the oldest
	upd.KeyVersion, upd.Summary, upd.UpdatedAt = 2, []byte("s2"), at(4*time.Hour)
	upd.CreatedBy, upd.CreatedAt = "someone else", at(77*time.Hour) // not updatable
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateInteraction(ctx, upd) })
	wantIt := upd
	wantIt.Version, wantIt.CreatedBy, wantIt.CreatedAt = 2, i1.CreatedBy, i1.CreatedAt
	if got, err := getInteraction(t, db, store.Scope{All: true}, i1.ID); err != nil || !reflect.DeepEqual(got, wantIt) {
		t.Fatalf("after UpdateInteraction: %+v, %v\nwant %+v", got, err, wantIt)
	}
	if got, want := interactionIDs(t, db, cust.ID, 0), []string{i4.ID, i3.ID, i2.ID, i1.ID}; !slices.Equal(got, want) {
		t.Fatalf("ListInteractions after moving i1 back in time = %v, want %v", got, want)
	}
	stale := upd // version 1
	stale.Summary = []byte("stale")
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateInteraction(ctx, stale) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateInteraction with a stale version: err = %v, want ErrConflict", err)
	}
	if got, _ := getInteraction(t, db, store.Scope{All: true}, i1.ID); !reflect.DeepEqual(got, wantIt) {
		t.Fatalf("refused UpdateInteraction changed the interaction: %+v", got)
	}

	// Soft delete.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteInteraction(ctx, i3.ID, at(5*time.Hour))
	})
	if _, err := getInteraction(t, db, store.Scope{All: true}, i3.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInteraction after delete: err = %v, want ErrNotFound", err)
	}
	if got, want := interactionIDs(t, db, cust.ID, 0), []string{i4.ID, i2.ID, i1.ID}; !slices.Equal(got, want) {
		t.Errorf("ListInteractions after delete = %v, want %v", got, want)
	}
	for name, id := range map[string]string{"second delete": i3.ID, "unknown": newID()} {
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error {
			return tx.SoftDeleteInteraction(ctx, id, at(6*time.Hour))
		}); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SoftDeleteInteraction, %s: err = %v, want ErrNotFound", name, err)
		}
	}
	for _, v := range []int64{1, 2} { // SoftDeleteInteraction bumped the version to 2
		dead := storedIt(i3)
		dead.Version = v
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateInteraction(ctx, dead) }); !errors.Is(err, store.ErrConflict) {
			t.Errorf("UpdateInteraction of a deleted interaction (version %d): err = %v, want ErrConflict", v, err)
		}
	}
	if _, err := getInteraction(t, db, store.Scope{All: true}, i3.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted interaction came back: %v", err)
	}
}
