package web

import (
	"net/http"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// Alert sinks: where alerts are sent. Secrets (URLs of chat robots,
// webhook and signing secrets, SMTP passwords) come in JSON bodies only and
// never go out: a listing shows a redacted target and the sink's status.

// listAlertSinks: GET /api/v1/alert-sinks answers {"items": [...]}.
func (s *Server) listAlertSinks(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	ks, err := s.crm.ListAlertSinks(r.Context(), p)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.AlertSink]{Items: ks})
}

// createAlertSink: POST /api/v1/alert-sinks.
func (s *Server) createAlertSink(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in crm.AlertSinkInput
	if !decodeJSON(w, r, &in) {
		return
	}
	k, err := s.crm.CreateAlertSink(r.Context(), p, in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/alert-sinks/"+k.Name)
	writeJSON(w, http.StatusCreated, k)
}

// updateAlertSink: PUT /api/v1/alert-sinks/{name}; fields left out keep
// their value.
func (s *Server) updateAlertSink(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in crm.AlertSinkInput
	if !decodeJSON(w, r, &in) {
		return
	}
	k, err := s.crm.UpdateAlertSink(r.Context(), p, r.PathValue("name"), in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, k)
}

// deleteAlertSink: DELETE /api/v1/alert-sinks/{name}.
func (s *Server) deleteAlertSink(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	if err := s.crm.DeleteAlertSink(r.Context(), p, r.PathValue("name")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// testAlertSink: POST /api/v1/alert-sinks/{name}/test sends a test message
// now; a failed delivery is a 200 with "ok": false and the reason.
func (s *Server) testAlertSink(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	res, err := s.crm.TestAlertSink(r.Context(), p, r.PathValue("name"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}
