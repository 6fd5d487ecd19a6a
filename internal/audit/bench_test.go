package audit_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/store"
)

func benchEvent(i int64) audit.Event {
	return audit.Event{Actor: "user:0192f0c4-5d1e-7a3b-9c2d-1e2f3a4b5c6d", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)",
		RequestID: fmt.Sprintf("req-%d", i), Action: "customer.view", ObjectType: "customer", ObjectID: fmt.Sprintf("0192f0c4-5d1e-7a3b-9c2d-%012d", i),
		Outcome: audit.OK, Details: map[string]any{"access": "full", "masked": []string{"id_number"}}}
}

// BenchmarkAppend measures appends, each in its own committed transaction
// (synchronous=FULL on SQLite: every event is on disk when acknowledged),
// from one goroutine and from 8.
func BenchmarkAppend(b *testing.B) {
	ctx := context.Background()
	engines := map[string]func(b *testing.B) *store.DB{
		"sqlite":   func(b *testing.B) *store.DB { return openStore(b, filepath.Join(b.TempDir(), "b.db")) },
		"postgres": func(b *testing.B) *store.DB { return openStore(b, pgtest.Shared(b).NewDatabase(b)) },
	}
	for _, engine := range []string{"sqlite", "postgres"} {
		b.Run(engine+"/single", func(b *testing.B) {
			db := engines[engine](b)
			var i int64
			for b.Loop() {
				i++
				if err := audit.RecordAlone(ctx, db, time.Now(), benchEvent(i)); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
		b.Run(engine+"/concurrent-8", func(b *testing.B) {
			db := engines[engine](b)
			var i atomic.Int64
			// RunParallel starts parallelism × GOMAXPROCS goroutines.
			b.SetParallelism(max(1, 8/runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := audit.RecordAlone(ctx, db, time.Now(), benchEvent(i.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkVerify measures verification (reading the events from SQLite,
// re-encoding and re-hashing them, checking links and checkpoints) and, in
// the same run, SHA-256 alone over the same canonical bytes: the ratio is
// what verification costs beyond the hashing it cannot avoid.
func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	const n = 20000
	tr := newTrail(b)
	if err := tr.db.Write(ctx, func(tx *store.Tx) error {
		for i := range int64(n) {
			if _, err := audit.Record(ctx, tx, t0.Add(time.Duration(i)*time.Millisecond), benchEvent(i)); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	tr.checkpoint(b)
	cps, _ := tr.cp.Log.Read()
	// The exact bytes verification hashes.
	var bufs [][]byte
	_ = tr.db.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(ctx, 0, n)
		for _, e := range evs {
			buf := append([]byte("custos.audit.v1\x00"), e.PrevHash...)
			bufs = append(bufs, chain.Encode(buf, e.Seq, store.Micros(e.At), e.Fields()))
		}
		return err
	})
	var verify, raw time.Duration
	for b.Loop() {
		start := time.Now()
		rep, err := audit.Verify(ctx, tr.db, audit.VerifyOptions{Checkpoints: cps, Trusted: tr.cp.Trusted()})
		if err != nil || !rep.OK() || rep.Events != n {
			b.Fatalf("verify: %+v %v", rep, err)
		}
		verify += time.Since(start)
		start = time.Now()
		for _, buf := range bufs {
			_ = sha256.Sum256(buf)
		}
		raw += time.Since(start)
	}
	b.ReportMetric(float64(n*b.N)/verify.Seconds(), "events/s")
	b.ReportMetric(float64(n*b.N)/raw.Seconds(), "sha256-events/s")
	b.ReportMetric(float64(verify)/float64(raw), "verify/sha256")
}
