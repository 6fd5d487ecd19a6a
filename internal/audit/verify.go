package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"sort"

	"github.com/custos/custos/internal/audit/chain"
	"github.com/custos/custos/internal/store"
)

// Kind names what verification found wrong.
type Kind string

// Kinds of tampering.
const (
	// Modified: an event's content no longer matches its hash, or the chain
	// was rewritten so that it no longer matches a signed checkpoint.
	Modified Kind = "modified"
	// Deleted: events are missing from the middle of the chain.
	Deleted Kind = "deleted"
	// Inserted: an event that the chain does not account for.
	Inserted Kind = "inserted"
	// Reordered: events are out of their chain order.
	Reordered Kind = "reordered"
	// Truncated: events at the end that a checkpoint (or the chain head)
	// vouches for are gone.
	Truncated Kind = "truncated"
	// BadCheckpoint: a checkpoint whose signature does not verify.
	BadCheckpoint Kind = "bad_checkpoint"
)

// Problem is the first sign of tampering.
type Problem struct {
	Seq    int64  `json:"seq"`
	Kind   Kind   `json:"kind"`
	Detail string `json:"detail"`
}

func (p Problem) String() string { return fmt.Sprintf("seq %d: %s: %s", p.Seq, p.Kind, p.Detail) }

// VerifyOptions tune Verify.
type VerifyOptions struct {
	// From starts at this sequence number (0: the start of the trail),
	// trusting the stored hash of the event before it (or Anchor).
	From int64
	// Anchor is the known hash of event From-1 (optional).
	Anchor []byte
	// Checkpoints to check the chain against, and the keys trusted to sign
	// them. Without checkpoints a cut tail cannot be told from a short trail.
	Checkpoints []Checkpoint
	Trusted     []ed25519.PublicKey
	// Reload, if set, reads the checkpoints again when a prune committed
	// during the walk (its signed checkpoint is newer than Checkpoints).
	Reload func(context.Context) ([]Checkpoint, error)
	// PageSize of reads (default 5000).
	PageSize int
	// Progress, if set, is called after each page with the last seq read.
	Progress func(seq int64)
}

// Report is the outcome of Verify. Problem is nil when the trail is intact.
type Report struct {
	Events      int64           `json:"events"`
	First       int64           `json:"first_seq"`
	Last        int64           `json:"last_seq"`
	LastHash    string          `json:"last_hash"`
	Checkpoints int             `json:"checkpoints_checked"`
	Warnings    []string        `json:"warnings,omitempty"`
	Problem     *Problem        `json:"problem,omitempty"`
	Head        store.AuditHead `json:"-"`
}

// OK reports an intact trail.
func (r Report) OK() bool { return r.Problem == nil }

// Verify recomputes the chain from From to the end and checks it against
// the signed checkpoints. It stops at the first problem and names its
// sequence number and kind. The error is for failures to read, never for
// tampering.
func Verify(ctx context.Context, db *store.DB, o VerifyOptions) (Report, error) {
	var rep Report
	if o.PageSize <= 0 {
		o.PageSize = 5000
	}
	var head store.AuditHead
	var minSeq int64
	err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		if head, err = tx.AuditHead(ctx); err != nil {
			return err
		}
		minSeq, err = tx.MinAuditSeq(ctx)
		return err
	})
	if errors.Is(err, store.ErrNoChainHead) {
		rep.Problem = &Problem{Seq: 1, Kind: Deleted, Detail: "the chain head row (audit_head) is missing"}
		return rep, nil
	}
	if err != nil {
		return rep, err
	}
	rep.Head = head
	if minSeq != 0 && minSeq <= head.BaseSeq {
		rep.Problem = &Problem{Seq: minSeq, Kind: Inserted, Detail: fmt.Sprintf("event %d lies at or below the start of the trail (%d)", minSeq, head.BaseSeq)}
		return rep, nil
	}

	// Checkpoints: signatures first, then keep those this run can check.
	cps := map[int64][]Checkpoint{}
	var cpSeqs []int64
	for _, cp := range o.Checkpoints {
		if err := cp.Check(o.Trusted); err != nil {
			rep.Problem = &Problem{Seq: cp.Seq, Kind: BadCheckpoint, Detail: err.Error()}
			return rep, nil
		}
		if cp.Seq <= head.BaseSeq {
			continue // covered by an archive
		}
		if _, seen := cps[cp.Seq]; !seen {
			cpSeqs = append(cpSeqs, cp.Seq)
		}
		cps[cp.Seq] = append(cps[cp.Seq], cp)
	}
	sort.Slice(cpSeqs, func(i, j int) bool { return cpSeqs[i] < cpSeqs[j] })
	if len(o.Checkpoints) == 0 && head.Seq > 0 {
		rep.Warnings = append(rep.Warnings, "no signed checkpoints: a cut tail cannot be detected beyond the chain head row")
	}

	expected, prev := head.BaseSeq+1, head.BaseHash
	if o.From > expected {
		expected = o.From
		prev = o.Anchor
		if prev == nil {
			if err := db.Read(ctx, func(tx *store.Tx) error {
				evs, err := tx.AuditEvents(ctx, o.From-2, 1)
				if err != nil {
					return err
				}
				if len(evs) == 0 || evs[0].Seq != o.From-1 {
					return errNoAnchor
				}
				prev = evs[0].Hash
				return nil
			}); errors.Is(err, errNoAnchor) {
				rep.Problem = &Problem{Seq: o.From - 1, Kind: Deleted, Detail: fmt.Sprintf("event %d, where verification was asked to start, is missing", o.From-1)}
				return rep, nil
			} else if err != nil {
				return rep, err
			}
		}
	}
	rep.First = expected
	lastCp := head.BaseSeq // the last checkpoint passed (or the prune mark)
	prunes := map[int64]string{}
	w := walker{db: db, page: o.PageSize, after: expected - 1}
	var h chain.Hasher
	fail := func(seq int64, k Kind, format string, args ...any) (Report, error) {
		rep.Problem = &Problem{Seq: seq, Kind: k, Detail: fmt.Sprintf(format, args...)}
		return rep, nil
	}
	for {
		r, err := w.next(ctx)
		if err != nil {
			return rep, err
		}
		if r == nil {
			// The end, as of one snapshot of the head and the last row;
			// events appended while walking are walked too.
			var maxSeq int64
			if err := db.Read(ctx, func(tx *store.Tx) error {
				var err error
				if head, err = tx.AuditHead(ctx); err != nil {
					return err
				}
				maxSeq, err = tx.MaxAuditSeq(ctx)
				return err
			}); err != nil {
				return rep, err
			}
			if maxSeq > expected-1 && maxSeq == head.Seq {
				w.done = false
				continue
			}
			break
		}
		if r.Seq > expected {
			// A prune that committed while we walked moves the start of
			// the trail past the gap: start again from the new start.
			var now store.AuditHead
			if err := db.Read(ctx, func(tx *store.Tx) error {
				var err error
				now, err = tx.AuditHead(ctx)
				return err
			}); err != nil {
				return rep, err
			}
			if now.BaseSeq > head.BaseSeq && now.BaseSeq >= expected && (o.From <= head.BaseSeq+1) {
				if o.Reload != nil {
					o.Checkpoints, err = o.Reload(ctx)
					if err != nil {
						return rep, err
					}
				}
				return Verify(ctx, db, o)
			}
			if expected == head.BaseSeq+1 && head.BaseSeq > 0 && rep.Events == 0 {
				return fail(expected, Deleted, "events %d to %d are missing after the archived part of the trail", expected, r.Seq-1)
			}
			if r.Seq == expected+1 {
				return fail(expected, Deleted, "event %d is missing", expected)
			}
			return fail(expected, Deleted, "events %d to %d are missing", expected, r.Seq-1)
		}
		next, err := w.peek(ctx)
		if err != nil {
			return rep, err
		}
		switch {
		case !bytes.Equal(r.PrevHash, prev):
			k, at, detail, err := brokenLink(ctx, db, r, prev, next)
			if err != nil {
				return rep, err
			}
			return fail(at, k, "%s", detail)
		case next != nil && next.Seq == r.Seq+1 && bytes.Equal(next.PrevHash, prev):
			return fail(r.Seq, Inserted, "event %d is not part of the chain: event %d links to the event before it", r.Seq, next.Seq)
		case !bytes.Equal(h.Hash(r.PrevHash, r.Seq, store.Micros(r.At), r.Fields()), r.Hash):
			return fail(r.Seq, Modified, "the content of event %d does not match its hash", r.Seq)
		}
		for _, cp := range cps[r.Seq] {
			rep.Checkpoints++
			if cp.Hash != hex.EncodeToString(r.Hash) {
				return fail(lastCp+1, Modified, "the chain was rewritten between events %d and %d: event %d no longer matches the checkpoint signed at %s",
					lastCp+1, r.Seq, r.Seq, cp.At.Format("2006-01-02 15:04:05Z07:00"))
			}
		}
		if len(cps[r.Seq]) > 0 {
			lastCp = r.Seq
		}
		if r.Action == "audit.prune" {
			var d struct {
				Through int64  `json:"through_seq"`
				Hash    string `json:"through_hash"`
			}
			if json.Unmarshal([]byte(r.Details), &d) == nil {
				prunes[d.Through] = d.Hash
			}
		}
		rep.Events++
		rep.Last, rep.LastHash = r.Seq, hex.EncodeToString(r.Hash)
		prev, expected = r.Hash, r.Seq+1
		if o.Progress != nil && rep.Events%int64(o.PageSize) == 0 {
			o.Progress(r.Seq)
		}
	}
	// The end: checkpoints and the head row vouch for the last event.
	if n := len(cpSeqs); n > 0 && cpSeqs[n-1] > rep.Last && cpSeqs[n-1] >= expected {
		return fail(expected, Truncated, "the trail ends at event %d but a checkpoint vouches for event %d", expected-1, cpSeqs[n-1])
	}
	switch {
	case head.Seq > expected-1:
		return fail(expected, Truncated, "the trail ends at event %d but its head records event %d", expected-1, head.Seq)
	case head.Seq < expected-1:
		return fail(head.Seq+1, Inserted, "events after %d were added outside the chain (the head records %d)", head.Seq, head.Seq)
	case head.Seq == expected-1 && head.Seq > head.BaseSeq && !bytes.Equal(head.Hash, prev):
		return fail(head.Seq, Modified, "the last event does not match the chain head")
	}
	// Pruned events must have left a record of their pruning, and a signed
	// checkpoint must vouch for the new start.
	if head.BaseSeq > 0 && rep.First == head.BaseSeq+1 {
		if hh, ok := prunes[head.BaseSeq]; !ok || hh != hex.EncodeToString(head.BaseHash) {
			return fail(1, Deleted, "events 1 to %d are gone without an audited prune", head.BaseSeq)
		}
		if len(o.Checkpoints) > 0 && !vouched(o.Checkpoints, o.Trusted, head.BaseSeq, head.BaseHash) {
			return fail(1, Deleted, "events 1 to %d are gone and no signed checkpoint vouches for their prune", head.BaseSeq)
		}
	}
	if o.Progress != nil {
		o.Progress(rep.Last)
	}
	return rep, nil
}

// brokenLink classifies an event whose previous-hash link does not match
// the event before it.
func brokenLink(ctx context.Context, db *store.DB, r *store.AuditEvent, prev []byte, next *store.AuditEvent) (Kind, int64, string, error) {
	var owners []store.AuditEvent
	if err := db.Read(ctx, func(tx *store.Tx) error {
		var err error
		owners, err = tx.AuditEventsByHash(ctx, r.PrevHash)
		return err
	}); err != nil {
		return "", 0, "", err
	}
	for _, o := range owners {
		if o.Seq > r.Seq {
			return Reordered, r.Seq, fmt.Sprintf("event %d follows event %d, which is stored after it", r.Seq, o.Seq), nil
		}
	}
	for _, o := range owners {
		if o.Seq < r.Seq-1 {
			return Inserted, o.Seq + 1, fmt.Sprintf("events %d to %d are not part of the chain: event %d links to event %d", o.Seq+1, r.Seq-1, r.Seq, o.Seq), nil
		}
	}
	if next != nil && bytes.Equal(next.PrevHash, prev) {
		return Inserted, r.Seq, fmt.Sprintf("event %d is not part of the chain: event %d links to the event before it", r.Seq, next.Seq), nil
	}
	if next == nil {
		return Inserted, r.Seq, fmt.Sprintf("the last event %d does not link to the chain", r.Seq), nil
	}
	return Modified, r.Seq - 1, fmt.Sprintf("event %d was changed and rehashed: event %d still links to its original hash", r.Seq-1, r.Seq), nil
}

// walker pages through events in sequence order with one event of lookahead.
type walker struct {
	db    *store.DB
	page  int
	after int64
	buf   []store.AuditEvent
	done  bool
}

func (w *walker) fill(ctx context.Context) error {
	if len(w.buf) > 0 || w.done {
		return nil
	}
	return w.db.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(ctx, w.after, w.page)
		if err != nil {
			return err
		}
		if len(evs) < w.page {
			w.done = true
		}
		if len(evs) > 0 {
			w.after = evs[len(evs)-1].Seq
		}
		w.buf = evs
		return nil
	})
}

func (w *walker) next(ctx context.Context) (*store.AuditEvent, error) {
	if err := w.fill(ctx); err != nil {
		return nil, err
	}
	if len(w.buf) == 0 {
		return nil, nil
	}
	r := w.buf[0]
	w.buf = w.buf[1:]
	return &r, nil
}

func (w *walker) peek(ctx context.Context) (*store.AuditEvent, error) {
	if err := w.fill(ctx); err != nil {
		return nil, err
	}
	if len(w.buf) == 0 {
		return nil, nil
	}
	return &w.buf[0], nil
}

var errNoAnchor = errors.New("no anchor")

// ErrTampered is returned by callers that turn a failed Report into an error.
var ErrTampered = errors.New("audit trail tampered")
