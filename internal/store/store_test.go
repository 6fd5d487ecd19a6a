package store_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
	"github.com/custos/custos/internal/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// openSQLite returns a migrated SQLite database in a new file.
func openSQLite(t *testing.T) *store.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "custos.db")
	db := openDSN(t, path)
	storetest.RegisterRaw(t, db, "sqlite", path)
	return db
}

// openPostgres returns a migrated PostgreSQL database of its own.
func openPostgres(t *testing.T) *store.DB {
	t.Helper()
	dsn := pgtest.Shared(t).NewDatabase(t)
	db := openDSN(t, dsn)
	storetest.RegisterRaw(t, db, "pgx", dsn)
	return db
}

func openDSN(t *testing.T, dsn string) *store.DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("closing the store: %v", err)
		}
	})
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestSQLite(t *testing.T) { storetest.Run(t, openSQLite) }

func TestPostgres(t *testing.T) { storetest.Run(t, openPostgres) }

func TestMigrateIdempotent(t *testing.T) {
	engines := []struct {
		name    string
		dialect store.Dialect
		dsn     func(t *testing.T) string
		driver  string
	}{
		{"sqlite", store.SQLite, func(t *testing.T) string { return filepath.Join(t.TempDir(), "custos.db") }, "sqlite"},
		{"postgres", store.Postgres, func(t *testing.T) string { return pgtest.Shared(t).NewDatabase(t) }, "pgx"},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			ctx := t.Context()
			dsn := e.dsn(t)
			db := openDSN(t, dsn) // migrates once
			if db.Dialect() != e.dialect {
				t.Fatalf("Dialect() = %q, want %q", db.Dialect(), e.dialect)
			}
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.EnsureRole(ctx, store.Role{Name: "admin", SeeAll: true}) }); err != nil {
				t.Fatal(err)
			}
			for i := range 2 {
				if err := db.Migrate(ctx); err != nil {
					t.Fatalf("Migrate again (#%d): %v", i+2, err)
				}
			}
			// A second handle (another node or a restart) migrates as a no-op too.
			db2, err := store.Open(ctx, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db2.Close()
			if err := db2.Migrate(ctx); err != nil {
				t.Fatalf("Migrate from a second handle: %v", err)
			}
			// Data survived and the schema works.
			var r store.Role
			if err := db2.Read(ctx, func(tx *store.Tx) error {
				var err error
				r, err = tx.GetRole(ctx, "admin")
				return err
			}); err != nil || !r.SeeAll {
				t.Fatalf("role after repeated migrations: %+v, %v", r, err)
			}
			raw, err := sql.Open(e.driver, dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer raw.Close()
			var n, distinct int
			if err := raw.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
				t.Fatal(err)
			}
			if n == 0 || n != distinct {
				t.Fatalf("schema_migrations has %d rows for %d versions, want each version recorded once", n, distinct)
			}
		})
	}
}

func TestOpenPostgresRedactsPassword(t *testing.T) {
	const secret = "S3cr3tPa55"
	srv := pgtest.Shared(t)
	su, err := url.Parse(srv.DSN())
	if err != nil {
		t.Fatal(err)
	}
	// The real server, a database that does not exist.
	missingDB := *su
	missingDB.User = url.UserPassword(su.User.Username(), secret)
	missingDB.Path = "/custos_no_such_database"

	tests := []struct {
		name, dsn string
	}{
		{"connection refused", "postgres://custos:" + secret + "@127.0.0.1:1/custos?sslmode=disable&connect_timeout=5"},
		{"postgresql scheme", "postgresql://custos:" + secret + "@127.0.0.1:1/custos?sslmode=disable&connect_timeout=5"},
		{"unknown host", "postgres://custos:" + secret + "@custos-no-such-host.invalid:5432/custos?connect_timeout=5"},
		{"bad port", "postgres://custos:" + secret + "@127.0.0.1:notaport/custos"},
		{"bad sslmode", "postgres://custos:" + secret + "@127.0.0.1:5432/custos?sslmode=bogus"},
		{"bad parameter value", "postgres://custos:" + secret + "@127.0.0.1:5432/custos?connect_timeout=soon"},
		{"bad escape in password", "postgres://custos:" + secret + "%zz@127.0.0.1:5432/custos"},
		{"escaped characters in password", "postgres://custos:" + secret + "%2F%40x@127.0.0.1:1/custos?sslmode=disable&connect_timeout=5"},
		{"missing database", missingDB.String()},
	}
	t.Run("location of a good URL", func(t *testing.T) {
		// The test cluster trusts every connection, so the password is
		// accepted and ignored: Open succeeds and Location must not show it.
		good := *su
		good.User = url.UserPassword(su.User.Username(), secret)
		good.Path = "/postgres"
		db, err := store.Open(t.Context(), good.String())
		if err != nil {
			t.Fatalf("store.Open: %v", err)
		}
		defer db.Close()
		if strings.Contains(db.Location, secret) {
			t.Errorf("Location reveals the password: %s", db.Location)
		}
		if want := "postgres://" + su.Host + "/postgres"; db.Location != want {
			t.Errorf("Location = %q, want %q", db.Location, want)
		}
	})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
			defer cancel()
			db, err := store.Open(ctx, tc.dsn)
			if err == nil {
				db.Close()
				t.Fatalf("store.Open(%q) succeeded, want an error", tc.name)
			}
			if strings.Contains(err.Error(), secret) {
				t.Errorf("store.Open error reveals the password: %v", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func TestSQLiteFileMode(t *testing.T) {
	tests := []struct{ name, prefix, dir, file string }{
		{"plain path", "", "", "custos.db"},
		{"sqlite: prefix", "sqlite:", "", "custos.db"},
		{"unclean path", "", "data/..", "custos.db"},
		{"URI metacharacters", "", "dir with space#hash?q=1&x%41", "db %2F?mode=ro#.sqlite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.dir != "" {
				if err := os.MkdirAll(filepath.Join(dir, tc.dir), 0o700); err != nil {
					t.Fatal(err)
				}
			}
			path := filepath.Join(dir, tc.dir, tc.file)
			db := openDSN(t, tc.prefix+path)
			ctx := t.Context()
			if db.Dialect() != store.SQLite {
				t.Fatalf("Dialect() = %q, want sqlite", db.Dialect())
			}
			abs, _ := filepath.Abs(path)
			if db.Location != abs {
				t.Errorf("Location = %q, want %q", db.Location, abs)
			}
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.EnsureRole(ctx, store.Role{Name: "admin"}) }); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(abs)
			if err != nil {
				t.Fatal(err)
			}
			if got := fi.Mode().Perm(); got != 0o600 {
				t.Errorf("database file mode = %#o, want 0600", got)
			}
			if fi.Size() == 0 {
				t.Errorf("database file %s is empty: SQLite wrote its data elsewhere", abs)
			}
			// Nothing but the database and its side files was created.
			entries, err := os.ReadDir(filepath.Dir(abs))
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				switch e.Name() {
				case filepath.Base(abs), filepath.Base(abs) + "-wal", filepath.Base(abs) + "-shm", filepath.Base(abs) + "-journal":
				default:
					if !e.IsDir() {
						t.Errorf("unexpected file %q beside the database", e.Name())
					}
				}
			}
			// SQLite's side files hold the same data: they must be private too.
			for _, suffix := range []string{"-wal", "-shm"} {
				fi, err := os.Stat(abs + suffix)
				if errors.Is(err, os.ErrNotExist) {
					continue
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := fi.Mode().Perm(); got&0o077 != 0 {
					t.Errorf("%s file mode = %#o, want no group/other access", suffix, got)
				}
			}
		})
	}
}

// TestMigrateConcurrent starts several nodes at once on a fresh database:
// every Migrate must succeed and the schema must be applied once.
func TestMigrateConcurrent(t *testing.T) {
	engines := []struct {
		name   string
		dsn    func(t *testing.T) string
		driver string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "custos.db") }, "sqlite"},
		{"postgres", func(t *testing.T) string { return pgtest.Shared(t).NewDatabase(t) }, "pgx"},
	}
	for _, e := range engines {
		t.Run(e.name, func(t *testing.T) {
			for round := range 5 {
				ctx := t.Context()
				dsn := e.dsn(t)
				const nodes = 8
				dbs := make([]*store.DB, nodes)
				for i := range dbs {
					db, err := store.Open(ctx, dsn)
					if err != nil {
						t.Fatal(err)
					}
					defer db.Close()
					dbs[i] = db
				}
				errs := make([]error, nodes)
				start := make(chan struct{})
				var wg sync.WaitGroup
				for i, db := range dbs {
					wg.Go(func() {
						<-start
						errs[i] = db.Migrate(ctx)
					})
				}
				close(start)
				wg.Wait()
				var failed []string
				for i, err := range errs {
					if err != nil {
						failed = append(failed, fmt.Sprintf("node %d: %v", i, err))
					}
				}
				if len(failed) > 0 {
					t.Fatalf("round %d: %d of %d nodes starting at once failed to migrate a fresh database:\n%s",
						round, len(failed), nodes, strings.Join(failed, "\n"))
				}
				raw, err := sql.Open(e.driver, dsn)
				if err != nil {
					t.Fatal(err)
				}
				defer raw.Close()
				var n, distinct int
				if err := raw.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&n, &distinct); err != nil {
					t.Fatal(err)
				}
				if n == 0 || n != distinct {
					t.Fatalf("round %d: schema_migrations has %d rows for %d versions", round, n, distinct)
				}
			}
		})
	}
}
