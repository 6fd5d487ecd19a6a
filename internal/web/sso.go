package web

import (
	"net/http"

	"github.com/custos/custos/internal/audit"
)

// mfaCookie carries a pending second-factor challenge to the login page.
const ssoMFACookie = "custos_mfa" // the login page's challenge cookie (ui.go: mfaCookie)

func (s *Server) ssoReady(w http.ResponseWriter, r *http.Request) bool {
	if s.sso == nil {
		writeProblem(w, r, http.StatusServiceUnavailable, "single sign-on is not configured on this server", nil)
		return false
	}
	return true
}

// ssoLogin sends the browser to the identity provider.
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if !s.ssoReady(w, r) {
		return
	}
	u, err := s.sso.Begin(r.Context())
	if err != nil {
		s.log.WarnContext(r.Context(), "single sign-on", "request_id", requestID(r.Context()), "err", err)
		writeProblem(w, r, http.StatusBadGateway, "the identity provider cannot be reached; try again later", nil)
		return
	}
	http.Redirect(w, r, u, http.StatusFound)
}

// ssoCallback completes the login the identity provider sends back: a
// session (with MFA when the provider asserted it), or the local second
// factor when the user has one and the provider asserted none.
func (s *Server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	if !s.ssoReady(w, r) {
		return
	}
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		writeProblem(w, r, http.StatusUnauthorized, "the identity provider refused the sign-in", nil)
		return
	}
	ev := audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	res, err := s.sso.Finish(r.Context(), ev, q.Get("state"), q.Get("code"))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Challenge != "" {
		http.SetCookie(w, &http.Cookie{Name: ssoMFACookie, Value: res.Challenge, Path: "/login", MaxAge: 300, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
		http.Redirect(w, r, "/login/mfa", http.StatusSeeOther)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: res.Token, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	next := "/account"
	switch {
	case res.Identity.MustChangePassword:
		next = "/account/password"
	case res.Identity.MFAEnrollment:
		next = "/account/mfa"
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
}
