package web

import (
	"context"
	"encoding/json"
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

type passkeyMFAIn struct {
	Challenge  string          `json:"challenge"`
	Credential json.RawMessage `json:"credential,omitempty"`
}

// passkeyMFABegin starts answering a login challenge with a passkey.
func (s *Server) passkeyMFABegin(w http.ResponseWriter, r *http.Request) {
	if !s.passkeysReady(w, r) {
		return
	}
	var in passkeyMFAIn
	if !decodeJSON(w, r, &in) {
		return
	}
	userID, err := s.auth.ChallengeUser(r.Context(), in.Challenge)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	options, token, err := s.passkeys.Svc.BeginSecondFactor(r.Context(), userID)
	if err != nil {
		s.passkeys.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	s.passkeys.setCeremony(w, token)
	writeOptions(w, options)
}

// passkeyMFAFinish verifies the passkey and completes the login.
func (s *Server) passkeyMFAFinish(w http.ResponseWriter, r *http.Request) {
	if !s.passkeysReady(w, r) {
		return
	}
	token, ok := ceremony(w, r)
	if !ok {
		return
	}
	var in passkeyMFAIn
	if !decodeJSON(w, r, &in) {
		return
	}
	s.passkeys.clearCeremony(w)
	userID, err := s.auth.ChallengeUser(r.Context(), in.Challenge)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	ev := audit.Event{Actor: "user:" + userID, IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	if err := s.passkeys.Svc.FinishSecondFactor(r.Context(), ev, userID, token, in.Credential); err != nil {
		if ferr := s.auth.FailMFA(r.Context(), ev, in.Challenge); ferr != nil {
			s.writeError(w, r, ferr)
			return
		}
		s.passkeys.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	res, err := s.auth.CompleteMFAVerified(r.Context(), ev, in.Challenge, auth.MethodPasskey)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.startSession(w, res.Token, res.CSRF, res.Identity)
}
