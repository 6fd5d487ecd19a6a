package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// ErrQuota is a refusal because a daily quota is used up (HTTP 429).
var ErrQuota = errors.New("quota exhausted")

// Revealed is one field of one customer shown unmasked.
type Revealed struct {
	CustomerID string   `json:"customer_id"`
	Field      string   `json:"field"`
	Value      string   `json:"value"`            // the (first) value
	Values     []string `json:"values,omitempty"` // every value of a list field
	// Remaining is how many reveals the principal has left today.
	Remaining int `json:"remaining"`
}

// maxReason bounds the justification of a reveal or a grant.
const maxReason = 500

// day is the local calendar day of now for daily quotas.
func day(vals settings.Values, now time.Time) string {
	return now.In(vals.Location()).Format(time.DateOnly)
}

// actorKey identifies the principal in quota counters.
func actorKey(p access.Principal) string {
	if p.UserID != "" {
		return p.UserID
	}
	return p.Actor
}

// RevealField unmasks one masked field of one customer for p, with a reason.
// Every reveal is an audit event (the reason sealed under the customer's
// data key); past the role's daily quota reveals are refused and the first
// refusal raises an alert.
func (s *Service) RevealField(ctx context.Context, p access.Principal, id, field, reason string) (Revealed, error) {
	const action = "customer.reveal"
	if err := access.Require(p, access.Reveal); err != nil {
		return Revealed{}, s.deny(ctx, p, action, "customer", id, err)
	}
	var fe fieldErrs
	if !slices.Contains(access.Fields, field) || field == access.FieldTags {
		fe.addf("field", "must be one of name, phone, email, address, id_number, notes")
	}
	reason, err := normalize.Text(reason, maxReason)
	switch {
	case err != nil:
		fe.add("reason", err)
	case strings.TrimSpace(reason) == "":
		fe.addf("reason", "is required: say why you need to see the value")
	}
	if err := fe.err(); err != nil {
		return Revealed{}, err
	}
	now := s.now().UTC()
	var out Revealed
	var refusal error
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		r, rel, err := s.reach(ctx, tx, p, id, now, true)
		if err != nil {
			return err
		}
		switch l := p.FieldLevel(field, rel); {
		case rel == access.RelPool:
			return fmt.Errorf("%w: claim the customer before revealing its contact fields", access.ErrDenied)
		case l == access.Hidden:
			return fmt.Errorf("%w: field %s is hidden for you; reveal unmasks masked fields only", access.ErrDenied, field)
		case l >= access.Readable:
			return &ValidationError{Fields: []FieldError{{Field: "field", Message: "is not masked for you"}}}
		}
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		n, err := tx.BumpCounter(ctx, "reveal:"+actorKey(p), day(vals, now))
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, r.ID, r.KeyVersion)
		if err != nil {
			return err
		}
		ev := event(p, action, "customer", id)
		ev.Details = map[string]any{"field": field, "count_today": n, "quota": p.RevealQuota}
		// The reason may name people: it is kept sealed under this
		// customer's key, so erasing the customer erases it too.
		sealed, err := audit.Seal(s.cipher, dk, id, map[string]any{"reason": reason})
		if err != nil {
			return err
		}
		ev.Details["personal"] = sealed
		if n > p.RevealQuota {
			// Refused, and on record: the denial, and an alert the first time.
			ev.Outcome, ev.Reason = audit.Denied, "daily reveal quota exhausted"
			seq, err := audit.Record(ctx, tx, now, ev)
			if err != nil {
				return err
			}
			if n == p.RevealQuota+1 {
				if _, err := monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RuleRevealQuota, Severity: monitor.High,
					ActorID: actorKey(p), Evidence: []int64{seq}, Details: map[string]any{"quota": p.RevealQuota, "day": day(vals, now)}}); err != nil {
					return err
				}
			}
			refusal = fmt.Errorf("%w: you have used your %d reveals for today", ErrQuota, p.RevealQuota)
			return nil
		}
		c, err := s.openCustomer(ctx, tx, r)
		if err != nil {
			return err
		}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		out = Revealed{CustomerID: id, Field: field, Remaining: p.RevealQuota - n}
		switch field {
		case access.FieldName:
			out.Value = c.Name
		case access.FieldPhone:
			out.Values = c.Phones
		case access.FieldEmail:
			out.Values = c.Emails
		case access.FieldAddress:
			out.Value = c.Address
		case access.FieldIDNumber:
			out.Value = c.IDNumber
		case access.FieldNotes:
			out.Value = c.Notes
		}
		if len(out.Values) > 0 {
			out.Value = out.Values[0]
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return Revealed{}, err
		}
		return Revealed{}, s.denyOr(ctx, p, action, "customer", id, err)
	}
	if refusal != nil {
		return Revealed{}, refusal
	}
	return out, nil
}
