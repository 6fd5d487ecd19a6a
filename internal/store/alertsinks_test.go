package store_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/store"
)

func TestAlertSinks(t *testing.T) {
	for name, open := range map[string]func(*testing.T) *store.DB{"sqlite": openSQLite, "postgres": openPostgres} {
		t.Run(name, func(t *testing.T) {
			t.Run("sinks", func(t *testing.T) { testAlertSinkRows(t, open(t)) })
			t.Run("outbox", func(t *testing.T) { testAlertOutbox(t, open(t)) })
			t.Run("concurrent claims", func(t *testing.T) { testConcurrentClaims(t, open(t)) })
		})
	}
}

var sinkT0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func sinkWrite(t *testing.T, db *store.DB, fn func(ctx context.Context, tx *store.Tx) error) {
	t.Helper()
	if err := db.Write(context.Background(), func(tx *store.Tx) error { return fn(context.Background(), tx) }); err != nil {
		t.Fatal(err)
	}
}

func sinkList(t *testing.T, db *store.DB) []store.AlertSink {
	t.Helper()
	var out []store.AlertSink
	if err := db.Read(context.Background(), func(tx *store.Tx) (err error) { out, err = tx.AlertSinks(context.Background()); return }); err != nil {
		t.Fatal(err)
	}
	return out
}

func sinkRow(name, minSeverity string, enabled bool) store.AlertSink {
	return store.AlertSink{Name: name, Kind: "webhook", MinSeverity: minSeverity, Enabled: enabled, Target: "https://hooks.example.com",
		Config: []byte("sealed:" + name), KeySubject: "alert_sink:" + name, KeyVersion: 1, CreatedAt: sinkT0, UpdatedAt: sinkT0}
}

func sinkAlert(t *testing.T, db *store.DB, severity string) string {
	t.Helper()
	id := uuid.Must(uuid.NewV7()).String()
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertAlert(ctx, store.Alert{ID: id, At: sinkT0, Rule: "test.rule", Severity: severity, Status: "open", Evidence: "[]", Details: "{}", UpdatedAt: sinkT0})
	})
	return id
}

func testAlertSinkRows(t *testing.T, db *store.DB) {
	a, b := sinkRow("ops", "high", true), sinkRow("all", "info", false)
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.InsertAlertSink(ctx, a); err != nil {
			return err
		}
		return tx.InsertAlertSink(ctx, b)
	})
	err := db.Write(context.Background(), func(tx *store.Tx) error { return tx.InsertAlertSink(context.Background(), sinkRow("ops", "low", true)) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("second sink named ops: %v, want ErrConflict", err)
	}
	got := sinkList(t, db)
	if len(got) != 2 || got[0].Name != "all" || got[1].Name != "ops" {
		t.Fatalf("AlertSinks = %+v, want all and ops by name", got)
	}
	if g := got[1]; g.Kind != "webhook" || g.MinSeverity != "high" || !g.Enabled || string(g.Config) != "sealed:ops" || g.KeySubject != "alert_sink:ops" ||
		g.KeyVersion != 1 || !g.CreatedAt.Equal(sinkT0) || g.LastOKAt != nil || g.LastErrorAt != nil || g.ConsecutiveFailures != 0 {
		t.Fatalf("stored sink = %+v", g)
	}
	if got[0].Enabled {
		t.Fatal("disabled sink reads back enabled")
	}

	// Status: failures count up, a success resets the count and keeps the last error.
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		for i := range 3 {
			if err := tx.RecordAlertSinkAttempt(ctx, "ops", sinkT0.Add(time.Duration(i)*time.Minute), fmt.Sprintf("HTTP 50%d", i)); err != nil {
				return err
			}
		}
		return nil
	})
	var k store.AlertSink
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) { k, err = tx.GetAlertSink(context.Background(), "ops"); return })
	if k.ConsecutiveFailures != 3 || k.LastError != "HTTP 502" || k.LastErrorAt == nil || !k.LastErrorAt.Equal(sinkT0.Add(2*time.Minute)) || k.LastOKAt != nil {
		t.Fatalf("after 3 failures: %+v", k)
	}
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.RecordAlertSinkAttempt(ctx, "ops", sinkT0.Add(time.Hour), "")
	})
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) { k, err = tx.GetAlertSink(context.Background(), "ops"); return })
	if k.ConsecutiveFailures != 0 || k.LastOKAt == nil || !k.LastOKAt.Equal(sinkT0.Add(time.Hour)) || k.LastError != "HTTP 502" {
		t.Fatalf("after a success: %+v", k)
	}

	// Update changes settings, not status.
	k.MinSeverity, k.Enabled, k.Config, k.KeyVersion, k.UpdatedAt = "critical", false, []byte("sealed:v2"), 2, sinkT0.Add(2*time.Hour)
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.UpdateAlertSink(ctx, k) })
	var k2 store.AlertSink
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) { k2, err = tx.GetAlertSink(context.Background(), "ops"); return })
	if k2.MinSeverity != "critical" || k2.Enabled || string(k2.Config) != "sealed:v2" || k2.KeyVersion != 2 || !k2.UpdatedAt.Equal(sinkT0.Add(2*time.Hour)) ||
		k2.LastOKAt == nil || !k2.CreatedAt.Equal(sinkT0) {
		t.Fatalf("after update: %+v", k2)
	}
	for _, fn := range []func(ctx context.Context, tx *store.Tx) error{
		func(ctx context.Context, tx *store.Tx) error {
			return tx.UpdateAlertSink(ctx, sinkRow("nope", "low", true))
		},
		func(ctx context.Context, tx *store.Tx) error { return tx.DeleteAlertSink(ctx, "nope") },
		func(ctx context.Context, tx *store.Tx) error { _, err := tx.GetAlertSink(ctx, "nope"); return err },
	} {
		if err := db.Write(context.Background(), func(tx *store.Tx) error { return fn(context.Background(), tx) }); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("on a missing sink: %v, want ErrNotFound", err)
		}
	}

	// Destroying a sink's key leaves nothing to unwrap.
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		if err := tx.InsertDataKey(ctx, store.DataKey{Subject: "alert_sink:ops", Version: 1, MasterVersion: 1, Wrapped: []byte("wrapped"), CreatedAt: sinkT0}); err != nil {
			return err
		}
		return tx.DestroyDataKeys(ctx, "alert_sink:ops", sinkT0.Add(time.Hour))
	})
	var dk store.DataKey
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) {
		dk, err = tx.GetDataKey(context.Background(), "alert_sink:ops", 1)
		return
	})
	if dk.Wrapped != nil || dk.DestroyedAt == nil {
		t.Fatalf("destroyed key: %+v", dk)
	}
}

func testAlertOutbox(t *testing.T, db *store.DB) {
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		for _, k := range []store.AlertSink{sinkRow("low", "low", true), sinkRow("high", "high", true), sinkRow("off", "info", false)} {
			if err := tx.InsertAlertSink(ctx, k); err != nil {
				return err
			}
		}
		return nil
	})
	// A medium alert goes to sinks whose minimum is info, low or medium:
	// "low" only ("off" is disabled, "high" wants more).
	alert := sinkAlert(t, db, "medium")
	var n int
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
		n, err = tx.EnqueueAlertDeliveries(ctx, alert, []string{"info", "low", "medium"}, sinkT0)
		return err
	})
	if n != 1 {
		t.Fatalf("enqueued %d deliveries, want 1", n)
	}
	// Once per alert and sink.
	err := db.Write(context.Background(), func(tx *store.Tx) error {
		_, err := tx.EnqueueAlertDeliveries(context.Background(), alert, []string{"info", "low", "medium"}, sinkT0)
		return err
	})
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("enqueueing again: %v, want ErrConflict", err)
	}
	critical := sinkAlert(t, db, "critical")
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
		n, err = tx.EnqueueAlertDeliveries(ctx, critical, []string{"info", "low", "medium", "high", "critical"}, sinkT0.Add(time.Second))
		return err
	})
	if n != 2 {
		t.Fatalf("critical alert enqueued %d deliveries, want 2", n)
	}

	claim := func(now time.Time, who string) []store.AlertDelivery {
		t.Helper()
		var ds []store.AlertDelivery
		sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
			ds, err = tx.ClaimAlertDeliveries(ctx, now, now.Add(30*time.Second), who, 10, nil)
			return err
		})
		return ds
	}
	// Not due before next_at.
	if ds := claim(sinkT0.Add(-time.Second), "a"); len(ds) != 0 {
		t.Fatalf("claimed %d deliveries before they were due", len(ds))
	}
	ds := claim(sinkT0.Add(2*time.Second), "a")
	if len(ds) != 3 || ds[0].AlertID != alert || ds[0].Attempts != 1 || ds[0].Claim != "a" || ds[0].ClaimedUntil == nil {
		t.Fatalf("first claim = %+v, want the 3 deliveries, oldest due first, attempt 1", ds)
	}
	// Leased: nobody else gets them until the lease ends.
	if again := claim(sinkT0.Add(3*time.Second), "b"); len(again) != 0 {
		t.Fatalf("a second notifier claimed %d leased deliveries", len(again))
	}
	finish := func(d store.AlertDelivery, who string, o store.DeliveryOutcome) bool {
		t.Helper()
		var ok bool
		sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
			ok, err = tx.FinishAlertDelivery(ctx, d.AlertID, d.Sink, who, o)
			return err
		})
		return ok
	}
	sentAt := sinkT0.Add(4 * time.Second)
	if finish(ds[0], "b", store.DeliveryOutcome{Status: store.DeliverySent, SentAt: &sentAt}) {
		t.Fatal("a notifier without the claim finished a delivery")
	}
	if !finish(ds[0], "a", store.DeliveryOutcome{Status: store.DeliverySent, NextAt: sinkT0, SentAt: &sentAt}) {
		t.Fatal("the claim holder could not finish its delivery")
	}
	retryAt := sinkT0.Add(time.Minute)
	if !finish(ds[1], "a", store.DeliveryOutcome{Status: store.DeliveryPending, NextAt: retryAt, LastError: "HTTP 503"}) {
		t.Fatal("could not schedule a retry")
	}
	// ds[2] stays claimed by "a", which "dies": after its lease another takes it.
	if got := claim(sinkT0.Add(20*time.Second), "b"); len(got) != 0 {
		t.Fatalf("claimed %+v before the retry was due and the lease ended", got)
	}
	got := claim(sinkT0.Add(40*time.Second), "b")
	if len(got) != 1 || got[0].Sink != ds[2].Sink || got[0].AlertID != ds[2].AlertID || got[0].Attempts != 2 {
		t.Fatalf("after the lease = %+v, want the abandoned delivery at attempt 2", got)
	}
	if finish(ds[2], "a", store.DeliveryOutcome{Status: store.DeliverySent, SentAt: &sentAt}) {
		t.Fatal("the notifier whose lease ran out overwrote the new claim")
	}
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.ReleaseAlertDelivery(ctx, got[0].AlertID, got[0].Sink, "b")
	})
	got = claim(sinkT0.Add(41*time.Second), "c")
	if len(got) != 1 || got[0].Attempts != 2 {
		t.Fatalf("after release = %+v, want it again without an extra attempt", got)
	}
	if !finish(got[0], "c", store.DeliveryOutcome{Status: store.DeliveryFailed, NextAt: sinkT0, LastError: "gave up"}) {
		t.Fatal("could not give up")
	}
	got = claim(retryAt, "d")
	if len(got) != 1 || got[0].LastError != "HTTP 503" || got[0].Attempts != 2 {
		t.Fatalf("retry = %+v", got)
	}

	// A disabled sink's deliveries wait.
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		k, err := tx.GetAlertSink(ctx, "low")
		if err != nil {
			return err
		}
		k.Enabled = false
		return tx.UpdateAlertSink(ctx, k)
	})
	third := sinkAlert(t, db, "high")
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) (err error) {
		_, err = tx.EnqueueAlertDeliveries(ctx, third, []string{"info", "low", "medium", "high"}, sinkT0)
		return err
	})
	var list []store.AlertDelivery
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) {
		list, err = tx.AlertDeliveries(context.Background(), third, "", 0)
		return
	})
	if len(list) != 1 || list[0].Sink != "high" {
		t.Fatalf("deliveries of a high alert with 'low' disabled = %+v", list)
	}

	var counts map[[2]string]int
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) { counts, err = tx.CountAlertDeliveries(context.Background()); return })
	want := map[[2]string]int{{"low", "sent"}: 1, {"low", "failed"}: 1, {"high", "pending"}: 2}
	for k, v := range want {
		if counts[k] != v {
			t.Fatalf("counts = %v, want %v", counts, want)
		}
	}
	// Deleting a sink deletes its deliveries.
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.DeleteAlertSink(ctx, "high") })
	_ = db.Read(context.Background(), func(tx *store.Tx) (err error) {
		list, err = tx.AlertDeliveries(context.Background(), "", "high", 0)
		return
	})
	if len(list) != 0 {
		t.Fatalf("deliveries of a deleted sink: %+v", list)
	}
}

// testConcurrentClaims claims from several goroutines at once: every
// delivery is claimed exactly once.
func testConcurrentClaims(t *testing.T, db *store.DB) {
	sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertAlertSink(ctx, sinkRow("s", "info", true))
	})
	const alerts = 40
	for range alerts {
		id := sinkAlert(t, db, "low")
		sinkWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
			_, err := tx.EnqueueAlertDeliveries(ctx, id, []string{"info", "low"}, sinkT0)
			return err
		})
	}
	var mu sync.Mutex
	var seen []string
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				var ds []store.AlertDelivery
				err := db.Write(context.Background(), func(tx *store.Tx) (err error) {
					ds, err = tx.ClaimAlertDeliveries(context.Background(), sinkT0.Add(time.Second), sinkT0.Add(time.Hour), fmt.Sprint("w", w), 3, nil)
					return err
				})
				if err != nil {
					t.Error(err)
					return
				}
				if len(ds) == 0 {
					return
				}
				mu.Lock()
				for _, d := range ds {
					seen = append(seen, d.AlertID)
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	slices.Sort(seen)
	if distinct := len(slices.Compact(slices.Clone(seen))); len(seen) != alerts || distinct != alerts {
		t.Fatalf("claimed %d deliveries (%d distinct), want each of %d exactly once", len(seen), distinct, alerts)
	}
}
