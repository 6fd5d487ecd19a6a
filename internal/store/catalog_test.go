package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

// Every table of the schema is in the backup catalog, with its real key
// columns: a migration that adds a table must say how backups treat it.
func TestCatalogCoversSchema(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			err := db.Read(ctx, func(tx *store.Tx) error {
				tables, err := tx.Tables(ctx)
				if err != nil {
					return err
				}
				for _, tb := range tables {
					if !slices.ContainsFunc(store.Catalog, func(e store.CatalogEntry) bool { return e.Name == tb }) {
						t.Errorf("table %s is not in store.Catalog", tb)
					}
				}
				for _, e := range store.Catalog {
					if !slices.Contains(tables, e.Name) {
						t.Errorf("store.Catalog lists %s, which the schema does not have", e.Name)
					}
				}
				_, err = tx.BackupTables(ctx)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// The change log records the keys of inserted, updated and deleted rows
// once tracking is on, and a snapshot reads the changed rows and the
// deleted keys after a position.
func TestChangeTracking(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			ctx := context.Background()
			now := time.Now()
			put := func(k, v string) {
				t.Helper()
				if err := db.Write(ctx, func(tx *store.Tx) error {
					return tx.PutSetting(ctx, store.Setting{Key: k, Value: v, UpdatedAt: now, UpdatedBy: "test"})
				}); err != nil {
					t.Fatal(err)
				}
			}
			put("untracked", "1") // before tracking: not logged
			if err := db.Write(ctx, func(tx *store.Tx) error { return tx.PutBackupState(ctx, "tracking", "on", now) }); err != nil {
				t.Fatal(err)
			}
			var pos string
			if err := db.Snapshot(ctx, func(s *store.Snap) error { pos = s.Position(); return nil }); err != nil {
				t.Fatal(err)
			}
			put("a", "1")
			put("b", "1")
			put("a", "2")
			put("b", "") // deletes it
			var changed []string
			var deleted []string
			if err := db.Snapshot(ctx, func(s *store.Snap) error {
				var settings store.TableInfo
				for _, tb := range s.Tables() {
					if tb.Name == "settings" {
						settings = tb
					}
				}
				ki, vi := settings.Column("key"), settings.Column("value")
				return s.Changes(ctx, settings, pos, func(row, key []any) error {
					if row == nil {
						deleted = append(deleted, key[0].(string))
					} else {
						changed = append(changed, row[ki].(string)+"="+row[vi].(string))
					}
					return nil
				})
			}); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(changed, []string{"a=2"}) || !slices.Equal(deleted, []string{"b"}) {
				t.Fatalf("changed %v deleted %v; want [a=2] and [b]", changed, deleted)
			}
		})
	}
}

// When what the change log records changes (a new Custos), the entries so
// far are dropped and the log is marked pruned up to now, so the next
// incremental on an older base is refused rather than misread.
func TestTrackingRegenerationMarksLogPruned(t *testing.T) {
	db := openSQLite(t)
	ctx := context.Background()
	now := time.Now()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.Write(ctx, func(tx *store.Tx) error { return tx.PutBackupState(ctx, "tracking", "on", now) }))
	must(db.Write(ctx, func(tx *store.Tx) error {
		return tx.PutSetting(ctx, store.Setting{Key: "a", Value: "1", UpdatedAt: now, UpdatedBy: "t"})
	}))
	var before string
	must(db.Snapshot(ctx, func(s *store.Snap) error { before = s.Position(); return nil }))
	must(db.Write(ctx, func(tx *store.Tx) error { return tx.PutBackupState(ctx, "tracking_sql", "an older version", now) }))
	must(db.Migrate(ctx))
	var pruned string
	must(db.Read(ctx, func(tx *store.Tx) error {
		var err error
		pruned, _, err = tx.BackupState(ctx, "pruned")
		return err
	}))
	if ok, err := store.PositionCovers("seq:0", pruned); err != nil || ok {
		t.Fatalf("pruned %q after regeneration (position before: %s); a base at seq:0 must not cover it", pruned, before)
	}
}
