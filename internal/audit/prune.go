package audit

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/store"
)

// archiveFormat names the archive file format.
const archiveFormat = "custos-audit-archive/1"

// archiveHeader is the first line of an archive.
type archiveHeader struct {
	Format    string    `json:"format"`
	FromSeq   int64     `json:"from_seq"`
	Through   int64     `json:"through_seq"`
	BaseHash  string    `json:"base_hash"` // hash of event FromSeq-1
	CreatedAt time.Time `json:"created_at"`
}

// archiveLine is every later line: an event or a checkpoint.
type archiveLine struct {
	Event      *Entry      `json:"event,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
}

// PruneOptions configure Prune.
type PruneOptions struct {
	Now           time.Time
	RetentionDays int // events older than this are pruned (at least MinRetentionDays)
	ArchiveDir    string
	Checkpointer  *Checkpointer
	Actor         string // who prunes ("system", "cli:<user>")
}

// PruneReport says what a prune did.
type PruneReport struct {
	Events  int64  `json:"events"`
	From    int64  `json:"from_seq"`
	Through int64  `json:"through_seq"`
	Archive string `json:"archive,omitempty"`
	SHA256  string `json:"archive_sha256,omitempty"`
}

// MinRetentionDays is the shortest retention Prune accepts.
const MinRetentionDays = 180

// Prune archives the events older than the retention period to a file (with
// the checkpoints that cover them, so the archive verifies on its own) and
// then deletes them, recording the prune as an event in the same
// transaction. It refuses to prune a trail that does not verify.
func Prune(ctx context.Context, db *store.DB, o PruneOptions) (PruneReport, error) {
	var rep PruneReport
	if o.RetentionDays < MinRetentionDays {
		return rep, fmt.Errorf("audit: retention of %d days is below the minimum of %d", o.RetentionDays, MinRetentionDays)
	}
	if o.Checkpointer == nil || o.ArchiveDir == "" {
		return rep, errors.New("audit: prune needs a checkpointer and an archive directory")
	}
	cutoff := o.Now.AddDate(0, 0, -o.RetentionDays)
	var head store.AuditHead
	var through int64
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if head, err = tx.AuditHead(ctx); err != nil {
			return err
		}
		through, err = tx.LastAuditBefore(ctx, cutoff)
		return err
	}); err != nil {
		return rep, err
	}
	if through <= head.BaseSeq {
		return rep, nil
	}
	cps, err := o.Checkpointer.Load(ctx)
	if err != nil {
		return rep, err
	}
	vr, err := Verify(ctx, db, VerifyOptions{Checkpoints: cps, Trusted: o.Checkpointer.Trusted(), Reload: o.Checkpointer.Load})
	if err != nil {
		return rep, err
	}
	if !vr.OK() {
		return rep, fmt.Errorf("%w: will not prune a trail that fails verification (%s)", ErrTampered, vr.Problem)
	}
	// The archive ends at a checkpoint of its own last event.
	var last store.AuditEvent
	if err := db.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(ctx, through-1, 1)
		if err != nil || len(evs) == 0 {
			return errors.Join(err, fmt.Errorf("audit: event %d vanished", through))
		}
		last = evs[0]
		return nil
	}); err != nil {
		return rep, err
	}
	// Signed: event `through` ends a trail that began after the old mark.
	endCp, err := o.Checkpointer.Write(ctx, through, last.Hash, head.BaseSeq, head.BaseHash)
	if err != nil {
		return rep, err
	}
	var covering []Checkpoint
	for _, cp := range append(cps, endCp) {
		if cp.Seq > head.BaseSeq && cp.Seq <= through {
			covering = append(covering, cp)
		}
	}
	name := fmt.Sprintf("audit-%012d-%012d.jsonl.gz", head.BaseSeq+1, through)
	path := filepath.Join(o.ArchiveDir, name)
	sum, n, err := writeArchive(ctx, db, path, archiveHeader{Format: archiveFormat, FromSeq: head.BaseSeq + 1, Through: through,
		BaseHash: hex.EncodeToString(head.BaseHash), CreatedAt: o.Now.UTC()}, covering)
	if err != nil {
		return rep, err
	}
	actor := o.Actor
	if actor == "" {
		actor = "system"
	}
	err = db.Write(ctx, func(tx *store.Tx) error {
		if _, err := Record(ctx, tx, o.Now, Event{Actor: actor, Action: "audit.prune", ObjectType: "audit", Outcome: OK,
			Details: map[string]any{"from_seq": head.BaseSeq + 1, "through_seq": through, "through_hash": hex.EncodeToString(last.Hash),
				"events": n, "archive": name, "archive_sha256": sum, "retention_days": o.RetentionDays}}); err != nil {
			return err
		}
		deleted, err := tx.PruneAudit(ctx, through, last.Hash)
		if err != nil {
			return err
		}
		if deleted != n {
			return fmt.Errorf("audit: archived %d events but %d would be deleted", n, deleted)
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	// Sign the new mark: the head, over a trail that now begins after
	// `through` (events appended since the verification are checked first).
	after, err := Verify(ctx, db, VerifyOptions{From: vr.Last + 1, Anchor: decodeHex(vr.LastHash)})
	if err != nil {
		return rep, err
	}
	if !after.OK() {
		return rep, &TamperError{Report: after}
	}
	if _, err := o.Checkpointer.Write(ctx, after.Head.Seq, after.Head.Hash, through, last.Hash); err != nil {
		return rep, err
	}
	return PruneReport{Events: n, From: head.BaseSeq + 1, Through: through, Archive: path, SHA256: sum}, nil
}

// writeArchive writes events (base, through] and their checkpoints to path
// (atomically: a temporary file synced and renamed) and returns the file's
// SHA-256 and the number of events.
func writeArchive(ctx context.Context, db *store.DB, path string, hdr archiveHeader, cps []Checkpoint) (string, int64, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", 0, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".archive-*")
	if err != nil {
		return "", 0, err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	zw := gzip.NewWriter(io.MultiWriter(tmp, h))
	bw := bufio.NewWriter(zw)
	enc := json.NewEncoder(bw)
	if err := enc.Encode(hdr); err != nil {
		return "", 0, err
	}
	var n int64
	after := hdr.FromSeq - 1
	for after < hdr.Through {
		var evs []store.AuditEvent
		if err := db.Read(ctx, func(tx *store.Tx) error {
			var err error
			evs, err = tx.AuditEvents(ctx, after, 5000)
			return err
		}); err != nil {
			_ = tmp.Close()
			return "", 0, err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			if e.Seq > hdr.Through {
				break
			}
			en := EntryOf(e)
			if err := enc.Encode(archiveLine{Event: &en}); err != nil {
				_ = tmp.Close()
				return "", 0, err
			}
			n++
			after = e.Seq
		}
		if evs[len(evs)-1].Seq > hdr.Through {
			break
		}
	}
	for i := range cps {
		if err := enc.Encode(archiveLine{Checkpoint: &cps[i]}); err != nil {
			_ = tmp.Close()
			return "", 0, err
		}
	}
	if err := errors.Join(bw.Flush(), zw.Close()); err != nil {
		_ = tmp.Close()
		return "", 0, err
	}
	if err := errors.Join(tmp.Sync(), tmp.Close()); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", 0, err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		_ = d.Close()
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// VerifyArchive checks an archive on its own: the chain from its base hash,
// and every checkpoint in it, the last of which must vouch for its end.
func VerifyArchive(path string, trusted []ed25519.PublicKey) (Report, error) {
	var rep Report
	f, err := os.Open(path)
	if err != nil {
		return rep, err
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return rep, fmt.Errorf("audit: archive %s: %w", path, err)
	}
	dec := json.NewDecoder(zr)
	var hdr archiveHeader
	if err := dec.Decode(&hdr); err != nil || hdr.Format != archiveFormat {
		return rep, fmt.Errorf("audit: %s is not a Custos audit archive", path)
	}
	prev, err := hex.DecodeString(hdr.BaseHash)
	if err != nil {
		return rep, fmt.Errorf("audit: archive base hash: %w", err)
	}
	fail := func(seq int64, k Kind, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Seq: seq, Kind: k, Detail: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	hashes := map[int64][]byte{}
	expected := hdr.FromSeq
	rep.First = expected
	var h chain.Hasher
	var cps []Checkpoint
	for {
		var l archiveLine
		if err := dec.Decode(&l); err == io.EOF {
			break
		} else if err != nil {
			return rep, fmt.Errorf("audit: archive %s: %w", path, err)
		}
		if l.Checkpoint != nil {
			cps = append(cps, *l.Checkpoint)
			continue
		}
		if l.Event == nil {
			continue
		}
		e, err := l.Event.Event()
		if err != nil {
			return rep, err
		}
		switch {
		case e.Seq > expected:
			return fail(expected, Deleted, "event %d is missing from the archive", expected)
		case e.Seq < expected:
			return fail(e.Seq, Reordered, "event %d is out of order in the archive", e.Seq)
		case !bytes.Equal(e.PrevHash, prev):
			return fail(e.Seq, Inserted, "event %d does not link to the event before it", e.Seq)
		case !bytes.Equal(h.Hash(prev, e.Seq, store.Micros(e.At), e.Fields()), e.Hash):
			return fail(e.Seq, Modified, "the content of event %d does not match its hash", e.Seq)
		}
		hashes[e.Seq] = e.Hash
		prev, expected = e.Hash, e.Seq+1
		rep.Events++
		rep.Last, rep.LastHash = e.Seq, hex.EncodeToString(e.Hash)
	}
	if rep.Last != hdr.Through {
		return fail(rep.Last+1, Truncated, "the archive ends at event %d but says it holds events up to %d", rep.Last, hdr.Through)
	}
	covered := false
	base := decodeHex(hdr.BaseHash)
	for _, cp := range cps {
		if err := cp.Check(trusted); err != nil {
			return fail(cp.Seq, BadCheckpoint, "%s", err.Error())
		}
		hh, ok := hashes[cp.Seq]
		if !ok {
			continue
		}
		rep.Checkpoints++
		if cp.Hash != hex.EncodeToString(hh) {
			return fail(cp.Seq, Modified, "event %d no longer matches its signed checkpoint", cp.Seq)
		}
		// The end is signed together with where the segment begins, so
		// cutting its beginning is caught too.
		covered = covered || cp.Seq == hdr.Through && cp.vouchesForBase(hdr.FromSeq-1, base)
	}
	if !covered {
		return fail(hdr.FromSeq, Deleted, "no signed checkpoint vouches for this archive running from event %d to %d", hdr.FromSeq, hdr.Through)
	}
	return rep, nil
}

func decodeHex(s string) []byte {
	b, _ := hex.DecodeString(s)
	return b
}
