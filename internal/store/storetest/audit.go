package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/store"
)

func newEvent(i int) store.AuditEvent {
	return store.AuditEvent{
		At:         at(time.Duration(i) * time.Second),
		Actor:      fmt.Sprintf("user-%d", i),
		IP:         "198.51.100.9",
		UserAgent:  "custos-test/1",
		Action:     "customer.read",
		ObjectType: "customer",
		ObjectID:   newID(),
		Outcome:    "allowed",
		Reason:     "owner",
		RequestID:  fmt.Sprintf("req-%d", i),
		Details:    fmt.Sprintf(`{"i":%d}`, i),
	}
}

// checkChain fails unless evs are consecutive events of one unbroken chain
// starting at the genesis hash.
func checkChain(t *testing.T, evs []store.AuditEvent) {
	t.Helper()
	prev := chain.Genesis
	for i, e := range evs {
		if e.Seq != int64(i+1) {
			t.Fatalf("event %d has seq %d: the chain has a gap", i, e.Seq)
		}
		if !bytes.Equal(e.PrevHash, prev) {
			t.Fatalf("event %d links to %x, want %x: the chain forked", e.Seq, e.PrevHash, prev)
		}
		if want := chain.Hash(prev, e.Seq, store.Micros(e.At), e.Fields()); !bytes.Equal(e.Hash, want) {
			t.Fatalf("event %d has hash %x, want %x", e.Seq, e.Hash, want)
		}
		prev = e.Hash
	}
}

// stripChain clears the chain columns, for comparing events with those appended.
func stripChain(evs []store.AuditEvent) []store.AuditEvent {
	out := make([]store.AuditEvent, len(evs))
	for i, e := range evs {
		e.PrevHash, e.Hash = nil, nil
		out[i] = e
	}
	return out
}

func auditEvents(t *testing.T, db *store.DB, after int64, limit int) []store.AuditEvent {
	t.Helper()
	return mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.AuditEvent, error) {
		return tx.AuditEvents(ctx, after, limit)
	})
}

func testAudit(t *testing.T, db *store.DB) {
	if got := auditEvents(t, db, 0, 10); len(got) != 0 {
		t.Fatalf("AuditEvents on an empty database = %+v, want none", got)
	}
	const n = 10
	var want []store.AuditEvent
	for i := range n {
		e := newEvent(i)
		if i == 3 {
			e.Details = "" // stored as an empty JSON object
			e.IP, e.UserAgent, e.ObjectType, e.ObjectID, e.Reason, e.RequestID = "", "", "", "", "", ""
		}
		var seq int64
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
			var err error
			seq, err = tx.AppendAudit(ctx, e)
			return err
		})
		if len(want) > 0 && seq <= want[len(want)-1].Seq {
			t.Fatalf("AppendAudit returned seq %d after %d: want increasing", seq, want[len(want)-1].Seq)
		}
		if seq <= 0 {
			t.Fatalf("AppendAudit returned seq %d, want > 0", seq)
		}
		e.Seq = seq
		if e.Details == "" {
			e.Details = "{}"
		}
		want = append(want, e)
	}
	// Several events in one transaction get increasing seqs too.
	var inTx []int64
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		for i := n; i < n+3; i++ {
			seq, err := tx.AppendAudit(ctx, newEvent(i))
			if err != nil {
				return err
			}
			inTx = append(inTx, seq)
		}
		return nil
	})
	for i, seq := range inTx {
		prev := want[len(want)-1].Seq
		if i > 0 {
			prev = inTx[i-1]
		}
		if seq <= prev {
			t.Fatalf("seqs appended in one transaction: %v after %d, want increasing", inTx, want[len(want)-1].Seq)
		}
	}

	got := auditEvents(t, db, 0, n)
	checkChain(t, got)
	if !reflect.DeepEqual(stripChain(got), want) {
		t.Fatalf("AuditEvents(0, %d) =\n%+v\nwant\n%+v", n, got, want)
	}

	// Paging with after = last seq of the previous page.
	for _, limit := range []int{1, 3, 4, 13, 50} {
		var all []store.AuditEvent
		after := int64(0)
		for page := 0; page < 100; page++ {
			evs := auditEvents(t, db, after, limit)
			if len(evs) > limit {
				t.Fatalf("AuditEvents(%d, %d) returned %d events", after, limit, len(evs))
			}
			all = append(all, evs...)
			if len(evs) < limit {
				break
			}
			after = evs[len(evs)-1].Seq
		}
		if len(all) != n+3 {
			t.Fatalf("paging with limit %d returned %d events, want %d", limit, len(all), n+3)
		}
		if !reflect.DeepEqual(stripChain(all[:n]), want) {
			t.Fatalf("paging with limit %d: events differ from a single read", limit)
		}
		for i := n; i < n+3; i++ {
			if all[i].Seq != inTx[i-n] {
				t.Fatalf("paging with limit %d: event %d has seq %d, want %d", limit, i, all[i].Seq, inTx[i-n])
			}
		}
	}
	if got := auditEvents(t, db, want[4].Seq, 2); len(got) != 2 || got[0].Seq != want[5].Seq || got[1].Seq != want[6].Seq {
		t.Fatalf("AuditEvents(after seq of event 4, 2) = %+v, want events 5 and 6", got)
	}
	if got := auditEvents(t, db, inTx[len(inTx)-1], 10); len(got) != 0 {
		t.Fatalf("AuditEvents after the last seq = %+v, want none", got)
	}
}

func testAuditAppendOnly(t *testing.T, db *store.DB) {
	ctx := t.Context()
	var want []store.AuditEvent
	for i := range 3 {
		e := newEvent(i)
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
			var err error
			e.Seq, err = tx.AppendAudit(ctx, e)
			return err
		})
		want = append(want, e)
	}
	raw := openRaw(t, db)
	var n int
	if err := raw.QueryRowContext(ctx, `SELECT COUNT(*) FROM audit_events`).Scan(&n); err != nil || n != len(want) {
		t.Fatalf("raw handle sees %d audit events (err %v), want %d", n, err, len(want))
	}
	seq := fmt.Sprint(want[1].Seq)
	stmts := []struct {
		sql string
		// anyError: PostgreSQL refuses changing an identity column before
		// the trigger runs; any refusal will do.
		anyError bool
	}{
		{`UPDATE audit_events SET actor = 'mallory'`, false},
		{`UPDATE audit_events SET outcome = 'denied' WHERE seq = ` + seq, false},
		{`UPDATE audit_events SET details = details WHERE seq = ` + seq, false},
		{`UPDATE audit_events SET seq = seq + 1000 WHERE seq = ` + seq, true},
		{`DELETE FROM audit_events`, false},
		{`DELETE FROM audit_events WHERE seq = ` + seq, false},
	}
	if db.Dialect() == store.Postgres {
		stmts = append(stmts, struct {
			sql      string
			anyError bool
		}{`TRUNCATE audit_events`, false})
	}
	for _, stmt := range stmts {
		_, err := raw.ExecContext(ctx, stmt.sql)
		if err == nil {
			t.Errorf("%s: succeeded, want the database to refuse it", stmt.sql)
			continue
		}
		if !stmt.anyError && !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: refused with %v, want the append-only trigger's error", stmt.sql, err)
		}
	}
	// The same statements inside an explicit transaction are refused too.
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM audit_events WHERE seq = `+seq); err == nil {
		t.Errorf("DELETE inside a transaction succeeded")
	}
	_ = tx.Rollback()

	if got := stripChain(auditEvents(t, db, 0, 100)); !reflect.DeepEqual(got, want) {
		t.Fatalf("audit events after refused changes =\n%+v\nwant\n%+v", got, want)
	}
	// Appending still works.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		_, err := tx.AppendAudit(ctx, newEvent(9))
		return err
	})
	if got := auditEvents(t, db, 0, 100); len(got) != len(want)+1 {
		t.Fatalf("%d audit events after one more append, want %d", len(got), len(want)+1)
	}
}

// testConcurrentWrites proves writers queue instead of failing (SQLITE_BUSY on
// SQLite) while readers keep reading.
func testConcurrentWrites(t *testing.T, db *store.DB) {
	const workers, perWorker = 8, 25
	ctx := t.Context()
	type result struct {
		seq   int64
		actor string
		err   error
	}
	results := make(chan result, workers*perWorker)
	stop := make(chan struct{})
	readErrs := make(chan error, 4)
	var readers sync.WaitGroup
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := db.Read(ctx, func(tx *store.Tx) error {
					_, err := tx.AuditEvents(ctx, 0, 1000)
					return err
				}); err != nil {
					readErrs <- err
					return
				}
			}
		})
	}
	var writers sync.WaitGroup
	for w := range workers {
		writers.Go(func() {
			for i := range perWorker {
				e := newEvent(i)
				e.Actor = fmt.Sprintf("worker-%d-%d", w, i)
				var seq int64
				err := db.Write(ctx, func(tx *store.Tx) error {
					// Read before writing: on SQLite a deferred transaction
					// would then fail to upgrade (SQLITE_BUSY) when another
					// writer committed in between; writes must queue instead.
					if _, err := tx.AuditEvents(ctx, 0, 1); err != nil {
						return err
					}
					var err error
					seq, err = tx.AppendAudit(ctx, e)
					return err
				})
				results <- result{seq, e.Actor, err}
			}
		})
	}
	writers.Wait()
	close(stop)
	readers.Wait()
	close(results)
	close(readErrs)
	for err := range readErrs {
		t.Errorf("concurrent read failed: %v", err)
	}

	seqs := map[int64]string{}
	for r := range results {
		if r.err != nil {
			t.Errorf("concurrent write %s failed: %v", r.actor, r.err)
			continue
		}
		if prev, dup := seqs[r.seq]; dup {
			t.Errorf("seq %d returned to both %s and %s", r.seq, prev, r.actor)
		}
		seqs[r.seq] = r.actor
	}
	if len(seqs) != workers*perWorker {
		t.Fatalf("%d distinct seqs, want %d", len(seqs), workers*perWorker)
	}
	events := auditEvents(t, db, 0, 1000)
	if len(events) != workers*perWorker {
		t.Fatalf("%d audit events stored, want %d", len(events), workers*perWorker)
	}
	checkChain(t, events)
	for _, e := range events {
		if seqs[e.Seq] != e.Actor {
			t.Errorf("stored event seq %d has actor %q, AppendAudit reported %q", e.Seq, e.Actor, seqs[e.Seq])
		}
	}
}

func testWriteRollback(t *testing.T, db *store.DB) {
	ctx := t.Context()
	boom := errors.New("boom")
	err := db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "temp"}); err != nil {
			return err
		}
		if err := tx.InsertKeyringEntry(ctx, store.KeyringEntry{Purpose: "master", Version: 1, Wrapped: []byte("w"), WrappedBy: "root", CreatedAt: base}); err != nil {
			return err
		}
		if _, err := tx.AppendAudit(ctx, newEvent(1)); err != nil {
			return err
		}
		// The transaction sees its own writes.
		if _, err := tx.GetRole(ctx, "temp"); err != nil {
			return fmt.Errorf("own write not visible: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Write returned %v, want fn's error", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "temp") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("role written by a failed Write: GetRole err = %v, want ErrNotFound", err)
	}
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountKeyring(ctx) }); n != 0 {
		t.Errorf("CountKeyring after a failed Write = %d, want 0", n)
	}
	if got := auditEvents(t, db, 0, 10); len(got) != 0 {
		t.Errorf("audit events after a failed Write = %+v, want none", got)
	}

	// A statement failing half-way rolls back the earlier ones.
	entry := store.KeyringEntry{Purpose: "index", Version: 1, Wrapped: []byte("w"), WrappedBy: "root", CreatedAt: base}
	err = db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.EnsureRole(ctx, store.Role{Name: "half"}); err != nil {
			return err
		}
		if err := tx.InsertKeyringEntry(ctx, entry); err != nil {
			return err
		}
		return tx.InsertKeyringEntry(ctx, entry)
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("Write with a duplicate insert returned %v, want ErrConflict", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "half") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("role written before the failing statement survived: GetRole err = %v", err)
	}
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountKeyring(ctx) }); n != 0 {
		t.Errorf("CountKeyring after a failed Write = %d, want 0", n)
	}

	// The writer is free again: a good Write commits.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertKeyringEntry(ctx, entry) })
	if n := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountKeyring(ctx) }); n != 1 {
		t.Errorf("CountKeyring after a committed Write = %d, want 1", n)
	}
}

func testWritePanicRollback(t *testing.T, db *store.DB) {
	ctx := t.Context()
	func() {
		defer func() {
			if p := recover(); p != "kaboom" {
				t.Errorf("recovered %v, want Write to re-panic with fn's value", p)
			}
		}()
		_ = db.Write(ctx, func(tx *store.Tx) error {
			if err := tx.EnsureRole(ctx, store.Role{Name: "panicked"}); err != nil {
				return err
			}
			panic("kaboom")
		})
		t.Error("Write returned after fn panicked")
	}()
	// The writer connection must have been released: a later Write works
	// (with a deadline, so a leaked SQLite writer fails instead of hanging).
	wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	if err := db.Write(wctx, func(tx *store.Tx) error { return tx.EnsureRole(wctx, store.Role{Name: "after"}) }); err != nil {
		t.Fatalf("Write after a panicking Write: %v", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "panicked") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("role written by a panicking Write: GetRole err = %v, want ErrNotFound", err)
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "after") }); err != nil {
		t.Errorf("role written after the panic: %v", err)
	}
}

func testReadOnly(t *testing.T, db *store.DB) {
	ctx := t.Context()
	users := seedUsers(t, db, 1)
	writes := []struct {
		name string
		fn   func(tx *store.Tx) error
	}{
		{"insert role", func(tx *store.Tx) error { return tx.EnsureRole(ctx, store.Role{Name: "sneaky"}) }},
		{"append audit", func(tx *store.Tx) error { _, err := tx.AppendAudit(ctx, newEvent(1)); return err }},
		{"update user", func(tx *store.Tx) error {
			u := users[0]
			u.PasswordHash = "changed"
			return tx.UpdateUser(ctx, u)
		}},
	}
	for _, w := range writes {
		if err := db.Read(ctx, w.fn); err == nil {
			t.Errorf("%s inside Read succeeded, want an error (read-only transaction)", w.name)
		}
	}
	if _, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.Role, error) { return tx.GetRole(ctx, "sneaky") }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("role written inside Read: GetRole err = %v, want ErrNotFound", err)
	}
	if got := auditEvents(t, db, 0, 10); len(got) != 0 {
		t.Errorf("audit event written inside Read: %+v", got)
	}
	if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.User, error) { return tx.GetUser(ctx, users[0].ID) }); got.PasswordHash != users[0].PasswordHash {
		t.Errorf("user updated inside Read")
	}
}
