package crm

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// AuditQuery filters the audit trail for QueryAudit. Zero fields do not
// filter. "Who viewed customer X" is {CustomerID: X, Action: "customer.view"};
// "what did user Y see between T1 and T2" is {ActorID: Y, Action:
// "customer.", Since: T1, Until: T2}.
type AuditQuery struct {
	ActorID    string    // a user id: their sessions and API tokens
	Actor      string    // an exact actor: "system", "cli:alice", "token:…", "anonymous"
	CustomerID string    // events concerning this customer (the object, or a result set it was in)
	Action     string    // exact, or a prefix ending in "." such as "customer."
	Outcome    string    // ok, denied, error
	ObjectType string    // customer, contact, user, role, …
	ObjectID   string    // with ObjectType
	Since      time.Time // at or after
	Until      time.Time // before
	Cursor     string    // from a previous page's Next
	Limit      int       // 1..1000, default 100
}

// AuditPage is one page of events, newest first.
type AuditPage struct {
	Items []audit.Entry `json:"items"`
	Next  string        `json:"next,omitempty"`
}

var auditOutcomes = []string{audit.OK, audit.Denied, audit.Failed}

// QueryAudit returns the events matching q that p may read: holders of
// read_audit (auditors, security officers) read the whole trail; everyone
// else reads their own events and those of the users below them in the
// role hierarchy. The query itself is an audit event.
func (s *Service) QueryAudit(ctx context.Context, p access.Principal, q AuditQuery) (AuditPage, error) {
	if p.UserID == "" && !p.Can(access.ReadAudit) {
		return AuditPage{}, s.deny(ctx, p, "audit.query", "audit", "", access.ErrDenied)
	}
	sq := q.store()
	sq.Limit = q.Limit
	if q.Outcome != "" && !slices.Contains(auditOutcomes, q.Outcome) {
		return AuditPage{}, invalid("outcome", "must be one of "+strings.Join(auditOutcomes, ", "))
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return AuditPage{}, invalid("until", "must be after since")
	}
	switch {
	case q.Limit == 0:
		sq.Limit = 100
	case q.Limit < 1 || q.Limit > 1000:
		return AuditPage{}, invalid("limit", "must be from 1 to 1000")
	}
	if q.Cursor != "" {
		n, err := strconv.ParseInt(q.Cursor, 10, 64)
		if err != nil || n < 1 {
			return AuditPage{}, invalid("cursor", "is not a cursor this API returned")
		}
		sq.BeforeSeq = n
	}
	if p.Can(access.ReadAudit) {
		sq.Scope = store.AuditScope{All: true}
	} else {
		sq.Scope = store.AuditScope{UserID: p.UserID, Roles: p.Below}
	}
	var evs []store.AuditEvent
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		evs, err = tx.QueryAudit(ctx, sq)
		return err
	})
	if err != nil {
		return AuditPage{}, mapStoreErr(err)
	}
	page := AuditPage{Items: make([]audit.Entry, 0, len(evs))}
	for _, e := range evs {
		page.Items = append(page.Items, audit.EntryOf(e))
	}
	if len(evs) == sq.Limit {
		page.Next = strconv.FormatInt(evs[len(evs)-1].Seq, 10)
	}
	ev := event(p, "audit.query", "audit", "")
	ev.Details = map[string]any{"filters": auditFilters(q), "count": len(evs), "scope": map[bool]string{true: "all", false: "own_and_below"}[sq.Scope.All]}
	if err := audit.RecordAlone(ctx, s.db, s.now(), ev); err != nil {
		return AuditPage{}, err
	}
	return page, nil
}

// store is q's filters as a store query (without scope, order or limit).
func (q AuditQuery) store() store.AuditQuery {
	return store.AuditQuery{ActorID: q.ActorID, Actor: q.Actor, CustomerID: q.CustomerID, Action: q.Action, Outcome: q.Outcome,
		ObjectType: q.ObjectType, ObjectID: q.ObjectID, Since: q.Since, Until: q.Until}
}

// auditFilters names the filters used, with their values: ids, actions,
// outcomes and times — no personal data.
func auditFilters(q AuditQuery) map[string]any {
	f := map[string]any{}
	for k, v := range map[string]string{"actor_id": q.ActorID, "actor": q.Actor, "customer_id": q.CustomerID, "action": q.Action,
		"outcome": q.Outcome, "object_type": q.ObjectType, "object_id": q.ObjectID} {
		if v != "" {
			f[k] = v
		}
	}
	if !q.Since.IsZero() {
		f["since"] = q.Since.UTC()
	}
	if !q.Until.IsZero() {
		f["until"] = q.Until.UTC()
	}
	return f
}

// EffectiveSettings returns the settings in force (stored values under
// environment overrides), for jobs outside a request.
func (s *Service) EffectiveSettings(ctx context.Context) (settings.Values, error) {
	var v settings.Values
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		v, err = s.values(ctx, tx)
		return err
	})
	if err != nil {
		return settings.Values{}, fmt.Errorf("settings: %w", err)
	}
	return v, nil
}

func invalid(field, msg string) error {
	return &ValidationError{Fields: []FieldError{{Field: field, Message: msg}}}
}

// ExportAudit streams the events matching q, oldest first, to fn: the
// whole trail for holders of read_audit, refused for everyone else. The
// export is one audit event with its filters and row count.
func (s *Service) ExportAudit(ctx context.Context, p access.Principal, q AuditQuery, fn func(store.AuditEvent) error) (int64, error) {
	if !p.Can(access.ReadAudit) {
		return 0, s.deny(ctx, p, "audit.export", "audit", "", access.ErrDenied)
	}
	sq := q.store()
	sq.Scope, sq.Ascending, sq.Limit = store.AuditScope{All: true}, true, 5000
	var n int64
	var runErr error
	for {
		var evs []store.AuditEvent
		if err := s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			evs, err = tx.QueryAudit(ctx, sq)
			return err
		}); err != nil {
			runErr = mapStoreErr(err)
			break
		}
		for _, e := range evs {
			if err := fn(e); err != nil {
				runErr = err
				break
			}
			n++
		}
		if runErr != nil || len(evs) < sq.Limit {
			break
		}
		sq.AfterSeq = evs[len(evs)-1].Seq
	}
	ev := event(p, "audit.export", "audit", "")
	ev.Details = map[string]any{"filters": auditFilters(q), "rows": n}
	if runErr != nil {
		ev.Outcome, ev.Reason = audit.Failed, "export interrupted"
	}
	if err := audit.RecordAlone(context.WithoutCancel(ctx), s.db, s.now(), ev); err != nil {
		return n, err
	}
	return n, runErr
}
