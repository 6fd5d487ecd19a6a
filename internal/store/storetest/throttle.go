package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

// testLoginThrottle: failures count within the window, the threshold sets
// the lock, a failure after the window starts a new count.
func testLoginThrottle(t *testing.T, db *store.DB) {
	ctx := context.Background()
	now := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	fail := func(at time.Time) store.LoginThrottle {
		t.Helper()
		var out store.LoginThrottle
		err := db.Write(ctx, func(tx *store.Tx) error {
			var err error
			out, err = tx.RecordLoginFailure(ctx, "user:a", at, 15*time.Minute, 3, time.Hour)
			return err
		})
		if err != nil {
			t.Fatalf("RecordLoginFailure: %v", err)
		}
		return out
	}
	if got := fail(now); got.Failures != 1 || got.LockedUntil != nil {
		t.Fatalf("first failure: %+v", got)
	}
	if got := fail(now.Add(time.Minute)); got.Failures != 2 || got.LockedUntil != nil {
		t.Fatalf("second failure: %+v", got)
	}
	got := fail(now.Add(2 * time.Minute))
	if got.Failures != 3 || got.LockedUntil == nil || !got.LockedUntil.Equal(now.Add(2*time.Minute+time.Hour)) {
		t.Fatalf("third failure: %+v", got)
	}
	if got := fail(now.Add(20 * time.Minute)); got.Failures != 1 || !got.WindowStart.Equal(now.Add(20*time.Minute)) {
		t.Fatalf("a failure after the window: %+v", got)
	}
	// A threshold of one locks at once, also on the first insert.
	err := db.Write(ctx, func(tx *store.Tx) error {
		got, err := tx.RecordLoginFailure(ctx, "user:b", now, time.Minute, 1, time.Hour)
		if err == nil && (got.LockedUntil == nil || !got.LockedUntil.Equal(now.Add(time.Hour))) {
			t.Errorf("threshold 1: %+v", got)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
