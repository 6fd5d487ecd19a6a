package crm

import (
	"context"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/store"
)

// FollowUp is a customer of the viewer's whose latest interaction asks for
// a follow-up on or before a day.
type FollowUp struct {
	Customer Customer    `json:"customer"`
	Last     Interaction `json:"last"`
	Due      string      `json:"due"`     // YYYY-MM-DD
	Overdue  bool        `json:"overdue"` // due before the day asked about
}

// FollowUps lists the principal's own customers whose latest interaction
// asks for a follow-up on or before day (YYYY-MM-DD, the company's today),
// the earliest due first, at most limit. Like a list, it is one audited
// read under the bulk-viewing guard.
func (s *Service) FollowUps(ctx context.Context, p access.Principal, day string, limit int) ([]FollowUp, error) {
	const action = "customer.follow_ups"
	if err := access.Require(p, access.Read); err != nil {
		return nil, s.deny(ctx, p, action, "customer", "", err)
	}
	if _, err := time.Parse(time.DateOnly, day); err != nil {
		return nil, invalid("day", "must be a date (YYYY-MM-DD)")
	}
	if limit <= 0 || limit > MaxPageSize {
		limit = DefaultPageSize
	}
	out := []FollowUp{}
	if p.UserID == "" {
		return out, nil // the command line owns no customers
	}
	plan := searchPlan{q: store.CustomerQuery{Scope: access.CustomerScope(p, s.now())}}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		refs, err := tx.DueFollowUps(ctx, plan.q.Scope, p.UserID, day, limit)
		if err != nil {
			return err
		}
		rows := make([]store.Customer, 0, len(refs))
		its := make(map[string]store.Interaction, len(refs))
		for _, ref := range refs {
			c, err := tx.GetCustomer(ctx, plan.q.Scope, ref.CustomerID)
			if err != nil {
				return err
			}
			it, err := tx.GetInteraction(ctx, plan.q.Scope, ref.InteractionID)
			if err != nil {
				return err
			}
			rows, its[c.ID] = append(rows, c), it
		}
		byID := make(map[string]store.Customer, len(rows))
		for _, r := range rows {
			byID[r.ID] = r
		}
		custs, err := s.openPage(ctx, tx, p, plan, rows)
		if err != nil {
			return err
		}
		for _, c := range custs {
			it, err := s.openInteraction(ctx, tx, its[c.ID])
			if err != nil {
				return err
			}
			r := byID[c.ID]
			rel := access.RelationTo(p, r.OwnerID, r.OwnerRole, "") // p's own customer: no share needed
			out = append(out, FollowUp{Customer: c, Last: viewInteraction(p, rel, it), Due: it.NextFollowUp, Overdue: it.NextFollowUp < day})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(out))
	for i, f := range out {
		ids[i] = f.Customer.ID
	}
	ev := event(p, action, "customer", "")
	ev.Details = map[string]any{"ids": ids, "count": len(ids), "day": day}
	ev.Customers = ids
	if err := s.recordRead(ctx, p, ev, ids); err != nil {
		return nil, err
	}
	return out, nil
}
