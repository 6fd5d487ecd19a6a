// Package storetest is the behavioural test suite of internal/store. The same
// suite runs against every engine the store supports, so that a query which
// works on SQLite but not on PostgreSQL (or the other way round) fails a test.
//
// A test package uses it as
//
//	func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }
//
// where the open function returns a migrated, empty *store.DB whose Close is
// registered with t.Cleanup. Every sub-test opens its own database.
package storetest

import (
	"context"
	"database/sql"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/store"
)

// Run runs the whole suite; open must return a migrated, empty database.
func Run(t *testing.T, open func(t *testing.T) *store.DB) {
	tests := []struct {
		name string
		fn   func(t *testing.T, db *store.DB)
	}{
		{"Keyring", testKeyring},
		{"DataKeys", testDataKeys},
		{"Roles", testRoles},
		{"Users", testUsers},
		{"UserForeignKeys", testUserForeignKeys},
		{"Sessions", testSessions},
		{"APITokens", testAPITokens},
		{"LoginThrottle", testLoginThrottle},
		{"CustomerRoundTrip", testCustomerRoundTrip},
		{"CustomerScope", testCustomerScope},
		{"ListCustomersOrderAndPaging", testListCustomersOrderAndPaging},
		{"ListCustomersFilters", testListCustomersFilters},
		{"Search", testSearch},
		{"ReplaceTerms", testReplaceTerms},
		{"UpdateCustomer", testUpdateCustomer},
		{"ConcurrentUpdateCustomer", testConcurrentUpdateCustomer},
		{"SoftDeleteCustomer", testSoftDeleteCustomer},
		{"Contacts", testContacts},
		{"Interactions", testInteractions},
		{"Audit", testAudit},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"ConcurrentWrites", testConcurrentWrites},
		{"WriteRollback", testWriteRollback},
		{"WritePanicRollback", testWritePanicRollback},
		{"ReadOnly", testReadOnly},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := open(t)
			if db == nil {
				t.Fatal("storetest: open returned a nil *store.DB")
			}
			tc.fn(t, db)
		})
	}
}

// rawDSN says how to open a plain database/sql handle on a store.DB's data.
type rawDSN struct{ driver, dsn string }

var raws sync.Map // *store.DB -> rawDSN

// RegisterRaw tells the suite how to open a second, plain database/sql handle
// on the database behind db: driver "sqlite" with the file path, or "pgx"
// with the postgres:// URL. Tests that must bypass the store (to check what
// the database itself refuses) use it. For SQLite the suite falls back to
// db.Location when nothing is registered; for PostgreSQL registering is
// required (Location carries no credentials). The registration is dropped
// when t ends.
func RegisterRaw(t testing.TB, db *store.DB, driver, dsn string) {
	raws.Store(db, rawDSN{driver, dsn})
	t.Cleanup(func() { raws.Delete(db) })
}

// openRaw opens a plain *sql.DB on db's database, closed when t ends.
func openRaw(t *testing.T, db *store.DB) *sql.DB {
	t.Helper()
	var info rawDSN
	if v, ok := raws.Load(db); ok {
		info = v.(rawDSN)
	} else if db.Dialect() == store.SQLite {
		info = rawDSN{"sqlite", db.Location}
	} else {
		t.Fatalf("storetest: no raw DSN registered for this %s database: call storetest.RegisterRaw in open", db.Dialect())
	}
	raw, err := sql.Open(info.driver, info.dsn)
	if err != nil {
		t.Fatalf("opening a raw %s handle: %v", info.driver, err)
	}
	t.Cleanup(func() { _ = raw.Close() })
	if err := raw.PingContext(t.Context()); err != nil {
		t.Fatalf("pinging the raw %s handle: %v", info.driver, err)
	}
	return raw
}

// base is a fixed time already at the stored (microsecond, UTC) precision,
// so round-tripped values compare equal with reflect.DeepEqual.
var base = store.FromMicros(store.Micros(time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)))

func at(d time.Duration) time.Time { return base.Add(d) }

func ptr[T any](v T) *T { return &v }

// newID returns a UUIDv7 string (time ordered, like the application's ids).
func newID() string { return uuid.Must(uuid.NewV7()).String() }

func mustWrite(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	ctx := t.Context()
	if err := db.Write(ctx, func(tx *store.Tx) error { return fn(ctx, tx) }); err != nil {
		t.Fatalf("write: %v", err)
	}
}

func write(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) error {
	t.Helper()
	ctx := t.Context()
	return db.Write(ctx, func(tx *store.Tx) error { return fn(ctx, tx) })
}

// read runs fn in a read transaction and returns its value.
func read[T any](t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) (T, error)) (T, error) {
	t.Helper()
	ctx := t.Context()
	var v T
	err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		v, err = fn(ctx, tx)
		return err
	})
	return v, err
}

func mustRead[T any](t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) (T, error)) T {
	t.Helper()
	v, err := read(t, db, fn)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return v
}

func sortedDesc(ids []string) []string {
	out := slices.Clone(ids)
	slices.Sort(out)
	slices.Reverse(out)
	return out
}
