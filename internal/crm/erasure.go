package crm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// ErrErased refuses to erase a customer that was erased before. It wraps
// ErrNotFound: the customer is gone either way.
var ErrErased = fmt.Errorf("%w: the customer was already erased", ErrNotFound)

// Erasure is one entry of the erasure ledger: which customer, and when.
type Erasure struct {
	CustomerID string    `json:"customer_id"`
	ErasedAt   time.Time `json:"erased_at"`
}

// EraseCustomer erases a customer for good (crypto-shredding): its record,
// contacts, interactions, shares and search terms are deleted, every
// version of its data key is destroyed, and the erasure is entered in the
// ledger (ids and times only) that restores replay. The audit trail keeps
// its events, chain intact; the personal values they hold were sealed under
// the destroyed key and no longer open anywhere, backups included.
//
// It needs the erase permission, a recent authentication in a browser
// session, and full access to the customer (the owner, a superior or
// see-all; a hidden customer needs view_hidden). A soft-deleted customer can
// be erased. A customer erased before is ErrErased, and nothing changes.
// Approved export files that hold the customer are expired with it.
func (s *Service) EraseCustomer(ctx context.Context, p access.Principal, id string) error {
	const action = "customer.erase"
	if err := access.Require(p, access.Erase); err != nil {
		return s.deny(ctx, p, action, "customer", id, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return s.deny(ctx, p, action, "customer", id, err)
	}
	if !validID(id) {
		return invalid("id", "not a customer id")
	}
	now := s.now().UTC()
	var versions uint32
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		c, err := tx.LockErasureCandidate(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			// Gone: erased before (perhaps by a concurrent erasure this
			// one waited for), or never there.
			if _, lerr := tx.GetErasure(ctx, id); lerr == nil {
				return ErrErased
			} else if !errors.Is(lerr, store.ErrNotFound) {
				return lerr
			}
			return err
		}
		if err != nil {
			return err
		}
		if err := s.canErase(ctx, tx, p, c, now); err != nil {
			return err
		}
		expired, err := s.expireExportsOf(ctx, tx, p, id, now)
		if err != nil {
			return err
		}
		if err := tx.EraseCustomerRows(ctx, store.Erasure{CustomerID: id, ErasedAt: now, ErasedBy: p.Actor}); err != nil {
			return err
		}
		versions = c.KeyVersion
		// Ids, versions and counts only: nothing personal.
		ev := event(p, action, "customer", id)
		ev.Details = map[string]any{"was_deleted": c.Deleted, "key_versions": c.KeyVersion, "exports_expired": expired}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	switch {
	case errors.Is(err, ErrErased):
		ev := event(p, action, "customer", id)
		ev.Outcome, ev.Reason = audit.Denied, "already erased"
		if aerr := audit.RecordAlone(ctx, s.db, s.now(), ev); aerr != nil {
			return aerr
		}
		return ErrErased
	case errors.Is(err, store.ErrNotFound):
		return s.deny(ctx, p, action, "customer", id, ErrNotFound)
	case errors.Is(err, access.ErrDenied):
		return s.deny(ctx, p, action, "customer", id, err)
	case err != nil:
		return mapStoreErr(err)
	}
	// The destroyed key must not live on in this node's cache.
	for v := uint32(1); v <= versions; v++ {
		s.keys.Forget(id, v)
	}
	return nil
}

// canErase checks that p reaches customer c fully: visible to p (hidden
// ones only with view_hidden) and its owner, a superior of the owner, or
// see-all. A customer p cannot see at all is store.ErrNotFound.
func (s *Service) canErase(ctx context.Context, tx *store.Tx, p access.Principal, c store.ErasureCandidate, now time.Time) error {
	if c.Hidden && !p.Can(access.ViewHidden) {
		return store.ErrNotFound
	}
	rel := access.RelationTo(p, c.OwnerID, c.OwnerRole, "")
	if rel != access.RelFull {
		level, err := shareLevel(ctx, tx, p, c.ID, now)
		if err != nil {
			return err
		}
		rel = access.RelationTo(p, c.OwnerID, c.OwnerRole, level)
	}
	if rel == access.RelNone {
		return store.ErrNotFound
	}
	return needRelation(rel, access.RelFull, "erasing")
}

// expireExportsOf expires the approved export files that hold customer id
// (their production's page events name it) and returns their request ids.
// The files are age ciphertext under keys Custos does not keep: they
// cannot be edited, only deleted.
func (s *Service) expireExportsOf(ctx context.Context, tx *store.Tx, p access.Principal, id string, now time.Time) ([]string, error) {
	q := store.AuditQuery{Scope: store.AuditScope{All: true}, CustomerID: id, Action: "customer.export.page", Limit: 1000}
	requests := map[string]bool{}
	for {
		evs, err := tx.QueryAudit(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, ev := range evs {
			var d struct {
				Request string `json:"request"`
			}
			if json.Unmarshal([]byte(ev.Details), &d) == nil && validID(d.Request) {
				requests[d.Request] = true
			}
		}
		if len(evs) < q.Limit {
			break
		}
		q.BeforeSeq = evs[len(evs)-1].Seq
	}
	expired := []string{}
	for rid := range requests {
		err := tx.ExpireExport(ctx, rid)
		if errors.Is(err, store.ErrNotFound) {
			continue // not approved (any more): no file
		}
		if err != nil {
			return nil, err
		}
		ev := event(p, "export.expire", "export", rid)
		ev.Details = map[string]any{"cause": "customer.erase"}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return nil, err
		}
		expired = append(expired, rid)
	}
	slices.Sort(expired)
	return expired, nil
}

// ErasureLedger lists the erasures, oldest first: customer ids and times
// only. It needs the erase or the read_audit permission; the listing is an
// audit event.
func (s *Service) ErasureLedger(ctx context.Context, p access.Principal) ([]Erasure, error) {
	const action = "erasure.ledger"
	if !p.Can(access.Erase) && !p.Can(access.ReadAudit) {
		return nil, s.deny(ctx, p, action, "erasure", "", fmt.Errorf("%w: role %q lacks %q or %q", access.ErrDenied, p.Role, access.Erase, access.ReadAudit))
	}
	var rows []store.Erasure
	if err := s.db.Read(ctx, func(tx *store.Tx) (err error) { rows, err = tx.ErasureLedger(ctx); return }); err != nil {
		return nil, err
	}
	out := make([]Erasure, len(rows))
	for i, r := range rows {
		out[i] = Erasure{CustomerID: r.CustomerID, ErasedAt: r.ErasedAt}
	}
	ev := event(p, action, "erasure", "")
	ev.Details = map[string]any{"count": len(out)}
	if err := audit.RecordAlone(ctx, s.db, s.now(), ev); err != nil {
		return nil, err
	}
	return out, nil
}
