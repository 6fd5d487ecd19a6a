package backup

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

// CreateOptions is what Create needs.
type CreateOptions struct {
	DB           *store.DB
	Root         keys.RootProvider
	Kind         Kind
	Destinations []*Destination
	Actor        string // for the audit trail ("cli:<os user>", "system")
	Now          func() time.Time
	ChunkSize    int               // default DefaultChunkSize
	Progress     func(bytes int64) // plaintext bytes written so far (may be nil)
}

// Result is a completed backup.
type Result struct {
	Manifest Manifest
	Elapsed  time.Duration
}

// Create takes a backup of the database while it keeps serving: a
// consistent snapshot, streamed through zstd and AES-GCM in chunks to
// every destination, then the signed manifest. The outcome is an audit
// event (backup.create), which the monitor watches for failures and age.
func Create(ctx context.Context, o CreateOptions) (Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	start := o.Now()
	res, err := create(ctx, o)
	res.Elapsed = o.Now().Sub(start)
	ev := audit.Event{Actor: o.Actor, Action: "backup.create", ObjectType: "backup", ObjectID: res.Manifest.ID, Outcome: audit.OK,
		Details: map[string]any{"kind": string(o.Kind), "destinations": destNames(o.Destinations)}}
	if err != nil {
		ev.Outcome, ev.Reason = audit.Failed, oneLine(err.Error())
	} else {
		ev.Details["stored_bytes"] = res.Manifest.StoredBytes
		ev.Details["chunks"] = len(res.Manifest.Chunks)
		ev.Details["base"] = res.Manifest.Base
	}
	if o.Actor == "" {
		ev.Actor = "system"
	}
	if aerr := audit.RecordAlone(context.WithoutCancel(ctx), o.DB, o.Now(), ev); aerr != nil && err == nil {
		err = fmt.Errorf("backup %s completed, but its audit event was not written: %w", res.Manifest.ID, aerr)
	}
	return res, err
}

func destNames(ds []*Destination) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.String()
	}
	return out
}

func create(ctx context.Context, o CreateOptions) (Result, error) {
	if len(o.Destinations) == 0 {
		return Result{}, errors.New("no destination: give --to URL (file:///path or s3://bucket)")
	}
	if _, err := ParseKind(string(o.Kind)); err != nil {
		return Result{}, err
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = DefaultChunkSize
	}
	now := o.Now().UTC()
	raw, wrapped, err := keys.BackupKey(ctx, o.DB, o.Root, now)
	if err != nil {
		return Result{}, err
	}
	k, err := KeyFromBytes(raw)
	if err != nil {
		return Result{}, err
	}
	instance, err := Instance(ctx, o.DB, now)
	if err != nil {
		return Result{}, err
	}
	id, err := newID(now, o.Kind)
	if err != nil {
		return Result{}, err
	}
	salt, err := NewSalt()
	if err != nil {
		return Result{}, err
	}
	m := Manifest{Format: formatV1, ID: id, Kind: o.Kind, CreatedAt: now, Instance: instance, Engine: string(o.DB.Dialect()),
		Key:  KeyInfo{ID: k.ID(), Version: wrapped.Version, RootID: wrapped.RootID, Wrapped: wrapped.Wrapped},
		Salt: salt, Compression: "zstd", Cipher: "AES-256-GCM", ChunkSize: o.ChunkSize, Tables: map[string]TableStat{}, Full: id}

	var base *stored
	if o.Kind != Full {
		b, err := chooseBase(ctx, o, k)
		if err != nil {
			return Result{}, err
		}
		base = &b
		m.Base, m.BaseSHA256, m.Full = b.M.ID, b.SHA256, b.M.Full
	}
	// Changes are logged from here on (the first backup turns the log on
	// before its snapshot, so nothing between the two is missed).
	if err := o.DB.EnableTracking(ctx, now); err != nil {
		return Result{}, err
	}

	put := func(ctx context.Context, c ChunkInfo, sealed []byte) error {
		for _, d := range o.Destinations {
			if err := d.Put(ctx, objectName(id, c.Name), sealed); err != nil {
				return fmt.Errorf("upload %s of %s to %s: %w", c.Name, id, d, err)
			}
		}
		return nil
	}
	cw, err := NewWriter(ctx, m.sealing(k), o.ChunkSize, put)
	if err != nil {
		return Result{}, err
	}
	closed := false
	defer func() {
		if !closed {
			_ = cw.Close()
		}
	}()
	var progress func()
	if o.Progress != nil {
		progress = func() { o.Progress(cw.Written()) }
	}
	err = o.DB.Snapshot(ctx, func(s *store.Snap) error {
		m.Position = s.Position()
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			return err
		}
		m.SchemaVersion = v
		if base != nil {
			if base.M.SchemaVersion != v {
				return fmt.Errorf("the schema changed since backup %s (version %d, now %d): take a --full backup", base.M.ID, base.M.SchemaVersion, v)
			}
			if base.M.Engine != m.Engine {
				return fmt.Errorf("backup %s was taken from %s, this database is %s: take a --full backup", base.M.ID, base.M.Engine, m.Engine)
			}
			// The change log may have been pruned past the base (by a full
			// backup that finished meanwhile): read in this snapshot, so
			// the answer holds for the rows this backup reads.
			pruned, err := s.BackupState(ctx, "pruned")
			if err != nil {
				return err
			}
			if pruned != "" {
				ok, err := store.PositionCovers(base.M.Position, pruned)
				if err != nil || !ok {
					return fmt.Errorf("the changes since backup %s are no longer tracked (the change log was pruned after a later full backup): take a --full backup", base.M.ID)
				}
			}
		}
		sw, err := newStreamWriter(cw)
		if err != nil {
			return err
		}
		if err := writeTables(ctx, s, sw, base, m.Tables, progress); err != nil {
			return err
		}
		for _, t := range s.Tables() {
			if t.Name == "erasure_ledger" { // small: counted for every kind
				n, err := s.Count(ctx, t)
				if err != nil {
					return err
				}
				m.Erasures = int(n)
			}
		}
		return sw.close()
	})
	if err != nil {
		return Result{}, err
	}
	closed = true
	if err := cw.Close(); err != nil {
		return Result{}, err
	}
	m.Chunks = cw.Chunks()
	m.StreamBytes = cw.Written()
	for _, c := range m.Chunks {
		m.StoredBytes += c.Size
	}
	if _, err := writeManifest(ctx, o.Destinations, k, &m); err != nil {
		return Result{}, err
	}
	run := store.BackupRun{ID: id, Kind: string(o.Kind), Base: m.Base, Position: m.Position, Destinations: destNames(o.Destinations), At: now, Bytes: m.StoredBytes}
	if err := o.DB.Write(ctx, func(tx *store.Tx) error { return tx.RecordBackupRun(ctx, run) }); err != nil {
		return Result{Manifest: m}, err
	}
	if err := publishLedger(ctx, o.DB, o.Destinations, k, instance, now); err != nil {
		return Result{Manifest: m}, err
	}
	if o.Kind == Full {
		if err := pruneChanges(ctx, o.DB, now); err != nil {
			return Result{Manifest: m}, fmt.Errorf("backup %s completed, but the change log was not pruned: %w", id, err)
		}
	}
	return Result{Manifest: m}, nil
}

// writeTables streams the snapshot: every table for a full backup, the
// changes after the base otherwise.
func writeTables(ctx context.Context, s *store.Snap, sw *streamWriter, base *stored, stats map[string]TableStat, progress func()) error {
	trim, err := s.TrimMark(ctx)
	if err != nil {
		return err
	}
	tables := s.Tables()
	deleted := map[string][][]any{} // keys deleted since the base, by table
	for _, t := range tables {
		st := TableStat{Mode: t.Mode.String()}
		// Row counts cost a scan of every table: full backups record
		// them; an incremental, which must cost a small fraction of a
		// full one, records its own rows' hashes instead.
		if base == nil || t.Mode == store.Copied {
			if st.Total, err = s.Count(ctx, t); err != nil {
				return err
			}
		}
		h := newTableHash("row", t.Name, t.Columns)
		row := func(vals []any) error {
			st.Rows++
			if err := h.add(vals); err != nil {
				return err
			}
			if progress != nil && st.Rows%4096 == 0 {
				progress()
			}
			return sw.record(vals)
		}
		if err := sw.begin(t, sectionRows); err != nil {
			return err
		}
		switch {
		case base == nil || t.Mode == store.Copied:
			if err := sw.clear(); err != nil {
				return err
			}
			if err := s.Scan(ctx, t, row); err != nil {
				return err
			}
		case t.Mode == store.Appended:
			prev, ok := base.M.Tables[t.Name]
			if !ok {
				return fmt.Errorf("backup %s does not know table %s: take a --full backup", base.M.ID, t.Name)
			}
			if err := s.ScanAbove(ctx, t, prev.High, row); err != nil {
				return err
			}
		default:
			if err := s.Changes(ctx, t, base.M.Position, func(vals, key []any) error {
				switch {
				case vals != nil:
					return row(vals)
				case t.Group != "":
					st.Groups++
					return sw.group(key[0])
				}
				deleted[t.Name] = append(deleted[t.Name], slices.Clone(key))
				return nil
			}); err != nil {
				return err
			}
		}
		if t.Mode == store.Appended {
			if st.High, err = s.MaxSeq(ctx, t); err != nil {
				return err
			}
			if t.Trim {
				st.Trim = trim
			}
		}
		st.Hash = h.hex()
		if err := sw.end(); err != nil {
			return err
		}
		stats[t.Name] = st
	}
	// Deletions, children before parents.
	for i := len(tables) - 1; i >= 0; i-- {
		t := tables[i]
		st := stats[t.Name]
		switch {
		case t.Mode == store.Appended && t.Trim && st.Trim > 0:
			if err := sw.begin(t, sectionDeletes); err != nil {
				return err
			}
			if err := sw.trim(st.Trim); err != nil {
				return err
			}
			if err := sw.end(); err != nil {
				return err
			}
		case base != nil && t.Mode == store.Tracked:
			if err := sw.begin(t, sectionDeletes); err != nil {
				return err
			}
			h := newTableHash("key", t.Name, keyColumns(t))
			for _, key := range deleted[t.Name] {
				st.Deleted++
				if err := h.add(key); err != nil {
					return err
				}
				if err := sw.record(key); err != nil {
					return err
				}
			}
			if err := sw.end(); err != nil {
				return err
			}
			if st.Deleted > 0 {
				st.DeletedHash = h.hex()
			}
			stats[t.Name] = st
		}
	}
	if progress != nil {
		progress()
	}
	return nil
}

// chooseBase finds the backup an incremental (the latest of any kind) or
// differential (the latest full) applies to: the newest one this database
// completed that every destination holds, verified.
func chooseBase(ctx context.Context, o CreateOptions, k Key) (stored, error) {
	var runs []store.BackupRun
	if err := o.DB.Read(ctx, func(tx *store.Tx) error {
		var err error
		runs, err = tx.BackupRuns(ctx)
		return err
	}); err != nil {
		return stored{}, err
	}
	keyOf := func(_ context.Context, ki KeyInfo) (Key, error) {
		if ki.ID != k.ID() {
			return Key{}, fmt.Errorf("it was made with backup key %s, this database's is %s", ki.ID, k.ID())
		}
		return k, nil
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		if o.Kind == Differential && r.Kind != string(Full) {
			continue
		}
		var first stored
		ok := true
		for j, d := range o.Destinations {
			s, _, err := readManifest(ctx, d, r.ID, keyOf)
			if errors.Is(err, ErrNoBackup) {
				ok = false
				break
			}
			if err != nil {
				return stored{}, err
			}
			if j == 0 {
				first = s
			} else if s.SHA256 != first.SHA256 {
				return stored{}, fmt.Errorf("backup %s differs between %s and %s", r.ID, o.Destinations[0], d)
			}
		}
		if !ok {
			continue
		}
		return first, nil
	}
	what := "backup"
	if o.Kind == Differential {
		what = "full backup"
	}
	return stored{}, fmt.Errorf("no %s of this database is at every destination (%v) yet: take a --full backup first", what, destNames(o.Destinations))
}

// pruneChanges deletes the change-log rows that no future incremental or
// differential needs: those seen by the oldest of the latest full backups
// of every destination used in the last 40 days.
func pruneChanges(ctx context.Context, db *store.DB, now time.Time) error {
	return db.Write(ctx, func(tx *store.Tx) error {
		runs, err := tx.BackupRuns(ctx)
		if err != nil {
			return err
		}
		latestFull := map[string]store.BackupRun{}
		used := map[string]bool{}
		for _, r := range runs {
			for _, d := range r.Destinations {
				if now.Sub(r.At) < 40*24*time.Hour {
					used[d] = true
				}
				if r.Kind == string(Full) {
					latestFull[d] = r
				}
			}
		}
		var oldest *store.BackupRun
		for d := range used {
			r, ok := latestFull[d]
			if !ok {
				return nil // a destination without a full backup: keep everything
			}
			if oldest == nil {
				oldest = &r
				continue
			}
			// The prune point is the full backup whose snapshot saw least.
			if covers, err := store.PositionCovers(oldest.Position, r.Position); err != nil {
				return nil
			} else if covers {
				oldest = &r
			}
		}
		if oldest == nil {
			return nil
		}
		if prev, _, err := tx.BackupState(ctx, "pruned"); err != nil {
			return err
		} else if prev != "" {
			if ahead, err := store.PositionCovers(oldest.Position, prev); err != nil || !ahead {
				return nil // never move the prune point back
			}
		}
		if _, err := tx.PruneChanges(ctx, oldest.Position); err != nil {
			return err
		}
		// The position itself: an incremental checks its base against it
		// inside its own snapshot.
		return tx.PutBackupState(ctx, "pruned", oldest.Position, oldest.At)
	})
}

// Instance returns this database's backup instance id, creating it.
func Instance(ctx context.Context, db *store.DB, now time.Time) (string, error) {
	var id string
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		id, _, err = tx.BackupState(ctx, "instance")
		return err
	}); err != nil || id != "" {
		return id, err
	}
	err := db.Write(ctx, func(tx *store.Tx) error {
		v, _, err := tx.BackupState(ctx, "instance")
		if err != nil {
			return err
		}
		if v != "" {
			id = v
			return nil
		}
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		id = hex.EncodeToString(b[:])
		return tx.PutBackupState(ctx, "instance", id, now)
	})
	return id, err
}

func oneLine(s string) string {
	for i, c := range s {
		if c == '\n' || c == '\r' {
			return s[:i]
		}
	}
	return s
}
