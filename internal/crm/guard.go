package crm

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

// ErrSuspended refuses reads of a user suspended by the bulk-viewing guard.
// It wraps access.ErrDenied (HTTP 403).
var ErrSuspended = fmt.Errorf("%w: %w", access.ErrDenied, monitor.ErrSuspended)

// recordRead records ev, a read by p that showed customers, in one
// transaction with the bulk-viewing guard (step 6 of the guarded path):
// the guard counts the distinct customers p saw within the hour, alerts at
// the first threshold and, at the second, suspends p and refuses this read.
// A refused read is on record as denied and returns ErrSuspended: the
// caller must not hand out what it loaded.
func (s *Service) recordRead(ctx context.Context, p access.Principal, ev audit.Event, customers []string) error {
	now := s.now().UTC()
	if s.unguarded {
		return audit.RecordAlone(ctx, s.db, now, ev)
	}
	refused := false
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		v, err := monitor.ObserveViews(ctx, tx, now, vals, p.UserID, customers)
		if err != nil {
			return err
		}
		e := ev
		if refused = v.Refused(); refused {
			// Nothing was shown: the event names no customers.
			e.Outcome, e.Reason, e.Customers = audit.Denied, "suspended", nil
			e.Details = map[string]any{"distinct_customers": v.Distinct, "requested": len(customers)}
		}
		seq, err := audit.Record(ctx, tx, now, e)
		if err != nil {
			return err
		}
		return monitor.Act(ctx, tx, now, v, seq)
	})
	if err != nil {
		return err
	}
	if refused {
		return ErrSuspended
	}
	return nil
}

// recordReturned records that an update handed back the record it changed
// (or found unchanged) as a view of objType id, under the guard.
func (s *Service) recordReturned(ctx context.Context, p access.Principal, objType, id, customerID string) error {
	ev := event(p, objType+".view", objType, id)
	ev.Details = map[string]any{"via": "update"}
	if objType != "customer" {
		ev.Details["customer_id"] = customerID
	}
	ev.Customers = []string{customerID}
	return s.recordRead(ctx, p, ev, []string{customerID})
}
