package web

import (
	"fmt"
	"html/template"
	"net/http"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/metrics"
)

// ssoCookie ties a sign-in started here to the browser that returns.
const (
	ssoCookie = "custos_sso"
	ssoPath   = "/api/v1/auth/oidc/"
)

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
	u, binding, err := s.sso.Begin(r.Context())
	if err != nil {
		s.log.WarnContext(r.Context(), "single sign-on", "request_id", requestID(r.Context()), "err", err)
		writeProblem(w, r, http.StatusBadGateway, "the identity provider cannot be reached; try again later", nil)
		return
	}
	// Lax, not Strict: the identity provider sends the browser back with a
	// cross-site top-level GET, which carries Lax cookies.
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: binding, Path: ssoPath, MaxAge: 600, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
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
		s.metrics.Login(metrics.LoginSSO, metrics.LoginSSORefused)
		writeProblem(w, r, http.StatusUnauthorized, "the identity provider refused the sign-in", nil)
		return
	}
	binding := ""
	if c, err := r.Cookie(ssoCookie); err == nil {
		binding = c.Value
	}
	http.SetCookie(w, &http.Cookie{Name: ssoCookie, Value: "", Path: ssoPath, MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	ev := audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	res, err := s.sso.Finish(r.Context(), ev, q.Get("state"), q.Get("code"), binding)
	s.countFirstFactor(metrics.LoginSSO, res, err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Challenge != "" {
		s.setMFAChallenge(w, res)
		s.landing(w, "/login/mfa")
		return
	}
	s.setSession(w, res.Token, res.CSRF)
	next := "/account"
	switch {
	case res.Identity.MustChangePassword:
		next = "/account/password"
	case res.Identity.MFAEnrollment:
		next = "/account/mfa"
	}
	s.landing(w, next)
}

// landing answers the identity provider's redirect with a page of our own that
// forwards to next. The browser arrives here from another site, so it would
// not send our SameSite=Strict cookies on a plain redirect; a navigation that
// starts on this page is same-site and carries them. No script is needed.
func (s *Server) landing(w http.ResponseWriter, next string) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("Refresh", "0; url="+next)
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprintf(w, `<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0; url=%[1]s"><title>Custos</title><a href="%[1]s">Continue / 继续</a>`, template.HTMLEscapeString(next))
}
