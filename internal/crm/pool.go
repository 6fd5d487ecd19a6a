package crm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/failpoint"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// transfer is every change of owner but an edit's (claim, release, return
// to the pool, handover): the customer moves and its shares end, as they
// were the previous owner's to give. UpdateCustomer does the same for a
// reassignment.
func (s *Service) transfer(ctx context.Context, tx *store.Tx, id, from, to string, now time.Time) error {
	if err := tx.Transfer(ctx, id, from, to, now); err != nil {
		return err
	}
	_, err := tx.RevokeCustomerShares(ctx, id, now)
	return err
}

// ClaimCustomer takes a customer from the public pool, within the role's
// limits: claims per day, customers owned, and a cooldown before a previous
// owner may take back a customer they let go.
func (s *Service) ClaimCustomer(ctx context.Context, p access.Principal, id string) (Customer, error) {
	const action = "customer.claim"
	if err := access.Require(p, access.Claim); err != nil {
		return Customer{}, s.deny(ctx, p, action, "customer", id, err)
	}
	if p.UserID == "" {
		return Customer{}, s.deny(ctx, p, action, "customer", id, fmt.Errorf("%w: only a user can own customers", access.ErrDenied))
	}
	now := s.now().UTC()
	var c Customer
	var refusal error
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		r, _, err := s.reach(ctx, tx, p, id, now, true)
		if err != nil {
			return err
		}
		if r.OwnerID != "" {
			return fmt.Errorf("%w: the customer is not in the pool", ErrConflict)
		}
		// The claimant's row lock serializes their claims (the owned cap).
		if u, err := tx.LockUser(ctx, p.UserID); err != nil || u.Disabled {
			return errors.Join(err, store.ErrNotFound)
		}
		if err := s.checkClaimLimits(ctx, tx, p.UserID, p.Pool, r, now, true); err != nil {
			var q *quotaError
			if !errors.As(err, &q) {
				return err
			}
			ev := event(p, action, "customer", id)
			ev.Outcome, ev.Reason = audit.Denied, q.reason
			if _, err := audit.Record(ctx, tx, now, ev); err != nil {
				return err
			}
			refusal = fmt.Errorf("%w: %s", ErrQuota, q.msg)
			return nil
		}
		if err := s.transfer(ctx, tx, id, "", p.UserID, now); err != nil {
			return err
		}
		r.OwnerID, r.OwnerRole, r.Version, r.LastActivityAt = p.UserID, p.Role, r.Version+1, now
		if c, err = s.openCustomer(ctx, tx, r); err != nil {
			return err
		}
		ev := event(p, action, "customer", id)
		ev.Details = map[string]any{"previous_owner_id": r.PreviousOwnerID}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		if errors.Is(err, ErrConflict) {
			return Customer{}, err
		}
		return Customer{}, s.denyOr(ctx, p, action, "customer", id, err)
	}
	if refusal != nil {
		return Customer{}, refusal
	}
	return viewCustomer(p, access.RelFull, c), nil
}

// checkAssigneeLimits applies the assignee's role limits to an assignment
// from the pool.
func (s *Service) checkAssigneeLimits(ctx context.Context, tx *store.Tx, userID string, r store.Customer, now time.Time) error {
	u, err := tx.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	role, err := tx.GetRole(ctx, u.Role)
	if err != nil {
		return err
	}
	err = s.checkClaimLimits(ctx, tx, userID, access.PoolLimits{MaxOwned: role.MaxOwned, CooldownDays: role.ClaimCooldownDays}, r, now, false)
	var q *quotaError
	if errors.As(err, &q) {
		return fmt.Errorf("%w: %s", ErrQuota, q.msg)
	}
	return err
}

type quotaError struct{ reason, msg string }

func (e *quotaError) Error() string { return e.msg }

// checkClaimLimits applies the pool limits lim of user to taking customer r
// from the pool; daily counts the claim against the daily cap (an
// assignment by a superior does not).
func (s *Service) checkClaimLimits(ctx context.Context, tx *store.Tx, user string, lim access.PoolLimits, r store.Customer, now time.Time, daily bool) error {
	if lim.CooldownDays > 0 && r.PreviousOwnerID == user && r.ReleasedAt != nil &&
		now.Before(r.ReleasedAt.Add(time.Duration(lim.CooldownDays)*24*time.Hour)) {
		return &quotaError{"claim cooldown", fmt.Sprintf("the customer was let go by the same person less than %d days ago", lim.CooldownDays)}
	}
	if lim.MaxOwned > 0 {
		n, err := tx.CountOwned(ctx, user)
		if err != nil {
			return err
		}
		if n >= lim.MaxOwned {
			// No number: it would count hidden customers too.
			return &quotaError{"owned customers cap", "the owner already has as many customers as the role allows"}
		}
	}
	if daily && lim.ClaimDaily > 0 {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		n, err := tx.BumpCounter(ctx, "claim:"+user, day(vals, now))
		if err != nil {
			return err
		}
		if n > lim.ClaimDaily {
			return &quotaError{"daily claim cap", fmt.Sprintf("you have claimed %d customers today, the most your role allows", lim.ClaimDaily)}
		}
	}
	return nil
}

// ReleaseCustomer puts a customer p owns (or fully reaches, with assign)
// back into the public pool.
func (s *Service) ReleaseCustomer(ctx context.Context, p access.Principal, id string) error {
	const action = "customer.release"
	if err := access.Require(p, access.Claim); err != nil && !p.Can(access.Assign) {
		return s.deny(ctx, p, action, "customer", id, err)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		r, rel, err := s.reach(ctx, tx, p, id, now, true)
		if err != nil {
			return err
		}
		if r.OwnerID == "" {
			return fmt.Errorf("%w: the customer is already in the pool", ErrConflict)
		}
		if r.OwnerID != p.UserID {
			if err := access.CanReassign(p, rel); err != nil {
				return err
			}
		}
		if err := s.transfer(ctx, tx, id, r.OwnerID, "", now); err != nil {
			return err
		}
		ev := event(p, action, "customer", id)
		ev.Details = map[string]any{"previous_owner_id": r.OwnerID}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, ErrConflict) {
		return err
	}
	return s.denyOr(ctx, p, action, "customer", id, err)
}

// SweepReport counts what a pool sweep did.
type SweepReport struct {
	Warned   int `json:"warned"`
	Returned int `json:"returned"`
}

// SweepPool returns to the pool the owned customers without activity for
// their level's return period (settings pool.return_days[.<level>]), and
// warns owners pool.warn_days before. It runs as "system" from serve's
// schedule; on PostgreSQL the row locks of Transfer keep two nodes from
// returning one customer twice.
func (s *Service) SweepPool(ctx context.Context) (SweepReport, error) {
	now := s.now().UTC()
	var rep SweepReport
	p := access.Principal{Actor: "system"}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		minDays := vals.MinPoolReturnDays()
		if minDays <= 0 {
			return nil // customers never return
		}
		day := 24 * time.Hour
		warn := time.Duration(vals.Int(settings.PoolWarnDays)) * day
		// Nothing active since this can be due for a warning or a return.
		cutoff := now.Add(warn - time.Duration(minDays)*day)
		var afterAt time.Time
		afterID := ""
		for {
			page, err := tx.DormantCustomers(ctx, cutoff, afterAt, afterID, 500)
			if err != nil {
				return err
			}
			for _, d := range page {
				if err := s.sweepOne(ctx, tx, p, vals, d, now, warn, &rep); err != nil {
					return err
				}
			}
			if len(page) < 500 {
				return nil
			}
			afterAt, afterID = page[len(page)-1].LastActivityAt, page[len(page)-1].ID
		}
	})
	return rep, err
}

// sweepOne returns d to the pool when its period has run, or warns its
// owner when the period ends within warn.
func (s *Service) sweepOne(ctx context.Context, tx *store.Tx, p access.Principal, vals settings.Values, d store.DormantCustomer,
	now time.Time, warn time.Duration, rep *SweepReport) error {
	days := vals.PoolReturnDays(d.Level)
	if days <= 0 {
		return nil
	}
	deadline := d.LastActivityAt.Add(time.Duration(days) * 24 * time.Hour)
	switch {
	case !now.Before(deadline):
		err := s.transfer(ctx, tx, d.ID, d.OwnerID, "", now)
		if errors.Is(err, store.ErrNotFound) {
			return nil // another node, or the owner, moved it meanwhile
		}
		if err != nil {
			return err
		}
		ev := event(p, "customer.pool_return", "customer", d.ID)
		ev.Details = map[string]any{"previous_owner_id": d.OwnerID, "days_inactive": days}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		rep.Returned++
	case !d.Warned && !now.Before(deadline.Add(-warn)):
		marked, err := tx.MarkPoolWarned(ctx, d.ID, d.OwnerID, d.LastActivityAt, now)
		if err != nil || !marked {
			return err
		}
		ev := event(p, "customer.pool_warning", "customer", d.ID)
		ev.Details = map[string]any{"owner_id": d.OwnerID, "returns_at": deadline}
		seq, err := audit.Record(ctx, tx, now, ev)
		if err != nil {
			return err
		}
		if _, err := monitor.Raise(ctx, tx, now, monitor.Alert{Rule: monitor.RulePoolReturnScheduled, Severity: monitor.Info,
			ActorID: d.OwnerID, Evidence: []int64{seq}, Details: map[string]any{"customer_id": d.ID, "returns_at": deadline}}); err != nil {
			return err
		}
		rep.Warned++
	}
	return nil
}

// OffboardReport counts what a departure handover did.
type OffboardReport struct {
	UserID          string `json:"user_id"`
	To              string `json:"to"` // successor's id, or "pool"
	Customers       int    `json:"customers"`
	SharesRevoked   int    `json:"shares_revoked"`
	GrantsRevoked   int    `json:"grants_revoked"`
	SessionsEnded   int    `json:"sessions_ended"`
	TokensRevoked   int    `json:"tokens_revoked"`
	AlreadyDisabled bool   `json:"already_disabled"`
}

// Offboard hands a departing user's work over in one transaction: the user
// is disabled, their sessions end and tokens are revoked, every customer
// they own moves to the successor (or the pool), and the shares and grants
// given to them are revoked. A crash at any point leaves all of it done or
// none of it.
func (s *Service) Offboard(ctx context.Context, p access.Principal, userID, successorID string, toPool bool) (OffboardReport, error) {
	const action = "user.offboard"
	if err := access.Require(p, access.ManageUsers); err != nil {
		return OffboardReport{}, s.deny(ctx, p, action, "user", userID, err)
	}
	if err := access.RequireRecentAuth(p, s.now()); err != nil {
		return OffboardReport{}, s.deny(ctx, p, action, "user", userID, err)
	}
	var fe fieldErrs
	if toPool == (successorID != "") {
		fe.addf("to", "give a successor or the pool, not both")
	}
	if successorID != "" && successorID == userID {
		fe.addf("to", "the successor must be someone else")
	}
	if userID == p.UserID {
		fe.addf("user_id", "you cannot offboard yourself")
	}
	if err := fe.err(); err != nil {
		return OffboardReport{}, err
	}
	now := s.now().UTC()
	rep := OffboardReport{UserID: userID, To: successorID}
	if toPool {
		rep.To = "pool"
	}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		// Locked: claims and assignments to this user wait, then see it disabled.
		u, err := tx.LockUser(ctx, userID)
		if err != nil {
			return err
		}
		if successorID != "" {
			su, err := tx.LockUser(ctx, successorID)
			if errors.Is(err, store.ErrNotFound) || (err == nil && su.Disabled) {
				return &ValidationError{Fields: []FieldError{{Field: "to", Message: "no such active user"}}}
			}
			if err != nil {
				return err
			}
		}
		rep.AlreadyDisabled = u.Disabled
		u.Disabled, u.UpdatedAt = true, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		sessions, err := tx.UserSessions(ctx, userID)
		if err != nil {
			return err
		}
		rep.SessionsEnded = len(sessions)
		if err := tx.DeleteUserSessions(ctx, userID); err != nil {
			return err
		}
		tokens, err := tx.UserTokens(ctx, userID)
		if err != nil {
			return err
		}
		for _, t := range tokens {
			if t.RevokedAt == nil {
				rep.TokensRevoked++
			}
		}
		if err := tx.RevokeUserTokens(ctx, userID, now); err != nil {
			return err
		}
		if rep.SharesRevoked, err = tx.RevokeUserShares(ctx, userID, now); err != nil {
			return err
		}
		if rep.GrantsRevoked, err = tx.RevokeUserGrants(ctx, userID, now); err != nil {
			return err
		}
		// Until none is left: a release committed meanwhile is skipped.
		for {
			ids, err := tx.OwnedCustomerIDs(ctx, userID)
			if err != nil {
				return err
			}
			if len(ids) == 0 {
				break
			}
			for i, id := range ids {
				err := s.transfer(ctx, tx, id, userID, successorID, now)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return err
				}
				rep.Customers++
				ev := event(p, "customer.handover", "customer", id)
				ev.Details = map[string]any{"previous_owner_id": userID, "owner_id": successorID}
				if _, err := audit.Record(ctx, tx, now, ev); err != nil {
					return err
				}
				if i == len(ids)/2 {
					failpoint.Hit("offboard.half")
				}
			}
		}
		ev := event(p, action, "user", userID)
		ev.Details = map[string]any{"to": rep.To, "customers": rep.Customers, "shares_revoked": rep.SharesRevoked,
			"grants_revoked": rep.GrantsRevoked, "sessions_ended": rep.SessionsEnded, "tokens_revoked": rep.TokensRevoked}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) {
			return OffboardReport{}, err
		}
		return OffboardReport{}, s.denyOr(ctx, p, action, "user", userID, err)
	}
	return rep, nil
}
