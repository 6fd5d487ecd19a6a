// Package store holds Custos's schema, migrations and queries for the two
// engines it runs on: embedded SQLite (modernc.org/sqlite, default) and
// PostgreSQL (pgx). Engine quirks — pragmas, placeholders, error codes,
// locking — stay in this package.
//
// The store never decides who may see what: callers pass a Scope computed by
// internal/access, and the store turns it into SQL so that visibility is a
// predicate of the query, never a filter applied afterwards.
//
// Personal data arrives here already sealed; the store treats every []byte
// column as opaque ciphertext.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// Dialect names the SQL engine.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// Errors callers can test with errors.Is.
var (
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

//go:embed migrations
var migrations embed.FS

// DB is a handle on the database. For SQLite it keeps two pools: one
// connection for writes (immediate transactions, so writers queue instead of
// failing) and several for reads (WAL lets them run beside the writer).
type DB struct {
	dialect Dialect
	write   *sql.DB
	read    *sql.DB
	// Location is a human description of where the data lives (file path or
	// PostgreSQL host/database, never a password).
	Location string
}

// Open connects to the database named by dsn: a postgres:// or postgresql://
// URL, or a path (optionally prefixed with sqlite:) to a SQLite file.
func Open(ctx context.Context, dsn string) (*DB, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return openPostgres(ctx, dsn)
	}
	return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
}

func openSQLite(ctx context.Context, path string) (*DB, error) {
	if path == "" {
		return nil, errors.New("store: empty database path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	// Create the file with owner-only permissions before SQLite does.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	_ = f.Close()
	common := "_pragma=foreign_keys(1)&_pragma=busy_timeout(15000)&_pragma=synchronous(FULL)&_pragma=journal_mode(WAL)"
	u := url.URL{Scheme: "file", Path: abs}
	w, err := sql.Open("sqlite", u.String()+"?"+common+"&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetConnMaxIdleTime(0)
	r, err := sql.Open("sqlite", u.String()+"?"+common+"&_pragma=query_only(1)")
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("store: %w", err)
	}
	r.SetMaxOpenConns(8)
	db := &DB{dialect: SQLite, write: w, read: r, Location: abs}
	if err := w.PingContext(ctx); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("store: open %s: %w", abs, err)
	}
	return db, nil
}

func openPostgres(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("store: invalid PostgreSQL URL: %w", redact(err, dsn))
	}
	p, err := sql.Open("pgx", dsn)
	if err != nil {
		return nil, fmt.Errorf("store: %w", redact(err, dsn))
	}
	p.SetMaxOpenConns(20)
	p.SetMaxIdleConns(10)
	p.SetConnMaxIdleTime(5 * time.Minute)
	db := &DB{dialect: Postgres, write: p, read: p, Location: fmt.Sprintf("postgres://%s:%d/%s", cfg.Host, cfg.Port, cfg.Database)}
	if err := p.PingContext(ctx); err != nil {
		_ = p.Close()
		return nil, fmt.Errorf("store: connect to %s: %w", db.Location, redact(err, dsn))
	}
	return db, nil
}

// redact removes a password that a driver error might echo.
func redact(err error, dsn string) error {
	u, perr := url.Parse(dsn)
	if perr != nil || u.User == nil {
		return err
	}
	pw, ok := u.User.Password()
	if !ok || pw == "" || !strings.Contains(err.Error(), pw) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), pw, "xxxxx"))
}

// Dialect reports the engine.
func (db *DB) Dialect() Dialect { return db.dialect }

// LimitConnections caps the PostgreSQL pool at n connections (SQLite keeps
// its single writer).
func (db *DB) LimitConnections(n int) {
	if db.dialect == Postgres {
		db.write.SetMaxOpenConns(n)
	}
}

// Close closes every pool.
func (db *DB) Close() error {
	err := db.write.Close()
	if db.read != db.write {
		err = errors.Join(err, db.read.Close())
	}
	return err
}

// Ping checks that the database answers.
func (db *DB) Ping(ctx context.Context) error { return db.read.PingContext(ctx) }

// Tx is a transaction. All queries of the store are methods on Tx, so every
// caller states whether it reads or writes.
type Tx struct {
	tx      *sql.Tx
	dialect Dialect
	// head is the audit chain head once this transaction has appended an
	// event (and, on PostgreSQL, holds the head row's lock).
	head *AuditHead
}

// Read runs fn in a read-only transaction (a consistent snapshot).
func (db *DB) Read(ctx context.Context, fn func(*Tx) error) error {
	opts := &sql.TxOptions{ReadOnly: true}
	if db.dialect == Postgres {
		opts.Isolation = sql.LevelRepeatableRead
	}
	return db.run(ctx, db.read, opts, fn)
}

// Write runs fn in a write transaction and commits when fn returns nil. On
// SQLite the transaction is BEGIN IMMEDIATE on the single writer connection.
func (db *DB) Write(ctx context.Context, fn func(*Tx) error) error {
	return db.run(ctx, db.write, nil, fn)
}

func (db *DB) run(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(*Tx) error) (err error) {
	stx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("store: begin: %w", mapErr(err))
	}
	tx := &Tx{tx: stx, dialect: db.dialect}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
		if err != nil {
			_ = stx.Rollback()
		}
	}()
	if err = fn(tx); err != nil {
		return err
	}
	if err = stx.Commit(); err != nil {
		return fmt.Errorf("store: commit: %w", mapErr(err))
	}
	return nil
}

// rebind turns ? placeholders into $n for PostgreSQL. Queries in this package
// never contain a literal question mark.
func (tx *Tx) rebind(q string) string {
	if tx.dialect != Postgres {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); i++ {
		if q[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(q[i])
	}
	return b.String()
}

func (tx *Tx) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	res, err := tx.tx.ExecContext(ctx, tx.rebind(q), args...)
	return res, mapErr(err)
}

func (tx *Tx) query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	rows, err := tx.tx.QueryContext(ctx, tx.rebind(q), args...)
	return rows, mapErr(err)
}

func (tx *Tx) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.tx.QueryRowContext(ctx, tx.rebind(q), args...)
}

// mapErr turns engine errors into ErrConflict / ErrNotFound where they mean that.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return fmt.Errorf("%w: %v", ErrConflict, err)
		}
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "23505" {
		return fmt.Errorf("%w: %v", ErrConflict, err)
	}
	return err
}

func affected(res sql.Result) error {
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Migrate applies the embedded migrations of this dialect that are not yet
// recorded, each in its own transaction. On PostgreSQL an advisory lock keeps
// several nodes starting at once from racing.
func (db *DB) Migrate(ctx context.Context) error {
	if err := db.MigrateTo(ctx, 0); err != nil {
		return err
	}
	if err := db.chainLegacyAudit(ctx); err != nil {
		return err
	}
	return db.ensureTracking(ctx)
}

// LatestSchemaVersion is the version of the newest migration this binary has.
func LatestSchemaVersion() int {
	entries, _ := fs.ReadDir(migrations, "migrations/"+string(SQLite))
	v := 0
	for _, e := range entries {
		if n, err := strconv.Atoi(strings.SplitN(e.Name(), "_", 2)[0]); err == nil && n > v {
			v = n
		}
	}
	return v
}

// MigrateTo applies the migrations up to version upTo (0: all of them)
// and nothing else: a restore loads a backup into the schema it was
// taken with, then migrates the rest of the way.
func (db *DB) MigrateTo(ctx context.Context, upTo int) error {
	dir := "migrations/" + string(db.dialect)
	entries, err := fs.ReadDir(migrations, dir)
	if err != nil {
		return fmt.Errorf("store: migrations: %w", err)
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".sql") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	create := `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)`
	for _, name := range names {
		version, err := strconv.Atoi(strings.SplitN(name, "_", 2)[0])
		if err != nil {
			return fmt.Errorf("store: migration %s: bad name", name)
		}
		if upTo > 0 && version > upTo {
			break
		}
		body, err := fs.ReadFile(migrations, dir+"/"+name)
		if err != nil {
			return err
		}
		err = db.Write(ctx, func(tx *Tx) error {
			// The lock (PostgreSQL) or the immediate transaction (SQLite)
			// serializes nodes starting at once; the bookkeeping table is
			// created under it, since CREATE TABLE IF NOT EXISTS races on
			// PostgreSQL.
			if db.dialect == Postgres {
				if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(7236508160)`); err != nil {
					return err
				}
			}
			if _, err := tx.exec(ctx, create); err != nil {
				return err
			}
			var n int
			if err := tx.queryRow(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return nil
			}
			if _, err := tx.tx.ExecContext(ctx, string(body)); err != nil {
				return err
			}
			_, err := tx.exec(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`, version, name, Micros(time.Now()))
			return err
		})
		if err != nil {
			return fmt.Errorf("store: migration %s: %w", name, err)
		}
	}
	return nil
}

// Micros converts a time to the stored representation (unix microseconds).
func Micros(t time.Time) int64 { return t.UnixMicro() }

// FromMicros converts back to UTC time.
func FromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return Micros(*t)
}

func timePtr(n sql.NullInt64) *time.Time {
	if !n.Valid {
		return nil
	}
	t := FromMicros(n.Int64)
	return &t
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?,", n-1) + "?"
}
