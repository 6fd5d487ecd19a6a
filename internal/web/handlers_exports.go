package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// exportIn is the body of POST /api/v1/exports: the list filters, the
// format, the fields to reveal, and the key (a password or an age
// recipient). The password lives only in this request.
type exportIn struct {
	Q            string   `json:"q"`
	OwnerID      string   `json:"owner_id"`
	Kind         string   `json:"kind"`
	Level        string   `json:"level"`
	Status       string   `json:"status"`
	Tag          string   `json:"tag"`
	Hidden       string   `json:"hidden"`
	Pool         bool     `json:"pool"`
	Format       string   `json:"format"`
	Reveal       []string `json:"reveal"`
	Password     string   `json:"password"`
	AgeRecipient string   `json:"age_recipient"`
}

// needsApproval reports whether a direct export was refused because it
// needs a second person's approval (answered 409, pointing to
// POST /api/v1/exports).
func needsApproval(err error) bool { return errors.Is(err, crm.ErrApprovalRequired) }

// exportError writes err: a wrong state is a 409 that says which state
// (the messages name statuses and counts, never data).
func (s *Server) exportError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, crm.ErrConflict) {
		writeProblem(w, r, http.StatusConflict, err.Error(), nil)
		return
	}
	s.writeError(w, r, err)
}

func (s *Server) createExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in exportIn
	if !decodeJSON(w, r, &in) {
		return
	}
	req, err := s.crm.RequestExport(r.Context(), p, crm.ExportInput{
		Query:  crm.ListQuery{Q: in.Q, OwnerID: in.OwnerID, Kind: in.Kind, Level: in.Level, Status: in.Status, Tag: in.Tag, Hidden: in.Hidden, Pool: in.Pool},
		Format: in.Format, Reveal: in.Reveal, Password: crm.Secret(in.Password), Recipient: in.AgeRecipient,
	})
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/exports/"+req.ID)
	writeJSON(w, http.StatusCreated, req)
}

func (s *Server) listExports(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "status", "cursor", "limit":
		default:
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", k), nil)
			return
		}
	}
	lq := crm.ExportListQuery{Status: q.Get("status"), Cursor: q.Get("cursor")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "limit must be a number", nil)
			return
		}
		lq.Limit = n
		if n == 0 {
			lq.Limit = -1 // explicit 0 is out of range
		}
	}
	page, err := s.crm.ListExportRequests(r.Context(), p, lq)
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) getExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.exportAction(w, r, p, s.crm.GetExportRequest)
}

func (s *Server) approveExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.exportAction(w, r, p, s.crm.ApproveExport)
}

func (s *Server) rejectExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.exportAction(w, r, p, s.crm.RejectExport)
}

func (s *Server) cancelExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.exportAction(w, r, p, s.crm.CancelExport)
}

// exportAction runs one call on the request named in the path and answers
// with the request.
func (s *Server) exportAction(w http.ResponseWriter, r *http.Request, p access.Principal,
	fn func(context.Context, access.Principal, string) (crm.ExportRequest, error)) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	req, err := fn(r.Context(), p, id)
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, req)
}

func (s *Server) downloadExport(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	f, err := s.crm.DownloadExport(r.Context(), p, id)
	if err != nil {
		s.exportError(w, r, err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", fmt.Sprintf(`attachment; filename=%q`, f.Filename))
	h.Set("Content-Length", strconv.Itoa(len(f.Data)))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(f.Data); err != nil {
		s.log.WarnContext(r.Context(), "export download cut", "request_id", requestID(r.Context()), "err", err)
	}
}
