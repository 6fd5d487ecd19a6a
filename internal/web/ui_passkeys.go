package web

import (
	"encoding/json"
	"errors"
	"net/http"

	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/passkey"
)

// The passkey pages: the list of the user's passkeys with a form to add one
// and a button to remove each, and the routes through which the
// second-factor page confirms a pending sign-in with a passkey. Creating
// and using a passkey needs WebAuthn, so the browser's part is the scripts
// (static/passkey.js, assets/passkey-ui.js); removing one is a plain form.

// mfaPasskeyPath is where the ceremony cookie of a passkey second factor
// started from /login/mfa is sent.
const mfaPasskeyPath = "/login/mfa/passkey/"

// passkeyNotices are the messages /account/passkeys shows for its ?done=.
var passkeyNotices = map[string]string{
	"added":   "passkeys.done.added",
	"removed": "passkeys.done.removed",
}

// passkeyRow is one passkey as the passkeys page shows it.
type passkeyRow struct {
	ID, Name, Created, LastUsed string
	Synced                      bool
}

// uiPasskeys lists the user's passkeys.
func (s *Server) uiPasskeys(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account/passkeys")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	if p.PasskeysOn {
		list, err := s.passkeys.Svc.List(r.Context(), sess.id.User.ID)
		if err != nil {
			s.uiInternal(w, r, p, err)
			return
		}
		for _, k := range list {
			row := passkeyRow{ID: k.ID, Name: k.Name, Created: showTime(k.CreatedAt), Synced: k.Synced}
			if k.LastUsedAt != nil {
				row.LastUsed = showTime(*k.LastUsedAt)
			}
			p.Passkeys = append(p.Passkeys, row)
		}
		p.MaxNameLen, p.MaxPerUser = passkey.MaxNameLen, passkey.MaxPerUser
	}
	if key, ok := passkeyNotices[r.URL.Query().Get("done")]; ok {
		p.Notice = p.msg(key)
	}
	s.render(w, r, http.StatusOK, "passkeys", p)
}

// uiRemovePasskey removes one of the user's passkeys.
func (s *Server) uiRemovePasskey(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	p.BackHref = "/account/passkeys"
	if s.passkeys == nil {
		s.uiErrorPage(w, r, p, http.StatusNotFound, "error.no_passkey")
		return
	}
	err := s.passkeys.Svc.Remove(r.Context(), sess.event(r), sess.id.User.ID, r.PathValue("id"))
	if errors.Is(err, passkey.ErrNotFound) {
		s.uiErrorPage(w, r, p, http.StatusNotFound, "error.no_passkey")
		return
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	uiRedirect(w, r, "/account/passkeys?done=removed")
}

// pageNext is the answer of the pages' script routes that sends the
// browser on: after a completed sign-in, or back to /login when the
// pending sign-in expired.
type pageNext struct {
	Next string `json:"next"`
}

// mfaPasskeyChallenge checks a script request of the second-factor page
// (same origin, the page's CSRF token in X-CSRF-Token) and returns the
// pending login challenge from the custos_mfa cookie, which scripts cannot
// read. It answers itself and returns false when the request cannot go on.
func (s *Server) mfaPasskeyChallenge(w http.ResponseWriter, r *http.Request) (string, bool) {
	if !s.passkeysReady(w, r) {
		return "", false
	}
	if err := new(http.CrossOriginProtection).Check(r); err != nil {
		writeProblem(w, r, http.StatusForbidden, "cross-origin request refused", nil)
		return "", false
	}
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !equalTokens(r.Header.Get("X-CSRF-Token"), c.Value) {
		writeProblem(w, r, http.StatusForbidden, "missing or wrong X-CSRF-Token header", nil)
		return "", false
	}
	mc, err := r.Cookie(mfaCookie)
	if err != nil || mc.Value == "" {
		s.mfaExpired(w)
		return "", false
	}
	return mc.Value, true
}

// mfaExpired ends a pending sign-in that can no longer be completed and
// sends the script back to /login.
func (s *Server) mfaExpired(w http.ResponseWriter) {
	s.clearMFAChallenge(w)
	writeJSON(w, http.StatusUnauthorized, pageNext{Next: "/login?m=expired"})
}

// uiMFAPasskeyBegin starts confirming the pending sign-in with a passkey:
// the options for navigator.credentials.get, listing the user's passkeys.
func (s *Server) uiMFAPasskeyBegin(w http.ResponseWriter, r *http.Request) {
	challenge, ok := s.mfaPasskeyChallenge(w, r)
	if !ok {
		return
	}
	options, token, err := s.beginPasskeyMFA(r.Context(), challenge)
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.mfaExpired(w)
		return
	}
	if err != nil {
		s.writePasskeyMFAError(w, r, err)
		return
	}
	s.passkeys.setCeremonyAt(w, mfaPasskeyPath, token)
	writeOptions(w, options)
}

// uiMFAPasskeyFinish verifies the passkey, completes the sign-in and tells
// the script where to go, as the code form's redirect does.
func (s *Server) uiMFAPasskeyFinish(w http.ResponseWriter, r *http.Request) {
	challenge, ok := s.mfaPasskeyChallenge(w, r)
	if !ok {
		return
	}
	token, ok := ceremony(w, r)
	if !ok {
		return
	}
	var body json.RawMessage
	if !decodeJSON(w, r, &body) {
		return
	}
	s.passkeys.clearCeremonyAt(w, mfaPasskeyPath)
	res, err := s.finishPasskeyMFA(r, challenge, token, body)
	s.countLogin(metrics.LoginMFA, err)
	if errors.Is(err, auth.ErrUnauthenticated) {
		// The challenge expired or ran out of attempts: start again.
		s.mfaExpired(w)
		return
	}
	if err != nil {
		s.writePasskeyMFAError(w, r, err)
		return
	}
	s.startPageSession(w, res)
	writeJSON(w, http.StatusOK, pageNext{Next: nextStep(res.Identity)})
}
