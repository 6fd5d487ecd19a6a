package backup

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

// TableDigest is the content of one table: its row count and hash.
type TableDigest struct {
	Name string `json:"table"`
	Rows int64  `json:"rows"`
	Hash string `json:"hash"`
}

// Digest is the content hash of everything a backup holds of a database.
type Digest struct {
	Tables []TableDigest `json:"tables"`
	// Overall hashes the table lines: two databases with the same
	// Overall have the same rows in every backed-up table.
	Overall string `json:"digest"`
}

// ComputeDigest hashes every backed-up table of db in one snapshot, the
// same way manifests do (so it is comparable across engines).
func ComputeDigest(ctx context.Context, db *store.DB) (Digest, error) {
	var d Digest
	err := db.Snapshot(ctx, func(s *store.Snap) error {
		var err error
		d, err = digestOf(ctx, s)
		return err
	})
	return d, err
}

func digestOf(ctx context.Context, s *store.Snap) (Digest, error) {
	var d Digest
	err := func() error {
		for _, t := range s.Tables() {
			h := newTableHash("row", t.Name, t.Columns)
			var n int64
			if err := s.Scan(ctx, t, func(row []any) error {
				n++
				return h.add(row)
			}); err != nil {
				return err
			}
			d.Tables = append(d.Tables, TableDigest{Name: t.Name, Rows: n, Hash: h.hex()})
		}
		return nil
	}()
	sort.Slice(d.Tables, func(i, j int) bool { return d.Tables[i].Name < d.Tables[j].Name })
	sum := sha256.New()
	for _, t := range d.Tables {
		fmt.Fprintf(sum, "%s %d %s\n", t.Name, t.Rows, t.Hash)
	}
	d.Overall = hex.EncodeToString(sum.Sum(nil))
	return d, err
}

// RestoreOptions is what Restore needs.
type RestoreOptions struct {
	From  *Destination
	KeyOf KeySource
	ID    string    // the backup to restore; empty: the newest (at or before At)
	At    time.Time // zero: the newest
	// DataDir is the new data directory (created; it must not exist or be
	// empty). DSN, when set, is an empty PostgreSQL database to restore
	// into instead of a SQLite file in DataDir.
	DataDir string
	DSN     string
	// RootKeyFile is the root key file to install in DataDir (its bytes):
	// without it the restored database's keys cannot be opened.
	RootKeyFile []byte
	Actor       string
	Now         func() time.Time
	Progress    func(done, total int64)
}

// Restored describes a finished restore.
type Restored struct {
	Chain []string `json:"chain"`
	ID    string   `json:"id"`
	// Digest is the restored content before the erasure ledger and the
	// restore's own audit event were applied: it equals the source's at
	// the time of the backup.
	Digest   Digest `json:"-"`
	Erasures int    `json:"erasures_applied"`
	// Warnings say what the restore could not vouch for (an erasure
	// ledger that does not verify, or is older than the backups).
	Warnings []string `json:"warnings,omitempty"`
}

// Restore restores a backup (and the chain it needs) into a new data
// directory. Everything is checked before anything is written; a failure
// afterwards removes what the restore created.
func Restore(ctx context.Context, o RestoreOptions) (Restored, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	id, err := Select(ctx, o.From, o.KeyOf, o.ID, o.At)
	if err != nil {
		return Restored{}, err
	}
	chain, err := ResolveChain(ctx, o.From, o.KeyOf, id)
	if err != nil {
		return Restored{}, err
	}
	target := chain.Target()
	ledger, skipped, err := ReadLedgers(ctx, o.From, chain.keys[len(chain.keys)-1])
	if err != nil {
		return Restored{}, err
	}
	res := Restored{Chain: chain.IDs(), ID: target.ID}
	for _, name := range skipped {
		res.Warnings = append(res.Warnings, fmt.Sprintf("erasure ledger %s does not verify with this backup key and was not applied", name))
	}
	if len(ledger) < target.Erasures {
		res.Warnings = append(res.Warnings, fmt.Sprintf("the erasure ledgers at %s list %d erasures, fewer than the %d the backup itself knew: a ledger may have been removed or rolled back", o.From, len(ledger), target.Erasures))
	}
	created, err := prepareDir(o.DataDir)
	if err != nil {
		return Restored{}, err
	}
	fail := func(db *store.DB, err error) (Restored, error) {
		if db != nil {
			if o.DSN != "" {
				_ = db.DropAll(context.WithoutCancel(ctx))
			}
			_ = db.Close()
		}
		if created {
			_ = os.RemoveAll(o.DataDir)
		} else {
			for _, f := range []string{"custos.db", "custos.db-wal", "custos.db-shm", "root.key"} {
				_ = os.Remove(filepath.Join(o.DataDir, f))
			}
		}
		return Restored{}, err
	}
	dsn := o.DSN
	if dsn == "" {
		dsn = filepath.Join(o.DataDir, "custos.db")
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		return fail(nil, err)
	}
	if o.DSN != "" {
		var tables []string
		if err := db.Read(ctx, func(tx *store.Tx) error {
			tables, err = tx.Tables(ctx)
			return err
		}); err != nil {
			_ = db.Close()
			return fail(nil, err)
		}
		if len(tables) > 0 {
			_ = db.Close()
			return fail(nil, fmt.Errorf("the database %s is not empty (%d tables): restore into a new, empty database", db.Location, len(tables)))
		}
	}
	applied, err := Apply(ctx, o.From, chain, db, ApplyOptions{Progress: o.Progress, Digest: true, Erasures: ledger})
	if err != nil {
		return fail(db, err)
	}
	res.Digest, res.Erasures = applied.Digest, applied.Erased
	if len(o.RootKeyFile) > 0 {
		if err := os.WriteFile(filepath.Join(o.DataDir, "root.key"), o.RootKeyFile, 0o600); err != nil {
			return fail(db, fmt.Errorf("install the root key: %w", err))
		}
	}
	actor := o.Actor
	if actor == "" {
		actor = "system"
	}
	if err := audit.RecordAlone(ctx, db, o.Now(), audit.Event{Actor: actor, Action: "backup.restore", ObjectType: "backup", ObjectID: target.ID,
		Outcome: audit.OK, Details: map[string]any{"chain": res.Chain, "from": o.From.String(), "erasures_applied": res.Erasures, "digest": res.Digest.Overall, "warnings": res.Warnings}}); err != nil {
		return fail(db, err)
	}
	if err := db.Close(); err != nil {
		return Restored{}, err
	}
	return res, nil
}

// prepareDir makes sure dir is new or empty, creating it (0700). It
// reports whether it created it.
func prepareDir(dir string) (bool, error) {
	if dir == "" {
		return false, errors.New("give the new data directory with --data")
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return false, fmt.Errorf("create %s: %w", dir, err)
		}
		return true, nil
	case err != nil:
		return false, fmt.Errorf("data directory %s: %w", dir, err)
	case len(entries) > 0:
		return false, fmt.Errorf("data directory %s is not empty: restore into a new directory (nothing was written)", dir)
	}
	return false, nil
}

// VerifyOptions is what Verify needs.
type VerifyOptions struct {
	From    *Destination
	KeyOf   KeySource
	ID      string
	DB      *store.DB // the live database, for the audit event (may be nil)
	Actor   string
	Now     func() time.Time
	Scratch string // directory for the scratch database (default: the system's temporary directory)
}

// Verified is the outcome of a verification.
type Verified struct {
	ID      string        `json:"id"`
	Chain   []string      `json:"chain"`
	Elapsed time.Duration `json:"-"`
}

// Verify downloads a backup and its chain, checks signatures, links and
// chunk hashes, restores it into a scratch database and compares the
// result with the manifest. The outcome is an audit event (backup.verify)
// in the live database.
func Verify(ctx context.Context, o VerifyOptions) (Verified, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	v, err := verify(ctx, o)
	v.Elapsed = o.Now().Sub(start)
	if o.DB != nil {
		actor := o.Actor
		if actor == "" {
			actor = "system"
		}
		ev := audit.Event{Actor: actor, Action: "backup.verify", ObjectType: "backup", ObjectID: v.ID, Outcome: audit.OK,
			Details: map[string]any{"from": o.From.String(), "chain": v.Chain}}
		if err != nil {
			ev.Outcome, ev.Reason = audit.Failed, oneLine(err.Error())
		}
		if aerr := audit.RecordAlone(context.WithoutCancel(ctx), o.DB, o.Now(), ev); aerr != nil && err == nil {
			err = fmt.Errorf("verified, but the audit event was not written: %w", aerr)
		}
	}
	return v, err
}

func verify(ctx context.Context, o VerifyOptions) (Verified, error) {
	id, err := Select(ctx, o.From, o.KeyOf, o.ID, time.Time{})
	if err != nil {
		return Verified{}, err
	}
	v := Verified{ID: id}
	chain, err := ResolveChain(ctx, o.From, o.KeyOf, id)
	if err != nil {
		return v, err
	}
	v.Chain = chain.IDs()
	dir, err := os.MkdirTemp(o.Scratch, "custos-verify-")
	if err != nil {
		return v, err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, filepath.Join(dir, "scratch.db"))
	if err != nil {
		return v, err
	}
	defer db.Close()
	_, err = Apply(ctx, o.From, chain, db, ApplyOptions{})
	return v, err
}

// RootKeySource opens backup keys with the root key.
func RootKeySource(root keys.RootProvider) KeySource {
	return func(ctx context.Context, ki KeyInfo) (Key, error) {
		raw, err := keys.UnwrapBackupKey(ctx, root, keys.WrappedBackupKey{Version: ki.Version, Wrapped: ki.Wrapped, RootID: ki.RootID})
		if err != nil {
			return Key{}, err
		}
		k, err := KeyFromBytes(raw)
		if err != nil {
			return Key{}, err
		}
		if k.ID() != ki.ID {
			return Key{}, fmt.Errorf("the root key opens backup key %s, the manifest names %s", k.ID(), ki.ID)
		}
		return k, nil
	}
}

// KitKeySource opens backup keys with a recovery kit.
func KitKeySource(kit Kit) KeySource {
	return func(_ context.Context, ki KeyInfo) (Key, error) {
		if kit.Key.ID() != ki.ID {
			return Key{}, fmt.Errorf("the recovery kit holds backup key %s; this backup was made with %s", kit.Key.ID(), ki.ID)
		}
		return kit.Key, nil
	}
}
