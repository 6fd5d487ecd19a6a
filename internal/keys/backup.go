package keys

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

const purposeBackup = "backup"

// ErrWrongBackupRoot is returned when the root key given does not open a
// backup key.
var ErrWrongBackupRoot = errors.New("the root key given does not open the backup key")

// backupAAD binds a wrapped backup key to its purpose and version.
func backupAAD(v uint32) []byte { return []byte(fmt.Sprintf("custos/backup/v%d", v)) }

// WrappedBackupKey is the backup key as the keyring keeps it: wrapped by
// the root key directly (not by the master key), so a restore needs only
// the root key (or the recovery kit) and never a data key.
type WrappedBackupKey struct {
	Version uint32
	Wrapped []byte
	RootID  string
}

// BackupKey returns the backup key, creating it on first use. It is
// separate from the master and data keys: whoever holds it can read
// backups (ciphertext of customer fields included) but open no field.
func BackupKey(ctx context.Context, db *store.DB, root RootProvider, now time.Time) ([]byte, WrappedBackupKey, error) {
	var found *store.KeyringEntry
	if err := db.Read(ctx, func(tx *store.Tx) error {
		entries, err := tx.KeyringEntries(ctx)
		for i := range entries {
			if entries[i].Purpose == purposeBackup && found == nil {
				found = &entries[i]
			}
		}
		return err
	}); err != nil {
		return nil, WrappedBackupKey{}, fmt.Errorf("load backup key: %w", err)
	}
	if found == nil {
		k, err := seal.RandomKey(1)
		if err != nil {
			return nil, WrappedBackupKey{}, err
		}
		wrapped, err := root.Wrap(ctx, k.Bytes(), backupAAD(1))
		if err != nil {
			return nil, WrappedBackupKey{}, fmt.Errorf("wrap backup key: %w", err)
		}
		e := store.KeyringEntry{Purpose: purposeBackup, Version: 1, Wrapped: wrapped, WrappedBy: root.ID(), CreatedAt: now.UTC()}
		err = db.Write(ctx, func(tx *store.Tx) error { return tx.InsertKeyringEntry(ctx, e) })
		if errors.Is(err, store.ErrConflict) {
			// Another process created it first: use theirs.
			return BackupKey(ctx, db, root, now)
		}
		if err != nil {
			return nil, WrappedBackupKey{}, fmt.Errorf("store backup key: %w", err)
		}
		found = &e
	}
	w := WrappedBackupKey{Version: found.Version, Wrapped: found.Wrapped, RootID: found.WrappedBy}
	raw, err := UnwrapBackupKey(ctx, root, w)
	return raw, w, err
}

// UnwrapBackupKey opens a wrapped backup key with the root key.
func UnwrapBackupKey(ctx context.Context, root RootProvider, w WrappedBackupKey) ([]byte, error) {
	raw, err := root.Unwrap(ctx, w.Wrapped, backupAAD(w.Version))
	if err != nil {
		return nil, fmt.Errorf("%w: it was wrapped by root key %s, the root key given is %s", ErrWrongBackupRoot, w.RootID, root.ID())
	}
	return raw, nil
}
