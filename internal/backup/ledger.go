package backup

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// The erasure ledger travels with the backups: every backup, and every
// erasure (serve publishes the ledger when it grows), writes the
// database's ledger to custos-backups/ledger/<instance>.json, signed with
// the backup key. A restore applies every ledger it finds at the
// destination, so a customer erased after a backup was taken never comes
// back from it. The ledger holds customer ids and times only.

type ledgerDoc struct {
	Format   string          `json:"format"`
	Instance string          `json:"instance"`
	At       time.Time       `json:"at"`
	Erasures []ledgerErasure `json:"erasures"`
}

type ledgerErasure struct {
	CustomerID string    `json:"customer_id"`
	ErasedAt   time.Time `json:"erased_at"`
}

const ledgerFormat = "custos-erasure-ledger/1"

// publishLedger writes the database's erasure ledger to every destination.
func publishLedger(ctx context.Context, db *store.DB, dests []*Destination, k Key, instance string, now time.Time) error {
	var list []store.Erasure
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		list, err = tx.ErasureLedger(ctx)
		return err
	}); err != nil {
		return err
	}
	doc := ledgerDoc{Format: ledgerFormat, Instance: instance, At: now.UTC(), Erasures: []ledgerErasure{}}
	for _, e := range list {
		doc.Erasures = append(doc.Erasures, ledgerErasure{CustomerID: e.CustomerID, ErasedAt: e.ErasedAt})
	}
	raw, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	data, err := SealManifest(k, raw)
	if err != nil {
		return err
	}
	for _, d := range dests {
		if err := d.Put(ctx, ledgerDir+instance+".json", data); err != nil {
			return fmt.Errorf("publish the erasure ledger to %s: %w", d, err)
		}
	}
	return db.Write(ctx, func(tx *store.Tx) error {
		return tx.PutBackupState(ctx, "ledger", fmt.Sprint(len(list)), now)
	})
}

// PublishLedgerOptions is what PublishLedger needs.
type PublishLedgerOptions struct {
	DB           *store.DB
	Key          Key
	Destinations []*Destination
	Now          time.Time
	// Force publishes even when the ledger has not grown since the last time.
	Force bool
}

// PublishLedger writes the erasure ledger to the destinations when it
// changed since it was last published. It reports whether it wrote.
func PublishLedger(ctx context.Context, o PublishLedgerOptions) (bool, error) {
	instance, err := Instance(ctx, o.DB, o.Now)
	if err != nil {
		return false, err
	}
	if !o.Force {
		if grew, err := ledgerGrew(ctx, o.DB); err != nil || !grew {
			return false, err
		}
	}
	return true, publishLedger(ctx, o.DB, o.Destinations, o.Key, instance, o.Now)
}

// ReadLedgers returns the union of the erasure ledgers at a destination
// that are signed with key. Ledgers signed with another key (another
// database's) are skipped and named in the second result.
func ReadLedgers(ctx context.Context, d *Destination, k Key) ([]store.Erasure, []string, error) {
	names, err := d.List(ctx, ledgerDir)
	if err != nil {
		return nil, nil, err
	}
	byID := map[string]store.Erasure{}
	var skipped []string
	for _, name := range names {
		if !strings.HasSuffix(name, ".json") {
			continue
		}
		data, err := d.GetMax(ctx, name, maxLedgerSize)
		if errors.Is(err, ErrObjectMissing) {
			continue
		}
		if err != nil {
			return nil, nil, err
		}
		env, err := ParseEnvelope(data)
		if err == nil {
			err = env.Verify(k)
		}
		var doc ledgerDoc
		if err == nil {
			err = json.Unmarshal(env.Manifest, &doc)
		}
		if err != nil || doc.Format != ledgerFormat {
			skipped = append(skipped, name)
			continue
		}
		for _, e := range doc.Erasures {
			if _, ok := byID[e.CustomerID]; !ok {
				byID[e.CustomerID] = store.Erasure{CustomerID: e.CustomerID, ErasedAt: e.ErasedAt, ErasedBy: "ledger:" + doc.Instance}
			}
		}
	}
	out := make([]store.Erasure, 0, len(byID))
	for _, e := range byID {
		out = append(out, e)
	}
	return out, skipped, nil
}

// ledgerGrew reports whether the erasure ledger has entries that were not
// published yet (it only ever grows).
func ledgerGrew(ctx context.Context, db *store.DB) (bool, error) {
	var published string
	var n int
	err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if published, _, err = tx.BackupState(ctx, "ledger"); err != nil {
			return err
		}
		list, err := tx.ErasureLedger(ctx)
		n = len(list)
		return err
	})
	if err != nil {
		return false, err
	}
	if published == "" {
		return n > 0, nil
	}
	return published != fmt.Sprint(n), nil
}
