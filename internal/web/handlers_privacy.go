package web

import (
	"errors"
	"net/http"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// eraseCustomer erases a customer for good (crypto-shredding). The guarded
// path checks the erase permission, the step-up of a browser session and
// the caller's reach, and records the erasure or the refusal.
func (s *Server) eraseCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	err := s.crm.EraseCustomer(r.Context(), p, id)
	switch {
	case errors.Is(err, crm.ErrErased):
		writeProblem(w, r, http.StatusGone, "the customer was already erased", nil)
	case err != nil:
		s.writeError(w, r, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}
