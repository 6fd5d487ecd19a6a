package web

import (
	"encoding/base64"
	"errors"
	"html/template"
	"net/http"
	"strings"

	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/pwpolicy"
)

// accountNotices are the messages /account shows for its ?done= parameter.
var accountNotices = map[string]string{
	"password": "account.done.password",
	"mfa":      "account.done.mfa",
	"language": "account.done.language",
}

// uiAccount shows who is signed in, with links to the security pages.
func (s *Server) uiAccount(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	if key, ok := accountNotices[r.URL.Query().Get("done")]; ok {
		p.Notice = p.msg(key)
	}
	lang, err := s.auth.Language(r.Context(), sess.id.User.ID)
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	p.Data = lang
	p.Role = roleName(p, sess.id.Role.Name)
	p.MFA = sess.id.MFA
	p.SignedInAt = showTime(sess.id.AuthenticatedAt)
	s.render(w, r, http.StatusOK, "account", p)
}

// uiLanguage stores the language the user chose for the pages ("" follows
// the browser) and applies it to this browser at once; the other browsers
// of the user take it at their next page without a language of their own.
func (s *Server) uiLanguage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	lang := r.PostForm.Get("lang")
	if lang != "" {
		if lang = supportedLang(lang); lang == "" {
			s.uiErrorPage(w, r, p, http.StatusBadRequest, "error.bad_form")
			return
		}
	}
	if err := s.auth.SetLanguage(r.Context(), sess.event(r), sess.id.User.ID, lang); err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	s.setLangCookie(w, lang)
	uiRedirect(w, r, "/account?done=language")
}

// roleName is the translated name of a known role, else the name itself.
func roleName(p *page, role string) string {
	if key := "role." + role; p.loc.has(key) {
		return p.msg(key)
	}
	return role
}

// uiTOTPSetup starts TOTP enrollment: a new secret, shown as a QR code and
// as text. Loading the page again replaces an unconfirmed secret.
func (s *Server) uiTOTPSetup(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account/mfa")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	en, err := s.auth.StartTOTP(r.Context(), sess.event(r), sess.id.User.ID)
	if errors.Is(err, auth.ErrFactorExists) {
		p.Notice, p.Path = p.msg("setup.exists"), "/account/mfa"
		s.render(w, r, http.StatusOK, "mfa_exists", p)
		return
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	p.MFARequired = sess.id.MFAEnrollment
	p.QR = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))
	if strings.HasPrefix(en.URL, "otpauth://totp/") {
		p.OTPAuth = template.URL(en.URL)
	}
	p.Secret = groupBy4(en.Secret)
	s.render(w, r, http.StatusOK, "mfa_setup", p)
}

// groupBy4 splits a secret into groups of four for reading and typing.
func groupBy4(secret string) string {
	var b strings.Builder
	for i, c := range secret {
		if i > 0 && i%4 == 0 {
			b.WriteByte(' ')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// uiTOTPConfirm checks the first code and shows the recovery codes, once.
func (s *Server) uiTOTPConfirm(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	p.MFARequired = sess.id.MFAEnrollment
	code := strings.TrimSpace(r.PostForm.Get("code"))
	if code == "" {
		p.Error = p.msg("mfa.missing")
		s.render(w, r, http.StatusOK, "mfa_confirm", p)
		return
	}
	codes, nid, token, csrf, err := s.auth.ConfirmTOTP(r.Context(), sess.event(r), sess.token, code)
	switch {
	case errors.Is(err, auth.ErrBadCode):
		p.Error = p.msg("mfa.bad_code")
		s.render(w, r, http.StatusOK, "mfa_confirm", p)
		return
	case errors.Is(err, auth.ErrNoFactor):
		p.Error, p.ShowRestart = p.msg("setup.no_factor"), true
		s.render(w, r, http.StatusOK, "mfa_confirm", p)
		return
	case err != nil:
		s.uiInternal(w, r, p, err)
		return
	}
	// A new session (the old one ended): the forms of this page need its
	// CSRF token.
	s.setSession(w, token, csrf)
	user := nid.User
	p.User, p.CSRF, p.Restricted, p.Codes = &user, csrf, nid.Restricted, codes
	s.render(w, r, http.StatusOK, "recovery_codes", p)
}

func (s *Server) uiPasswordPage(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account/password")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	p.MustChange, p.MinLen = sess.id.MustChangePassword, pwpolicy.MinLen
	s.render(w, r, http.StatusOK, "password", p)
}

// uiPassword changes the password. Every session of the user ends and this
// browser gets a new one.
func (s *Server) uiPassword(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account/password")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	p.MustChange, p.MinLen = sess.id.MustChangePassword, pwpolicy.MinLen
	current, next, confirm := r.PostForm.Get("current_password"), r.PostForm.Get("new_password"), r.PostForm.Get("confirm_password")
	switch {
	case current == "" || next == "":
		p.Error = p.msg("password.missing")
	case next != confirm:
		p.Error = p.msg("password.mismatch")
	}
	if p.Error != "" {
		s.render(w, r, http.StatusOK, "password", p)
		return
	}
	token, csrf, err := s.auth.ChangePassword(r.Context(), sess.event(r), sess.token, current, next)
	if err != nil {
		switch {
		case errors.Is(err, auth.ErrBadCredentials):
			p.Error = p.msg("password.wrong_current")
		case errors.Is(err, auth.ErrInvalid):
			p.Error = passwordMessage(p, err)
		default:
			s.uiInternal(w, r, p, err)
			return
		}
		s.render(w, r, http.StatusOK, "password", p)
		return
	}
	s.setSession(w, token, csrf)
	nid, _, err := s.auth.Session(r.Context(), token)
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	if nid.Restricted {
		uiRedirect(w, r, nextStep(nid))
		return
	}
	uiRedirect(w, r, "/account?done=password")
}

// passwordProblems map the reasons of the password policy and of
// ChangePassword (English sentences at the end of the error) to messages.
var passwordProblems = []struct{ suffix, key string }{
	{"use at least 12 characters", "password.weak.short"},
	{"use at most 128 characters", "password.weak.long"},
	{"the password contains invalid characters", "password.weak.invalid"},
	{"do not use a repeated pattern or an obvious sequence", "password.weak.trivial"},
	{"do not use your name or email in your password", "password.weak.personal"},
	{"this password is too common", "password.weak.common"},
	{"the new password must differ from the current one", "password.same"},
}

// passwordProblem returns the message key for a refused new password.
func passwordProblem(err error) string {
	for _, pp := range passwordProblems {
		if strings.HasSuffix(err.Error(), pp.suffix) {
			return pp.key
		}
	}
	return "password.weak"
}

// passwordMessage translates why a new password was refused.
func passwordMessage(p *page, err error) string {
	switch key := passwordProblem(err); key {
	case "password.weak.short":
		return p.msg(key, pwpolicy.MinLen)
	case "password.weak.long":
		return p.msg(key, pwpolicy.MaxLen)
	default:
		return p.msg(key)
	}
}

// sessionRow is one session as the sessions page shows it.
type sessionRow struct {
	ID, IP, UserAgent, Created, LastSeen string
	MFA, Current                         bool
}

// uiSessions lists the user's live sessions, the current one marked.
func (s *Server) uiSessions(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "/account/sessions")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	list, err := s.auth.Sessions(r.Context(), sess.id.User.ID, sess.token)
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	for _, x := range list {
		p.Sessions = append(p.Sessions, sessionRow{ID: x.ID, IP: x.IP, UserAgent: shortAgent(x.UserAgent),
			Created: showTime(x.CreatedAt), LastSeen: showTime(x.LastSeenAt), MFA: x.MFA, Current: x.Current})
	}
	if r.URL.Query().Get("done") == "revoked" {
		p.Notice = p.msg("sessions.done")
	}
	s.render(w, r, http.StatusOK, "sessions", p)
}

// shortAgent bounds a user agent for display.
func shortAgent(ua string) string {
	const n = 120
	if len(ua) <= n {
		return ua
	}
	return truncateUTF8(ua, n) + "…"
}

func truncateUTF8(s string, n int) string {
	for n > 0 && n < len(s) && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// uiRevokeSession ends one of the user's sessions; ending the current one
// signs this browser out.
func (s *Server) uiRevokeSession(w http.ResponseWriter, r *http.Request) {
	p := s.newPage(w, r, "")
	sess, ok := s.session(w, r, p)
	if !ok {
		return
	}
	sid := r.PathValue("sid")
	list, err := s.auth.Sessions(r.Context(), sess.id.User.ID, sess.token)
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	current := false
	for _, x := range list {
		current = current || (x.Current && x.ID == sid)
	}
	err = s.auth.RevokeSession(r.Context(), sess.event(r), sess.id.User.ID, sid)
	if errors.Is(err, auth.ErrNotFound) {
		p.BackHref = "/account/sessions"
		s.uiErrorPage(w, r, p, http.StatusNotFound, "error.no_session")
		return
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return
	}
	if current {
		s.clearSession(w)
		uiRedirect(w, r, "/login?m=signed_out")
		return
	}
	uiRedirect(w, r, "/account/sessions?done=revoked")
}
