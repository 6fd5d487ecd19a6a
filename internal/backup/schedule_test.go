package backup_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func runs(t *testing.T, s *source) []store.BackupRun {
	t.Helper()
	var out []store.BackupRun
	must(t, s.n.DB.Read(s.ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.BackupRuns(s.ctx)
		return err
	}))
	return out
}

// Two nodes on one database run each scheduled job once; an incremental
// without a base becomes a full backup; a full and an incremental due
// together make one full; verification restores the newest backup; the
// erasure ledger is published after an erasure.
func TestSchedulerRunsEachJobOnceAcrossNodes(t *testing.T) {
	s := newSource(t, "sqlite", 10)
	dir := t.TempDir()
	env := map[string]string{"CUSTOS_BACKUP_DESTINATIONS": "file://" + dir, "CUSTOS_TIME_ZONE": "Asia/Shanghai"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	sh, _ := time.LoadLocation("Asia/Shanghai")
	c := &clock{t: time.Date(2026, 11, 23, 0, 0, 0, 0, sh)} // a Monday
	nodes := []*backup.Scheduler{
		{DB: s.n.DB, Root: s.root, Env: lookup, Now: c.now},
		{DB: s.n.DB, Root: s.root, Env: lookup, Now: c.now},
	}
	tick := func(at time.Time) {
		t.Helper()
		c.set(at)
		for _, n := range nodes {
			if err := n.Tick(s.ctx); err != nil {
				t.Fatalf("tick at %s: %v", at, err)
			}
		}
	}
	tick(c.now())
	if got := runs(t, s); len(got) != 0 {
		t.Fatalf("the first tick ran %d backups; it only starts the clocks", len(got))
	}
	tick(time.Date(2026, 11, 23, 2, 0, 30, 0, sh))
	got := runs(t, s)
	if len(got) != 1 || got[0].Kind != "full" {
		t.Fatalf("at 02:00 with no base: %+v, want one full backup", got)
	}
	tick(time.Date(2026, 11, 23, 2, 5, 0, 0, sh)) // nothing new is due
	tick(time.Date(2026, 11, 24, 2, 0, 30, 0, sh))
	got = runs(t, s)
	if len(got) != 2 || got[1].Kind != "incremental" || got[1].Base != got[0].ID {
		t.Fatalf("on Tuesday: %+v, want an incremental on the full backup", got)
	}
	// Down from Tuesday to Sunday 03:00: the missed incrementals and the
	// full backup collapse into one full backup.
	tick(time.Date(2026, 11, 29, 3, 0, 30, 0, sh))
	got = runs(t, s)
	if len(got) != 3 || got[2].Kind != "full" {
		t.Fatalf("on Sunday: %+v, want one more backup, a full one", got)
	}
	// An erasure is published within a tick; verification runs at 04:30.
	must(t, s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
		return tx.EraseCustomerRows(s.ctx, store.Erasure{CustomerID: s.ids[0], ErasedAt: c.now(), ErasedBy: "test"})
	}))
	tick(time.Date(2026, 11, 29, 3, 1, 0, 0, sh))
	ledgers, err := filepath.Glob(filepath.Join(dir, "custos-backups", "ledger", "*.json"))
	if err != nil || len(ledgers) != 1 {
		t.Fatalf("ledger objects: %v %v", ledgers, err)
	}
	d, err := backup.OpenDestination(s.ctx, "file://"+dir)
	must(t, err)
	defer d.Close()
	k, err := backup.RootKeySource(s.root)(s.ctx, mustManifestKey(t, s, d))
	must(t, err)
	list, _, err := backup.ReadLedgers(s.ctx, d, k)
	must(t, err)
	if len(list) != 1 || list[0].CustomerID != s.ids[0] {
		t.Fatalf("published ledger: %+v", list)
	}
	tick(time.Date(2026, 11, 29, 4, 30, 30, 0, sh))
	var verified int
	must(t, s.n.DB.Read(s.ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(s.ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "backup.verify", Outcome: "ok", Limit: 10})
		verified = len(evs)
		return err
	}))
	if verified != 1 {
		t.Fatalf("%d backup.verify events after 04:30 on two nodes, want 1", verified)
	}

	// A destination that fails: the failure is an audit event (the
	// monitor's backups detector alerts on it).
	must(t, os.RemoveAll(dir))
	must(t, os.WriteFile(dir, []byte("not a directory"), 0o600))
	c.set(time.Date(2026, 11, 30, 2, 0, 30, 0, sh))
	if err := nodes[0].Tick(s.ctx); err == nil {
		t.Fatal("a backup to a broken destination succeeded")
	}
	var failed int
	must(t, s.n.DB.Read(s.ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(s.ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "backup.create", Outcome: "error", Limit: 10})
		failed = len(evs)
		return err
	}))
	if failed == 0 {
		t.Fatal("no backup.create error event for the failed scheduled backup")
	}
}

// mustManifestKey returns the key info of the newest backup at d.
func mustManifestKey(t *testing.T, s *source, d *backup.Destination) backup.KeyInfo {
	t.Helper()
	entries, err := backup.List(s.ctx, d, backup.RootKeySource(s.root))
	must(t, err)
	if len(entries) == 0 {
		t.Fatal("no backups")
	}
	m, err := backup.ReadManifest(s.ctx, d, entries[len(entries)-1].ID, backup.RootKeySource(s.root))
	must(t, err)
	return m.Key
}
