package web

import (
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"strconv"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// Problem is an RFC 9457 problem detail. Detail never carries personal data.
type Problem struct {
	Type      string           `json:"type"`
	Title     string           `json:"title"`
	Status    int              `json:"status"`
	Detail    string           `json:"detail,omitempty"`
	Errors    []crm.FieldError `json:"errors,omitempty"`
	RequestID string           `json:"request_id,omitempty"`
}

func writeProblem(w http.ResponseWriter, r *http.Request, status int, detail string, fields []crm.FieldError) {
	p := Problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Errors: fields, RequestID: requestID(r.Context())}
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Del("ETag")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(p)
}

// writeError maps an error of the services to a problem response. Unknown
// errors are "internal error" to the client, details only in the log.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ve *crm.ValidationError
	var locked *auth.LockedError
	switch {
	case errors.As(err, &ve):
		writeProblem(w, r, http.StatusUnprocessableEntity, "the request has invalid fields", ve.Fields)
	case errors.Is(err, crm.ErrInvalid), errors.Is(err, auth.ErrInvalid):
		writeProblem(w, r, http.StatusUnprocessableEntity, err.Error(), nil)
	case errors.Is(err, crm.ErrNotFound), errors.Is(err, auth.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "no such resource", nil)
	case errors.Is(err, access.ErrNetworkPolicy):
		writeProblem(w, r, http.StatusForbidden, err.Error(), nil)
	case errors.Is(err, access.ErrStepUp):
		writeProblem(w, r, http.StatusForbidden, err.Error(), nil)
	case errors.Is(err, auth.ErrBadCode):
		writeProblem(w, r, http.StatusUnauthorized, err.Error(), nil)
	case errors.Is(err, auth.ErrFactorExists), errors.Is(err, auth.ErrNoFactor):
		writeProblem(w, r, http.StatusConflict, err.Error(), nil)
	case errors.Is(err, crm.ErrQuota):
		writeProblem(w, r, http.StatusTooManyRequests, err.Error(), nil)
	case errors.Is(err, access.ErrDenied):
		writeProblem(w, r, http.StatusForbidden, err.Error(), nil)
	case errors.Is(err, crm.ErrConflict):
		writeProblem(w, r, http.StatusConflict, "the resource was changed by someone else; reload and retry", nil)
	case errors.Is(err, auth.ErrUserExists):
		writeProblem(w, r, http.StatusConflict, err.Error(), nil)
	case errors.As(err, &locked):
		secs := int(math.Ceil(locked.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeProblem(w, r, http.StatusTooManyRequests, locked.Error(), nil)
	case errors.Is(err, auth.ErrSSO):
		writeProblem(w, r, http.StatusUnauthorized, err.Error(), nil)
	case errors.Is(err, auth.ErrBadCredentials):
		writeProblem(w, r, http.StatusUnauthorized, err.Error(), nil)
	case errors.Is(err, auth.ErrUnauthenticated):
		detail := "authentication required"
		if err != auth.ErrUnauthenticated {
			detail = err.Error()
		}
		writeProblem(w, r, http.StatusUnauthorized, detail, nil)
	default:
		s.log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal error", nil)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(true)
	if err := enc.Encode(v); err != nil {
		slog.Default().Debug("write response", "err", err)
	}
}
