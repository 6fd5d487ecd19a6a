package storetest

import (
	"context"
	"errors"
	"math"
	"reflect"
	"testing"
	"time"

	"github.com/custos/custos/internal/store"
)

func testKeyring(t *testing.T, db *store.DB) {
	count := func() int {
		t.Helper()
		return mustRead(t, db, func(ctx context.Context, tx *store.Tx) (int, error) { return tx.CountKeyring(ctx) })
	}
	if n := count(); n != 0 {
		t.Fatalf("CountKeyring on an empty database = %d, want 0", n)
	}
	if got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.KeyringEntry, error) {
		return tx.KeyringEntries(ctx)
	}); len(got) != 0 {
		t.Fatalf("KeyringEntries on an empty database = %v, want none", got)
	}

	entry := func(purpose string, version uint32, d int) store.KeyringEntry {
		return store.KeyringEntry{
			Purpose:   purpose,
			Version:   version,
			Wrapped:   []byte{0x00, byte(version), 0xff, byte(d)},
			WrappedBy: "root:" + purpose,
			CreatedAt: base.AddDate(0, 0, d),
		}
	}
	// Inserted out of order: the listing must not depend on insertion order.
	inserted := []store.KeyringEntry{
		entry("master", 2, 2),
		entry("master", 1, 1),
		entry("index", 1, 1),
		entry("master", math.MaxUint32, 9),
		entry("index", 7, 3),
	}
	for _, e := range inserted {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertKeyringEntry(ctx, e) })
	}
	want := []store.KeyringEntry{
		entry("index", 7, 3),
		entry("index", 1, 1),
		entry("master", math.MaxUint32, 9),
		entry("master", 2, 2),
		entry("master", 1, 1),
	}
	got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.KeyringEntry, error) { return tx.KeyringEntries(ctx) })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("KeyringEntries =\n%+v\nwant (per purpose, newest version first)\n%+v", got, want)
	}
	if n := count(); n != len(inserted) {
		t.Fatalf("CountKeyring = %d, want %d", n, len(inserted))
	}

	// A second entry with an existing (purpose, version) is a conflict and
	// leaves the stored entry untouched.
	dup := entry("master", 2, 5)
	dup.Wrapped = []byte("other")
	err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertKeyringEntry(ctx, dup) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertKeyringEntry of an existing version: err = %v, want ErrConflict", err)
	}
	if n := count(); n != len(inserted) {
		t.Fatalf("CountKeyring after the refused duplicate = %d, want %d", n, len(inserted))
	}
	got = mustRead(t, db, func(ctx context.Context, tx *store.Tx) ([]store.KeyringEntry, error) { return tx.KeyringEntries(ctx) })
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("KeyringEntries after the refused duplicate =\n%+v\nwant\n%+v", got, want)
	}
	// The same version under another purpose is no conflict.
	mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error {
		return tx.InsertKeyringEntry(ctx, entry("index", 2, 4))
	})
	if n := count(); n != len(inserted)+1 {
		t.Fatalf("CountKeyring = %d, want %d", n, len(inserted)+1)
	}
}

func testDataKeys(t *testing.T, db *store.DB) {
	subject := newID()
	k1 := store.DataKey{Subject: subject, Version: 1, MasterVersion: 3, Wrapped: []byte{1, 2, 3, 0, 255}, CreatedAt: at(0)}
	k2 := store.DataKey{Subject: subject, Version: 2, MasterVersion: 4, Wrapped: []byte("second"), CreatedAt: at(time.Hour)}
	other := store.DataKey{Subject: newID(), Version: 1, MasterVersion: 3, Wrapped: []byte("other"), CreatedAt: at(time.Second)}
	for _, k := range []store.DataKey{k1, k2, other} {
		mustWrite(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDataKey(ctx, k) })
	}
	for _, want := range []store.DataKey{k1, k2, other} {
		got, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.DataKey, error) {
			return tx.GetDataKey(ctx, want.Subject, want.Version)
		})
		if err != nil {
			t.Fatalf("GetDataKey(%s, %d): %v", want.Subject, want.Version, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("GetDataKey(%s, %d) =\n%+v\nwant\n%+v", want.Subject, want.Version, got, want)
		}
	}

	missing := []struct {
		name    string
		subject string
		version uint32
	}{
		{"unknown subject", newID(), 1},
		{"unknown version", subject, 3},
		{"version of another subject", other.Subject, 2},
		{"empty subject", "", 1},
	}
	for _, tc := range missing {
		_, err := read(t, db, func(ctx context.Context, tx *store.Tx) (store.DataKey, error) {
			return tx.GetDataKey(ctx, tc.subject, tc.version)
		})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("GetDataKey, %s: err = %v, want ErrNotFound", tc.name, err)
		}
	}

	dup := k1
	dup.Wrapped = []byte("replaced")
	err := write(t, db, func(ctx context.Context, tx *store.Tx) error { return tx.InsertDataKey(ctx, dup) })
	if !errors.Is(err, store.ErrConflict) {
		t.Fatalf("InsertDataKey of an existing (subject, version): err = %v, want ErrConflict", err)
	}
	got := mustRead(t, db, func(ctx context.Context, tx *store.Tx) (store.DataKey, error) { return tx.GetDataKey(ctx, subject, 1) })
	if !reflect.DeepEqual(got, k1) {
		t.Fatalf("data key changed by a refused duplicate: %+v, want %+v", got, k1)
	}
}
