package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

// newCustomer returns a customer with every field set (owner "" = pool).
func newCustomer(owner string) store.Customer {
	id := newID()
	return store.Customer{
		ID:         id,
		Kind:       "company",
		OwnerID:    owner,
		Industry:   "manufacturing",
		Level:      "A",
		Source:     "referral",
		Status:     "active",
		KeyVersion: 1,
		Name:       []byte("sealed-name:" + id),
		Phones:     []byte("sealed-phones:" + id),
		Emails:     []byte("sealed-emails:" + id),
		Address:    []byte("sealed-address:" + id),
		IDNumber:   []byte("sealed-id-number:" + id),
		Tags:       []byte("sealed-tags:" + id),
		Notes:      []byte("sealed-notes:" + id),
		CreatedBy:  "creator",
		CreatedAt:  at(0),
		UpdatedAt:  at(time.Second),
	}
}

func insertCustomers(t *testing.T, db *store.DB, cs ...store.Customer) {
	t.Helper()
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		for _, c := range cs {
			if err := tx.InsertCustomer(ctx, c); err != nil {
				return fmt.Errorf("InsertCustomer(%s): %w", c.ID, err)
			}
		}
		return nil
	})
}

// stored is what GetCustomer returns for a freshly inserted c.
func stored(c store.Customer) store.Customer {
	c.Version = 1
	c.DeletedAt = nil
	if c.LastActivityAt.IsZero() {
		c.LastActivityAt = c.CreatedAt
	}
	if c.OwnerID != "" {
		c.OwnerRole = memberRole
	}
	return c
}

func getCustomer(t *testing.T, db *store.DB, scope store.Scope, id string) (store.Customer, error) {
	t.Helper()
	return read(t, db, func(ctx context.Context, tx *store.Tx) (store.Customer, error) { return tx.GetCustomer(ctx, scope, id) })
}

func listCustomers(t *testing.T, db *store.DB, q store.CustomerQuery) []store.Customer {
	t.Helper()
	return mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Customer, error) { return tx.ListCustomers(ctx, q) })
}

func listIDs(t *testing.T, db *store.DB, q store.CustomerQuery) []string {
	t.Helper()
	var ids []string
	for _, c := range listCustomers(t, db, q) {
		ids = append(ids, c.ID)
	}
	return ids
}

func testCustomerRoundTrip(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 1)
	owned := newCustomer(users[0].ID)
	pool := newCustomer("")
	sparse := newCustomer("")
	// Optional ciphertext columns may be NULL; text columns default to ''.
	sparse.Phones, sparse.Emails, sparse.Address, sparse.IDNumber, sparse.Tags, sparse.Notes = nil, nil, nil, nil, nil, nil
	sparse.Industry, sparse.Level, sparse.Source, sparse.Status = "", "", "", ""
	sparse.Kind = "person"
	sparse.KeyVersion = 3
	insertCustomers(t, db, owned, pool, sparse)
	for _, c := range []store.Customer{owned, pool, sparse} {
		got, err := getCustomer(t, db, store.Scope{All: true}, c.ID)
		if err != nil {
			t.Fatalf("GetCustomer(%s): %v", c.ID, err)
		}
		if want := stored(c); !reflect.DeepEqual(got, want) {
			t.Fatalf("GetCustomer =\n%+v\nwant\n%+v", got, want)
		}
	}
	if got := listCustomers(t, db, store.CustomerQuery{Scope: store.Scope{All: true}}); !reflect.DeepEqual(got, []store.Customer{stored(sparse), stored(pool), stored(owned)}) {
		t.Fatalf("ListCustomers did not return the stored customers newest first:\n%+v", got)
	}
	if _, err := getCustomer(t, db, store.Scope{All: true}, newID()); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetCustomer(unknown): err = %v, want ErrNotFound", err)
	}
	dup := newCustomer("")
	dup.ID = owned.ID
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertCustomer(ctx, dup) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertCustomer with an existing id: err = %v, want ErrConflict", err)
	}
}

func testCustomerScope(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 3)
	a, b, c := users[0].ID, users[1].ID, users[2].ID
	ofA, ofB, ofC, pool := newCustomer(a), newCustomer(b), newCustomer(c), newCustomer("")
	deleted := newCustomer(a)
	insertCustomers(t, db, ofA, ofB, ofC, pool, deleted)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteCustomer(ctx, deleted.ID, at(time.Hour))
	})

	all := []store.Customer{ofA, ofB, ofC, pool, deleted}
	name := map[string]string{ofA.ID: "ofA", ofB.ID: "ofB", ofC.ID: "ofC", pool.ID: "pool", deleted.ID: "deleted"}
	tests := []struct {
		name    string
		scope   store.Scope
		visible []store.Customer
	}{
		{"all", store.Scope{All: true}, []store.Customer{ofA, ofB, ofC, pool}},
		{"all overrides owner", store.Scope{All: true, UserID: a}, []store.Customer{ofA, ofB, ofC, pool}},
		{"one owner", store.Scope{UserID: a}, []store.Customer{ofA}},
		{"owners by role", store.Scope{OwnerRoles: []string{memberRole}}, []store.Customer{ofA, ofB, ofC}},
		{"owners by another role", store.Scope{OwnerRoles: []string{"nobody-holds-this"}}, nil},
		{"owner without customers", store.Scope{UserID: newID()}, nil},
		{"pool", store.Scope{Pool: true}, []store.Customer{pool}},
		{"owner and pool", store.Scope{UserID: b, Pool: true}, []store.Customer{ofB, pool}},
		{"empty scope", store.Scope{}, nil},
		{"empty owner role list", store.Scope{OwnerRoles: []string{}}, nil},
		{"role without shares", store.Scope{Role: memberRole}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, cust := range all {
				wantVisible := slices.ContainsFunc(tc.visible, func(v store.Customer) bool { return v.ID == cust.ID })
				got, err := getCustomer(t, db, tc.scope, cust.ID)
				switch {
				case wantVisible && err != nil:
					t.Errorf("GetCustomer(%s): %v, want it visible", name[cust.ID], err)
				case wantVisible && !reflect.DeepEqual(got, stored(cust)):
					t.Errorf("GetCustomer(%s) = %+v, want %+v", name[cust.ID], got, stored(cust))
				case !wantVisible && !errors.Is(err, store.ErrNotFound):
					t.Errorf("GetCustomer(%s): err = %v, want ErrNotFound (outside scope)", name[cust.ID], err)
				}
			}
			var want []string
			for _, v := range tc.visible {
				want = append(want, v.ID)
			}
			want = sortedDesc(want)
			if got := listIDs(t, db, store.CustomerQuery{Scope: tc.scope}); !slices.Equal(got, want) {
				t.Errorf("ListCustomers = %v, want %v", got, want)
			}
		})
	}
}

func testListCustomersOrderAndPaging(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	const n = 23
	var cs []store.Customer
	var ids []string
	for i := range n {
		owner := ""
		if i%3 != 0 {
			owner = users[i%2].ID
		}
		c := newCustomer(owner)
		cs = append(cs, c)
		ids = append(ids, c.ID)
	}
	// Insert in a scrambled order: the order must come from the ids.
	scrambled := slices.Clone(cs)
	for i := range scrambled {
		j := (i * 7) % n
		scrambled[i], scrambled[j] = scrambled[j], scrambled[i]
	}
	insertCustomers(t, db, scrambled...)
	want := sortedDesc(ids)
	if !isReverse(want, ids) {
		t.Fatalf("test setup: UUIDv7 ids are not generated in increasing order")
	}
	all := store.Scope{All: true}
	if got := listIDs(t, db, store.CustomerQuery{Scope: all}); !slices.Equal(got, want) {
		t.Fatalf("ListCustomers order = %v\nwant newest (largest id) first %v", got, want)
	}

	for _, limit := range []int{1, 5, 7, 22, 23, 24, 100} {
		t.Run(fmt.Sprintf("limit %d", limit), func(t *testing.T) {
			var got []string
			before := ""
			for page := 0; ; page++ {
				if page > n+1 {
					t.Fatalf("paging does not end")
				}
				ids := listIDs(t, db, store.CustomerQuery{Scope: all, Limit: limit, Before: before})
				if len(ids) > limit {
					t.Fatalf("page %d has %d rows, limit %d", page, len(ids), limit)
				}
				got = append(got, ids...)
				if len(ids) < limit {
					break
				}
				before = ids[len(ids)-1]
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pages joined = %v\nwant every customer once, in order: %v", got, want)
			}
		})
	}

	// The cursor is exclusive and works with filters and scope.
	if got := listIDs(t, db, store.CustomerQuery{Scope: all, Before: want[0]}); !slices.Equal(got, want[1:]) {
		t.Errorf("Before = newest id: got %v, want %v", got, want[1:])
	}
	if got := listIDs(t, db, store.CustomerQuery{Scope: all, Before: want[n-1]}); len(got) != 0 {
		t.Errorf("Before = oldest id: got %v, want none", got)
	}
	if got := listIDs(t, db, store.CustomerQuery{Scope: all, Before: newID()}); !slices.Equal(got, want) {
		t.Errorf("Before = an id newer than all: got %v, want all", got)
	}
	var poolWant []string
	for _, id := range want {
		if c := cs[slices.Index(ids, id)]; c.OwnerID == "" {
			poolWant = append(poolWant, id)
		}
	}
	var poolGot []string
	for before := ""; ; {
		page := listIDs(t, db, store.CustomerQuery{Scope: store.Scope{Pool: true}, Limit: 3, Before: before})
		poolGot = append(poolGot, page...)
		if len(page) < 3 {
			break
		}
		before = page[len(page)-1]
	}
	if !slices.Equal(poolGot, poolWant) {
		t.Errorf("paging within the pool scope = %v, want %v", poolGot, poolWant)
	}
}

func isReverse(desc, asc []string) bool {
	r := slices.Clone(asc)
	slices.Reverse(r)
	return slices.Equal(desc, r)
}

func testListCustomersFilters(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	a, b := users[0].ID, users[1].ID
	var cs []store.Customer
	for i, owner := range []string{a, b, "", a, b, "", a, b, "", a, b, ""} {
		c := newCustomer(owner)
		c.Kind = []string{"company", "person"}[i%2]
		c.Level = []string{"A", "B", "C"}[i%3]
		c.Status = []string{"active", "lost", "active", "prospect"}[i%4]
		cs = append(cs, c)
	}
	gone := newCustomer(a) // matches the filters, but deleted
	insertCustomers(t, db, append(cs, gone)...)
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteCustomer(ctx, gone.ID, at(time.Hour))
	})

	tests := []struct {
		name  string
		q     store.CustomerQuery
		match func(c store.Customer) bool
	}{
		{"no filter", store.CustomerQuery{Scope: store.Scope{All: true}}, func(c store.Customer) bool { return true }},
		{"owner", store.CustomerQuery{Scope: store.Scope{All: true}, OwnerID: a}, func(c store.Customer) bool { return c.OwnerID == a }},
		{"kind", store.CustomerQuery{Scope: store.Scope{All: true}, Kind: "person"}, func(c store.Customer) bool { return c.Kind == "person" }},
		{"level", store.CustomerQuery{Scope: store.Scope{All: true}, Level: "B"}, func(c store.Customer) bool { return c.Level == "B" }},
		{"status", store.CustomerQuery{Scope: store.Scope{All: true}, Status: "active"}, func(c store.Customer) bool { return c.Status == "active" }},
		{"kind and level", store.CustomerQuery{Scope: store.Scope{All: true}, Kind: "company", Level: "A"}, func(c store.Customer) bool { return c.Kind == "company" && c.Level == "A" }},
		{"every filter", store.CustomerQuery{Scope: store.Scope{All: true}, OwnerID: a, Kind: "company", Level: "A", Status: "active"}, func(c store.Customer) bool {
			return c.OwnerID == a && c.Kind == "company" && c.Level == "A" && c.Status == "active"
		}},
		{"filter inside scope", store.CustomerQuery{Scope: store.Scope{UserID: a, Pool: true}, Level: "C"}, func(c store.Customer) bool {
			return (c.OwnerID == a || c.OwnerID == "") && c.Level == "C"
		}},
		{"owner filter outside scope", store.CustomerQuery{Scope: store.Scope{UserID: a}, OwnerID: b}, func(c store.Customer) bool { return false }},
		{"filter with limit", store.CustomerQuery{Scope: store.Scope{All: true}, Status: "active", Limit: 2}, nil},
		{"unknown kind", store.CustomerQuery{Scope: store.Scope{All: true}, Kind: "robot"}, func(c store.Customer) bool { return false }},
		{"case matters", store.CustomerQuery{Scope: store.Scope{All: true}, Level: "a"}, func(c store.Customer) bool { return false }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			if tc.match != nil {
				for _, c := range cs {
					if tc.match(c) {
						want = append(want, c.ID)
					}
				}
				want = sortedDesc(want)
			} else {
				for _, c := range cs {
					if c.Status == "active" {
						want = append(want, c.ID)
					}
				}
				want = sortedDesc(want)[:2]
			}
			if got := listIDs(t, db, tc.q); !slices.Equal(got, want) {
				t.Errorf("ListCustomers(%+v) = %v, want %v", tc.q, got, want)
			}
		})
	}
}

func term(s string) []byte { return []byte("term:" + s) }

// terms builds a CustomerQuery.Terms value: each argument is an alternative,
// a list of words that must all match.
func terms(alts ...[]string) [][][]byte {
	out := [][][]byte{}
	for _, alt := range alts {
		var a [][]byte
		for _, w := range alt {
			a = append(a, term(w))
		}
		out = append(out, a)
	}
	return out
}

func replaceTerms(t *testing.T, db *store.DB, customerID, source string, words ...string) {
	t.Helper()
	var ts [][]byte
	for _, w := range words {
		ts = append(ts, term(w))
	}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.ReplaceTerms(ctx, customerID, source, ts) })
}

func countTerms(t *testing.T, db *store.DB, customerID string) int {
	t.Helper()
	return mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountSearchTerms(ctx, customerID) })
}

func testSearch(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	a, b := users[0].ID, users[1].ID
	c1, c2, c3, c4 := newCustomer(a), newCustomer(""), newCustomer(a), newCustomer(b)
	c2.Level = "B"
	insertCustomers(t, db, c1, c2, c3, c4)
	contact := newID() // a contact of c3 contributes terms under its id
	replaceTerms(t, db, c1.ID, "customer", "acme", "berlin")
	replaceTerms(t, db, c2.ID, "customer", "acme", "paris")
	replaceTerms(t, db, c3.ID, "customer", "globex", "berlin")
	replaceTerms(t, db, c3.ID, contact, "alice", "smith")
	replaceTerms(t, db, c4.ID, "customer", "acme", "initech")
	binary := []byte{0x00, 0xff, 0x10, 0x00}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.ReplaceTerms(ctx, c2.ID, "binary", [][]byte{binary})
	})

	all := store.Scope{All: true}
	tests := []struct {
		name string
		q    store.CustomerQuery
		want []store.Customer
	}{
		{"single term", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"})}, []store.Customer{c1, c2, c4}},
		{"intersection", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme", "berlin"})}, []store.Customer{c1}},
		{"intersection, other order", store.CustomerQuery{Scope: all, Terms: terms([]string{"berlin", "acme"})}, []store.Customer{c1}},
		{"intersection with no match", store.CustomerQuery{Scope: all, Terms: terms([]string{"paris", "berlin"})}, nil},
		{"union", store.CustomerQuery{Scope: all, Terms: terms([]string{"paris"}, []string{"globex"})}, []store.Customer{c2, c3}},
		{"union of intersections", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme", "paris"}, []string{"globex", "berlin"})}, []store.Customer{c2, c3}},
		{"overlapping alternatives", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"}, []string{"berlin"})}, []store.Customer{c1, c2, c3, c4}},
		{"term from a contact", store.CustomerQuery{Scope: all, Terms: terms([]string{"alice"})}, []store.Customer{c3}},
		{"terms across sources", store.CustomerQuery{Scope: all, Terms: terms([]string{"alice", "berlin"})}, []store.Customer{c3}},
		{"repeated term", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme", "acme"})}, []store.Customer{c1, c2, c4}},
		{"unknown term", store.CustomerQuery{Scope: all, Terms: terms([]string{"umbrella"})}, nil},
		{"binary term", store.CustomerQuery{Scope: all, Terms: [][][]byte{{binary}}}, []store.Customer{c2}},
		{"binary prefix is no match", store.CustomerQuery{Scope: all, Terms: [][][]byte{{binary[:2]}}}, nil},
		{"scope owners", store.CustomerQuery{Scope: store.Scope{UserID: a}, Terms: terms([]string{"acme"})}, []store.Customer{c1}},
		{"scope pool", store.CustomerQuery{Scope: store.Scope{Pool: true}, Terms: terms([]string{"acme"})}, []store.Customer{c2}},
		{"scope owner b", store.CustomerQuery{Scope: store.Scope{UserID: b}, Terms: terms([]string{"acme"}, []string{"berlin"})}, []store.Customer{c4}},
		{"empty scope", store.CustomerQuery{Terms: terms([]string{"acme"})}, nil},
		{"terms and filter", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"}), Level: "B"}, []store.Customer{c2}},
		{"terms and owner filter", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"}), OwnerID: b}, []store.Customer{c4}},
		{"terms and limit", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"}), Limit: 1}, []store.Customer{c4}},
		{"terms and cursor", store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"}), Before: c4.ID}, []store.Customer{c1, c2}},
		{"empty non-nil terms", store.CustomerQuery{Scope: all, Terms: [][][]byte{}}, nil},
		{"nil terms: no search", store.CustomerQuery{Scope: all, Terms: nil}, []store.Customer{c1, c2, c3, c4}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var want []string
			for _, c := range tc.want {
				want = append(want, c.ID)
			}
			want = sortedDesc(want)
			if tc.q.Limit > 0 && len(want) > tc.q.Limit {
				want = want[:tc.q.Limit]
			}
			if got := listIDs(t, db, tc.q); !slices.Equal(got, want) {
				t.Errorf("ListCustomers = %v, want %v", got, want)
			}
		})
	}

	t.Run("empty alternative is an error", func(t *testing.T) {
		_, err := read(t, db, func(ctx context.Context, tx *store.Tx) ([]store.Customer, error) {
			return tx.ListCustomers(ctx, store.CustomerQuery{Scope: all, Terms: [][][]byte{{term("acme")}, {}}})
		})
		if err == nil {
			t.Fatal("ListCustomers with an empty alternative succeeded, want an error")
		}
	})
	t.Run("deleted customers are not found", func(t *testing.T) {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.SoftDeleteCustomer(ctx, c1.ID, at(time.Hour)) })
		want := sortedDesc([]string{c2.ID, c4.ID})
		if got := listIDs(t, db, store.CustomerQuery{Scope: all, Terms: terms([]string{"acme"})}); !slices.Equal(got, want) {
			t.Errorf("search after deleting c1 = %v, want %v", got, want)
		}
	})
}

func testReplaceTerms(t *testing.T, db *store.DB) {
	c1, c2 := newCustomer(""), newCustomer("")
	insertCustomers(t, db, c1, c2)
	contact := newID()
	replaceTerms(t, db, c1.ID, "customer", "acme", "berlin", "shared")
	replaceTerms(t, db, c1.ID, contact, "alice", "shared")
	replaceTerms(t, db, c2.ID, "customer", "acme", "shared")
	if n := countTerms(t, db, c1.ID); n != 5 {
		t.Fatalf("CountSearchTerms(c1) = %d, want 5 (the same term from two sources counts twice)", n)
	}
	search := func(words ...string) []string {
		t.Helper()
		return listIDs(t, db, store.CustomerQuery{Scope: store.Scope{All: true}, Terms: terms(words)})
	}

	// Replacing a source's terms removes its old ones, and only those.
	replaceTerms(t, db, c1.ID, "customer", "globex", "berlin")
	if got := search("acme"); !slices.Equal(got, []string{c2.ID}) {
		t.Errorf("old term still finds the customer after ReplaceTerms: %v, want only c2", got)
	}
	if got := search("globex"); !slices.Equal(got, []string{c1.ID}) {
		t.Errorf("new term: %v, want c1", got)
	}
	if got := search("alice"); !slices.Equal(got, []string{c1.ID}) {
		t.Errorf("replacing the customer's terms dropped the contact's: %v", got)
	}
	if got := search("shared"); !slices.Equal(got, sortedDesc([]string{c1.ID, c2.ID})) {
		t.Errorf("term still contributed by the contact: %v, want c1 and c2", got)
	}
	if n := countTerms(t, db, c1.ID); n != 4 {
		t.Errorf("CountSearchTerms(c1) after replace = %d, want 4", n)
	}
	if n := countTerms(t, db, c2.ID); n != 2 {
		t.Errorf("ReplaceTerms on c1 changed c2's terms: %d, want 2", n)
	}

	// Replacing the contact's terms with nothing removes them.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.ReplaceTerms(ctx, c1.ID, contact, nil) })
	if got := search("alice"); len(got) != 0 {
		t.Errorf("contact term survived ReplaceTerms with no terms: %v", got)
	}
	if n := countTerms(t, db, c1.ID); n != 2 {
		t.Errorf("CountSearchTerms(c1) = %d, want 2", n)
	}

	// Duplicates in one call are stored once.
	replaceTerms(t, db, c2.ID, "customer", "x", "x", "y", "x")
	if n := countTerms(t, db, c2.ID); n != 2 {
		t.Errorf("CountSearchTerms after duplicate terms = %d, want 2", n)
	}

	// Many terms (more than one insert batch) are all stored.
	var many []string
	for i := range 257 {
		many = append(many, fmt.Sprintf("w%03d", i))
	}
	replaceTerms(t, db, c2.ID, "customer", many...)
	if n := countTerms(t, db, c2.ID); n != len(many) {
		t.Errorf("CountSearchTerms after %d terms = %d", len(many), n)
	}
	for _, w := range []string{many[0], many[99], many[100], many[199], many[200], many[256]} {
		if got := search(w); !slices.Equal(got, []string{c2.ID}) {
			t.Errorf("term %s of a large ReplaceTerms: %v, want c2", w, got)
		}
	}
	if got := search("x"); len(got) != 0 {
		t.Errorf("term from the previous set survived: %v", got)
	}

	// Terms must belong to an existing customer.
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.ReplaceTerms(ctx, newID(), "customer", [][]byte{term("orphan")})
	}); err == nil {
		t.Errorf("ReplaceTerms for an unknown customer succeeded, want a foreign key error")
	}
	if n := countTerms(t, db, newID()); n != 0 {
		t.Errorf("CountSearchTerms(unknown) = %d, want 0", n)
	}
}

func testUpdateCustomer(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 2)
	a, b := users[0].ID, users[1].ID
	c, other := newCustomer(a), newCustomer(a)
	insertCustomers(t, db, c, other)
	all := store.Scope{All: true}

	cur, err := getCustomer(t, db, all, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	upd := cur
	upd.Kind, upd.OwnerID, upd.Industry, upd.Level, upd.Source, upd.Status = "person", "", "retail", "C", "fair", "lost"
	upd.KeyVersion = 2
	upd.Name, upd.Phones, upd.Emails, upd.Address = []byte("n2"), []byte("p2"), []byte("e2"), nil
	upd.IDNumber, upd.Tags, upd.Notes = []byte("i2"), []byte("t2"), []byte("o2")
	upd.UpdatedAt = at(time.Hour)
	upd.CreatedBy, upd.CreatedAt = "someone else", at(48*time.Hour) // not updatable
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, upd) })

	want := upd
	want.Version = 2
	want.CreatedBy, want.CreatedAt = c.CreatedBy, c.CreatedAt
	want.OwnerRole = "" // derived from the owner, who is now nobody
	got, err := getCustomer(t, db, all, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after UpdateCustomer:\n%+v\nwant\n%+v", got, want)
	}
	// Moved to the pool: the old owner's scope no longer sees it.
	if _, err := getCustomer(t, db, store.Scope{UserID: a}, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("customer moved to the pool still visible to its old owner: %v", err)
	}
	if _, err := getCustomer(t, db, store.Scope{Pool: true}, c.ID); err != nil {
		t.Errorf("customer moved to the pool not visible in the pool: %v", err)
	}

	// A stale version is a conflict and changes nothing.
	stale := upd // still Version 1
	stale.OwnerID = b
	stale.Level = "Z"
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, stale) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateCustomer with a stale version: err = %v, want ErrConflict", err)
	}
	future := got
	future.Version = 7
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, future) }); !errors.Is(err, store.ErrConflict) {
		t.Fatalf("UpdateCustomer with a future version: err = %v, want ErrConflict", err)
	}
	if got2, _ := getCustomer(t, db, all, c.ID); !reflect.DeepEqual(got2, want) {
		t.Fatalf("refused update changed the customer:\n%+v\nwant\n%+v", got2, want)
	}

	// The current version works again, and bumps again; owner set to b.
	next := got
	next.OwnerID = b
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, next) })
	if got3, _ := getCustomer(t, db, store.Scope{UserID: b}, c.ID); got3.Version != 3 || got3.OwnerID != b {
		t.Fatalf("second update: version %d owner %q, want 3 and %q", got3.Version, got3.OwnerID, b)
	}
	if got4, _ := getCustomer(t, db, all, other.ID); !reflect.DeepEqual(got4, stored(other)) {
		t.Fatalf("UpdateCustomer changed another customer")
	}

	// Unknown and deleted customers cannot be updated.
	ghost := stored(newCustomer(""))
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, ghost) }); err == nil {
		t.Errorf("UpdateCustomer of an unknown customer succeeded")
	}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteCustomer(ctx, other.ID, at(time.Hour))
	})
	dead := stored(other)
	dead.Version = 2 // SoftDeleteCustomer bumps the version
	for _, v := range []int64{1, 2} {
		dead.Version = v
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, dead) }); err == nil {
			t.Errorf("UpdateCustomer of a deleted customer (version %d) succeeded", v)
		}
	}
	if _, err := getCustomer(t, db, all, other.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted customer came back after an update attempt: %v", err)
	}
	// An owner must exist.
	bad := got
	bad.Version = 3
	bad.OwnerID = newID()
	if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, bad) }); err == nil {
		t.Errorf("UpdateCustomer to an unknown owner succeeded, want a foreign key error")
	}
}

func testSoftDeleteCustomer(t *testing.T, db *store.DB) {
	users := seedUsers(t, db, 1)
	c, keep := newCustomer(users[0].ID), newCustomer(users[0].ID)
	insertCustomers(t, db, c, keep)
	contact := store.Contact{ID: newID(), CustomerID: c.ID, KeyVersion: 1, Name: []byte("n"), CreatedAt: at(0), UpdatedAt: at(0)}
	it := store.Interaction{ID: newID(), CustomerID: c.ID, Kind: "call", OccurredAt: at(0), KeyVersion: 1, Summary: []byte("s"), CreatedBy: "u", CreatedAt: at(0), UpdatedAt: at(0)}
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.InsertContact(ctx, contact); err != nil {
			return err
		}
		return tx.InsertInteraction(ctx, it)
	})
	replaceTerms(t, db, c.ID, "customer", "acme", "berlin")
	replaceTerms(t, db, c.ID, contact.ID, "alice")
	replaceTerms(t, db, keep.ID, "customer", "acme")
	if n := countTerms(t, db, c.ID); n != 3 {
		t.Fatalf("CountSearchTerms before delete = %d, want 3", n)
	}

	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.SoftDeleteCustomer(ctx, c.ID, at(time.Hour)) })
	if n := countTerms(t, db, c.ID); n != 0 {
		t.Errorf("CountSearchTerms after SoftDeleteCustomer = %d, want 0 (all sources)", n)
	}
	if n := countTerms(t, db, keep.ID); n != 1 {
		t.Errorf("SoftDeleteCustomer removed another customer's terms: %d left, want 1", n)
	}
	all := store.Scope{All: true}
	if _, err := getCustomer(t, db, all, c.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetCustomer after delete: err = %v, want ErrNotFound", err)
	}
	if got := listIDs(t, db, store.CustomerQuery{Scope: all}); !slices.Equal(got, []string{keep.ID}) {
		t.Errorf("ListCustomers after delete = %v, want only %s", got, keep.ID)
	}
	if got := listIDs(t, db, store.CustomerQuery{Scope: all, OwnerID: users[0].ID}); !slices.Equal(got, []string{keep.ID}) {
		t.Errorf("ListCustomers(owner) after delete = %v, want only %s", got, keep.ID)
	}
	// Its contacts and interactions are gone from view too.
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Contact, error) {
		return tx.GetContact(ctx, all, contact.ID)
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetContact of a deleted customer's contact: err = %v, want ErrNotFound", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Interaction, error) {
		return tx.GetInteraction(ctx, all, it.ID)
	}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("GetInteraction of a deleted customer's interaction: err = %v, want ErrNotFound", err)
	}

	for name, id := range map[string]string{"second delete": c.ID, "unknown id": newID()} {
		if err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.SoftDeleteCustomer(ctx, id, at(2*time.Hour)) }); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("SoftDeleteCustomer, %s: err = %v, want ErrNotFound", name, err)
		}
	}
}

// testConcurrentUpdateCustomer races writers holding the same version:
// exactly one wins, the others get ErrConflict (no lost update).
func testConcurrentUpdateCustomer(t *testing.T, db *store.DB) {
	c := newCustomer("")
	insertCustomers(t, db, c)
	const writers = 8
	errs := make([]error, writers)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range writers {
		wg.Go(func() {
			upd := stored(c)
			upd.Notes = []byte(fmt.Sprintf("writer %d", i))
			upd.UpdatedAt = at(time.Duration(i+1) * time.Second)
			<-start
			errs[i] = write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateCustomer(ctx, upd) })
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("writers %d and %d both updated version 1", winner, i)
		case err == nil:
			winner = i
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("writer %d: err = %v, want nil or ErrConflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded: %v", errs)
	}
	got, err := getCustomer(t, db, store.Scope{All: true}, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 2 || string(got.Notes) != fmt.Sprintf("writer %d", winner) {
		t.Fatalf("after the race: version %d, notes %q; want version 2 and writer %d's notes", got.Version, got.Notes, winner)
	}
}
