package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/audittest"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

var t0 = time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)

// trail is a SQLite audit trail with a checkpoint signer.
type trail struct {
	path string
	db   *store.DB
	cp   *audit.Checkpointer
}

func openStore(t testing.TB, dsn string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return db
}

func newTrail(t testing.TB) *trail {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "custos.db")
	db := openStore(t, path)
	key, _, err := audit.LoadOrCreateKey(filepath.Join(dir, "audit", "signing.key"))
	if err != nil {
		t.Fatal(err)
	}
	return &trail{path: path, db: db, cp: &audit.Checkpointer{DB: db, Signer: key, Log: audit.CheckpointLog{Path: filepath.Join(dir, "audit", "checkpoints.jsonl")},
		Now: func() time.Time { return t0 }}}
}

// append records n events (varied, like real ones) starting at time at.
func (tr *trail) append(t testing.TB, n int, at time.Time) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		e := audit.Event{Actor: fmt.Sprintf("user:u%d", i%3), IP: "203.0.113.7", UserAgent: "test", RequestID: fmt.Sprintf("r%d", i),
			Action: []string{"customer.view", "customer.update", "auth.login"}[i%3], ObjectType: "customer", ObjectID: fmt.Sprintf("c%d", i),
			Outcome: audit.OK, Details: map[string]any{"fields": []string{"phone"}, "i": i}}
		if err := audit.RecordAlone(ctx, tr.db, at.Add(time.Duration(i)*time.Second), e); err != nil {
			t.Fatal(err)
		}
	}
}

func (tr *trail) checkpoint(t testing.TB) {
	t.Helper()
	if _, _, err := tr.cp.Checkpoint(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func (tr *trail) verify(t testing.TB) audit.Report {
	t.Helper()
	cps, err := audit.LoadCheckpoints(context.Background(), tr.db, tr.cp.Log)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.Verify(context.Background(), tr.db, audit.VerifyOptions{Checkpoints: cps, Trusted: tr.cp.Trusted(), PageSize: 7})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func (tr *trail) tamper(t testing.TB, fn func(*audittest.Tamperer) error) {
	t.Helper()
	tm, err := audittest.Open(tr.path)
	if err != nil {
		t.Fatal(err)
	}
	defer tm.Close()
	if err := fn(tm); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyNamesTampering tampers with the trail directly in SQLite, one
// way per case, and checks that verification names the first bad sequence
// number and the kind of tampering.
func TestVerifyNamesTampering(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name   string
		tamper func(*audittest.Tamperer) error
		seq    int64
		kind   audit.Kind
	}{
		{"modify one event's details", func(tm *audittest.Tamperer) error { return tm.Modify(17) }, 17, audit.Modified},
		{"delete an event", func(tm *audittest.Tamperer) error { return tm.Delete(17) }, 17, audit.Deleted},
		{"delete the first event", func(tm *audittest.Tamperer) error { return tm.Delete(1) }, 1, audit.Deleted},
		{"insert a forged event", func(tm *audittest.Tamperer) error { return tm.Insert(17) }, 17, audit.Inserted},
		{"swap two events", func(tm *audittest.Tamperer) error { return tm.Swap(17) }, 17, audit.Reordered},
		{"cut the tail", func(tm *audittest.Tamperer) error { return tm.Truncate(27, false) }, 27, audit.Truncated},
		{"cut the tail and move the head", func(tm *audittest.Tamperer) error { return tm.Truncate(27, true) }, 27, audit.Truncated},
		{"rewrite the chain after a change", func(tm *audittest.Tamperer) error { return tm.Rewrite(ctx, 17) }, 11, audit.Modified},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tr := newTrail(t)
			tr.append(t, 10, t0)
			tr.checkpoint(t) // at 10
			tr.append(t, 20, t0.Add(time.Hour))
			tr.checkpoint(t) // at 30
			if rep := tr.verify(t); !rep.OK() || rep.Events != 30 || rep.Checkpoints != 2 {
				t.Fatalf("untouched trail: %+v, want 30 events, 2 checkpoints, no problem", rep)
			}
			tr.tamper(t, c.tamper)
			rep := tr.verify(t)
			if rep.OK() {
				t.Fatalf("tampered trail verified: %+v", rep)
			}
			if rep.Problem.Seq != c.seq || rep.Problem.Kind != c.kind {
				t.Fatalf("problem = %s, want seq %d, %s", rep.Problem, c.seq, c.kind)
			}
		})
	}
}

func TestVerifyCheckpoints(t *testing.T) {
	ctx := context.Background()
	t.Run("a forged checkpoint", func(t *testing.T) {
		tr := newTrail(t)
		tr.append(t, 5, t0)
		tr.checkpoint(t)
		b, err := os.ReadFile(tr.cp.Log.Path)
		if err != nil {
			t.Fatal(err)
		}
		cps, _ := tr.cp.Log.Read()
		// Claim the trail reached seq 9: the signature no longer matches.
		forged := strings.Replace(string(b), fmt.Sprintf(`"seq":%d`, cps[0].Seq), `"seq":9`, 1)
		if err := os.WriteFile(tr.cp.Log.Path, []byte(forged), 0o600); err != nil {
			t.Fatal(err)
		}
		if rep := tr.verify(t); rep.OK() || rep.Problem.Kind != audit.BadCheckpoint || rep.Problem.Seq != 9 {
			t.Fatalf("forged checkpoint: %+v", rep.Problem)
		}
	})
	t.Run("a checkpoint by an untrusted key", func(t *testing.T) {
		tr := newTrail(t)
		tr.append(t, 5, t0)
		_, other, _ := ed25519.GenerateKey(rand.Reader)
		cp, err := audit.Sign(other, 5, make([]byte, 32), 0, make([]byte, 32), t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.cp.Log.Append(cp); err != nil {
			t.Fatal(err)
		}
		if rep := tr.verify(t); rep.OK() || rep.Problem.Kind != audit.BadCheckpoint {
			t.Fatalf("untrusted checkpoint: %+v", rep.Problem)
		}
	})
	t.Run("without checkpoints the head row still exposes a cut tail", func(t *testing.T) {
		tr := newTrail(t)
		tr.append(t, 8, t0)
		tr.tamper(t, func(tm *audittest.Tamperer) error { return tm.Truncate(6, false) })
		rep := tr.verify(t)
		if rep.OK() || rep.Problem.Kind != audit.Truncated || rep.Problem.Seq != 6 {
			t.Fatalf("cut tail: %+v", rep.Problem)
		}
		if len(rep.Warnings) == 0 {
			t.Error("no warning that there are no checkpoints")
		}
	})
	t.Run("verify from a sequence number", func(t *testing.T) {
		tr := newTrail(t)
		tr.append(t, 20, t0)
		tr.checkpoint(t)
		tr.tamper(t, func(tm *audittest.Tamperer) error { return tm.Modify(4) })
		rep, err := audit.Verify(ctx, tr.db, audit.VerifyOptions{From: 10})
		if err != nil || !rep.OK() || rep.First != 10 || rep.Events != 11 {
			t.Fatalf("verify --from 10 over a change at 4: %+v, %v", rep, err)
		}
		tr.tamper(t, func(tm *audittest.Tamperer) error { return tm.Modify(12) })
		rep, err = audit.Verify(ctx, tr.db, audit.VerifyOptions{From: 10})
		if err != nil || rep.OK() || rep.Problem.Seq != 12 || rep.Problem.Kind != audit.Modified {
			t.Fatalf("verify --from 10 over a change at 12: %+v, %v", rep.Problem, err)
		}
	})
}

// TestConcurrentAppendsFormOneChain: 8 goroutines on SQLite, and 3
// connections (three nodes' pools) with several goroutines each on
// PostgreSQL, append concurrently; the result is one unbroken chain with
// every event in it once.
func TestConcurrentAppendsFormOneChain(t *testing.T) {
	ctx := context.Background()
	run := func(t *testing.T, dbs []*store.DB, workers, per int) {
		var wg sync.WaitGroup
		errs := make(chan error, workers*per)
		for w := range workers {
			db := dbs[w%len(dbs)]
			wg.Go(func() {
				for i := range per {
					// Each event comes with a change in the same transaction,
					// as in the real write paths.
					err := db.Write(ctx, func(tx *store.Tx) error {
						if err := tx.PutSetting(ctx, store.Setting{Key: fmt.Sprintf("t.%d", w), Value: fmt.Sprint(i), UpdatedBy: "test", UpdatedAt: t0}); err != nil {
							return err
						}
						_, err := audit.Record(ctx, tx, t0, audit.Event{Actor: fmt.Sprintf("user:w%d", w), Action: "setting.update", Outcome: audit.OK,
							ObjectType: "setting", ObjectID: fmt.Sprintf("w%d-%d", w, i)})
						return err
					})
					if err != nil {
						errs <- err
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		rep, err := audit.Verify(ctx, dbs[0], audit.VerifyOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !rep.OK() || rep.Events != int64(workers*per) || rep.Last != int64(workers*per) {
			t.Fatalf("after %d concurrent appends: %+v (problem %v)", workers*per, rep, rep.Problem)
		}
		seen := map[string]bool{}
		_ = dbs[0].Read(ctx, func(tx *store.Tx) error {
			evs, err := tx.AuditEvents(ctx, 0, workers*per+1)
			for _, e := range evs {
				seen[e.ObjectID] = true
			}
			return err
		})
		if len(seen) != workers*per {
			t.Fatalf("%d distinct events in the chain, want %d", len(seen), workers*per)
		}
	}
	t.Run("sqlite, 8 goroutines", func(t *testing.T) {
		run(t, []*store.DB{openStore(t, filepath.Join(t.TempDir(), "c.db"))}, 8, 60)
	})
	t.Run("postgres, 3 connections", func(t *testing.T) {
		dsn := pgtest.Shared(t).NewDatabase(t)
		var dbs []*store.DB
		for range 3 { // three nodes with one connection each
			db := openStore(t, dsn)
			db.LimitConnections(1)
			dbs = append(dbs, db)
		}
		run(t, dbs, 9, 40)
	})
}

// Opening a node reads only the end of a long checkpoint log, and still
// finds the latest checkpoint; a line with a bad signature is passed over.
func TestRefreshReadsTheEnd(t *testing.T) {
	ctx := context.Background()
	tr := newTrail(t)
	tr.append(t, 3, t0)
	var head store.AuditHead
	_ = tr.db.Read(ctx, func(tx *store.Tx) error { var err error; head, err = tx.AuditHead(ctx); return err })
	for i := range 2000 {
		cp, err := audit.Sign(tr.cp.Signer, int64(i%3)+1, head.Hash, 0, make([]byte, 32), t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := tr.cp.Log.Append(cp); err != nil {
			t.Fatal(err)
		}
	}
	forged, _ := audit.Sign(tr.cp.Signer, 3, head.Hash, 0, make([]byte, 32), t0)
	forged.Seq = 99 // signature no longer matches
	if err := tr.cp.Log.Append(forged); err != nil {
		t.Fatal(err)
	}
	fresh := &audit.Checkpointer{DB: tr.db, Signer: tr.cp.Signer, Log: tr.cp.Log}
	if err := fresh.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if fresh.Last() != 3 {
		t.Fatalf("last trusted checkpoint %d, want 3", fresh.Last())
	}
}
