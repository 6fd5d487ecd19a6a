package web

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/passkey"
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
	if s.passkeysReady(w, r) && s.stepUp(w, r, p, "passkey.register", "user", id.User.ID) {
		s.passkeys.RegisterBegin(w, r, p, id)
	}
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) && s.stepUp(w, r, p, "passkey.register", "user", id.User.ID) {
		s.passkeys.RegisterFinish(w, r, p, id)
	}
}

func (s *Server) passkeyList(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) {
		s.passkeys.List(w, r, p, id)
	}
}

func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if s.passkeysReady(w, r) && s.stepUp(w, r, p, "passkey.remove", "user", id.User.ID) {
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
	options, token, err := s.beginPasskeyMFA(r.Context(), in.Challenge)
	if err != nil {
		s.writePasskeyMFAError(w, r, err)
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
	res, err := s.finishPasskeyMFA(r, in.Challenge, token, in.Credential)
	s.countLogin(metrics.LoginMFA, err)
	if err != nil {
		s.writePasskeyMFAError(w, r, err)
		return
	}
	s.startSession(w, res.Token, res.CSRF, res.Identity)
}

// beginPasskeyMFA starts a passkey ceremony for the user of a live login
// challenge: the options for navigator.credentials.get and the ceremony
// token.
func (s *Server) beginPasskeyMFA(ctx context.Context, challenge string) (options []byte, token string, err error) {
	userID, err := s.auth.ChallengeUser(ctx, challenge)
	if err != nil {
		return nil, "", err
	}
	return s.passkeys.Svc.BeginSecondFactor(ctx, userID)
}

// finishPasskeyMFA verifies the browser's answer (credential) to the
// ceremony of token for the user of the login challenge, and completes the
// login. A passkey that is not accepted counts as a failed attempt at the
// challenge, like a wrong code.
func (s *Server) finishPasskeyMFA(r *http.Request, challenge, token string, credential []byte) (auth.LoginResult, error) {
	ctx := r.Context()
	userID, err := s.auth.ChallengeUser(ctx, challenge)
	if err != nil {
		return auth.LoginResult{}, err
	}
	ev := audit.Event{Actor: "user:" + userID, IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(ctx)}
	if err := s.passkeys.Svc.FinishSecondFactor(ctx, ev, userID, token, credential); err != nil {
		if ferr := s.auth.FailMFA(ctx, ev, challenge); ferr != nil {
			return auth.LoginResult{}, ferr
		}
		return auth.LoginResult{}, err
	}
	return s.auth.CompleteMFAVerified(ctx, ev, challenge, auth.MethodPasskey)
}

// writePasskeyMFAError answers a failed passkey second factor: the passkey
// service's errors as a failed ceremony (401), the rest as the API does.
func (s *Server) writePasskeyMFAError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, passkey.ErrRejected) || errors.Is(err, passkey.ErrInvalid) || errors.Is(err, passkey.ErrNotFound) {
		s.passkeys.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	s.writeError(w, r, err)
}
