package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/metrics"
)

// loginNotices are the messages /login shows for its ?m= parameter; any
// other value shows nothing.
var loginNotices = map[string]string{
	"expired":    "login.expired",
	"signed_out": "login.signed_out",
}

func anonymousEvent(r *http.Request) audit.Event {
	return audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
}

func (s *Server) uiLoginPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/login")
	p.CSRF = s.loginCSRF(w, r)
	if key, ok := loginNotices[r.URL.Query().Get("m")]; ok {
		p.Notice = p.msg(key)
	}
	s.render(w, r, http.StatusOK, "login", p)
}

func (s *Server) uiLogin(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/login")
	if !s.checkLoginForm(w, r, p) {
		return
	}
	p.CSRF = r.PostForm.Get(csrfField)
	email, password := strings.TrimSpace(r.PostForm.Get("email")), r.PostForm.Get("password")
	p.Email = email
	if email == "" || password == "" {
		p.Error = p.msg("login.missing")
		s.render(w, r, http.StatusOK, "login", p)
		return
	}
	res, err := s.auth.Login(r.Context(), anonymousEvent(r), email, password)
	s.countFirstFactor(metrics.LoginPassword, res, err)
	if err != nil {
		s.loginFailed(w, r, p, "login", err)
		return
	}
	if res.Challenge != "" {
		s.setMFAChallenge(w, res)
		uiRedirect(w, r, "/login/mfa")
		return
	}
	s.signedIn(w, r, res)
}

// signedIn sets the cookies of a new session and sends the browser on.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, res auth.LoginResult) {
	s.startPageSession(w, res)
	uiRedirect(w, r, nextStep(res.Identity))
}

// startPageSession sets the cookies of a new session and removes those of
// the sign-in.
func (s *Server) startPageSession(w http.ResponseWriter, res auth.LoginResult) {
	s.setSession(w, res.Token, res.CSRF)
	s.setCookie(w, loginCSRFCookie, "", loginPath, -1, http.SameSiteStrictMode)
	s.clearMFAChallenge(w)
}

// loginFailed shows the sign-in page (name) again with what went wrong.
// Wrong passwords and unknown accounts give the same message.
func (s *Server) loginFailed(w http.ResponseWriter, r *http.Request, p *page, name string, err error) {
	var locked *auth.LockedError
	switch {
	case errors.As(err, &locked):
		w.Header().Set("Retry-After", strconv.Itoa(max(int(math.Ceil(locked.RetryAfter.Seconds())), 1)))
		minutes := max(int(math.Ceil(locked.RetryAfter.Minutes())), 1)
		key := "login.locked.other"
		if minutes == 1 {
			key = "login.locked.one"
		}
		p.Error = p.msg(key, minutes)
		s.render(w, r, http.StatusTooManyRequests, name, p)
	case errors.Is(err, auth.ErrBadCredentials):
		p.Error = p.msg("login.bad_credentials")
		s.render(w, r, http.StatusOK, name, p)
	case errors.Is(err, auth.ErrBadCode):
		p.Error = p.msg("mfa.bad_code")
		s.render(w, r, http.StatusOK, name, p)
	case errors.Is(err, access.ErrNetworkPolicy):
		p.Error = p.msg("login.policy")
		s.render(w, r, http.StatusForbidden, name, p)
	default:
		s.uiInternal(w, r, p, err)
	}
}

// uiMFAPage asks for the second factor of a pending sign-in.
func (s *Server) uiMFAPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/login/mfa")
	c, err := r.Cookie(mfaCookie)
	if err != nil || c.Value == "" {
		uiRedirect(w, r, "/login")
		return
	}
	p.PasskeyMFA, err = s.passkeyOffered(r.Context(), c.Value)
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.clearMFAChallenge(w)
		uiRedirect(w, r, "/login?m=expired")
		return
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	p.PasskeyOnly = p.PasskeyMFA && !offersCode(r)
	p.CSRF = s.loginCSRF(w, r)
	p.ShowRecovery = r.URL.Query().Get("method") == "recovery"
	s.render(w, r, http.StatusOK, "login_mfa", p)
}

// passkeyOffered reports whether the pending sign-in of challenge can be
// confirmed with a passkey: passkeys are configured and the user has one,
// as the challenge's methods then include "passkey".
func (s *Server) passkeyOffered(ctx context.Context, challenge string) (bool, error) {
	if s.passkeys == nil {
		return false, nil
	}
	userID, err := s.auth.ChallengeUser(ctx, challenge)
	if err != nil {
		return false, err
	}
	n, err := s.passkeys.Svc.Count(ctx, userID)
	return n > 0, err
}

func (s *Server) uiMFA(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/login/mfa")
	if !s.checkLoginForm(w, r, p) {
		return
	}
	p.CSRF = r.PostForm.Get(csrfField)
	c, err := r.Cookie(mfaCookie)
	if err != nil || c.Value == "" {
		uiRedirect(w, r, "/login?m=expired")
		return
	}
	// An expired challenge is left to CompleteMFA, which ends the sign-in.
	if p.PasskeyMFA, err = s.passkeyOffered(r.Context(), c.Value); err != nil && !errors.Is(err, auth.ErrUnauthenticated) {
		s.uiInternal(w, r, p, err)
		return
	}
	p.PasskeyOnly = p.PasskeyMFA && !offersCode(r)
	code := strings.TrimSpace(r.PostForm.Get("code"))
	p.ShowRecovery = r.PostForm.Get("method") == "recovery"
	if code == "" {
		p.Error = p.msg("mfa.missing")
		s.render(w, r, http.StatusOK, "login_mfa", p)
		return
	}
	res, err := s.auth.CompleteMFA(r.Context(), anonymousEvent(r), c.Value, code)
	s.countLogin(metrics.LoginMFA, err)
	if errors.Is(err, auth.ErrUnauthenticated) {
		// The challenge expired or ran out of attempts: start again.
		s.clearMFAChallenge(w)
		uiRedirect(w, r, "/login?m=expired")
		return
	}
	if err != nil {
		s.loginFailed(w, r, p, "login_mfa", err)
		return
	}
	s.signedIn(w, r, res)
}

// uiLogout ends the session.
func (s *Server) uiLogout(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "")
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		s.clearSession(w)
		uiRedirect(w, r, "/login")
		return
	}
	id, csrfHash, err := s.auth.Session(r.Context(), c.Value)
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.clearSession(w)
		uiRedirect(w, r, "/login?m=signed_out")
		return
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	if !s.parseForm(w, r, p) {
		return
	}
	form := r.PostForm.Get(csrfField)
	cc, err := r.Cookie(csrfCookie)
	if err != nil || !equalTokens(form, cc.Value) || !auth.CheckCSRF(form, csrfHash) {
		s.uiErrorPage(w, r, p, http.StatusForbidden, "error.csrf")
		return
	}
	ev := audit.Event{Actor: id.Actor(), IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context()), ObjectType: "user", ObjectID: id.User.ID}
	if err := s.auth.Logout(r.Context(), ev, c.Value); err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	s.clearSession(w)
	uiRedirect(w, r, "/login?m=signed_out")
}
