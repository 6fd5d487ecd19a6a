package web

import (
	"context"
	"net/http"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
)

// openPasskeySession opens the session of a passwordless passkey login. The
// ceremony required user verification, so both factors are satisfied.
func (s *Server) openPasskeySession(ctx context.Context, userID string, r *http.Request) (string, string, any, error) {
	ev := audit.Event{IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(ctx)}
	res, err := s.auth.OpenVerifiedSession(ctx, ev, userID, "passkey", true)
	if err != nil {
		return "", "", nil, err
	}
	return res.Token, res.CSRF, res.Identity.User, nil
}

func (s *Server) passkeysReady(w http.ResponseWriter, r *http.Request) bool {
	if s.passkeys == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "passkeys are not configured on this server", nil)
		return false
	}
	return true
}

func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request) {
	if s.passkeysReady(w, r) {
		s.passkeys.LoginBegin(w, r)
	}
}

func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request) {
	if s.passkeysReady(w, r) {
		s.passkeys.LoginFinish(w, r)
	}
}

func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) {
		s.passkeys.RegisterBegin(w, r, p, id)
	}
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) {
		s.passkeys.RegisterFinish(w, r, p, id)
	}
}

func (s *Server) passkeyList(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) {
		s.passkeys.List(w, r, p, id)
	}
}

func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) {
		s.passkeys.Remove(w, r, p, id)
	}
}
