package keys

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// Errors of the keyring.
var (
	ErrNotInitialized = errors.New("database has no keys yet (not initialized)")
	ErrWrongRootKey   = errors.New("the root key does not open this database's master key")
	ErrKeyDestroyed   = errors.New("data key destroyed")
)

const (
	purposeMaster = "master"
	purposeIndex  = "index"
)

// Keyring holds the unwrapped master and index keys and caches data keys.
type Keyring struct {
	root    RootProvider
	master  seal.Key
	indexer *seal.Indexer
	cache   *lru.Cache[string, seal.Key]
	now     func() time.Time

	// unwraps counts data-key unwraps (cache misses); read by tests and metrics.
	unwraps atomic.Int64
}

// Options tune a Keyring.
type Options struct {
	CacheSize int              // unwrapped data keys kept in memory (default 10000)
	Now       func() time.Time // clock (default time.Now)
}

func (o *Options) defaults() {
	if o.CacheSize <= 0 {
		o.CacheSize = 10000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

func masterAAD(v uint32) []byte { return []byte("custos/master/v" + strconv.FormatUint(uint64(v), 10)) }

// Initialize creates the master and index keys in an empty database. It
// fails if the database already has keys: it never replaces keys over data.
func Initialize(ctx context.Context, db *store.DB, root RootProvider, opts Options) (*Keyring, error) {
	opts.defaults()
	master, err := seal.RandomKey(1)
	if err != nil {
		return nil, err
	}
	index, err := seal.RandomKey(1)
	if err != nil {
		return nil, err
	}
	wrappedMaster, err := root.Wrap(ctx, master.Bytes(), masterAAD(1))
	if err != nil {
		return nil, fmt.Errorf("wrap master key: %w", err)
	}
	wrappedIndex, err := seal.GCM{}.Seal(master, seal.AAD{Table: "keyring", Record: purposeIndex, Field: "v1"}, index.Bytes())
	if err != nil {
		return nil, err
	}
	now := opts.Now().UTC()
	err = db.Write(ctx, func(tx *store.Tx) error {
		n, err := tx.CountKeyring(ctx)
		if err != nil {
			return err
		}
		if n > 0 {
			return errors.New("database already has keys; refusing to create new ones")
		}
		if err := tx.InsertKeyringEntry(ctx, store.KeyringEntry{Purpose: purposeMaster, Version: 1, Wrapped: wrappedMaster, WrappedBy: root.ID(), CreatedAt: now}); err != nil {
			return err
		}
		return tx.InsertKeyringEntry(ctx, store.KeyringEntry{Purpose: purposeIndex, Version: 1, Wrapped: wrappedIndex, WrappedBy: "master:1", CreatedAt: now})
	})
	if err != nil {
		return nil, fmt.Errorf("initialize keys: %w", err)
	}
	return newKeyring(root, master, index, opts)
}

// Open unwraps the keys of an initialized database with the root key.
func Open(ctx context.Context, db *store.DB, root RootProvider, opts Options) (*Keyring, error) {
	opts.defaults()
	var entries []store.KeyringEntry
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		entries, err = tx.KeyringEntries(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("load keyring: %w", err)
	}
	var masterE, indexE *store.KeyringEntry
	for i := range entries {
		e := &entries[i]
		switch {
		case e.Purpose == purposeMaster && masterE == nil:
			masterE = e
		case e.Purpose == purposeIndex && indexE == nil:
			indexE = e
		}
	}
	if masterE == nil || indexE == nil {
		return nil, ErrNotInitialized
	}
	raw, err := root.Unwrap(ctx, masterE.Wrapped, masterAAD(masterE.Version))
	if err != nil {
		return nil, fmt.Errorf("%w (master key v%d was wrapped by %s, the root key given is %s)", ErrWrongRootKey, masterE.Version, masterE.WrappedBy, root.ID())
	}
	master, err := seal.NewKey(masterE.Version, raw)
	if err != nil {
		return nil, err
	}
	rawIndex, err := seal.GCM{}.Open(master, seal.AAD{Table: "keyring", Record: purposeIndex, Field: "v" + strconv.FormatUint(uint64(indexE.Version), 10)}, indexE.Wrapped)
	if err != nil {
		return nil, fmt.Errorf("unwrap index key: %w", err)
	}
	index, err := seal.NewKey(indexE.Version, rawIndex)
	if err != nil {
		return nil, err
	}
	return newKeyring(root, master, index, opts)
}

func newKeyring(root RootProvider, master, index seal.Key, opts Options) (*Keyring, error) {
	cache, err := lru.New[string, seal.Key](opts.CacheSize)
	if err != nil {
		return nil, err
	}
	return &Keyring{root: root, master: master, indexer: seal.NewIndexer(index), cache: cache, now: opts.Now}, nil
}

// Indexer returns the blind index computer.
func (k *Keyring) Indexer() *seal.Indexer { return k.indexer }

// RootID names the root key in use.
func (k *Keyring) RootID() string { return k.root.ID() }

// Unwraps reports how many data keys were unwrapped (cache misses) so far.
func (k *Keyring) Unwraps() int64 { return k.unwraps.Load() }

func dataKeyAAD(subject string, version uint32) seal.AAD {
	return seal.AAD{Table: "data_keys", Record: subject, Field: "v" + strconv.FormatUint(uint64(version), 10)}
}

func cacheKey(subject string, version uint32) string {
	return subject + "/" + strconv.FormatUint(uint64(version), 10)
}

// NewDataKey creates version 1 of subject's data key inside tx.
func (k *Keyring) NewDataKey(ctx context.Context, tx *store.Tx, subject string) (seal.Key, error) {
	dk, err := seal.RandomKey(1)
	if err != nil {
		return seal.Key{}, err
	}
	wrapped, err := seal.GCM{}.Seal(k.master, dataKeyAAD(subject, dk.Version), dk.Bytes())
	if err != nil {
		return seal.Key{}, err
	}
	if err := tx.InsertDataKey(ctx, store.DataKey{Subject: subject, Version: dk.Version, MasterVersion: k.master.Version, Wrapped: wrapped, CreatedAt: k.now().UTC()}); err != nil {
		return seal.Key{}, fmt.Errorf("store data key: %w", err)
	}
	// Cached only once the transaction commits would be stricter; a key of a
	// rolled-back subject is unreachable anyway, since its id is never reused.
	k.cache.Add(cacheKey(subject, dk.Version), dk)
	return dk, nil
}

// DataKey returns version v of subject's data key, from the cache or by
// unwrapping it from the database.
func (k *Keyring) DataKey(ctx context.Context, tx *store.Tx, subject string, version uint32) (seal.Key, error) {
	ck := cacheKey(subject, version)
	if dk, ok := k.cache.Get(ck); ok {
		return dk, nil
	}
	row, err := tx.GetDataKey(ctx, subject, version)
	if err != nil {
		return seal.Key{}, fmt.Errorf("data key %s v%d: %w", subject, version, err)
	}
	if row.Wrapped == nil {
		return seal.Key{}, fmt.Errorf("%w: %s v%d", ErrKeyDestroyed, subject, version)
	}
	if row.MasterVersion != k.master.Version {
		return seal.Key{}, fmt.Errorf("data key %s v%d is wrapped by master key v%d, have v%d", subject, version, row.MasterVersion, k.master.Version)
	}
	raw, err := seal.GCM{}.Open(k.master, dataKeyAAD(subject, version), row.Wrapped)
	if err != nil {
		return seal.Key{}, fmt.Errorf("unwrap data key: %w", err)
	}
	dk, err := seal.NewKey(version, raw)
	if err != nil {
		return seal.Key{}, err
	}
	k.unwraps.Add(1)
	k.cache.Add(ck, dk)
	return dk, nil
}

// Forget drops a subject's keys from the cache (after erasure or rotation).
func (k *Keyring) Forget(subject string, version uint32) { k.cache.Remove(cacheKey(subject, version)) }
