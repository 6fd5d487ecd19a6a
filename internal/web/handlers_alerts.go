package web

import (
	"net/http"
	"strconv"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// listAlerts: GET /api/v1/alerts?status=&rule=&severity=&actor_id=&limit=&cursor=
// answers {"items": [...], "next": "..."}, newest first.
func (s *Server) listAlerts(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	q := r.URL.Query()
	aq := crm.AlertQuery{Rule: q.Get("rule"), Status: q.Get("status"), Severity: q.Get("severity"), ActorID: q.Get("actor_id"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			writeProblem(w, r, http.StatusBadRequest, "limit must be a number from 1 to 1000", nil)
			return
		}
		aq.Limit = n
	}
	page, err := s.crm.ListAlerts(r.Context(), p, aq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getAlert(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	a, err := s.crm.GetAlert(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (s *Server) ackAlert(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	a, err := s.crm.AckAlert(r.Context(), p, r.PathValue("id"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}

// resolveAlert: POST /api/v1/alerts/{id}/resolve {"note": "...", "reinstate": false}
func (s *Server) resolveAlert(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in struct {
		Note      string `json:"note"`
		Reinstate bool   `json:"reinstate"`
	}
	if !decodeJSON(w, r, &in) {
		return
	}
	a, err := s.crm.ResolveAlert(r.Context(), p, r.PathValue("id"), in.Note, in.Reinstate)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, a)
}
