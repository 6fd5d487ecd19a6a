package store_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

// erasureDB is a migrated database with a plain handle beside it, to check
// what is really left in the tables.
type erasureDB struct {
	db  *store.DB
	raw *sql.DB
	ph  string // the raw handle's placeholder
}

func TestErasure(t *testing.T) {
	engines := map[string]func(t *testing.T) erasureDB{
		"sqlite": func(t *testing.T) erasureDB {
			path := filepath.Join(t.TempDir(), "custos.db")
			return erasureDB{openDSN(t, path), rawOpen(t, "sqlite", path), "?"}
		},
		"postgres": func(t *testing.T) erasureDB {
			dsn := pgtest.Shared(t).NewDatabase(t)
			return erasureDB{openDSN(t, dsn), rawOpen(t, "pgx", dsn), "$1"}
		},
	}
	for name, open := range engines {
		t.Run(name, func(t *testing.T) {
			t.Run("erase", func(t *testing.T) { testEraseCustomerRows(t, open(t)) })
			t.Run("ledger", func(t *testing.T) { testErasureLedger(t, open(t)) })
			t.Run("apply", func(t *testing.T) { testApplyErasures(t, open(t)) })
		})
	}
}

func rawOpen(t *testing.T, driver, dsn string) *sql.DB {
	t.Helper()
	raw, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	return raw
}

var eraseT0 = time.Date(2025, 6, 1, 8, 0, 0, 0, time.UTC)

func eraseWrite(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	return db.Write(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
}

func mustErase(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	if err := eraseWrite(t, db, fn); err != nil {
		t.Fatal(err)
	}
}

func newUUID() string { return uuid.Must(uuid.NewV7()).String() }

// seedCustomer stores a customer with everything that hangs off it: two
// data key versions, a contact, an interaction naming the contact, a share,
// search terms and an audit event concerning it. It returns its id.
func seedCustomer(t *testing.T, e erasureDB, owner string) string {
	t.Helper()
	id := newUUID()
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "sales", Fields: "{}"}); err != nil {
			return err
		}
		for v := uint32(1); v <= 2; v++ {
			if err := tx.InsertDataKey(ctx, store.DataKey{Subject: id, Version: v, MasterVersion: 1, Wrapped: []byte("wrapped"), CreatedAt: eraseT0}); err != nil {
				return err
			}
		}
		if err := tx.InsertCustomer(ctx, store.Customer{ID: id, Kind: "company", OwnerID: owner, KeyVersion: 2, Name: []byte("sealed name"),
			Phones: []byte("sealed phones"), CreatedBy: "test", CreatedAt: eraseT0, UpdatedAt: eraseT0}); err != nil {
			return err
		}
		if err := tx.ReplaceTerms(ctx, id, "customer", [][]byte{[]byte("term-a-" + id), []byte("term-b-" + id)}); err != nil {
			return err
		}
		contact := newUUID()
		if err := tx.InsertContact(ctx, store.Contact{ID: contact, CustomerID: id, KeyVersion: 2, Name: []byte("sealed"), CreatedAt: eraseT0, UpdatedAt: eraseT0}); err != nil {
			return err
		}
		if err := tx.ReplaceTerms(ctx, id, contact, [][]byte{[]byte("term-c-" + id)}); err != nil {
			return err
		}
		if err := tx.InsertInteraction(ctx, store.Interaction{ID: newUUID(), CustomerID: id, ContactID: contact, Kind: "call", OccurredAt: eraseT0,
			KeyVersion: 2, Summary: []byte("sealed"), CreatedBy: "test", CreatedAt: eraseT0, UpdatedAt: eraseT0}); err != nil {
			return err
		}
		if err := tx.InsertShare(ctx, store.Share{ID: newUUID(), CustomerID: id, Role: "sales", Level: "read", GrantedBy: "test", CreatedAt: eraseT0}); err != nil {
			return err
		}
		_, err := tx.AppendAudit(ctx, store.AuditEvent{At: eraseT0, Actor: "test", Action: "customer.update", ObjectType: "customer", ObjectID: id,
			Outcome: "ok", Details: `{"personal":{"subject":"` + id + `","key_version":2,"box":"c2VhbGVk"}}`, Customers: []string{id}})
		return err
	})
	return id
}

func seedOwner(t *testing.T, e erasureDB) string {
	t.Helper()
	id := newUUID()
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "sales", Fields: "{}"}); err != nil {
			return err
		}
		return tx.InsertUser(ctx, store.User{ID: id, EmailBidx: []byte("bidx-" + id), Email: []byte("sealed"), Name: []byte("sealed"), Role: "sales",
			PasswordHash: "x", KeyVersion: 1, CreatedAt: eraseT0, UpdatedAt: eraseT0})
	})
	return id
}

// left counts what each table still holds under customer id.
func (e erasureDB) left(t *testing.T, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for table, col := range map[string]string{"customers": "id", "contacts": "customer_id", "interactions": "customer_id", "shares": "customer_id",
		"search_terms": "customer_id", "audit_subjects": "customer_id", "erasure_ledger": "customer_id", "data_keys": "subject"} {
		var n int
		if err := e.raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM `+table+` WHERE `+col+` = `+e.ph, id).Scan(&n); err != nil {
			t.Fatalf("%s: %v", table, err)
		}
		out[table] = n
	}
	var wrapped int
	if err := e.raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM data_keys WHERE wrapped IS NOT NULL AND subject = `+e.ph, id).Scan(&wrapped); err != nil {
		t.Fatal(err)
	}
	out["wrapped keys"] = wrapped
	return out
}

func (e erasureDB) auditCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := e.raw.QueryRowContext(t.Context(), `SELECT COUNT(*) FROM audit_events`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func wantLeft(t *testing.T, what string, got map[string]int, want map[string]int) {
	t.Helper()
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: %s holds %d rows, want %d (all: %v)", what, k, got[k], v, got)
		}
	}
}

var (
	// What an erased customer leaves: its destroyed key rows, its audit
	// index entries and its ledger row.
	erasedLeft = map[string]int{"customers": 0, "contacts": 0, "interactions": 0, "shares": 0, "search_terms": 0,
		"data_keys": 2, "wrapped keys": 0, "audit_subjects": 1, "erasure_ledger": 1}
	untouched = map[string]int{"customers": 1, "contacts": 1, "interactions": 1, "shares": 1, "search_terms": 3,
		"data_keys": 2, "wrapped keys": 2, "audit_subjects": 1, "erasure_ledger": 0}
)

func testEraseCustomerRows(t *testing.T, e erasureDB) {
	owner := seedOwner(t, e)
	a, b := seedCustomer(t, e, owner), seedCustomer(t, e, "")
	wantLeft(t, "before", e.left(t, a), untouched)
	events := e.auditCount(t)

	// A failed transaction erases nothing.
	boom := errors.New("boom")
	if err := eraseWrite(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: a, ErasedAt: eraseT0.Add(time.Hour), ErasedBy: "user:x"}); err != nil {
			return err
		}
		return boom
	}); !errors.Is(err, boom) {
		t.Fatalf("rolled back erasure: %v", err)
	}
	wantLeft(t, "after a rollback", e.left(t, a), untouched)

	first := store.Erasure{CustomerID: a, ErasedAt: eraseT0.Add(time.Hour), ErasedBy: "user:x"}
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error { return tx.EraseCustomerRows(ctx, first) })
	wantLeft(t, "erased", e.left(t, a), erasedLeft)
	wantLeft(t, "the other customer", e.left(t, b), untouched)
	if n := e.auditCount(t); n != events {
		t.Errorf("audit events: %d, want the %d there were", n, events)
	}
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		k, err := tx.GetDataKey(ctx, a, 2)
		if err != nil {
			return err
		}
		if k.Wrapped != nil || k.DestroyedAt == nil || !k.DestroyedAt.Equal(first.ErasedAt) {
			t.Errorf("data key v2 after erasure: %+v", k)
		}
		if _, err := tx.GetCustomer(ctx, store.Scope{All: true, Hidden: store.HiddenInclude}, a); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetCustomer after erasure: %v", err)
		}
		got, err := tx.GetErasure(ctx, a)
		if err != nil || got != first {
			t.Errorf("GetErasure = %+v, %v; want %+v", got, err, first)
		}
		return nil
	})

	// Again: no error, the first ledger row stays.
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		return tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: a, ErasedAt: eraseT0.Add(2 * time.Hour), ErasedBy: "cli:root"})
	})
	ledger := ledgerOf(t, e.db)
	if !slices.Equal(ledger, []store.Erasure{first}) {
		t.Fatalf("ledger after erasing twice: %+v", ledger)
	}

	// Unknown: ErrNotFound, and no ledger row.
	ghost := newUUID()
	err := eraseWrite(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		return tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: ghost, ErasedAt: eraseT0, ErasedBy: "user:x"})
	})
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("erasing an unknown customer: %v, want ErrNotFound", err)
	}
	if _, err := readErasure(t, e.db, ghost); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("GetErasure of a customer never erased: %v", err)
	}

	// A soft-deleted customer still holds ciphertext: erasing removes it.
	c := seedCustomer(t, e, owner)
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		return tx.SoftDeleteCustomer(ctx, c, eraseT0.Add(time.Minute))
	})
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		cand, err := tx.LockErasureCandidate(ctx, c)
		if err != nil {
			return err
		}
		if !cand.Deleted || cand.OwnerID != owner || cand.OwnerRole != "sales" || cand.KeyVersion != 2 || cand.Hidden {
			t.Errorf("candidate = %+v", cand)
		}
		return tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: c, ErasedAt: eraseT0.Add(3 * time.Hour), ErasedBy: "user:x"})
	})
	wantLeft(t, "erased after a soft delete", e.left(t, c), erasedLeft)
	if err := eraseWrite(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.LockErasureCandidate(ctx, c)
		return err
	}); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("candidate after erasure: %v", err)
	}
	// Bad input is refused before anything is touched.
	if err := eraseWrite(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		return tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: b, ErasedAt: eraseT0})
	}); err == nil {
		t.Fatal("an erasure without an actor was accepted")
	}
	wantLeft(t, "after a refused erasure", e.left(t, b), untouched)
}

func ledgerOf(t *testing.T, db *store.DB) []store.Erasure {
	t.Helper()
	var out []store.Erasure
	if err := db.Read(t.Context(), func(tx *store.Tx) (err error) { out, err = tx.ErasureLedger(t.Context()); return }); err != nil {
		t.Fatal(err)
	}
	return out
}

func readErasure(t *testing.T, db *store.DB, id string) (store.Erasure, error) {
	t.Helper()
	var out store.Erasure
	err := db.Read(t.Context(), func(tx *store.Tx) (err error) { out, err = tx.GetErasure(t.Context(), id); return })
	return out, err
}

func testErasureLedger(t *testing.T, e erasureDB) {
	if got := ledgerOf(t, e.db); len(got) != 0 {
		t.Fatalf("empty ledger: %+v", got)
	}
	ids := []string{seedCustomer(t, e, ""), seedCustomer(t, e, ""), seedCustomer(t, e, "")}
	// Erased out of order; two at the same time (ordered by id then).
	at := []time.Time{eraseT0.Add(2 * time.Hour), eraseT0.Add(time.Hour), eraseT0.Add(time.Hour)}
	for i := range ids {
		mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
			return tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: ids[i], ErasedAt: at[i], ErasedBy: "user:x"})
		})
	}
	want := []store.Erasure{{ids[1], at[1], "user:x"}, {ids[2], at[2], "user:x"}, {ids[0], at[0], "user:x"}}
	if ids[2] < ids[1] {
		want[0], want[1] = want[1], want[0]
	}
	if got := ledgerOf(t, e.db); !slices.Equal(got, want) {
		t.Fatalf("ledger = %+v\nwant %+v", got, want)
	}
}

func testApplyErasures(t *testing.T, e erasureDB) {
	done, present, kept := seedCustomer(t, e, ""), seedCustomer(t, e, ""), seedCustomer(t, e, "")
	gone := newUUID() // erased elsewhere, never in this database
	first := store.Erasure{CustomerID: done, ErasedAt: eraseT0, ErasedBy: "user:x"}
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error { return tx.EraseCustomerRows(ctx, first) })
	// A restored older backup may still hold a key of a customer it has no
	// row for any more: applying the ledger destroys it too.
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertDataKey(ctx, store.DataKey{Subject: gone, Version: 1, MasterVersion: 1, Wrapped: []byte("wrapped"), CreatedAt: eraseT0})
	})

	list := []store.Erasure{
		{CustomerID: done, ErasedAt: eraseT0.Add(5 * time.Hour), ErasedBy: "user:y"},
		{CustomerID: present, ErasedAt: eraseT0.Add(time.Hour), ErasedBy: "user:y"},
		{CustomerID: gone, ErasedAt: eraseT0.Add(2 * time.Hour), ErasedBy: "cli:root"},
	}
	var n int
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) (err error) { n, err = tx.ApplyErasures(ctx, list); return })
	if n != 1 {
		t.Fatalf("ApplyErasures erased %d present customers, want 1", n)
	}
	wantLeft(t, "present", e.left(t, present), erasedLeft)
	wantLeft(t, "kept", e.left(t, kept), untouched)
	if got := e.left(t, gone); got["erasure_ledger"] != 1 || got["wrapped keys"] != 0 || got["data_keys"] != 1 {
		t.Fatalf("an id erased elsewhere: %v", got)
	}
	want := []store.Erasure{first, list[1], list[2]}
	if got := ledgerOf(t, e.db); !slices.Equal(got, want) {
		t.Fatalf("ledger = %+v\nwant %+v", got, want)
	}
	// Applying it again changes nothing and finds nobody to erase.
	mustErase(t, e.db, func(ctx context.Context, tx *store.Tx) (err error) { n, err = tx.ApplyErasures(ctx, list); return })
	if n != 0 {
		t.Fatalf("second ApplyErasures erased %d", n)
	}
	if got := ledgerOf(t, e.db); !slices.Equal(got, want) {
		t.Fatalf("ledger after applying twice = %+v", got)
	}
	// A malformed entry fails the whole transaction.
	err := eraseWrite(t, e.db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.ApplyErasures(ctx, []store.Erasure{{CustomerID: kept, ErasedAt: eraseT0, ErasedBy: "x"}, {CustomerID: "", ErasedAt: eraseT0, ErasedBy: "x"}})
		return err
	})
	if err == nil {
		t.Fatal("an erasure without a customer id was applied")
	}
	wantLeft(t, "kept after a failed apply", e.left(t, kept), untouched)
}
