package crm

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/settings"
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
		vals, err := s.guardValues(ctx, tx, now)
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

// guardCache keeps the settings the guard reads for a second: every read
// goes through the guard, and the thresholds change rarely. A change made
// through this service applies at once; one made on another node within a
// second.
type guardCache struct {
	mu   sync.Mutex
	at   time.Time
	vals settings.Values
	ok   bool
}

func (s *Service) guardValues(ctx context.Context, tx *store.Tx, now time.Time) (settings.Values, error) {
	c := &s.guardCache
	c.mu.Lock()
	if c.ok && now.Sub(c.at) >= 0 && now.Sub(c.at) < time.Second {
		v := c.vals
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()
	vals, err := s.values(ctx, tx)
	if err != nil {
		return settings.Values{}, err
	}
	c.mu.Lock()
	c.vals, c.at, c.ok = vals, now, true
	c.mu.Unlock()
	return vals, nil
}

// forgetSettings drops the cached settings (after a change).
func (s *Service) forgetSettings() {
	s.guardCache.mu.Lock()
	s.guardCache.ok = false
	s.guardCache.mu.Unlock()
}
