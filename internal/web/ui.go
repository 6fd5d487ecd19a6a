package web

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
)

// The identity pages: sign-in (with the second factor), the account page,
// TOTP enrollment with recovery codes, password change and the list of
// sessions. They are rendered on the server with html/template and carry no
// inline script or style, so they keep a strict Content-Security-Policy.
//
// CSRF: before sign-in, the forms carry a random token that must equal the
// custos_login_csrf cookie (SameSite=Strict, path /login). After sign-in,
// the session's CSRF token is kept in the custos_csrf cookie (HttpOnly,
// SameSite=Strict) so the pages can put it into their forms; a POST must
// carry it in the form, equal to the cookie and matching the session's hash.
// Every POST also passes net/http's cross-origin check (Sec-Fetch-Site and
// Origin).
//
// Passkeys: the pages that use them load /static/passkey.js and
// assets/passkey-ui.js, which wires up elements marked data-passkey. A
// script that calls the server with fetch takes the page's CSRF token from
// the element's data-csrf attribute (the same token as the forms' hidden
// field, never in a URL) and sends it as X-CSRF-Token.

// UIRoute is one route of the identity pages.
type UIRoute struct {
	Method, Pattern string
	Handler         http.HandlerFunc
}

// uiRoutes lists the identity pages and their assets.
func (s *Server) uiRoutes() []UIRoute {
	return []UIRoute{
		{Method: "GET", Pattern: "/login", Handler: s.uiLoginPage},
		{Method: "POST", Pattern: "/login", Handler: s.uiLogin},
		{Method: "GET", Pattern: "/login/mfa", Handler: s.uiMFAPage},
		{Method: "POST", Pattern: "/login/mfa", Handler: s.uiMFA},
		{Method: "POST", Pattern: "/login/mfa/passkey/begin", Handler: s.uiMFAPasskeyBegin},
		{Method: "POST", Pattern: "/login/mfa/passkey/finish", Handler: s.uiMFAPasskeyFinish},
		{Method: "GET", Pattern: "/account", Handler: s.uiAccount},
		{Method: "POST", Pattern: "/logout", Handler: s.uiLogout},
		{Method: "GET", Pattern: "/account/mfa", Handler: s.uiTOTPSetup},
		{Method: "POST", Pattern: "/account/mfa/confirm", Handler: s.uiTOTPConfirm},
		{Method: "GET", Pattern: "/account/password", Handler: s.uiPasswordPage},
		{Method: "POST", Pattern: "/account/password", Handler: s.uiPassword},
		{Method: "POST", Pattern: "/account/language", Handler: s.uiLanguage},
		{Method: "GET", Pattern: "/account/sessions", Handler: s.uiSessions},
		{Method: "POST", Pattern: "/account/sessions/{sid}/revoke", Handler: s.uiRevokeSession},
		{Method: "GET", Pattern: "/account/passkeys", Handler: s.uiPasskeys},
		{Method: "POST", Pattern: "/account/passkeys/{id}/remove", Handler: s.uiRemovePasskey},
		{Method: "GET", Pattern: "/assets/{file}", Handler: uiAsset},
	}
}

// allUIRoutes are the identity pages and the CRM's pages, area by area.
func (s *Server) allUIRoutes() []UIRoute {
	return slices.Concat(s.uiRoutes(), s.uiAppRoutes(), s.uiCustomerRoutes(), s.uiAdminRoutes(), s.uiSecurityRoutes(), s.uiDataRoutes())
}

// Cookies and form fields of the pages.
const (
	csrfCookie       = "custos_csrf"        // the session's CSRF token
	loginCSRFCookie  = "custos_login_csrf"  // the pre-session CSRF token
	mfaCookie        = "custos_mfa"         // the pending second-factor challenge
	mfaMethodsCookie = "custos_mfa_methods" // the second factors it can be answered with
	loginPath        = "/login"             // path of the pre-session cookies
	csrfField        = "csrf_token"

	// uiCSP is the Content-Security-Policy of every page. The passkey
	// scripts (files, never inline) call the server with fetch: connect-src.
	uiCSP = "default-src 'none'; style-src 'self'; img-src 'self' data:; script-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

	maxFormBytes = 64 << 10
	// maxUploadBytes bounds a multipart form (a file to import). It is
	// parsed in memory: a larger part would go to a temporary file, and an
	// upload of customer data must not touch the disk unencrypted.
	maxUploadBytes = 16 << 20
)

//go:embed templates/*.html
var uiTemplateFiles embed.FS

// uiTemplates maps a page name to its template (the layout plus the page).
// They are parsed once and never change.
var uiTemplates = mustParseTemplates()

func mustParseTemplates() map[string]*template.Template {
	names, err := fs.Glob(uiTemplateFiles, "templates/*.html")
	if err != nil {
		panic(err)
	}
	out := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if name == "layout" {
			continue
		}
		t := template.Must(template.New(name).Funcs(uiFuncs).
			ParseFS(uiTemplateFiles, "templates/layout.html", n))
		out[name] = t
	}
	return out
}

// page is what every template gets. Messages come from the T method, never
// from the templates themselves.
type page struct {
	loc *locale

	Lang       string // the page's language tag
	Path       string // GET path for the language switch; "" hides it
	CSRF       string // the token for the page's forms
	User       *auth.User
	Restricted bool   // the session may only lift its restriction
	Error      string // translated
	Notice     string // translated

	// Page-specific data.
	Email        string
	Role         string
	MFA          bool
	MFARequired  bool
	SignedInAt   string
	QR           template.URL
	OTPAuth      template.URL
	Secret       string
	Codes        []string
	Sessions     []sessionRow
	MinLen       int
	MustChange   bool
	BackHref     string
	RequestID    string
	ShowRestart  bool
	ShowRecovery bool

	// Passkeys.
	PasskeysOn  bool // the server has passkeys configured
	PasskeyMFA  bool // the pending sign-in can be confirmed with a passkey
	PasskeyOnly bool // ... and with nothing else
	Passkeys    []passkeyRow
	MaxNameLen  int
	MaxPerUser  int

	// The CRM's pages (ui_app.go).
	Nav       []navItem         // the main navigation, by permission
	Active    string            // the nav item of this page
	Watermark bool              // tile the viewer's name and the date over the page
	Principal *access.Principal // what the viewer may do
	Today     string            // YYYY-MM-DD in the company's time zone
	Data      any               // the page's own data
	Errors    map[string]string // translated validation messages, by form field
	Card      bool              // an identity page in the frame: its content in a card
	zone      *time.Location
}

// T translates key in the page's language.
func (p *page) T(key string, args ...any) (string, error) { return p.loc.T(key, args...) }

// OtherLang is the language the switch link offers.
func (p *page) OtherLang() string {
	if p.Lang == langZH {
		return langEN
	}
	return langZH
}

// msg translates a message chosen by Go code; a missing key shows the key
// (the catalogue test catches it before that can happen).
func (p *page) msg(key string, args ...any) string {
	m, err := p.loc.T(key, args...)
	if err != nil {
		return key
	}
	return m
}

// newPage starts a page in the request's language (see pickLang).
func (s *Server) newPage(w http.ResponseWriter, r *http.Request, path string) *page {
	loc := s.pickLang(w, r)
	return &page{loc: loc, Lang: loc.tag, Path: path, RequestID: requestID(r.Context()), PasskeysOn: s.passkeys != nil}
}

// setPageHeaders sets the headers every page and redirect of the pages gets.
func setPageHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", uiCSP)
	h.Set("Cache-Control", "no-store")
}

// render executes a page into a buffer and sends it with status.
func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p *page) {
	t, ok := uiTemplates[name]
	if !ok {
		s.uiInternal(w, r, p, fmt.Errorf("no template %q", name))
		return
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		if name == "error" {
			s.log.ErrorContext(r.Context(), "render error page", "request_id", requestID(r.Context()), "err", err)
			setPageHeaders(w)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		s.uiInternal(w, r, p, fmt.Errorf("render %s: %w", name, err))
		return
	}
	setPageHeaders(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Language", p.Lang)
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// uiRedirect answers 303 See Other to a path of this site.
func uiRedirect(w http.ResponseWriter, r *http.Request, to string) {
	setPageHeaders(w)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// uiErrorPage shows a message (a catalogue key) with status.
func (s *Server) uiErrorPage(w http.ResponseWriter, r *http.Request, p *page, status int, key string, args ...any) {
	p.Error = p.msg(key, args...)
	if p.BackHref == "" {
		p.BackHref = "/account"
		if p.User == nil {
			p.BackHref = "/login"
		}
	}
	p.Path = "" // the switch link would repeat the failed request
	s.render(w, r, status, "error", p)
}

// uiInternal logs err and shows "internal error" with the request id; the
// details stay in the log.
func (s *Server) uiInternal(w http.ResponseWriter, r *http.Request, p *page, err error) {
	s.log.ErrorContext(r.Context(), "page failed", "request_id", requestID(r.Context()), "route", routeOf(r), "err", err)
	s.uiErrorPage(w, r, p, http.StatusInternalServerError, "error.internal", requestID(r.Context()))
}

// parseForm reads a urlencoded form of bounded size after the cross-origin
// check. It answers itself and returns false on failure.
func (s *Server) parseForm(w http.ResponseWriter, r *http.Request, p *page) bool {
	if err := new(http.CrossOriginProtection).Check(r); err != nil {
		s.uiErrorPage(w, r, p, http.StatusForbidden, "error.csrf")
		return false
	}
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "multipart/form-data" {
		// A file upload: only the import takes one (its session is
		// resolved before this), bounded, kept in memory, never on disk.
		// Anywhere else a multipart body is refused unread.
		if !uploadRoutes[r.Pattern] {
			s.uiErrorPage(w, r, p, http.StatusUnsupportedMediaType, "error.bad_form")
			return false
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxUploadBytes)
		if err := r.ParseMultipartForm(maxUploadBytes); err != nil {
			s.uiErrorPage(w, r, p, http.StatusBadRequest, "error.bad_form")
			return false
		}
		return true
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.uiErrorPage(w, r, p, http.StatusBadRequest, "error.bad_form")
		return false
	}
	return true
}

// uploadRoutes are the routes whose forms may carry a file.
var uploadRoutes = map[string]bool{"POST /import": true}

func equalTokens(a, b string) bool {
	return a != "" && len(a) == len(b) && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// newToken returns 256 random bits, base64url-encoded.
func newToken() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// --- cookies ---------------------------------------------------------------

func (s *Server) setCookie(w http.ResponseWriter, name, value, path string, maxAge int, site http.SameSite) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: s.secure, SameSite: site})
}

// setSession sets the session cookie exactly as startSession does, and the
// session's CSRF token for the pages' forms.
func (s *Server) setSession(w http.ResponseWriter, token, csrf string) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: token, Path: "/", HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	s.setCookie(w, csrfCookie, csrf, "/", 0, http.SameSiteStrictMode)
}

// clearSession removes every cookie of a sign-in.
func (s *Server) clearSession(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	s.setCookie(w, csrfCookie, "", "/", -1, http.SameSiteStrictMode)
	s.clearMFAChallenge(w)
}

// setMFAChallenge keeps the challenge of a sign-in that waits for its second
// factor, with the methods that can answer it (so that the page offers
// those): five minutes, as long as the challenge lives.
func (s *Server) setMFAChallenge(w http.ResponseWriter, res auth.LoginResult) {
	maxAge := int((5 * time.Minute).Seconds())
	s.setCookie(w, mfaCookie, res.Challenge, loginPath, maxAge, http.SameSiteStrictMode)
	s.setCookie(w, mfaMethodsCookie, strings.Join(res.Methods, ","), loginPath, maxAge, http.SameSiteStrictMode)
}

// clearMFAChallenge removes the cookies of a pending second factor.
func (s *Server) clearMFAChallenge(w http.ResponseWriter) {
	s.setCookie(w, mfaCookie, "", loginPath, -1, http.SameSiteStrictMode)
	s.setCookie(w, mfaMethodsCookie, "", loginPath, -1, http.SameSiteStrictMode)
}

// offersCode reports whether the pending sign-in can be answered with a
// code (TOTP or recovery). Only the page's choice of forms depends on it;
// without the cookie it says yes.
func offersCode(r *http.Request) bool {
	c, err := r.Cookie(mfaMethodsCookie)
	if err != nil || c.Value == "" {
		return true
	}
	return slices.Contains(strings.Split(c.Value, ","), auth.MethodTOTP)
}

// loginCSRF returns the pre-session CSRF token of the browser, setting a new
// one when it has none (or a malformed one).
func (s *Server) loginCSRF(w http.ResponseWriter, r *http.Request) string {
	if c, err := r.Cookie(loginCSRFCookie); err == nil && len(c.Value) == 43 {
		if _, err := base64.RawURLEncoding.DecodeString(c.Value); err == nil {
			return c.Value
		}
	}
	tok := newToken()
	s.setCookie(w, loginCSRFCookie, tok, loginPath, 0, http.SameSiteStrictMode)
	return tok
}

// checkLoginForm parses a pre-session form and checks its CSRF token
// against the cookie. It answers itself and returns false on failure.
func (s *Server) checkLoginForm(w http.ResponseWriter, r *http.Request, p *page) bool {
	if !s.parseForm(w, r, p) {
		return false
	}
	c, err := r.Cookie(loginCSRFCookie)
	if err != nil || !equalTokens(r.PostForm.Get(csrfField), c.Value) {
		p.BackHref = "/login"
		s.uiErrorPage(w, r, p, http.StatusForbidden, "error.csrf")
		return false
	}
	return true
}

// --- the signed-in user ----------------------------------------------------

// uiSession is the session behind a page.
type uiSession struct {
	token string
	id    auth.Identity
	// principal is the identity as the guarded path sees it (nil for a
	// restricted session, which has no navigation to build).
	principal *access.Principal
}

func (u uiSession) event(r *http.Request) audit.Event {
	return audit.Event{Actor: u.id.Actor(), IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
}

// session resolves the session of a page request. Without a live session it
// sends the browser to /login. A POST must carry the CSRF token (form field
// equal to the custos_csrf cookie and to the session's token). The role's
// address allowlist and login hours hold as for the API. It answers itself
// and returns false when the request cannot go on.
func (s *Server) session(w http.ResponseWriter, r *http.Request, p *page) (uiSession, bool) {
	ctx := r.Context()
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		uiRedirect(w, r, "/login")
		return uiSession{}, false
	}
	id, csrfHash, err := s.auth.Session(ctx, c.Value)
	if errors.Is(err, auth.ErrUnauthenticated) {
		s.clearSession(w)
		uiRedirect(w, r, "/login?m=expired")
		return uiSession{}, false
	}
	if err != nil {
		s.uiInternal(w, r, p, err)
		return uiSession{}, false
	}
	// The CSRF cookie is set by the pages' own sign-in; a session opened
	// elsewhere (the JSON API) has none, and its token cannot be recovered.
	cc, err := r.Cookie(csrfCookie)
	haveCSRF := err == nil && auth.CheckCSRF(cc.Value, csrfHash)
	if r.Method == http.MethodPost {
		if !s.parseForm(w, r, p) {
			return uiSession{}, false
		}
		if !haveCSRF || !equalTokens(r.PostForm.Get(csrfField), cc.Value) || !auth.CheckCSRF(r.PostForm.Get(csrfField), csrfHash) {
			s.uiErrorPage(w, r, p, http.StatusForbidden, "error.csrf")
			return uiSession{}, false
		}
	} else if !haveCSRF {
		uiRedirect(w, r, "/login")
		return uiSession{}, false
	}
	if err := s.requestPolicy(r, id); err != nil {
		if !errors.Is(err, access.ErrNetworkPolicy) {
			s.uiInternal(w, r, p, err)
			return uiSession{}, false
		}
		p.BackHref = "/login"
		s.uiErrorPage(w, r, p, http.StatusForbidden, "login.policy")
		return uiSession{}, false
	}
	// A restricted session reaches only the pages that lift its restriction
	// (and sign-out): one rule here for every page, as the Enroll flag of the
	// API routes is for the API.
	if id.Restricted && !restrictedMayUse(id, r.URL.Path) {
		uiRedirect(w, r, nextStep(id))
		return uiSession{}, false
	}
	user := id.User
	p.User, p.CSRF, p.Restricted = &user, cc.Value, id.Restricted
	s.userLang(w, r, p, user.ID)
	sess := uiSession{token: c.Value, id: id}
	if !id.Restricted {
		// The account pages sit in the CRM's frame, with its navigation;
		// appPage reuses the principal and sets the page's own.
		pr, err := s.crm.Principal(ctx, access.Subject{UserID: id.User.ID, Actor: id.Actor(), Role: id.User.Role})
		if err != nil {
			s.uiInternal(w, r, p, err)
			return uiSession{}, false
		}
		p.Nav, p.Card, sess.principal = navFor(pr), true, &pr
	}
	return sess, true
}

// restrictedMayUse lists the pages a restricted session may use: a reset
// password must be changed before anything else; a missing second factor
// must be enrolled (the password may be changed too).
func restrictedMayUse(id auth.Identity, path string) bool {
	switch path {
	case "/logout", "/account/password":
		return true
	case "/account/mfa", "/account/mfa/confirm":
		return !id.MustChangePassword
	}
	return false
}

// nextStep is where a session goes after sign-in: the step that lifts its
// restriction (a reset password first), else the home page.
func nextStep(id auth.Identity) string {
	switch {
	case id.MustChangePassword:
		return "/account/password"
	case id.MFAEnrollment:
		return "/account/mfa"
	}
	return "/"
}

// chinaTime is the zone times are shown in: China has one zone, UTC+8,
// without daylight saving time, so no tz database is needed.
var chinaTime = time.FixedZone("UTC+8", 8*3600)

func showTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(chinaTime).Format("2006-01-02 15:04")
}
