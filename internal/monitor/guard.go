package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// ErrSuspended refuses a request of a user a detector suspended.
var ErrSuspended = errors.New("suspended: your access is paused after unusual activity; a security officer has been alerted")

// ViewWindow is the window of the bulk-viewing guard.
const ViewWindow = time.Hour

// ViewVerdict is what the bulk-viewing guard decided about one read.
type ViewVerdict struct {
	UserID   string
	Distinct int  // distinct customers the user saw within the window, this read included
	Fresh    int  // customers of this read new to the window
	Alert    bool // the alert threshold was reached by this read
	Suspend  bool // the suspension threshold was reached: refuse the read
	// Suspended: the user was already suspended (refuse the read).
	Suspended bool
	alertAt   int
	suspendAt int
}

// Refused reports whether the read must be refused.
func (v ViewVerdict) Refused() bool { return v.Suspend || v.Suspended }

// ObserveViews is the synchronous exfiltration guard on the request path:
// it records that userID saw customers (inside the transaction that records
// the read, before the read's audit event) and tells whether the read
// crosses a threshold of distinct customers within the hour. It changes
// nothing else; Act carries out the verdict once the read's event is
// recorded. An empty userID (the operator at the machine) is not watched.
func ObserveViews(ctx context.Context, tx *store.Tx, now time.Time, vals settings.Values, userID string, customers []string) (ViewVerdict, error) {
	v := ViewVerdict{UserID: userID}
	if userID == "" {
		return v, nil
	}
	// The user's row lock serializes the user's concurrent reads (on
	// PostgreSQL; SQLite has one writer), so parallel requests cannot each
	// count below a threshold that together they pass.
	if err := tx.SerializeUser(ctx, userID); err != nil {
		return v, err
	}
	if _, err := tx.GetSuspension(ctx, userID); err == nil {
		v.Suspended = true
		return v, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return v, err
	}
	v.alertAt, v.suspendAt = vals.Int(settings.ViewsAlertPerHour), vals.Int(settings.ViewsSuspendPerHour)
	if (v.alertAt <= 0 && v.suspendAt <= 0) || len(customers) == 0 {
		return v, nil
	}
	scope, since := "view:"+userID, now.Add(-ViewWindow)
	// A customer seen in the last minute keeps its time: re-reading writes
	// nothing (a customer may leave the window up to a minute early).
	fresh, err := tx.MarkSeen(ctx, scope, customers, now, since, time.Minute)
	if err != nil || fresh == 0 {
		return v, err // nothing new: no threshold can be crossed
	}
	n, err := tx.CountSeen(ctx, scope, since, max(v.alertAt, v.suspendAt))
	if err != nil {
		return v, err
	}
	v.Distinct, v.Fresh = n, fresh
	crossed := func(at int) bool { return at > 0 && n >= at && n-fresh < at }
	v.Suspend = v.suspendAt > 0 && n >= v.suspendAt
	v.Alert = crossed(v.alertAt) && !v.Suspend
	return v, nil
}

// Act carries out a verdict in tx after the read's audit event (seq) was
// recorded: an alert at the first threshold; at the second, the user is
// suspended — sessions end, tokens and reads are refused until an alert
// handler reinstates them — with a critical alert.
func Act(ctx context.Context, tx *store.Tx, now time.Time, v ViewVerdict, seq int64) error {
	switch {
	case v.Suspend:
		id, err := Raise(ctx, tx, now, Alert{Rule: RuleBulkViewSuspend, Severity: Critical, ActorID: v.UserID, Evidence: []int64{seq},
			Details: map[string]any{"distinct_customers": v.Distinct, "window": "1h", "threshold": v.suspendAt, "action": "suspended"}})
		if err != nil {
			return err
		}
		return Suspend(ctx, tx, now, v.UserID, RuleBulkViewSuspend, id,
			fmt.Sprintf("%d distinct customers within an hour (threshold %d)", v.Distinct, v.suspendAt))
	case v.Alert:
		_, err := Raise(ctx, tx, now, Alert{Rule: RuleBulkView, Severity: High, ActorID: v.UserID, Evidence: []int64{seq},
			Details: map[string]any{"distinct_customers": v.Distinct, "window": "1h", "threshold": v.alertAt}})
		return err
	}
	return nil
}

// Suspend suspends a user in tx: their sessions end at once and, until
// Reinstate, logins, API tokens and reads are refused. It is recorded as a
// "user.suspend" event by the system.
func Suspend(ctx context.Context, tx *store.Tx, now time.Time, userID, rule, alertID, reason string) error {
	added, err := tx.Suspend(ctx, store.Suspension{UserID: userID, At: now, Rule: rule, AlertID: alertID, Reason: reason})
	if err != nil || !added {
		return err
	}
	sessions, err := tx.UserSessions(ctx, userID)
	if err != nil {
		return err
	}
	if err := tx.DeleteUserSessions(ctx, userID); err != nil {
		return err
	}
	_, err = audit.Record(ctx, tx, now, audit.Event{Actor: "system", Action: "user.suspend", ObjectType: "user", ObjectID: userID,
		Outcome: audit.OK, Reason: rule, Details: map[string]any{"alert_id": alertID, "sessions_ended": len(sessions)}})
	return err
}
