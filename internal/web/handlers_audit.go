package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// queryAudit serves GET /api/v1/audit: the audit trail for auditors (holders
// of read_audit), and each user's own and their subordinates' events for
// everyone else. Filters: actor_id, actor, customer_id, action (exact, or a
// prefix ending in "."), outcome, object_type, object_id, since, until
// (RFC 3339), limit, cursor.
func (s *Server) queryAudit(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	v := r.URL.Query()
	q := crm.AuditQuery{ActorID: v.Get("actor_id"), Actor: v.Get("actor"), CustomerID: v.Get("customer_id"), Action: v.Get("action"),
		Outcome: v.Get("outcome"), ObjectType: v.Get("object_type"), ObjectID: v.Get("object_id"), Cursor: v.Get("cursor")}
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if s := v.Get(t.name); s != "" {
			at, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				writeProblem(w, r, http.StatusBadRequest, t.name+" must be an RFC 3339 time such as 2026-01-02T15:04:05Z", nil)
				return
			}
			*t.dst = at
		}
	}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, http.StatusBadRequest, "limit must be a number from 1 to 1000", nil)
			return
		}
		q.Limit = n
	}
	page, err := s.crm.QueryAudit(r.Context(), p, q)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}
