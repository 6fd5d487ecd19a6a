package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// This file is the store's side of backups: a consistent snapshot that
// reads tables as typed values (nil, int64, string, []byte), the keys
// changed since a base position, and a loader that writes them back into
// an empty database of either engine. Values are ciphertext where the
// schema says so; nothing here opens them.

// Snap is a consistent read of the whole database (SQLite: one read
// transaction; PostgreSQL: one repeatable-read transaction).
type Snap struct {
	tx       *Tx
	tables   []TableInfo
	position string
}

// Snapshot runs fn over a consistent snapshot.
func (db *DB) Snapshot(ctx context.Context, fn func(*Snap) error) error {
	return db.Read(ctx, func(tx *Tx) error {
		tables, err := tx.BackupTables(ctx)
		if err != nil {
			return err
		}
		s := &Snap{tx: tx, tables: tables}
		if db.dialect == Postgres {
			var snap string
			if err := tx.queryRow(ctx, `SELECT pg_current_snapshot()::text`).Scan(&snap); err != nil {
				return fmt.Errorf("store: snapshot: %w", err)
			}
			s.position = "pg:" + snap
		} else {
			var seq int64
			if err := tx.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM backup_changes`).Scan(&seq); err != nil {
				return fmt.Errorf("store: snapshot: %w", err)
			}
			s.position = "seq:" + strconv.FormatInt(seq, 10)
		}
		return fn(s)
	})
}

// Tables returns the backed-up tables in catalog (foreign-key) order.
func (s *Snap) Tables() []TableInfo { return s.tables }

// Position names the point of the change log this snapshot saw. It is
// opaque and engine-specific: a later backup of the same database reads
// the changes after it.
func (s *Snap) Position() string { return s.position }

// SchemaVersion is the snapshot's schema version.
func (s *Snap) SchemaVersion(ctx context.Context) (int, error) { return s.tx.SchemaVersion(ctx) }

// Dialect is the snapshot's engine.
func (s *Snap) Dialect() Dialect { return s.tx.dialect }

func selectList(t TableInfo, alias string) string {
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = alias + quoteIdent(c.Name)
	}
	return strings.Join(cols, ", ")
}

// scanRows calls fn with each row as typed values. The slice is reused.
func scanRows(rows *sql.Rows, t TableInfo, fn func([]any) error) error {
	defer rows.Close()
	raw := make([]any, len(t.Columns))
	ptrs := make([]any, len(t.Columns))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]any, len(t.Columns))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("store: read %s: %w", t.Name, err)
		}
		for i, c := range t.Columns {
			v, err := normalizeValue(c, raw[i])
			if err != nil {
				return fmt.Errorf("store: read %s: %w", t.Name, err)
			}
			vals[i] = v
		}
		if err := fn(vals); err != nil {
			return err
		}
	}
	return rows.Err()
}

// normalizeValue gives a scanned value its column's logical type.
func normalizeValue(c Column, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case int64:
		switch c.Type {
		case Int:
			return x, nil
		case Text:
			return strconv.FormatInt(x, 10), nil
		}
	case int32:
		if c.Type == Int {
			return int64(x), nil
		}
	case int:
		if c.Type == Int {
			return int64(x), nil
		}
	case string:
		switch c.Type {
		case Text:
			return x, nil
		case Blob:
			return []byte(x), nil
		case Int:
			n, err := strconv.ParseInt(x, 10, 64)
			if err == nil {
				return n, nil
			}
		}
	case []byte:
		switch c.Type {
		case Blob:
			return append([]byte(nil), x...), nil
		case Text:
			return string(x), nil
		}
	case time.Time:
		if c.Type == Int {
			return Micros(x), nil
		}
	}
	return nil, fmt.Errorf("column %s holds a %T where %c was expected", c.Name, v, c.Type)
}

// Scan reads every row of t.
func (s *Snap) Scan(ctx context.Context, t TableInfo, fn func(row []any) error) error {
	rows, err := s.tx.query(ctx, `SELECT `+selectList(t, "")+` FROM `+quoteIdent(t.Name))
	if err != nil {
		return fmt.Errorf("store: read %s: %w", t.Name, err)
	}
	return scanRows(rows, t, fn)
}

// ScanAbove reads the rows of an appended table above a high-water mark.
func (s *Snap) ScanAbove(ctx context.Context, t TableInfo, after int64, fn func(row []any) error) error {
	if t.SeqColumn == "" {
		return fmt.Errorf("store: %s is not an appended table", t.Name)
	}
	seq := quoteIdent(t.SeqColumn)
	rows, err := s.tx.query(ctx, `SELECT `+selectList(t, "")+` FROM `+quoteIdent(t.Name)+` WHERE `+seq+` > ? ORDER BY `+seq, after)
	if err != nil {
		return fmt.Errorf("store: read %s: %w", t.Name, err)
	}
	return scanRows(rows, t, fn)
}

// MaxSeq is the high-water mark of an appended table.
func (s *Snap) MaxSeq(ctx context.Context, t TableInfo) (int64, error) {
	var n int64
	err := s.tx.queryRow(ctx, `SELECT COALESCE(MAX(`+quoteIdent(t.SeqColumn)+`), 0) FROM `+quoteIdent(t.Name)).Scan(&n)
	return n, mapErr(err)
}

// TrimMark is the audit chain's prune mark: events at or below it were
// archived and deleted.
func (s *Snap) TrimMark(ctx context.Context) (int64, error) {
	var n int64
	err := s.tx.queryRow(ctx, `SELECT COALESCE(MAX(base_seq), 0) FROM audit_head`).Scan(&n)
	return n, mapErr(err)
}

// Count is the number of rows of t.
func (s *Snap) Count(ctx context.Context, t TableInfo) (int64, error) {
	var n int64
	err := s.tx.queryRow(ctx, `SELECT COUNT(*) FROM `+quoteIdent(t.Name)).Scan(&n)
	return n, mapErr(err)
}

// changedSince is the change-log rows of t after position.
func (s *Snap) changedSince(t TableInfo, position string) (string, []any, error) {
	kind, val, ok := strings.Cut(position, ":")
	switch {
	case !ok:
	case kind == "seq" && s.tx.dialect == SQLite:
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil {
			break
		}
		return `SELECT DISTINCT key FROM backup_changes WHERE tbl = ? AND seq > ?`, []any{t.Name, n}, nil
	case kind == "pg" && s.tx.dialect == Postgres:
		return `SELECT DISTINCT key FROM backup_changes WHERE tbl = ? AND NOT pg_visible_in_snapshot(xid, CAST(? AS pg_snapshot))`, []any{t.Name, val}, nil
	}
	return "", nil, fmt.Errorf("store: position %q does not belong to this %s database", position, s.tx.dialect)
}

// keyMatch is the condition that joins change-log keys (alias c) to the
// rows of t (alias r).
func keyMatch(d Dialect, t TableInfo) string {
	logged := t.logColumns()
	conds := make([]string, len(logged))
	for i, k := range logged {
		typ := t.Columns[t.Column(k)].Type
		var v string
		if d == Postgres {
			v = fmt.Sprintf("(c.key::jsonb->>%d)", i)
			switch typ {
			case Int:
				v = "CAST(" + v + " AS BIGINT)"
			case Blob:
				v = "decode(" + v + ", 'hex')"
			}
		} else {
			v = fmt.Sprintf("json_extract(c.key, '$[%d]')", i)
			if typ == Blob {
				v = "unhex(" + v + ")"
			}
		}
		conds[i] = "r." + quoteIdent(k) + " = " + v
	}
	return strings.Join(conds, " AND ")
}

// Changes reads the keys of t that changed after position: fn gets the
// current row of a key that has one, or (row nil) the key's values of one
// that was deleted. One pass: each changed key is looked up once.
//
// For a table tracked by group, fn gets each changed group first (row
// nil, the group's value in deleted), then the group's current rows: a
// restore clears the group and writes them.
func (s *Snap) Changes(ctx context.Context, t TableInfo, position string, fn func(row, deleted []any) error) error {
	keys, args, err := s.changedSince(t, position)
	if err != nil {
		return err
	}
	q := `SELECT c.key, ` + selectList(t, "r.") + ` FROM (` + keys + `) c LEFT JOIN ` + quoteIdent(t.Name) + ` r ON ` + keyMatch(s.tx.dialect, t)
	if t.Group != "" {
		q += ` ORDER BY c.key`
	}
	lastGroup := ""
	first := true
	rows, err := s.tx.query(ctx, q, args...)
	if err != nil {
		return fmt.Errorf("store: changes of %s: %w", t.Name, err)
	}
	defer rows.Close()
	raw := make([]any, 1+len(t.Columns))
	ptrs := make([]any, len(raw))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	vals := make([]any, len(t.Columns))
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return fmt.Errorf("store: changes of %s: %w", t.Name, err)
		}
		k, _ := raw[0].(string)
		if b, ok := raw[0].([]byte); ok {
			k = string(b)
		}
		if t.Group != "" && (first || k != lastGroup) {
			first, lastGroup = false, k
			group, err := decodeKey(t, k)
			if err != nil {
				return err
			}
			if err := fn(nil, group); err != nil {
				return err
			}
		}
		if raw[1+t.KeyIndex[0]] == nil { // no row: the key was deleted (or the group emptied)
			if t.Group != "" {
				continue
			}
			key, err := decodeKey(t, k)
			if err != nil {
				return err
			}
			if err := fn(nil, key); err != nil {
				return err
			}
			continue
		}
		for i, c := range t.Columns {
			v, err := normalizeValue(c, raw[1+i])
			if err != nil {
				return fmt.Errorf("store: read %s: %w", t.Name, err)
			}
			vals[i] = v
		}
		if err := fn(vals, nil); err != nil {
			return err
		}
	}
	return rows.Err()
}

// decodeKey turns a change-log key (a JSON array) into typed values.
func decodeKey(t TableInfo, raw string) ([]any, error) {
	var parts []any
	logged := t.logColumns()
	d := json.NewDecoder(strings.NewReader(raw))
	d.UseNumber()
	if err := d.Decode(&parts); err != nil || len(parts) != len(logged) {
		return nil, fmt.Errorf("store: change log key %q of %s is malformed", raw, t.Name)
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		typ := t.Columns[t.Column(logged[i])].Type
		switch x := p.(type) {
		case nil:
			out[i] = nil
		case json.Number:
			n, err := x.Int64()
			if err != nil {
				return nil, fmt.Errorf("store: change log key of %s: %w", t.Name, err)
			}
			out[i] = n
		case string:
			switch typ {
			case Blob:
				b, err := hex.DecodeString(x)
				if err != nil {
					return nil, fmt.Errorf("store: change log key of %s: %w", t.Name, err)
				}
				out[i] = b
			case Int:
				n, err := strconv.ParseInt(x, 10, 64)
				if err != nil {
					return nil, fmt.Errorf("store: change log key of %s: %w", t.Name, err)
				}
				out[i] = n
			default:
				out[i] = x
			}
		default:
			return nil, fmt.Errorf("store: change log key of %s holds a %T", t.Name, p)
		}
		if typ == Text {
			if n, ok := out[i].(int64); ok {
				out[i] = strconv.FormatInt(n, 10)
			}
		}
	}
	return out, nil
}

// Lookup reads the row of t with the given key.
func (s *Snap) Lookup(ctx context.Context, t TableInfo, key []any) ([]any, bool, error) {
	conds := make([]string, len(t.Key))
	for i, k := range t.Key {
		conds[i] = quoteIdent(k) + " = ?"
	}
	rows, err := s.tx.query(ctx, `SELECT `+selectList(t, "")+` FROM `+quoteIdent(t.Name)+` WHERE `+strings.Join(conds, " AND "), key...)
	if err != nil {
		return nil, false, fmt.Errorf("store: read %s: %w", t.Name, err)
	}
	var out []any
	err = scanRows(rows, t, func(row []any) error {
		out = append([]any(nil), row...)
		return nil
	})
	return out, out != nil, err
}

// BackupState reads a backup_state value inside the snapshot.
func (s *Snap) BackupState(ctx context.Context, key string) (string, error) {
	v, _, err := s.tx.BackupState(ctx, key)
	return v, err
}

// PositionCovers reports whether a snapshot at position a saw every
// change that a snapshot at position b saw (so the change log pruned up
// to b lacks nothing a backup based on a needs). On PostgreSQL it answers
// conservatively: yes when every transaction b saw had ended before a.
func PositionCovers(a, b string) (bool, error) {
	if a == b {
		return true, nil
	}
	ka, va, _ := strings.Cut(a, ":")
	kb, vb, _ := strings.Cut(b, ":")
	if ka != kb {
		return false, fmt.Errorf("store: positions %q and %q are of different engines", a, b)
	}
	switch ka {
	case "seq":
		na, err1 := strconv.ParseInt(va, 10, 64)
		nb, err2 := strconv.ParseInt(vb, 10, 64)
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("store: bad positions %q, %q", a, b)
		}
		return na >= nb, nil
	case "pg":
		// xmin:xmax:xip,... — every xid b saw is below b's xmax; a saw
		// every xid below its xmin.
		pa, pb := strings.Split(va, ":"), strings.Split(vb, ":")
		if len(pa) != 3 || len(pb) != 3 {
			return false, fmt.Errorf("store: bad positions %q, %q", a, b)
		}
		xminA, err1 := strconv.ParseUint(pa[0], 10, 64)
		xmaxB, err2 := strconv.ParseUint(pb[1], 10, 64)
		if err1 != nil || err2 != nil {
			return false, fmt.Errorf("store: bad positions %q, %q", a, b)
		}
		return xmaxB <= xminA, nil
	}
	return false, fmt.Errorf("store: unknown position %q", a)
}

// EnableTracking turns the change log on (the first backup does, before
// its snapshot). On PostgreSQL it then waits for every transaction that
// began before the switch to end: such a transaction wrote without
// logging, and a snapshot taken before it commits would miss its rows
// while no later incremental would see them either.
func (db *DB) EnableTracking(ctx context.Context, now time.Time) error {
	on := false
	if err := db.Write(ctx, func(tx *Tx) error {
		v, _, err := tx.BackupState(ctx, "tracking")
		if err != nil || v != "" {
			on = v != ""
			return err
		}
		return tx.PutBackupState(ctx, "tracking", "on", now)
	}); err != nil || on || db.dialect != Postgres {
		return err
	}
	var xmax string
	if err := db.write.QueryRowContext(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text`).Scan(&xmax); err != nil {
		return err
	}
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var done bool
		if err := db.write.QueryRowContext(ctx, `SELECT pg_snapshot_xmin(pg_current_snapshot()) >= CAST($1 AS xid8)`, xmax).Scan(&done); err != nil {
			return err
		}
		if done {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("store: a transaction that began before backups were switched on is still running after 2 minutes; try again when it has ended")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// --- backup bookkeeping ---

// BackupState reads a backup_state value ("" when absent).
func (tx *Tx) BackupState(ctx context.Context, key string) (string, time.Time, error) {
	var v string
	var at int64
	err := tx.queryRow(ctx, `SELECT value, at FROM backup_state WHERE key = ?`, key).Scan(&v, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, mapErr(err)
	}
	return v, FromMicros(at), nil
}

// PutBackupState sets a backup_state value.
func (tx *Tx) PutBackupState(ctx context.Context, key, value string, at time.Time) error {
	_, err := tx.exec(ctx, `INSERT INTO backup_state (key, value, at) VALUES (?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value, at = excluded.at`, key, value, Micros(at))
	return err
}

// BackupRun is a backup this database completed.
type BackupRun struct {
	ID           string
	Kind         string
	Base         string
	Position     string
	Destinations []string
	At           time.Time
	Bytes        int64
}

// RecordBackupRun notes a completed backup.
func (tx *Tx) RecordBackupRun(ctx context.Context, r BackupRun) error {
	dests, err := json.Marshal(r.Destinations)
	if err != nil {
		return err
	}
	_, err = tx.exec(ctx, `INSERT INTO backup_runs (id, kind, base, position, destinations, at, bytes) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Kind, r.Base, r.Position, string(dests), Micros(r.At), r.Bytes)
	return err
}

// BackupRuns lists the completed backups, oldest first.
func (tx *Tx) BackupRuns(ctx context.Context) ([]BackupRun, error) {
	rows, err := tx.query(ctx, `SELECT id, kind, base, position, destinations, at, bytes FROM backup_runs ORDER BY at, id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []BackupRun
	for rows.Next() {
		var r BackupRun
		var dests string
		var at int64
		if err := rows.Scan(&r.ID, &r.Kind, &r.Base, &r.Position, &dests, &at, &r.Bytes); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(dests), &r.Destinations); err != nil {
			return nil, fmt.Errorf("store: backup run %s: %w", r.ID, err)
		}
		r.At = FromMicros(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// PruneChanges deletes the change-log rows that a snapshot at position
// already saw.
func (tx *Tx) PruneChanges(ctx context.Context, position string) (int64, error) {
	kind, val, _ := strings.Cut(position, ":")
	var res sql.Result
	var err error
	switch {
	case kind == "seq" && tx.dialect == SQLite:
		n, perr := strconv.ParseInt(val, 10, 64)
		if perr != nil {
			return 0, fmt.Errorf("store: bad position %q", position)
		}
		res, err = tx.exec(ctx, `DELETE FROM backup_changes WHERE seq <= ?`, n)
	case kind == "pg" && tx.dialect == Postgres:
		res, err = tx.exec(ctx, `DELETE FROM backup_changes WHERE pg_visible_in_snapshot(xid, CAST(? AS pg_snapshot))`, val)
	default:
		return 0, fmt.Errorf("store: position %q does not belong to this %s database", position, tx.dialect)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// --- loading (restore) ---

// Loader writes backed-up rows into a database that was just created:
// triggers do not fire (the rows are history, not new changes) and, on
// SQLite, foreign keys are checked once at the end.
type Loader struct {
	tx      *Tx
	tables  map[string]TableInfo
	parents map[string][][2]any // self references to fill in: table -> (key, parent)
}

// Load runs fn in one transaction that loads rows. Everything fn loaded is
// committed together, or nothing is.
func (db *DB) Load(ctx context.Context, fn func(*Loader) error) (err error) {
	if db.dialect == SQLite {
		// Foreign keys are checked once at the end. A large page cache
		// keeps the random inserts into the blind index from reading
		// pages back from disk over and over (the default cache is 2 MB).
		if _, err := db.write.ExecContext(ctx, `PRAGMA foreign_keys = OFF`); err != nil {
			return err
		}
		if _, err := db.write.ExecContext(ctx, `PRAGMA cache_size = -524288`); err != nil {
			return err
		}
		defer func() {
			if _, ferr := db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA foreign_keys = ON`); ferr != nil && err == nil {
				err = ferr
			}
			_, _ = db.write.ExecContext(context.WithoutCancel(ctx), `PRAGMA cache_size = -2000`)
		}()
	}
	err = db.Write(ctx, func(tx *Tx) error {
		tables, err := tx.BackupTables(ctx)
		if err != nil {
			return err
		}
		l := &Loader{tx: tx, tables: map[string]TableInfo{}, parents: map[string][][2]any{}}
		for _, t := range tables {
			l.tables[t.Name] = t
		}
		var triggers [][2]string
		if db.dialect == SQLite {
			rows, err := tx.query(ctx, `SELECT name, sql FROM sqlite_master WHERE type = 'trigger' ORDER BY name`)
			if err != nil {
				return err
			}
			for rows.Next() {
				var n, q string
				if err := rows.Scan(&n, &q); err != nil {
					rows.Close()
					return err
				}
				triggers = append(triggers, [2]string{n, q})
			}
			rows.Close()
			for _, tr := range triggers {
				if _, err := tx.exec(ctx, `DROP TRIGGER `+quoteIdent(tr[0])); err != nil {
					return err
				}
			}
		} else {
			for _, t := range tables {
				if _, err := tx.exec(ctx, `ALTER TABLE `+quoteIdent(t.Name)+` DISABLE TRIGGER USER`); err != nil {
					return err
				}
			}
		}
		if err := fn(l); err != nil {
			return err
		}
		if err := l.fillParents(ctx); err != nil {
			return err
		}
		if db.dialect == SQLite {
			for _, tr := range triggers {
				if _, err := tx.tx.ExecContext(ctx, tr[1]); err != nil {
					return fmt.Errorf("store: recreate trigger %s: %w", tr[0], err)
				}
			}
			return nil
		}
		for _, t := range tables {
			if _, err := tx.exec(ctx, `ALTER TABLE `+quoteIdent(t.Name)+` ENABLE TRIGGER USER`); err != nil {
				return err
			}
		}
		// Identity columns continue after the loaded rows.
		rows, err := tx.query(ctx, `SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND is_identity = 'YES'`)
		if err != nil {
			return err
		}
		var ids [][2]string
		for rows.Next() {
			var tn, cn string
			if err := rows.Scan(&tn, &cn); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, [2]string{tn, cn})
		}
		rows.Close()
		for _, id := range ids {
			if _, err := tx.exec(ctx, `SELECT setval(pg_get_serial_sequence(?, ?), COALESCE((SELECT MAX(`+quoteIdent(id[1])+`) FROM `+quoteIdent(id[0])+`), 0) + 1, false)`, id[0], id[1]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || db.dialect != SQLite {
		return err
	}
	return db.Read(ctx, func(tx *Tx) error {
		rows, err := tx.query(ctx, `PRAGMA foreign_key_check`)
		if err != nil {
			return err
		}
		defer rows.Close()
		if rows.Next() {
			var table string
			var rowid sql.NullInt64
			var parent string
			var fk int
			if err := rows.Scan(&table, &rowid, &parent, &fk); err != nil {
				return err
			}
			return fmt.Errorf("store: the loaded data breaks a reference from %s to %s", table, parent)
		}
		return rows.Err()
	})
}

// Snapshot reads what the load wrote so far, in the loading transaction
// (to check it against the manifest before anything commits).
func (l *Loader) Snapshot() *Snap {
	tables := make([]TableInfo, 0, len(l.tables))
	for _, e := range Catalog {
		if t, ok := l.tables[e.Name]; ok {
			tables = append(tables, t)
		}
	}
	return &Snap{tx: l.tx, tables: tables}
}

// ApplyErasures applies an erasure ledger in the loading transaction, so
// a restore never commits a customer that the ledger says was erased.
func (l *Loader) ApplyErasures(ctx context.Context, list []Erasure) (int, error) {
	if err := l.fillParents(ctx); err != nil {
		return 0, err
	}
	return l.tx.ApplyErasures(ctx, list)
}

// Table returns the loading database's description of a table.
func (l *Loader) Table(name string) (TableInfo, error) {
	t, ok := l.tables[name]
	if !ok {
		return TableInfo{}, fmt.Errorf("store: this database has no backed-up table %q", name)
	}
	return t, nil
}

// Clear deletes every row of a table.
func (l *Loader) Clear(ctx context.Context, table string) error {
	t, err := l.Table(table)
	if err != nil {
		return err
	}
	_, err = l.tx.exec(ctx, `DELETE FROM `+quoteIdent(t.Name))
	return err
}

// ClearGroup deletes the rows of a group-tracked table whose group
// column holds value.
func (l *Loader) ClearGroup(ctx context.Context, table string, value any) error {
	t, err := l.Table(table)
	if err != nil {
		return err
	}
	if t.Group == "" {
		return fmt.Errorf("store: %s is not tracked by group", table)
	}
	_, err = l.tx.exec(ctx, `DELETE FROM `+quoteIdent(t.Name)+` WHERE `+quoteIdent(t.Group)+` = ?`, value)
	return err
}

// Trim deletes the rows of an appended table at or below seq.
func (l *Loader) Trim(ctx context.Context, table string, seq int64) error {
	t, err := l.Table(table)
	if err != nil {
		return err
	}
	if t.SeqColumn == "" {
		return fmt.Errorf("store: %s is not an appended table", table)
	}
	_, err = l.tx.exec(ctx, `DELETE FROM `+quoteIdent(t.Name)+` WHERE `+quoteIdent(t.SeqColumn)+` <= ?`, seq)
	return err
}

// Delete deletes the row of table with the given key values (in the
// order of the table's key columns).
func (l *Loader) Delete(ctx context.Context, table string, key []any) error {
	t, err := l.Table(table)
	if err != nil {
		return err
	}
	if len(key) != len(t.Key) {
		return fmt.Errorf("store: %s has %d key columns, got %d values", table, len(t.Key), len(key))
	}
	conds := make([]string, len(t.Key))
	for i, k := range t.Key {
		conds[i] = quoteIdent(k) + " = ?"
	}
	_, err = l.tx.exec(ctx, `DELETE FROM `+quoteIdent(t.Name)+` WHERE `+strings.Join(conds, " AND "), key...)
	return err
}

// Upsert writes rows (values in the order of cols, which must be exactly
// the table's columns in any order), replacing rows with the same key.
func (l *Loader) Upsert(ctx context.Context, table string, cols []string, rows [][]any) error {
	t, err := l.Table(table)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		return nil
	}
	if len(cols) != len(t.Columns) {
		return fmt.Errorf("store: %s has %d columns here and %d in the backup (schema mismatch)", table, len(t.Columns), len(cols))
	}
	self := -1
	quoted := make([]string, len(cols))
	for i, c := range cols {
		if t.Column(c) < 0 {
			return fmt.Errorf("store: %s has no column %s here (schema mismatch)", table, c)
		}
		if c == t.SelfRef {
			self = i
		}
		quoted[i] = quoteIdent(c)
	}
	keyPos := make([]int, len(t.Key))
	for i, k := range t.Key {
		keyPos[i] = slices.Index(cols, k)
		if keyPos[i] < 0 {
			return fmt.Errorf("store: the backup's rows of %s lack key column %s", table, k)
		}
	}
	var set []string
	for _, c := range cols {
		if !slices.Contains(t.Key, c) {
			set = append(set, quoteIdent(c)+" = excluded."+quoteIdent(c))
		}
	}
	conflict := " ON CONFLICT (" + strings.Join(quoteAll(t.Key), ", ") + ") DO NOTHING"
	if len(set) > 0 {
		conflict = " ON CONFLICT (" + strings.Join(quoteAll(t.Key), ", ") + ") DO UPDATE SET " + strings.Join(set, ", ")
	}
	overriding := ""
	if l.tx.dialect == Postgres && t.Identity {
		overriding = " OVERRIDING SYSTEM VALUE"
	}
	seen := map[string]bool{}
	for _, c := range cols {
		if seen[c] {
			return fmt.Errorf("store: the backup names column %s of %s twice", c, table)
		}
		seen[c] = true
	}
	row := "(" + placeholders(len(cols)) + ")"
	per := max(1, 900/len(cols))
	for start := 0; start < len(rows); start += per {
		batch := rows[start:min(start+per, len(rows))]
		args := make([]any, 0, len(batch)*len(cols))
		for _, r := range batch {
			if len(r) != len(cols) {
				return fmt.Errorf("store: a row of %s has %d values for %d columns", table, len(r), len(cols))
			}
			for j, v := range r {
				if j == self && v != nil {
					key := make([]any, len(keyPos))
					for k, p := range keyPos {
						key[k] = r[p]
					}
					l.parents[table] = append(l.parents[table], [2]any{key, v})
					v = nil
				}
				args = append(args, v)
			}
		}
		q := `INSERT INTO ` + quoteIdent(t.Name) + ` (` + strings.Join(quoted, ", ") + `)` + overriding + ` VALUES ` +
			strings.TrimSuffix(strings.Repeat(row+",", len(batch)), ",") + conflict
		if _, err := l.tx.exec(ctx, q, args...); err != nil {
			return fmt.Errorf("store: load %s: %w", table, err)
		}
	}
	return nil
}

// fillParents sets the self references held back by Upsert.
func (l *Loader) fillParents(ctx context.Context) error {
	for table, pairs := range l.parents {
		t := l.tables[table]
		conds := make([]string, len(t.Key))
		for i, k := range t.Key {
			conds[i] = quoteIdent(k) + " = ?"
		}
		q := `UPDATE ` + quoteIdent(t.Name) + ` SET ` + quoteIdent(t.SelfRef) + ` = ? WHERE ` + strings.Join(conds, " AND ")
		for _, p := range pairs {
			args := append([]any{p[1]}, p[0].([]any)...)
			if _, err := l.tx.exec(ctx, q, args...); err != nil {
				return fmt.Errorf("store: load %s: %w", table, err)
			}
		}
	}
	l.parents = map[string][][2]any{}
	return nil
}

func quoteAll(s []string) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = quoteIdent(v)
	}
	return out
}

// DropAll drops every table (and the change-tracking functions) of a
// PostgreSQL database that a failed restore filled: the restore checked
// that it was empty before it began. On SQLite the restore removes the
// file instead, so this does nothing.
func (db *DB) DropAll(ctx context.Context) error {
	if db.dialect != Postgres {
		return nil
	}
	return db.Write(ctx, func(tx *Tx) error {
		tables, err := tx.Tables(ctx)
		if err != nil {
			return err
		}
		for _, t := range tables {
			if _, err := tx.exec(ctx, `DROP TABLE IF EXISTS `+quoteIdent(t)+` CASCADE`); err != nil {
				return err
			}
		}
		for _, e := range Catalog {
			if _, err := tx.exec(ctx, `DROP FUNCTION IF EXISTS `+quoteIdent("custos_track_"+e.Name)+`()`); err != nil {
				return err
			}
		}
		return nil
	})
}

// SwapBackupState sets key to value if it still holds old ("" for
// absent), and reports whether it did: nodes sharing a database use it to
// claim a scheduled job exactly once.
func (tx *Tx) SwapBackupState(ctx context.Context, key, old, value string, at time.Time) (bool, error) {
	var res sql.Result
	var err error
	if old == "" {
		res, err = tx.exec(ctx, `INSERT INTO backup_state (key, value, at) VALUES (?, ?, ?) ON CONFLICT (key) DO NOTHING`, key, value, Micros(at))
	} else {
		res, err = tx.exec(ctx, `UPDATE backup_state SET value = ?, at = ? WHERE key = ? AND value = ?`, value, Micros(at), key, old)
	}
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}
