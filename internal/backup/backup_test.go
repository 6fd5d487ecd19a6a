package backup_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// source is a live Custos database with demo data.
type source struct {
	t     *testing.T
	ctx   context.Context
	n     *node.Node
	root  keys.RootProvider
	cfg   config.Config
	names []string // plaintext values that must never appear in a backup
	ids   []string
}

func newSource(t *testing.T, engine string, customers int) *source {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if engine == "postgres" {
		cfg.DB = pgtest.Shared(t).NewDatabase(t)
	}
	ctx := context.Background()
	n, err := node.Open(ctx, cfg, node.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	root, err := keys.OpenLocalFile(cfg.RootKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	s := &source{t: t, ctx: ctx, n: n, root: root, cfg: cfg}
	// The backup key exists before the first digest is taken, as it does
	// once the recovery kit was exported.
	if _, _, err := keys.BackupKey(ctx, n.DB, root, time.Now()); err != nil {
		t.Fatal(err)
	}
	s.add(customers, 1)
	return s
}

func (s *source) add(count int, seed uint64) {
	s.t.Helper()
	g := demo.New(seed, time.Now())
	str := func(v string) *string { return &v }
	list := func(v []string) *[]string { return &v }
	p := access.Operator("test")
	for range count {
		c := g.Customer()
		s.names = append(s.names, c.Name)
		s.names = append(s.names, c.Phones...)
		s.names = append(s.names, c.Emails...)
		cu, err := s.n.CRM.CreateCustomer(s.ctx, p, crm.CustomerFields{Kind: str(c.Kind), Name: str(c.Name), Phones: list(c.Phones), Emails: list(c.Emails),
			Address: str(c.Address), Notes: str(c.Notes), Industry: str(c.Industry)})
		if err != nil {
			s.t.Fatalf("create customer: %v", err)
		}
		for _, ct := range c.Contacts {
			s.names = append(s.names, ct.Name)
			if _, err := s.n.CRM.CreateContact(s.ctx, p, cu.ID, crm.ContactFields{Name: str(ct.Name), Phones: list(ct.Phones), Emails: list(ct.Emails)}); err != nil {
				s.t.Fatalf("create contact: %v", err)
			}
		}
		s.ids = append(s.ids, cu.ID)
	}
}

// change updates some customers and erases others (real deletions).
func (s *source) change(update []string, erase []string) {
	s.t.Helper()
	for i, id := range update {
		name := "Renamed customer " + id[len(id)-6:]
		_ = i
		if _, err := s.n.CRM.UpdateCustomer(s.ctx, access.Operator("test"), id, crm.CustomerFields{Name: &name}, 0); err != nil {
			s.t.Fatalf("update: %v", err)
		}
	}
	for _, id := range erase {
		if err := s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
			return tx.EraseCustomerRows(s.ctx, store.Erasure{CustomerID: id, ErasedAt: time.Now(), ErasedBy: "test"})
		}); err != nil {
			s.t.Fatalf("erase: %v", err)
		}
	}
}

func (s *source) digest() backup.Digest {
	s.t.Helper()
	d, err := backup.ComputeDigest(s.ctx, s.n.DB)
	if err != nil {
		s.t.Fatal(err)
	}
	return d
}

func (s *source) create(kind backup.Kind, dests ...*backup.Destination) backup.Manifest {
	s.t.Helper()
	res, err := backup.Create(s.ctx, backup.CreateOptions{DB: s.n.DB, Root: s.root, Kind: kind, Destinations: dests, Actor: "test", ChunkSize: 64 << 10})
	if err != nil {
		s.t.Fatalf("create %s: %v", kind, err)
	}
	return res.Manifest
}

func fileDest(t *testing.T) *backup.Destination {
	t.Helper()
	d, err := backup.OpenDestination(context.Background(), "file://"+t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = d.Close() })
	return d
}

func restore(t *testing.T, s *source, d *backup.Destination, id, dsn string) (string, backup.Restored, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "restored")
	rk, err := os.ReadFile(s.cfg.RootKeyPath())
	if err != nil {
		t.Fatal(err)
	}
	r, err := backup.Restore(s.ctx, backup.RestoreOptions{From: d, KeyOf: backup.RootKeySource(s.root), ID: id, DataDir: dir, DSN: dsn, RootKeyFile: rk})
	return dir, r, err
}

func sameDigest(t *testing.T, what string, want, got backup.Digest) {
	t.Helper()
	if want.Overall == got.Overall {
		return
	}
	wt := map[string]backup.TableDigest{}
	for _, d := range want.Tables {
		wt[d.Name] = d
	}
	for _, d := range got.Tables {
		if w := wt[d.Name]; w != d {
			t.Errorf("%s: table %s: source %d rows %s, restored %d rows %s", what, d.Name, w.Rows, w.Hash[:12], d.Rows, d.Hash[:12])
		}
	}
	t.Fatalf("%s: digests differ", what)
}

func TestRoundTrip(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			s := newSource(t, engine, 40)
			d1, d2 := fileDest(t), fileDest(t)

			want0 := s.digest()
			full := s.create(backup.Full, d1, d2)

			s.add(5, 2)
			s.change(s.ids[0:3], s.ids[3:5])
			want1 := s.digest()
			inc := s.create(backup.Incremental, d1, d2)
			if inc.Base != full.ID || inc.Full != full.ID {
				t.Fatalf("incremental base %s full %s, want %s", inc.Base, inc.Full, full.ID)
			}
			if got := inc.Tables["customers"]; got.Rows != 8 || got.Deleted != 2 {
				t.Errorf("incremental customers: %d rows, %d deleted; want 8 (5 new, 3 changed) and 2", got.Rows, got.Deleted)
			}
			// The blind index is carried by customer: the 10 whose terms changed.
			if got := inc.Tables["search_terms"]; got.Groups != 10 {
				t.Errorf("incremental search_terms: %d groups, want 10 (5 new, 3 renamed, 2 erased)", got.Groups)
			}

			s.add(3, 3)
			s.change(s.ids[5:7], s.ids[7:9])
			want2 := s.digest()
			diff := s.create(backup.Differential, d1, d2)
			if diff.Base != full.ID {
				t.Fatalf("differential base %s, want the full %s", diff.Base, full.ID)
			}
			if got := diff.Tables["customers"]; got.Rows != 13 || got.Deleted != 4 {
				t.Errorf("differential customers: %d rows, %d deleted; want 13 and 4", got.Rows, got.Deleted)
			}

			for _, c := range []struct {
				id   string
				want backup.Digest
				d    *backup.Destination
			}{{full.ID, want0, d1}, {inc.ID, want1, d2}, {diff.ID, want2, d1}} {
				dir, r, err := restore(t, s, c.d, c.id, "")
				if err != nil {
					t.Fatalf("restore %s: %v", c.id, err)
				}
				sameDigest(t, "restore "+c.id, c.want, r.Digest)
				// A restored directory opens as a Custos node.
				cfg := config.Default()
				cfg.DataDir = dir
				n, err := node.Open(s.ctx, cfg, node.Options{})
				if err != nil {
					t.Fatalf("open restored %s: %v", c.id, err)
				}
				_ = n.Close()
			}

			// The restored content opens: a customer's name reads back.
			dir, _, err := restore(t, s, d1, "", "")
			if err != nil {
				t.Fatal(err)
			}
			cfg := config.Default()
			cfg.DataDir = dir
			n, err := node.Open(s.ctx, cfg, node.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			c, err := n.CRM.GetCustomer(s.ctx, access.Operator("test"), s.ids[0])
			if err != nil || !strings.HasPrefix(c.Name, "Renamed customer") {
				t.Fatalf("restored customer: %+v %v", c.Name, err)
			}
			if _, err := n.CRM.GetCustomer(s.ctx, access.Operator("test"), s.ids[3]); err == nil {
				t.Fatalf("an erased customer came back")
			}

			// No plaintext in any object.
			for _, d := range []*backup.Destination{d1, d2} {
				names, err := d.List(s.ctx, "")
				if err != nil {
					t.Fatal(err)
				}
				for _, name := range names {
					data, err := d.Get(s.ctx, name)
					if err != nil {
						t.Fatal(err)
					}
					for _, v := range s.names {
						if len(v) >= 4 && bytes.Contains(data, []byte(v)) {
							t.Fatalf("%s contains %q", name, v)
						}
					}
				}
			}
		})
	}
}

// damage lets a test alter a file destination's objects.
func objectPath(t *testing.T, dir, id, name string) string {
	t.Helper()
	p := filepath.Join(dir, "custos-backups", id, name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("object %s: %v", p, err)
	}
	return p
}

func TestDamageIsDetectedAndWritesNothing(t *testing.T) {
	s := newSource(t, "sqlite", 30)
	dir := t.TempDir()
	d, err := backup.OpenDestination(s.ctx, "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := backup.Create(s.ctx, backup.CreateOptions{DB: s.n.DB, Root: s.root, Kind: backup.Full, Destinations: []*backup.Destination{d}, ChunkSize: 16 << 10})
	if err != nil {
		t.Fatal(err)
	}
	full := res.Manifest
	if len(full.Chunks) < 3 {
		t.Fatalf("want at least 3 chunks to swap, got %d", len(full.Chunks))
	}
	s.change(s.ids[:2], nil)
	inc1 := s.create(backup.Incremental, d)
	s.change(s.ids[2:4], nil)
	inc2 := s.create(backup.Incremental, d)

	otherRoot, err := keys.CreateLocalFile(filepath.Join(t.TempDir(), "other.key"))
	if err != nil {
		t.Fatal(err)
	}
	c1 := objectPath(t, dir, full.ID, full.Chunks[0].Name)
	c2 := objectPath(t, dir, full.ID, full.Chunks[1].Name)
	cases := []struct {
		name   string
		damage func() (undo func())
		id     string
		keyOf  backup.KeySource
		want   string
	}{
		{"corrupted chunk", func() func() {
			b, _ := os.ReadFile(c2)
			bad := bytes.Clone(b)
			bad[len(bad)/2] ^= 1
			must(t, os.WriteFile(c2, bad, 0o600))
			return func() { must(t, os.WriteFile(c2, b, 0o600)) }
		}, full.ID, nil, "damaged (hash mismatch)"},
		{"swapped chunks", func() func() {
			a, _ := os.ReadFile(c1)
			b, _ := os.ReadFile(c2)
			must(t, os.WriteFile(c1, b, 0o600))
			must(t, os.WriteFile(c2, a, 0o600))
			return func() { must(t, os.WriteFile(c1, a, 0o600)); must(t, os.WriteFile(c2, b, 0o600)) }
		}, full.ID, nil, "damaged (hash mismatch)"},
		{"missing incremental", func() func() {
			p := filepath.Join(dir, "custos-backups", inc1.ID)
			must(t, os.Rename(p, p+".away"))
			return func() { must(t, os.Rename(p+".away", p)) }
		}, inc2.ID, nil, "which is missing"},
		{"missing chunk", func() func() {
			must(t, os.Rename(c1, c1+".away"))
			return func() { must(t, os.Rename(c1+".away", c1)) }
		}, inc2.ID, nil, "chunk data-000001 is missing"},
		{"wrong key", func() func() { return func() {} }, inc2.ID, backup.RootKeySource(otherRoot), "root key given does not open the backup key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			undo := c.damage()
			defer undo()
			keyOf := c.keyOf
			if keyOf == nil {
				keyOf = backup.RootKeySource(s.root)
			}
			_, err := backup.Verify(s.ctx, backup.VerifyOptions{From: d, KeyOf: keyOf, ID: c.id, DB: s.n.DB})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want an error with %q", err, c.want)
			}
			target := filepath.Join(t.TempDir(), "restored")
			_, err = backup.Restore(s.ctx, backup.RestoreOptions{From: d, KeyOf: keyOf, ID: c.id, DataDir: target})
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("restore: %v, want an error with %q", err, c.want)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Fatalf("a failed restore left %s behind (%v)", target, err)
			}
		})
	}
	// Undamaged, the same backups verify, and the failures are on record.
	if _, err := backup.Verify(s.ctx, backup.VerifyOptions{From: d, KeyOf: backup.RootKeySource(s.root), ID: inc2.ID, DB: s.n.DB}); err != nil {
		t.Fatalf("verify after undoing the damage: %v", err)
	}
	var failed, ok int
	must(t, s.n.DB.Read(s.ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(s.ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "backup.verify", Limit: 100})
		for _, e := range evs {
			switch e.Outcome {
			case "error":
				failed++
			case "ok":
				ok++
			}
		}
		return err
	}))
	if failed != len(cases) || ok != 1 {
		t.Fatalf("audit: %d failed and %d ok backup.verify events, want %d and 1", failed, ok, len(cases))
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// A backup restores into the other engine, with the same content.
func TestCrossEngine(t *testing.T) {
	for _, c := range []struct{ from, into string }{{"sqlite", "postgres"}, {"postgres", "sqlite"}} {
		t.Run(c.from+" to "+c.into, func(t *testing.T) {
			s := newSource(t, c.from, 15)
			d := fileDest(t)
			s.create(backup.Full, d)
			s.add(3, 7)
			s.change(s.ids[:2], s.ids[2:3])
			want := s.digest()
			inc := s.create(backup.Incremental, d)
			dsn := ""
			if c.into == "postgres" {
				dsn = pgtest.Shared(t).NewDatabase(t)
			}
			dir, r, err := restore(t, s, d, inc.ID, dsn)
			if err != nil {
				t.Fatal(err)
			}
			sameDigest(t, "cross-engine restore", want, r.Digest)
			cfg := config.Default()
			cfg.DataDir, cfg.DB = dir, dsn
			n, err := node.Open(s.ctx, cfg, node.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			if _, err := n.CRM.GetCustomer(s.ctx, access.Operator("test"), s.ids[5]); err != nil {
				t.Fatalf("a customer does not open in the restored %s database: %v", c.into, err)
			}
			// The restored database backs up again (a new chain: a full backup).
			d2 := fileDest(t)
			root, err := keys.OpenLocalFile(cfg.RootKeyPath())
			must(t, err)
			if _, err := backup.Create(s.ctx, backup.CreateOptions{DB: n.DB, Root: root, Kind: backup.Incremental, Destinations: []*backup.Destination{d2}}); err == nil || !strings.Contains(err.Error(), "--full") {
				t.Fatalf("an incremental of a restored database with no backup of its own: %v", err)
			}
			if _, err := backup.Create(s.ctx, backup.CreateOptions{DB: n.DB, Root: root, Kind: backup.Full, Destinations: []*backup.Destination{d2}}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A backup without its manifest (an interrupted upload) is listed as
// incomplete and never chosen as a restore point.
func TestIncompleteBackupIsNoRestorePoint(t *testing.T) {
	s := newSource(t, "sqlite", 5)
	dir := t.TempDir()
	d, err := backup.OpenDestination(s.ctx, "file://"+dir)
	must(t, err)
	want := s.digest()
	full := s.create(backup.Full, d)
	s.add(2, 9)
	inc := s.create(backup.Incremental, d)
	must(t, os.Remove(filepath.Join(dir, "custos-backups", inc.ID, "manifest.json")))
	entries, err := backup.List(s.ctx, d, backup.RootKeySource(s.root))
	must(t, err)
	if len(entries) != 2 || !entries[0].Complete || entries[1].Complete || entries[1].ID != inc.ID {
		t.Fatalf("list: %+v", entries)
	}
	_, r, err := restore(t, s, d, "", "")
	must(t, err)
	if r.ID != full.ID {
		t.Fatalf("restored %s, want the last complete backup %s", r.ID, full.ID)
	}
	sameDigest(t, "restore", want, r.Digest)
}

// A full backup that prunes the change log past an incremental's
// position (here: its clock says it came earlier) makes a later
// incremental on that one refuse, instead of silently missing changes.
func TestPrunedChangesAreNeverSilentlyMissing(t *testing.T) {
	s := newSource(t, "sqlite", 8)
	d := fileDest(t)
	t0 := time.Now()
	at := func(h int) func() time.Time { return func() time.Time { return t0.Add(time.Duration(h) * time.Hour) } }
	mk := func(kind backup.Kind, now func() time.Time) (backup.Manifest, error) {
		res, err := backup.Create(s.ctx, backup.CreateOptions{DB: s.n.DB, Root: s.root, Kind: kind, Destinations: []*backup.Destination{d}, Now: now})
		return res.Manifest, err
	}
	if _, err := mk(backup.Full, at(0)); err != nil {
		t.Fatal(err)
	}
	s.change(s.ids[0:1], nil)
	i1, err := mk(backup.Incremental, at(2))
	must(t, err)
	s.change(s.ids[1:2], nil)
	if _, err := mk(backup.Full, at(1)); err != nil { // an earlier clock, a later snapshot
		t.Fatal(err)
	}
	s.change(s.ids[2:3], nil)
	_, err = mk(backup.Incremental, at(3))
	if err == nil || !strings.Contains(err.Error(), "--full") {
		t.Fatalf("an incremental on %s after the log was pruned past it: %v; want a refusal asking for a full backup", i1.ID, err)
	}
}

// A destination shared by two databases with the same backup key (a
// restored copy that keeps backing up there): a restore must be told which.
func TestRestoreAsksWhichDatabase(t *testing.T) {
	s := newSource(t, "sqlite", 3)
	d := fileDest(t)
	s.create(backup.Full, d)
	dir, _, err := restore(t, s, d, "", "")
	must(t, err)
	cfg := config.Default()
	cfg.DataDir = dir
	n, err := node.Open(s.ctx, cfg, node.Options{})
	must(t, err)
	defer n.Close()
	copyRoot, err := keys.OpenLocalFile(cfg.RootKeyPath())
	must(t, err)
	res, err := backup.Create(s.ctx, backup.CreateOptions{DB: n.DB, Root: copyRoot, Kind: backup.Full, Destinations: []*backup.Destination{d}})
	must(t, err)
	if _, _, err := restore(t, s, d, "", ""); err == nil || !strings.Contains(err.Error(), "backups of 2 databases") {
		t.Fatalf("restore without --id from a shared destination: %v", err)
	}
	if _, _, err := restore(t, s, d, res.Manifest.ID, ""); err != nil {
		t.Fatal(err)
	}
}

// A customer erased after a backup was taken does not come back when that
// backup is restored: the ledger published at the destination is applied.
// A ledger that went missing is reported.
func TestErasureAfterBackupStaysErased(t *testing.T) {
	s := newSource(t, "sqlite", 6)
	dir := t.TempDir()
	d, err := backup.OpenDestination(s.ctx, "file://"+dir)
	must(t, err)
	must(t, s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
		return tx.EraseCustomerRows(s.ctx, store.Erasure{CustomerID: s.ids[0], ErasedAt: time.Now(), ErasedBy: "test"})
	}))
	old := s.create(backup.Full, d) // knows one erasure
	must(t, s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
		return tx.EraseCustomerRows(s.ctx, store.Erasure{CustomerID: s.ids[1], ErasedAt: time.Now(), ErasedBy: "test"})
	}))
	k, err := backup.RootKeySource(s.root)(s.ctx, old.Key)
	must(t, err)
	published, err := backup.PublishLedger(s.ctx, backup.PublishLedgerOptions{DB: s.n.DB, Key: k, Destinations: []*backup.Destination{d}, Now: time.Now()})
	must(t, err)
	if !published {
		t.Fatal("the grown ledger was not published")
	}
	rdir, r, err := restore(t, s, d, old.ID, "")
	must(t, err)
	if r.Erasures != 1 || len(r.Warnings) != 0 {
		t.Fatalf("restore applied %d erasures with warnings %v; want 1 and none", r.Erasures, r.Warnings)
	}
	cfg := config.Default()
	cfg.DataDir = rdir
	n, err := node.Open(s.ctx, cfg, node.Options{})
	must(t, err)
	defer n.Close()
	for _, id := range s.ids[:2] {
		if _, err := n.CRM.GetCustomer(s.ctx, access.Operator("test"), id); err == nil {
			t.Fatalf("erased customer %s came back", id)
		}
	}
	if _, err := n.CRM.GetCustomer(s.ctx, access.Operator("test"), s.ids[2]); err != nil {
		t.Fatalf("a customer that was not erased: %v", err)
	}
	// Without the ledger object, the restore says so.
	ledgers, _ := filepath.Glob(filepath.Join(dir, "custos-backups", "ledger", "*.json"))
	for _, l := range ledgers {
		must(t, os.Remove(l))
	}
	_, r, err = restore(t, s, d, old.ID, "")
	must(t, err)
	if len(r.Warnings) == 0 {
		t.Fatal("no warning for a destination whose ledger is gone")
	}
}
