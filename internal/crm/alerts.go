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
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// Alert is an alert as the API shows it.
type Alert struct {
	ID         string         `json:"id"`
	At         time.Time      `json:"at"`
	Rule       string         `json:"rule"`
	Severity   string         `json:"severity"`
	ActorID    string         `json:"actor_id"`
	Status     string         `json:"status"`
	Evidence   []int64        `json:"evidence"`
	Details    map[string]any `json:"details"`
	UpdatedAt  time.Time      `json:"updated_at"`
	AckedBy    string         `json:"acked_by,omitempty"`
	AckedAt    *time.Time     `json:"acked_at,omitempty"`
	ResolvedBy string         `json:"resolved_by,omitempty"`
	ResolvedAt *time.Time     `json:"resolved_at,omitempty"`
	// Note is the resolution note (GetAlert only; sealed at rest).
	Note string `json:"note,omitempty"`
	// ActorSuspended: the alert's user is suspended now (GetAlert only).
	ActorSuspended bool `json:"actor_suspended,omitempty"`
}

func alertView(a store.Alert) Alert {
	v := Alert{ID: a.ID, At: a.At, Rule: a.Rule, Severity: a.Severity, ActorID: a.ActorID, Status: a.Status, UpdatedAt: a.UpdatedAt,
		AckedBy: a.AckedBy, AckedAt: a.AckedAt, ResolvedBy: a.ResolvedBy, ResolvedAt: a.ResolvedAt, Evidence: []int64{}, Details: map[string]any{}}
	_ = jsonUnmarshal(a.Evidence, &v.Evidence)
	_ = jsonUnmarshal(a.Details, &v.Details)
	return v
}

// AlertQuery filters a list of alerts.
type AlertQuery struct {
	Rule     string
	Status   string // open, acknowledged, resolved
	Severity string
	ActorID  string
	Cursor   string // Next of the previous page
	Limit    int    // default 100, at most 1000
}

var alertStatuses = []string{store.AlertOpen, store.AlertAcknowledged, store.AlertResolved}
var severities = []string{"info", "low", "medium", "high", "critical"}

func (q AlertQuery) check() error {
	var fe fieldErrs
	if q.Status != "" && !slices.Contains(alertStatuses, q.Status) {
		fe.addf("status", "must be one of %s", strings.Join(alertStatuses, ", "))
	}
	if q.Severity != "" && !slices.Contains(severities, q.Severity) {
		fe.addf("severity", "must be one of %s", strings.Join(severities, ", "))
	}
	if len(q.Rule) > 100 {
		fe.addf("rule", "is too long")
	}
	if q.ActorID != "" && !validID(q.ActorID) {
		fe.addf("actor_id", "must be a user id")
	}
	if q.Cursor != "" && !validID(q.Cursor) {
		fe.addf("cursor", "is not a cursor of this list")
	}
	if q.Limit < 0 || q.Limit > 1000 {
		fe.addf("limit", "must be from 1 to 1000")
	}
	return fe.err()
}

// ListAlerts lists alerts, newest first, for principals who handle them
// (manage_alerts). Reading them is on record: alerts name people.
func (s *Service) ListAlerts(ctx context.Context, p access.Principal, q AlertQuery) (Page[Alert], error) {
	const action = "alert.list"
	if err := access.Require(p, access.ManageAlerts); err != nil {
		return Page[Alert]{}, s.deny(ctx, p, action, "alert", "", err)
	}
	if err := q.check(); err != nil {
		return Page[Alert]{}, err
	}
	if q.Limit == 0 {
		q.Limit = 100
	}
	page := Page[Alert]{Items: []Alert{}}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		as, err := tx.QueryAlerts(ctx, store.AlertQuery{Rule: q.Rule, Status: q.Status, Severity: q.Severity, ActorID: q.ActorID,
			Before: q.Cursor, Limit: q.Limit})
		for _, a := range as {
			page.Items = append(page.Items, alertView(a))
		}
		if len(as) == q.Limit {
			page.Next = as[len(as)-1].ID
		}
		return err
	})
	if err != nil {
		return Page[Alert]{}, err
	}
	ids := make([]string, len(page.Items))
	for i, a := range page.Items {
		ids[i] = a.ID
	}
	ev := event(p, action, "alert", "")
	ev.Details = map[string]any{"rule": q.Rule, "status": q.Status, "severity": q.Severity, "actor_id": q.ActorID, "ids": ids, "count": len(ids)}
	return page, audit.RecordAlone(ctx, s.db, s.now(), ev)
}

// GetAlert returns one alert with its resolution note, and whether its
// user is suspended now.
func (s *Service) GetAlert(ctx context.Context, p access.Principal, id string) (Alert, error) {
	const action = "alert.view"
	if err := access.Require(p, access.ManageAlerts); err != nil {
		return Alert{}, s.deny(ctx, p, action, "alert", id, err)
	}
	if !validID(id) {
		return Alert{}, ErrNotFound
	}
	var out Alert
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		a, err := tx.GetAlert(ctx, id, false)
		if err != nil {
			return mapStoreErr(err)
		}
		out = alertView(a)
		if out.Note, err = s.openNote(ctx, tx, a); err != nil {
			return err
		}
		if a.ActorID != "" {
			if _, err := tx.GetSuspension(ctx, a.ActorID); err == nil {
				out.ActorSuspended = true
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Alert{}, s.deny(ctx, p, action, "alert", id, err)
	}
	if err != nil {
		return Alert{}, err
	}
	return out, audit.RecordAlone(ctx, s.db, s.now(), event(p, action, "alert", id))
}

// noteSubject is the key subject of an alert's resolution note: a key of its
// own, whoever wrote the note (a user or the operator at the machine).
func noteSubject(alertID string) string { return "alert:" + alertID }

func (s *Service) openNote(ctx context.Context, tx *store.Tx, a store.Alert) (string, error) {
	if len(a.Note) == 0 {
		return "", nil
	}
	dk, err := s.keys.DataKey(ctx, tx, noteSubject(a.ID), a.NoteKeyVersion)
	if err != nil {
		return "", err
	}
	pt, err := s.cipher.Open(dk, seal.AAD{Table: "alerts", Record: a.ID, Field: "note"}, a.Note)
	return string(pt), err
}

const maxAlertNote = 2000

// AckAlert acknowledges an open alert: someone is looking at it.
func (s *Service) AckAlert(ctx context.Context, p access.Principal, id string) (Alert, error) {
	return s.moveAlert(ctx, p, "alert.ack", id, "", false)
}

// ResolveAlert resolves an alert with a note (required: what was found and
// done). reinstate also lifts the suspension of the alert's user (and
// starts their viewing window afresh); it needs a recent sign-in.
func (s *Service) ResolveAlert(ctx context.Context, p access.Principal, id, note string, reinstate bool) (Alert, error) {
	return s.moveAlert(ctx, p, "alert.resolve", id, note, reinstate)
}

func (s *Service) moveAlert(ctx context.Context, p access.Principal, action, id, note string, reinstate bool) (Alert, error) {
	if err := access.Require(p, access.ManageAlerts); err != nil {
		return Alert{}, s.deny(ctx, p, action, "alert", id, err)
	}
	if reinstate {
		if err := access.RequireRecentAuth(p, s.now()); err != nil {
			return Alert{}, s.deny(ctx, p, action, "alert", id, err)
		}
	}
	if action == "alert.resolve" {
		var fe fieldErrs
		n, err := normalize.Text(note, maxAlertNote)
		switch {
		case err != nil:
			fe.add("note", err)
		case strings.TrimSpace(n) == "":
			fe.addf("note", "is required: say what was found and done")
		}
		if err := fe.err(); err != nil {
			return Alert{}, err
		}
		note = n
	}
	if !validID(id) {
		return Alert{}, s.deny(ctx, p, action, "alert", id, ErrNotFound)
	}
	now := s.now().UTC()
	var out Alert
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		a, err := tx.GetAlert(ctx, id, true)
		if err != nil {
			return err // not found: an audited denial below
		}
		if a.ActorID != "" && a.ActorID == p.UserID {
			// Nobody handles an alert about themselves.
			return fmt.Errorf("%w: this alert is about you; another officer must handle it", access.ErrDenied)
		}
		// Reinstating lifts the suspension this alert imposed, and only that.
		var sus store.Suspension
		if reinstate {
			if a.ActorID == "" {
				return fmt.Errorf("%w: this alert concerns no user to reinstate", ErrConflict)
			}
			if sus, err = tx.GetSuspension(ctx, a.ActorID); errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: the alert's user is not suspended", ErrConflict)
			} else if err != nil {
				return err
			}
			if sus.AlertID != a.ID {
				return fmt.Errorf("%w: the user was suspended by alert %s; reinstate them there", ErrConflict, sus.AlertID)
			}
		}
		ev := event(p, action, "alert", id)
		ev.Details = map[string]any{"rule": a.Rule, "from": a.Status, "actor_id": a.ActorID}
		reinstateOnly := false
		switch action {
		case "alert.ack":
			if a.Status != store.AlertOpen {
				return fmt.Errorf("%w: the alert is %s", ErrConflict, a.Status)
			}
			a.Status, a.AckedBy, a.AckedAt = store.AlertAcknowledged, p.Actor, &now
		case "alert.resolve":
			if a.Status == store.AlertResolved {
				if !reinstate {
					return fmt.Errorf("%w: the alert is already resolved", ErrConflict)
				}
				// Resolved earlier without reinstating: the suspension can
				// still be lifted here; the first note stands.
				reinstateOnly = true
				ev.Details["reinstate"] = true
				break
			}
			a.Status, a.ResolvedBy, a.ResolvedAt = store.AlertResolved, p.Actor, &now
			if a.AckedAt == nil {
				a.AckedBy, a.AckedAt = p.Actor, &now
			}
			dk, err := s.keys.NewDataKey(ctx, tx, noteSubject(a.ID))
			if err != nil {
				return err
			}
			if a.Note, err = s.cipher.Seal(dk, seal.AAD{Table: "alerts", Record: a.ID, Field: "note"}, []byte(note)); err != nil {
				return err
			}
			a.NoteKeyVersion = dk.Version
			// The note may name people: the trail keeps its length only.
			ev.Details["note_chars"] = len([]rune(note))
			ev.Details["reinstate"] = reinstate
		}
		if !reinstateOnly {
			a.UpdatedAt = now
			if err := tx.UpdateAlert(ctx, a); err != nil {
				return err
			}
		}
		if _, err := audit.Record(ctx, tx, now, ev); err != nil {
			return err
		}
		if reinstate {
			lifted, err := tx.Unsuspend(ctx, a.ActorID)
			if err != nil {
				return err
			}
			if lifted {
				if err := tx.ClearSeen(ctx, "view:"+a.ActorID); err != nil {
					return err
				}
				rev := event(p, "user.reinstate", "user", a.ActorID)
				rev.Details = map[string]any{"alert_id": a.ID}
				if _, err := audit.Record(ctx, tx, now, rev); err != nil {
					return err
				}
			}
		}
		out = alertView(a)
		if action == "alert.resolve" && !reinstateOnly {
			out.Note = note
		}
		return nil
	})
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) || errors.Is(err, ErrConflict) {
			return Alert{}, err
		}
		return Alert{}, s.denyOr(ctx, p, action, "alert", id, err)
	}
	return out, nil
}
