package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/custos/custos/internal/store"
)

// Chain is a backup and the backups it applies on top of, oldest (the
// full backup) first, every manifest verified and every link checked.
type Chain struct {
	Links []stored
	keys  []Key
}

// Target is the backup a chain ends at.
func (c Chain) Target() Manifest { return c.Links[len(c.Links)-1].M }

// IDs lists the chain's backups in the order they apply.
func (c Chain) IDs() []string {
	out := make([]string, len(c.Links))
	for i, l := range c.Links {
		out[i] = l.M.ID
	}
	return out
}

// Select picks the backup to restore: id when given, else the newest
// complete backup taken at or before at (when not zero), else the newest.
func Select(ctx context.Context, d *Destination, keyOf KeySource, id string, at time.Time) (string, error) {
	if id != "" {
		if !validID(id) {
			return "", fmt.Errorf("%q is not a backup id (see `custos backup list`)", id)
		}
		return id, nil
	}
	entries, err := List(ctx, d, keyOf)
	if err != nil {
		return "", err
	}
	best := ""
	instances := map[string]string{} // instance -> its newest backup
	for _, e := range entries {
		if !e.Complete {
			continue
		}
		instances[e.Instance] = e.ID
		if !at.IsZero() && e.CreatedAt.After(at) {
			continue
		}
		best = e.ID
	}
	if len(instances) > 1 {
		var newest []string
		for _, id := range instances {
			newest = append(newest, id)
		}
		sort.Strings(newest)
		return "", fmt.Errorf("%s holds the backups of %d databases (newest: %s): say which with --id", d, len(instances), strings.Join(newest, ", "))
	}
	if best == "" {
		if !at.IsZero() {
			return "", fmt.Errorf("%w: %s has no complete backup taken at or before %s", ErrNoBackup, d, at.UTC().Format(time.RFC3339))
		}
		return "", fmt.Errorf("%w: %s has no complete backup", ErrNoBackup, d)
	}
	return best, nil
}

// ResolveChain reads the manifests from id back to its full backup and
// checks, before anything is written anywhere, that every link is there,
// signed, of the same database, and that every chunk exists with its
// recorded size.
func ResolveChain(ctx context.Context, d *Destination, keyOf KeySource, id string) (Chain, error) {
	var links []stored
	var ks []Key
	seen := map[string]bool{}
	next := id
	wantSHA := ""
	for {
		if seen[next] || len(links) > 10000 {
			return Chain{}, fmt.Errorf("backup %s: the chain loops", id)
		}
		seen[next] = true
		s, k, err := readManifest(ctx, d, next, keyOf)
		if err != nil {
			if len(links) > 0 && errors.Is(err, ErrNoBackup) {
				return Chain{}, fmt.Errorf("backup %s cannot be restored: it needs %s, which is missing from %s (a broken chain)", id, next, d)
			}
			return Chain{}, err
		}
		if wantSHA != "" && s.SHA256 != wantSHA {
			return Chain{}, fmt.Errorf("backup %s cannot be restored: its base %s at %s is not the backup it was taken on (the manifest was replaced)", links[len(links)-1].M.ID, next, d)
		}
		if len(links) > 0 {
			child := links[len(links)-1].M
			if s.M.Instance != child.Instance || !s.M.CreatedAt.Before(child.CreatedAt) || (child.Kind == Differential && s.M.Kind != Full) {
				return Chain{}, fmt.Errorf("backup %s cannot be restored: its base %s does not fit (another database, a later time or the wrong kind)", child.ID, next)
			}
		}
		links = append(links, s)
		ks = append(ks, k)
		if s.M.Kind == Full {
			if s.M.Base != "" {
				return Chain{}, fmt.Errorf("backup %s: a full backup with a base", s.M.ID)
			}
			break
		}
		if s.M.Base == "" {
			return Chain{}, fmt.Errorf("backup %s: a %s backup without a base", s.M.ID, s.M.Kind)
		}
		next, wantSHA = s.M.Base, s.M.BaseSHA256
	}
	for i, j := 0, len(links)-1; i < j; i, j = i+1, j-1 {
		links[i], links[j] = links[j], links[i]
		ks[i], ks[j] = ks[j], ks[i]
	}
	for _, l := range links {
		if l.M.SchemaVersion != links[0].M.SchemaVersion {
			return Chain{}, fmt.Errorf("backup %s has schema version %d, its full backup %d", l.M.ID, l.M.SchemaVersion, links[0].M.SchemaVersion)
		}
		if len(l.M.Chunks) == 0 {
			return Chain{}, fmt.Errorf("backup %s lists no data", l.M.ID)
		}
		for _, c := range l.M.Chunks {
			n, err := d.Size(ctx, objectName(l.M.ID, c.Name))
			if errors.Is(err, ErrObjectMissing) {
				return Chain{}, fmt.Errorf("backup %s cannot be restored: chunk %s is missing from %s", l.M.ID, c.Name, d)
			}
			if err != nil {
				return Chain{}, err
			}
			if n != c.Size {
				return Chain{}, fmt.Errorf("backup %s cannot be restored: chunk %s at %s has %d bytes, the manifest says %d (damaged)", l.M.ID, c.Name, d, n, c.Size)
			}
		}
	}
	if v := store.LatestSchemaVersion(); links[0].M.SchemaVersion > v {
		return Chain{}, fmt.Errorf("backup %s has schema version %d; this Custos knows up to %d: restore it with a newer Custos", id, links[0].M.SchemaVersion, v)
	}
	return Chain{Links: links, keys: ks}, nil
}

// ApplyOptions tune Apply.
type ApplyOptions struct {
	Progress func(done, total int64) // stored bytes read so far, of the chain's total
	// Digest computes the restored content's digest (before erasures).
	Digest bool
	// Erasures are applied after the check, in the same transaction.
	Erasures []store.Erasure
}

// Applied is what Apply did.
type Applied struct {
	Digest Digest
	Erased int
}

// Apply restores a chain into db, a database that was just created (no
// migrations applied yet): it migrates it to the backup's schema, loads
// every backup of the chain, checks the result against the target
// backup's manifest and applies the erasure ledger, all in one
// transaction, then migrates to the current schema. A failure leaves
// nothing committed.
func Apply(ctx context.Context, d *Destination, c Chain, db *store.DB, o ApplyOptions) (Applied, error) {
	var out Applied
	if err := db.MigrateTo(ctx, c.Links[0].M.SchemaVersion); err != nil {
		return out, err
	}
	var total, done int64
	for _, l := range c.Links {
		total += l.M.StoredBytes
	}
	last := c.Target()
	check := newChecker(last)
	err := db.Load(ctx, func(l *store.Loader) error {
		for i, link := range c.Links {
			fetch := func(ctx context.Context, name string) ([]byte, error) {
				b, err := d.GetMax(ctx, objectName(link.M.ID, name), int64(link.M.ChunkSize)+chunkOverhead)
				if err == nil {
					done += int64(len(b))
					if o.Progress != nil {
						o.Progress(done, total)
					}
				}
				return b, err
			}
			r, err := NewReader(ctx, link.M.sealing(c.keys[i]), link.M.Chunks, fetch)
			if err != nil {
				return err
			}
			var ck *checker
			if i == len(c.Links)-1 {
				ck = check
			}
			err = applyStream(ctx, l, r, ck)
			_ = r.Close()
			if err != nil {
				return fmt.Errorf("backup %s: %w", link.M.ID, err)
			}
		}
		if _, err := l.ApplyErasures(ctx, nil); err != nil { // fills in self references
			return err
		}
		snap := l.Snapshot()
		if err := check.verify(ctx, snap); err != nil {
			return err
		}
		if o.Digest {
			var err error
			if out.Digest, err = digestOf(ctx, snap); err != nil {
				return err
			}
		}
		if len(o.Erasures) > 0 {
			var err error
			if out.Erased, err = l.ApplyErasures(ctx, o.Erasures); err != nil {
				return fmt.Errorf("apply the erasure ledger: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return out, err
	}
	return out, db.Migrate(ctx)
}

// applyStream loads one backup's stream.
func applyStream(ctx context.Context, l *store.Loader, r io.Reader, ck *checker) error {
	sr, err := newStreamReader(r)
	if err != nil {
		return err
	}
	var ev event
	var sec section
	var names []string
	var batch [][]any
	var h *tableHash
	var info store.TableInfo
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		err := l.Upsert(ctx, sec.Table, names, batch)
		batch = batch[:0]
		return err
	}
	width := 0
	for {
		if err := sr.next(width, &ev); err != nil {
			return err
		}
		switch ev.Op {
		case 'T':
			if width != 0 {
				return fmt.Errorf("%w: a section inside a section", errStream)
			}
			sec = ev.Sec
			width = len(sec.Columns)
			names = names[:0]
			for _, c := range sec.Columns {
				if slices.Contains(names, c.Name) {
					return fmt.Errorf("%w: column %s of %s named twice", errStream, c.Name, sec.Table)
				}
				names = append(names, c.Name)
			}
			t, err := l.Table(sec.Table)
			if err != nil {
				return err
			}
			if sec.Kind == sectionDeletes && !slices.Equal(names, t.Key) {
				return fmt.Errorf("%w: the deletions of %s are not keyed by %v", errStream, sec.Table, t.Key)
			}
			info = t
			label := "row"
			if sec.Kind == sectionDeletes {
				label = "key"
			}
			h = newTableHash(label, sec.Table, sec.Columns)
		case 'C':
			if width == 0 {
				return fmt.Errorf("%w: clear outside a section", errStream)
			}
			if err := l.Clear(ctx, sec.Table); err != nil {
				return err
			}
		case 'G':
			if sec.Kind != sectionRows {
				return fmt.Errorf("%w: a group outside a rows section", errStream)
			}
			if err := flush(); err != nil {
				return err
			}
			if err := l.ClearGroup(ctx, sec.Table, ev.Values[0]); err != nil {
				return err
			}
		case 'X':
			if width == 0 {
				return fmt.Errorf("%w: trim outside a section", errStream)
			}
			if err := l.Trim(ctx, sec.Table, ev.Seq); err != nil {
				return err
			}
		case 'r':
			if err := h.add(ev.Values); err != nil {
				return err
			}
			vals := append([]any(nil), ev.Values...)
			if sec.Kind == sectionDeletes {
				if err := l.Delete(ctx, sec.Table, vals); err != nil {
					return err
				}
				if ck != nil {
					ck.deleted(sec.Table, vals)
				}
				continue
			}
			if ck != nil {
				ck.upserted(sec.Table, keyOf(info, sec.Columns, vals))
			}
			batch = append(batch, vals)
			if len(batch) >= 512 {
				if err := flush(); err != nil {
					return err
				}
			}
		case 'E':
			if width == 0 {
				return fmt.Errorf("%w: a section end outside a section", errStream)
			}
			if err := flush(); err != nil {
				return err
			}
			if ck != nil {
				ck.sectionHash(sec, h.hex())
			}
			width = 0
		case 'Z':
			if width != 0 {
				return fmt.Errorf("%w: it ends inside a section", errStream)
			}
			if _, err := r.Read(make([]byte, 1)); err != io.EOF {
				return fmt.Errorf("%w: data after its end", errStream)
			}
			return nil
		}
	}
}

// checker compares a restored database with the manifest of the backup
// its chain ends at: for a full backup (and for tables copied whole) every
// table's row count and content hash; otherwise the content hash of the
// rows and deletions this backup carried, read back from the restored
// database.
type checker struct {
	m      Manifest
	hashes map[string]string // section hashes seen in the stream
	dels   map[string]string
	keys   map[string][][]any // upserted keys per table (incremental; keys only, never whole rows)
	gone   map[string][][]any // deleted keys per table
}

func newChecker(m Manifest) *checker {
	return &checker{m: m, hashes: map[string]string{}, dels: map[string]string{}, keys: map[string][][]any{}, gone: map[string][][]any{}}
}

func (c *checker) sectionHash(sec section, h string) {
	if sec.Kind == sectionDeletes {
		c.dels[sec.Table] = h
		return
	}
	c.hashes[sec.Table] = h
}

func (c *checker) upserted(table string, key []any) {
	if c.m.Kind == Full {
		return
	}
	c.keys[table] = append(c.keys[table], key)
}

func (c *checker) deleted(table string, key []any) { c.gone[table] = append(c.gone[table], key) }

// ErrMismatch is returned when a restored database does not match its
// backup's manifest.
var ErrMismatch = errors.New("the restored data does not match the backup's manifest")

func (c *checker) verify(ctx context.Context, s *store.Snap) error {
	names := make([]string, 0, len(c.m.Tables))
	for n := range c.m.Tables {
		names = append(names, n)
	}
	sort.Strings(names)
	return func() error {
		tables := map[string]store.TableInfo{}
		for _, t := range s.Tables() {
			tables[t.Name] = t
		}
		for _, name := range names {
			st := c.m.Tables[name]
			t, ok := tables[name]
			if !ok {
				return fmt.Errorf("%w: table %s is missing", ErrMismatch, name)
			}
			if got := c.hashes[name]; got != st.Hash {
				return fmt.Errorf("%w: the %s rows read back hash to %s, the manifest says %s", ErrMismatch, name, short(got), short(st.Hash))
			}
			if got := c.dels[name]; st.Deleted > 0 && got != st.DeletedHash {
				return fmt.Errorf("%w: the %s deletions hash to %s, the manifest says %s", ErrMismatch, name, short(got), short(st.DeletedHash))
			}
			if c.m.Kind == Full || t.Mode == store.Copied {
				n, err := s.Count(ctx, t)
				if err != nil {
					return err
				}
				if n != st.Total {
					return fmt.Errorf("%w: table %s has %d rows, the manifest says %d", ErrMismatch, name, n, st.Total)
				}
			}
			h := newTableHash("row", name, t.Columns)
			if c.m.Kind == Full || t.Mode == store.Copied {
				if err := s.Scan(ctx, t, h.add); err != nil {
					return err
				}
			} else {
				for _, key := range c.keys[name] {
					row, found, err := s.Lookup(ctx, t, key)
					if err != nil {
						return err
					}
					if !found {
						return fmt.Errorf("%w: a row of %s is missing", ErrMismatch, name)
					}
					if err := h.add(row); err != nil {
						return err
					}
				}
				for _, key := range c.gone[name] {
					if _, found, err := s.Lookup(ctx, t, key); err != nil {
						return err
					} else if found {
						return fmt.Errorf("%w: a row of %s that the backup deletes is there", ErrMismatch, name)
					}
				}
			}
			if got := h.hex(); got != st.Hash {
				return fmt.Errorf("%w: table %s hashes to %s, the manifest says %s", ErrMismatch, name, short(got), short(st.Hash))
			}
		}
		return nil
	}()
}

// keyOf picks a table's key values out of a row laid out as cols.
func keyOf(t store.TableInfo, cols []store.Column, vals []any) []any {
	key := make([]any, len(t.Key))
	for i, k := range t.Key {
		for j, c := range cols {
			if c.Name == k {
				key[i] = vals[j]
			}
		}
	}
	return key
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	if h == "" {
		return "(nothing)"
	}
	return h
}

// chunkOverhead bounds what sealing adds to a chunk (the GCM tag).
const chunkOverhead = 1024
