package backup

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"sort"
	"strings"
	"time"
)

// Kind is the kind of a backup.
type Kind string

// The kinds of backup.
const (
	Full         Kind = "full"
	Incremental  Kind = "incremental"
	Differential Kind = "differential"
)

// ParseKind reads a kind name.
func ParseKind(s string) (Kind, error) {
	switch Kind(s) {
	case Full, Incremental, Differential:
		return Kind(s), nil
	}
	return "", fmt.Errorf("unknown backup kind %q (full, incremental or differential)", s)
}

const (
	formatV1 = "custos-backup/1"
	// root is the prefix of backups' objects, under the destination's own
	// custos-backups/ (see OpenDestination).
	root         = ""
	manifestName = "manifest.json"
	ledgerDir    = "ledger/"

	// Limits on objects read before they are authenticated.
	maxManifestSize = 64 << 20
	maxLedgerSize   = 256 << 20
)

// KeyInfo names the backup key of a backup and carries it wrapped by the
// root key, so the root key alone (or the recovery kit) opens it.
type KeyInfo struct {
	ID      string `json:"id"`
	Version uint32 `json:"version"`
	RootID  string `json:"root_id"`
	Wrapped []byte `json:"wrapped"`
}

// TableStat is what a backup holds of one table.
type TableStat struct {
	Mode string `json:"mode"`
	// Rows is the number of row records in this backup (for a full
	// backup, every row of the table), Hash their content hash.
	Rows int64  `json:"rows"`
	Hash string `json:"hash"`
	// Deleted is the number of keys this backup deletes, DeletedHash
	// their hash.
	Deleted     int64  `json:"deleted,omitempty"`
	DeletedHash string `json:"deleted_hash,omitempty"`
	// Groups is the number of groups (customers' blind-index terms) this
	// backup replaces whole.
	Groups int64 `json:"groups,omitempty"`
	// Total is the number of rows the table had at the snapshot (full
	// backups and copied tables; counting every table would cost an
	// incremental a scan of the whole database).
	Total int64 `json:"total,omitempty"`
	// High is an appended table's high-water mark at the snapshot, Trim
	// its prune mark.
	High int64 `json:"high,omitempty"`
	Trim int64 `json:"trim,omitempty"`
}

// Manifest describes one backup. It is stored, signed with the backup
// key, as the last object of the backup: a backup without a manifest is
// incomplete and never listed as a restore point.
type Manifest struct {
	Format        string    `json:"format"`
	ID            string    `json:"id"`
	Kind          Kind      `json:"kind"`
	CreatedAt     time.Time `json:"created_at"`
	Instance      string    `json:"instance"`
	Engine        string    `json:"engine"`
	SchemaVersion int       `json:"schema_version"`
	// Base is the backup this one applies on top of (none for a full),
	// BaseSHA256 the hash of the base's manifest object: a chain whose
	// link was swapped or replaced is detected.
	Base       string `json:"base,omitempty"`
	BaseSHA256 string `json:"base_sha256,omitempty"`
	// Full is the full backup at the root of the chain.
	Full     string `json:"full"`
	Position string `json:"position"`

	Key         KeyInfo              `json:"key"`
	Salt        []byte               `json:"salt"`
	Compression string               `json:"compression"`
	Cipher      string               `json:"cipher"`
	ChunkSize   int                  `json:"chunk_size"`
	Chunks      []ChunkInfo          `json:"chunks"`
	StreamBytes int64                `json:"stream_bytes"`
	StoredBytes int64                `json:"stored_bytes"`
	Tables      map[string]TableStat `json:"tables"`
	// Erasures is the size of the erasure ledger at the snapshot.
	Erasures int `json:"erasures"`
}

func (m *Manifest) sealing(k Key) Sealing { return Sealing{Key: k, BackupID: m.ID, Salt: m.Salt} }

func objectName(id, name string) string { return root + id + "/" + name }

// newID returns a backup id: the UTC time (so ids sort by time) and the
// kind, with a random suffix.
func newID(now time.Time, kind Kind) (string, error) {
	var r [3]byte
	if _, err := rand.Read(r[:]); err != nil {
		return "", err
	}
	return now.UTC().Format("20060102T150405Z") + "-" + string(kind) + "-" + hex.EncodeToString(r[:]), nil
}

// validID reports whether s looks like a backup id (it becomes part of
// object names).
func validID(s string) bool {
	if len(s) < 20 || len(s) > 64 || strings.ContainsAny(s, "/\\. ") {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '-') {
			return false
		}
	}
	return true
}

// KeySource opens the backup key of a manifest: from the root key, or
// from a recovery kit.
type KeySource func(ctx context.Context, k KeyInfo) (Key, error)

// stored is a manifest read from a destination.
type stored struct {
	M      Manifest
	SHA256 string // of the manifest object
}

// ErrNoBackup is returned when a backup does not exist (or is incomplete).
var ErrNoBackup = errors.New("no such backup")

// readManifest fetches, authenticates and decodes the manifest of id.
func readManifest(ctx context.Context, d *Destination, id string, keyOf KeySource) (stored, Key, error) {
	data, err := d.GetMax(ctx, objectName(id, manifestName), maxManifestSize)
	if errors.Is(err, ErrObjectMissing) {
		return stored{}, Key{}, fmt.Errorf("%w: %s has no complete backup %s", ErrNoBackup, d, id)
	}
	if err != nil {
		return stored{}, Key{}, err
	}
	env, err := ParseEnvelope(data)
	if err != nil {
		return stored{}, Key{}, fmt.Errorf("backup %s: %w", id, err)
	}
	var m Manifest
	if err := json.Unmarshal(env.Manifest, &m); err != nil {
		return stored{}, Key{}, fmt.Errorf("backup %s: the manifest is not readable: %v", id, err)
	}
	if m.Format != formatV1 {
		return stored{}, Key{}, fmt.Errorf("backup %s has format %q; this Custos reads %s", id, m.Format, formatV1)
	}
	if m.ID != id {
		return stored{}, Key{}, fmt.Errorf("backup %s: its manifest names backup %q (a manifest was moved)", id, m.ID)
	}
	k, err := keyOf(ctx, m.Key)
	if err != nil {
		return stored{}, Key{}, fmt.Errorf("backup %s: %w", id, err)
	}
	if err := env.Verify(k); err != nil {
		return stored{}, Key{}, fmt.Errorf("backup %s: %w", id, err)
	}
	sum := sha256.Sum256(data)
	return stored{M: m, SHA256: hex.EncodeToString(sum[:])}, k, nil
}

// writeManifest signs and stores m at every destination (last, after
// every chunk), returning the object's hash.
func writeManifest(ctx context.Context, dests []*Destination, k Key, m *Manifest) (string, error) {
	raw, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	data, err := SealManifest(k, raw)
	if err != nil {
		return "", err
	}
	for _, d := range dests {
		if err := d.Put(ctx, objectName(m.ID, manifestName), data); err != nil {
			return "", fmt.Errorf("write the manifest of %s to %s: %w", m.ID, d, err)
		}
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:]), nil
}

// Entry is a backup found at a destination.
type Entry struct {
	ID        string    `json:"id"`
	Kind      Kind      `json:"kind,omitempty"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Base      string    `json:"base,omitempty"`
	Full      string    `json:"full,omitempty"`
	Instance  string    `json:"instance,omitempty"`
	Bytes     int64     `json:"stored_bytes,omitempty"`
	Chunks    int       `json:"chunks,omitempty"`
	// Complete is false for a backup whose manifest is missing (being
	// written, or interrupted); Error says why a manifest did not verify.
	Complete bool   `json:"complete"`
	Error    string `json:"error,omitempty"`
}

// List returns the backups at a destination, oldest first, with their
// manifests verified.
func List(ctx context.Context, d *Destination, keyOf KeySource) ([]Entry, error) {
	ids, err := d.ListDirs(ctx, root)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, name := range ids {
		id := path.Base(name)
		if id == "ledger" || !validID(id) {
			continue
		}
		e := Entry{ID: id}
		s, _, err := readManifest(ctx, d, id, keyOf)
		switch {
		case errors.Is(err, ErrNoBackup):
		case err != nil:
			e.Error = err.Error()
		default:
			m := s.M
			e.Kind, e.CreatedAt, e.Base, e.Full, e.Instance, e.Bytes, e.Chunks, e.Complete = m.Kind, m.CreatedAt, m.Base, m.Full, m.Instance, m.StoredBytes, len(m.Chunks), true
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// ReadManifest returns the verified manifest of a backup.
func ReadManifest(ctx context.Context, d *Destination, id string, keyOf KeySource) (Manifest, error) {
	if !validID(id) {
		return Manifest{}, fmt.Errorf("%q is not a backup id", id)
	}
	s, _, err := readManifest(ctx, d, id, keyOf)
	return s.M, err
}
