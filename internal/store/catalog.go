package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// TableMode says how backups treat a table.
type TableMode int

// Table modes.
const (
	// Tracked tables have change-log triggers: a backup copies the rows
	// whose key changed after its base, and records the keys deleted.
	Tracked TableMode = iota
	// Appended tables only grow along SeqColumn (the audit trail): a
	// backup copies the rows above its base's high-water mark; Trim marks
	// the rows pruned into an archive.
	Appended
	// Copied tables are small and busy (the audit head, the detectors'
	// cursor): every backup copies them whole.
	Copied
	// Transient tables are never backed up: sessions, login challenges,
	// throttling and detector windows (minutes to hours of state that a
	// restore must not bring back), and the backup bookkeeping itself.
	Transient
)

func (m TableMode) String() string {
	switch m {
	case Tracked:
		return "tracked"
	case Appended:
		return "appended"
	case Copied:
		return "copied"
	default:
		return "transient"
	}
}

// CatalogEntry describes one table for backups.
type CatalogEntry struct {
	Name string
	Key  []string // primary key columns
	Mode TableMode
	// SeqColumn is the ever-growing column of an Appended table.
	SeqColumn string
	// Trim: rows at or below the audit chain's prune mark
	// (audit_head.base_seq) have been archived and deleted.
	Trim bool
	// SelfRef names a column referring to this table's own key (a role's
	// parent): restores fill it in after every row of the table exists.
	SelfRef string
	// Identity: on PostgreSQL the key is an identity column (restores
	// insert its values and move its sequence past them).
	Identity bool
	// Group, for a tracked table whose rows come and go together (a
	// customer's blind-index terms), names the column the change log
	// records instead of the key: a backup replaces the whole group,
	// read along an index on that column, rather than probing each of
	// many random keys.
	Group string
}

// logColumns are the columns whose values the change log records.
func (t TableInfo) logColumns() []string {
	if t.Group != "" {
		return []string{t.Group}
	}
	return t.Key
}

// Catalog lists every table of the schema in foreign-key order (a table
// after the tables it refers to). TestCatalogCoversSchema fails when a
// migration adds a table that is not listed here.
var Catalog = []CatalogEntry{
	{Name: "keyring", Key: []string{"purpose", "version"}},
	{Name: "data_keys", Key: []string{"subject", "version"}},
	{Name: "roles", Key: []string{"name"}, SelfRef: "parent"},
	{Name: "role_policies", Key: []string{"role"}},
	{Name: "settings", Key: []string{"key"}},
	{Name: "users", Key: []string{"id"}},
	{Name: "api_tokens", Key: []string{"id"}},
	{Name: "totp_factors", Key: []string{"user_id"}},
	{Name: "recovery_codes", Key: []string{"user_id", "hash"}},
	{Name: "webauthn_credentials", Key: []string{"id"}},
	{Name: "grants", Key: []string{"id"}},
	{Name: "suspensions", Key: []string{"user_id"}},
	{Name: "customers", Key: []string{"id"}},
	{Name: "search_terms", Key: []string{"term", "customer_id", "source"}, Group: "customer_id"},
	{Name: "contacts", Key: []string{"id"}},
	{Name: "interactions", Key: []string{"id"}},
	{Name: "shares", Key: []string{"id"}},
	{Name: "quota_counters", Key: []string{"key", "day"}},
	{Name: "alerts", Key: []string{"id"}},
	{Name: "alert_sinks", Key: []string{"name"}},
	{Name: "alert_deliveries", Key: []string{"alert_id", "sink"}},
	{Name: "export_requests", Key: []string{"id"}},
	{Name: "export_files", Key: []string{"request_id"}},
	{Name: "erasure_ledger", Key: []string{"customer_id"}},
	{Name: "audit_events", Key: []string{"seq"}, Mode: Appended, SeqColumn: "seq", Trim: true},
	{Name: "audit_subjects", Key: []string{"customer_id", "seq"}, Mode: Appended, SeqColumn: "seq", Trim: true},
	// Identity values are not handed out in commit order across nodes:
	// tracked, not appended, so a late commit below the mark is not missed.
	{Name: "audit_checkpoints", Key: []string{"id"}, Identity: true},
	{Name: "audit_head", Key: []string{"id"}, Mode: Copied},
	{Name: "monitor_state", Key: []string{"key"}, Mode: Copied},

	{Name: "sessions", Mode: Transient},
	{Name: "mfa_challenges", Mode: Transient},
	{Name: "webauthn_sessions", Mode: Transient},
	{Name: "oidc_pending", Mode: Transient},
	{Name: "login_throttle", Mode: Transient},
	{Name: "monitor_counts", Mode: Transient},
	{Name: "monitor_seen", Mode: Transient},
	{Name: "backup_changes", Mode: Transient},
	{Name: "backup_state", Mode: Transient},
	{Name: "backup_runs", Mode: Transient},
	{Name: "schema_migrations", Mode: Transient},
}

// ColumnType is the logical type of a column, the same on both engines.
type ColumnType byte

// Column types: SQLite INTEGER and PostgreSQL BIGINT/INTEGER are Int,
// TEXT is Text, BLOB and BYTEA are Blob.
const (
	Int  ColumnType = 'i'
	Text ColumnType = 't'
	Blob ColumnType = 'b'
)

// Column is a column of a backed-up table.
type Column struct {
	Name string
	Type ColumnType
}

// TableInfo is a catalog entry with the columns the database has.
type TableInfo struct {
	CatalogEntry
	Columns []Column
	// KeyIndex[i] is the position in Columns of Key[i].
	KeyIndex []int
}

// Column returns the index of the named column, or -1.
func (t TableInfo) Column(name string) int {
	for i, c := range t.Columns {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// SchemaVersion is the highest migration applied.
func (tx *Tx) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := tx.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v)
	return v, mapErr(err)
}

// Tables returns the tables of the schema (their names, sorted by the
// engine's catalog).
func (tx *Tx) Tables(ctx context.Context) ([]string, error) {
	q := `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`
	if tx.dialect == Postgres {
		q = `SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name`
	}
	rows, err := tx.query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// BackupTables returns the catalog's backed-up tables (every mode but
// Transient) with their columns, in catalog order.
func (tx *Tx) BackupTables(ctx context.Context) ([]TableInfo, error) {
	var out []TableInfo
	for _, e := range Catalog {
		if e.Mode == Transient {
			continue
		}
		cols, err := tx.columns(ctx, e.Name)
		if err != nil {
			return nil, err
		}
		if cols == nil {
			continue // a table of a later schema version
		}
		t := TableInfo{CatalogEntry: e, Columns: cols}
		for _, k := range e.Key {
			i := t.Column(k)
			if i < 0 {
				return nil, fmt.Errorf("store: catalog: %s has no key column %s", e.Name, k)
			}
			t.KeyIndex = append(t.KeyIndex, i)
		}
		out = append(out, t)
	}
	return out, nil
}

func (tx *Tx) columns(ctx context.Context, table string) ([]Column, error) {
	q := `SELECT name, type FROM pragma_table_info(?) ORDER BY cid`
	if tx.dialect == Postgres {
		q = `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
	}
	rows, err := tx.query(ctx, q, table)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var cols []Column
	for rows.Next() {
		var name, typ string
		if err := rows.Scan(&name, &typ); err != nil {
			return nil, err
		}
		var ct ColumnType
		switch strings.ToUpper(typ) {
		case "INTEGER", "BIGINT", "SMALLINT":
			ct = Int
		case "TEXT":
			ct = Text
		case "BLOB", "BYTEA":
			ct = Blob
		default:
			return nil, fmt.Errorf("store: catalog: column %s.%s has type %s, which backups do not know", table, name, typ)
		}
		cols = append(cols, Column{Name: name, Type: ct})
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return cols, nil
}

// quoteIdent quotes a table or column name taken from the catalog.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// trackingSQL returns the statements that create the change-log triggers
// of a tracked table. The key is logged as a JSON array of the key's
// values (blobs as hex), for the new row on insert and update, and for
// the old row on delete and on an update that changed the key.
func trackingSQL(d Dialect, t TableInfo) []string {
	logged := t.logColumns()
	enc := func(rec string) string {
		parts := make([]string, len(logged))
		for i, k := range logged {
			c := t.Columns[t.Column(k)]
			v := rec + "." + quoteIdent(k)
			if c.Type == Blob {
				if d == Postgres {
					v = "encode(" + v + ", 'hex')"
				} else {
					v = "hex(" + v + ")"
				}
			}
			parts[i] = v
		}
		if d == Postgres {
			return "jsonb_build_array(" + strings.Join(parts, ", ") + ")::text"
		}
		return "json_array(" + strings.Join(parts, ", ") + ")"
	}
	changed := func() string {
		var c []string
		for _, k := range logged {
			c = append(c, "OLD."+quoteIdent(k)+" IS DISTINCT FROM NEW."+quoteIdent(k))
		}
		if d == SQLite {
			for i := range c {
				c[i] = strings.Replace(c[i], "IS DISTINCT FROM", "IS NOT", 1)
			}
		}
		return strings.Join(c, " OR ")
	}
	name := t.Name
	lit := "'" + name + "'"
	if d == Postgres {
		fn := quoteIdent("custos_track_" + name)
		body := fmt.Sprintf(`CREATE OR REPLACE FUNCTION %s() RETURNS trigger LANGUAGE plpgsql AS $f$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM backup_state WHERE key = 'tracking') THEN RETURN NULL; END IF;
  IF TG_OP <> 'INSERT' AND (TG_OP = 'DELETE' OR %s) THEN
    INSERT INTO backup_changes (tbl, key) VALUES (%s, %s);
  END IF;
  IF TG_OP <> 'DELETE' THEN
    INSERT INTO backup_changes (tbl, key) VALUES (%s, %s);
  END IF;
  RETURN NULL;
END $f$`, fn, changed(), lit, enc("OLD"), lit, enc("NEW"))
		return []string{body,
			fmt.Sprintf(`CREATE OR REPLACE TRIGGER %s AFTER INSERT OR UPDATE OR DELETE ON %s FOR EACH ROW EXECUTE FUNCTION %s()`,
				quoteIdent("custos_track_"+name), quoteIdent(name), fn)}
	}
	when := `EXISTS (SELECT 1 FROM backup_state WHERE key = 'tracking')`
	tn := func(op string) string { return quoteIdent("custos_track_" + name + "_" + op) }
	return []string{
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER INSERT ON %s WHEN %s BEGIN INSERT INTO backup_changes (tbl, key) VALUES (%s, %s); END`,
			tn("ins"), quoteIdent(name), when, lit, enc("NEW")),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER UPDATE ON %s WHEN %s BEGIN INSERT INTO backup_changes (tbl, key) SELECT %s, %s WHERE %s; INSERT INTO backup_changes (tbl, key) VALUES (%s, %s); END`,
			tn("upd"), quoteIdent(name), when, lit, enc("OLD"), changed(), lit, enc("NEW")),
		fmt.Sprintf(`CREATE TRIGGER IF NOT EXISTS %s AFTER DELETE ON %s WHEN %s BEGIN INSERT INTO backup_changes (tbl, key) VALUES (%s, %s); END`,
			tn("del"), quoteIdent(name), when, lit, enc("OLD")),
	}
}

// ensureTracking creates the change-log triggers of every tracked table
// (idempotent; run by Migrate after the migrations).
func (db *DB) ensureTracking(ctx context.Context) error {
	return db.Write(ctx, func(tx *Tx) error {
		if db.dialect == Postgres {
			if _, err := tx.exec(ctx, `SELECT pg_advisory_xact_lock(7236508160)`); err != nil {
				return err
			}
		}
		tables, err := tx.BackupTables(ctx)
		if err != nil {
			return err
		}
		// The triggers are regenerated when what they would be changes
		// (a table, key or group added to the catalog); otherwise left
		// alone, since replacing a trigger locks its table.
		var all []string
		for _, t := range tables {
			if t.Mode == Tracked {
				all = append(all, trackingSQL(db.dialect, t)...)
			}
		}
		sum := sha256.Sum256([]byte(strings.Join(all, "\n")))
		version := hex.EncodeToString(sum[:8])
		have, _, err := tx.BackupState(ctx, "tracking_sql")
		if err != nil || have == version {
			return err
		}
		if err := tx.dropTracking(ctx); err != nil {
			return err
		}
		if have != "" {
			// What the log records changed: the entries so far cannot be
			// read the new way. Drop them and mark the log pruned up to
			// now, so the next backup on an older base is refused and a
			// full backup is taken instead.
			pos := ""
			if db.dialect == Postgres {
				err = tx.queryRow(ctx, `SELECT 'pg:' || pg_current_snapshot()::text`).Scan(&pos)
			} else {
				var seq int64
				err = tx.queryRow(ctx, `SELECT COALESCE(MAX(seq), 0) FROM backup_changes`).Scan(&seq)
				pos = "seq:" + strconv.FormatInt(seq, 10)
			}
			if err != nil {
				return err
			}
			if _, err := tx.exec(ctx, `DELETE FROM backup_changes`); err != nil {
				return err
			}
			if err := tx.PutBackupState(ctx, "pruned", pos, time.Now()); err != nil {
				return err
			}
		}
		for _, q := range all {
			if _, err := tx.tx.ExecContext(ctx, q); err != nil {
				return fmt.Errorf("store: change tracking: %w", err)
			}
		}
		return tx.PutBackupState(ctx, "tracking_sql", version, time.Now())
	})
}

// dropTracking removes every change-log trigger (and, on PostgreSQL, its
// function).
func (tx *Tx) dropTracking(ctx context.Context) error {
	q := `SELECT name, tbl_name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'custos_track_%'`
	if tx.dialect == Postgres {
		q = `SELECT t.tgname, c.relname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
			WHERE c.relnamespace = current_schema()::regnamespace AND t.tgname LIKE 'custos_track_%'`
	}
	rows, err := tx.query(ctx, q)
	if err != nil {
		return err
	}
	var found [][2]string
	for rows.Next() {
		var n, tbl string
		if err := rows.Scan(&n, &tbl); err != nil {
			rows.Close()
			return err
		}
		found = append(found, [2]string{n, tbl})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	for _, f := range found {
		drop := `DROP TRIGGER IF EXISTS ` + quoteIdent(f[0])
		if tx.dialect == Postgres {
			drop += ` ON ` + quoteIdent(f[1])
		}
		if _, err := tx.exec(ctx, drop); err != nil {
			return err
		}
	}
	return nil
}
