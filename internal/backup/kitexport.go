package backup

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

// KitOptions is what ExportKit needs.
type KitOptions struct {
	DB          *store.DB
	Root        keys.RootProvider
	RootKeyFile []byte // the root key file's bytes, carried in the kit
	Passphrase  []byte
	Out         string // file to create (must not exist)
	Actor       string
	Now         func() time.Time
}

// ExportKit writes the recovery kit, once per database: the backup key and
// the root key, encrypted with a passphrase. The export is an audit event
// (backup.kit_export); a second export is refused.
func ExportKit(ctx context.Context, o KitOptions) (string, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	now := o.Now().UTC()
	var done time.Time
	if err := o.DB.Read(ctx, func(tx *store.Tx) error {
		v, at, err := tx.BackupState(ctx, "kit")
		if v != "" {
			done = at
		}
		return err
	}); err != nil {
		return "", err
	}
	if !done.IsZero() {
		return "", fmt.Errorf("the recovery kit was already exported on %s; it is exported once (the audit trail says by whom)", done.Format(time.RFC3339))
	}
	raw, _, err := keys.BackupKey(ctx, o.DB, o.Root, now)
	if err != nil {
		return "", err
	}
	k, err := KeyFromBytes(raw)
	if err != nil {
		return "", err
	}
	instance, err := Instance(ctx, o.DB, now)
	if err != nil {
		return "", err
	}
	data, err := EncryptKit(Kit{Instance: instance, KeyID: k.ID(), Key: k, RootKey: o.RootKeyFile, RootID: o.Root.ID(), CreatedAt: now}, o.Passphrase)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(o.Out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("%s already exists; refusing to overwrite it", o.Out)
	}
	if err != nil {
		return "", fmt.Errorf("write the recovery kit: %w", err)
	}
	_, werr := f.Write(data)
	if serr := f.Sync(); werr == nil {
		werr = serr
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		_ = os.Remove(o.Out)
		return "", fmt.Errorf("write the recovery kit: %w", werr)
	}
	actor := o.Actor
	if actor == "" {
		actor = "system"
	}
	err = o.DB.Write(ctx, func(tx *store.Tx) error {
		v, _, err := tx.BackupState(ctx, "kit")
		if err != nil {
			return err
		}
		if v != "" {
			return errors.New("the recovery kit was exported by someone else just now")
		}
		if err := tx.PutBackupState(ctx, "kit", k.ID(), now); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, audit.Event{Actor: actor, Action: "backup.kit_export", ObjectType: "backup_key", ObjectID: k.ID(), Outcome: audit.OK})
		return err
	})
	if err != nil {
		_ = os.Remove(o.Out)
		return "", err
	}
	return k.ID(), nil
}
