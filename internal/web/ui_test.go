package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"html"
	"html/template"
	"image/png"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

const uiPassword = "correct horse battery"

type uiClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *uiClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *uiClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

type uiLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *uiLog) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *uiLog) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// uiHarness is a node in a temporary directory with the pages registered on
// a mux behind the server's middleware, as server.go will serve them.
type uiHarness struct {
	t      *testing.T
	n      *node.Node
	h      http.Handler
	clock  *uiClock
	log    *uiLog
	mu     sync.Mutex
	bodies []string // every page served
	// secrets must never appear in a page or the log: passwords, session
	// tokens and MFA challenges.
	secrets map[string]bool
}

func newUIHarness(t *testing.T) *uiHarness {
	t.Helper()
	return newUIHarnessWith(t, false)
}

// newUIHarnessWith is newUIHarness, with the node's passkey service when
// passkeys is set.
func newUIHarnessWith(t *testing.T, passkeys bool) *uiHarness {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	clock := &uiClock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}
	lg := &uiLog{}
	logger := slog.New(slog.NewJSONHandler(lg, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, Logger: logger, Now: clock.now, Auth: auth.Settings{DelayBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	for _, u := range []struct{ email, name, role string }{
		{"admin@example.com", "Ada Admin", "admin"},
		{"sales@example.com", "李雷", "sales"},
	} {
		if _, err := n.Auth.CreateUser(context.Background(), audit.Event{Actor: "test"}, auth.NewUser{Email: u.email, Name: u.name, Role: u.role, Password: uiPassword}); err != nil {
			t.Fatal(err)
		}
	}
	o := Options{Logger: logger, Now: clock.now}
	if passkeys {
		if n.Passkeys == nil {
			t.Fatal("the node has no passkey service")
		}
		o.Passkeys = n.Passkeys
	}
	s := New(n.DB, n.Auth, n.CRM, o)
	mux := http.NewServeMux()
	for _, rt := range s.allUIRoutes() {
		mux.HandleFunc(rt.Method+" "+rt.Pattern, rt.Handler)
	}
	h := &uiHarness{t: t, n: n, h: s.middleware(mux), clock: clock, log: lg, secrets: map[string]bool{uiPassword: true}}
	t.Cleanup(h.checkNoSecrets)
	return h
}

// checkNoSecrets runs at the end of every test: no page and no log line
// holds a password, a session token or an MFA challenge.
func (h *uiHarness) checkNoSecrets() {
	h.mu.Lock()
	defer h.mu.Unlock()
	logs := h.log.String()
	for sec := range h.secrets {
		for _, b := range h.bodies {
			if strings.Contains(b, sec) {
				h.t.Errorf("a page contains the secret %q:\n%s", sec, b)
			}
		}
		if strings.Contains(logs, sec) {
			h.t.Errorf("the log contains the secret %q", sec)
		}
	}
}

func (h *uiHarness) secret(s string) {
	h.mu.Lock()
	h.secrets[s] = true
	h.mu.Unlock()
}

// uiClient is a browser: it keeps cookies (by name, honouring their path)
// and sends its language.
type uiClient struct {
	h       *uiHarness
	lang    string
	header  map[string]string
	cookies map[string]*http.Cookie
}

func (h *uiHarness) client(acceptLanguage string) *uiClient {
	return &uiClient{h: h, lang: acceptLanguage, cookies: map[string]*http.Cookie{}}
}

func cookiePathMatch(reqPath, cookiePath string) bool {
	if cookiePath == "" {
		cookiePath = "/"
	}
	return reqPath == cookiePath || (strings.HasPrefix(reqPath, cookiePath) &&
		(strings.HasSuffix(cookiePath, "/") || reqPath[len(cookiePath)] == '/'))
}

func (c *uiClient) do(method, target string, form url.Values) *httptest.ResponseRecorder {
	c.h.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	r := httptest.NewRequest(method, target, body)
	if form != nil {
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if c.lang != "" {
		r.Header.Set("Accept-Language", c.lang)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	for _, ck := range c.cookies {
		if cookiePathMatch(r.URL.Path, ck.Path) {
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	w := httptest.NewRecorder()
	c.h.h.ServeHTTP(w, r)
	for _, ck := range w.Result().Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
			continue
		}
		c.cookies[ck.Name] = ck
		if ck.Name == sessionCookie || ck.Name == mfaCookie {
			c.h.secret(ck.Value)
		}
	}
	c.h.mu.Lock()
	c.h.bodies = append(c.h.bodies, w.Body.String())
	c.h.mu.Unlock()
	return w
}

func (c *uiClient) get(target string) *httptest.ResponseRecorder { return c.do("GET", target, nil) }

var csrfInput = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := csrfInput.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no CSRF field in the page: %s", w.Body)
	}
	return m[1]
}

// postForm loads page, then posts form with the page's CSRF token to action.
func (c *uiClient) postForm(page, action string, form url.Values) *httptest.ResponseRecorder {
	c.h.t.Helper()
	w := c.get(page)
	if w.Code != http.StatusOK {
		c.h.t.Fatalf("GET %s: %d %s", page, w.Code, w.Body)
	}
	if form == nil {
		form = url.Values{}
	}
	form.Set(csrfField, csrfOf(c.h.t, w))
	return c.do("POST", action, form)
}

func (c *uiClient) login(email, password string) *httptest.ResponseRecorder {
	c.h.t.Helper()
	return c.postForm("/login", "/login", url.Values{"email": {email}, "password": {password}})
}

func wantRedirect(t *testing.T, w *httptest.ResponseRecorder, to string) {
	t.Helper()
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != to {
		t.Fatalf("got %d Location=%q, want 303 to %s: %s", w.Code, w.Header().Get("Location"), to, w.Body)
	}
}

func wantBody(t *testing.T, w *httptest.ResponseRecorder, status int, want ...string) {
	t.Helper()
	if w.Code != status {
		t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
	}
	text := html.UnescapeString(w.Body.String())
	for _, s := range want {
		if !strings.Contains(w.Body.String(), s) && !strings.Contains(text, s) {
			t.Errorf("page lacks %q: %s", s, w.Body)
		}
	}
}

var (
	scriptTag   = regexp.MustCompile(`(?i)<script\b[^>]*>`)
	styleAttr   = regexp.MustCompile(`(?i)\sstyle\s*=`)
	handlerAttr = regexp.MustCompile(`(?i)\son[a-z]+\s*=`)
)

// checkPageHeaders: the strict CSP, no caching, HTML, and nothing inline
// that the CSP would block.
func checkPageHeaders(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Content-Security-Policy"); got != uiCSP {
		t.Errorf("CSP %q, want %q", got, uiCSP)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	if got := w.Header().Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	body := w.Body.String()
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("inline script %q", tag)
		}
	}
	if styleAttr.MatchString(body) || strings.Contains(strings.ToLower(body), "<style") {
		t.Errorf("inline style in the page: %s", body)
	}
	if handlerAttr.MatchString(body) {
		t.Errorf("inline event handler in the page: %s", body)
	}
}

func cookieOf(w *httptest.ResponseRecorder, name string) *http.Cookie {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c
		}
	}
	return nil
}

func TestUILoginPageLanguageAndHeaders(t *testing.T) {
	h := newUIHarness(t)
	for _, tc := range []struct {
		name, target, acceptLanguage, cookie string
		want, notWant                        []string
	}{
		{name: "default Chinese", target: "/login", want: []string{`lang="zh-CN"`, "登录", `autocomplete="username"`, `autocomplete="current-password"`, `?lang=en"`}, notWant: []string{"Sign in"}},
		{name: "Accept-Language en", target: "/login", acceptLanguage: "en", want: []string{`lang="en"`, "Sign in", `?lang=zh-CN"`}, notWant: []string{"登录"}},
		{name: "Accept-Language en-US list", target: "/login", acceptLanguage: "en-US,en;q=0.9", want: []string{"Sign in"}},
		{name: "Accept-Language zh-CN over en", target: "/login", acceptLanguage: "zh-CN,zh;q=0.9,en;q=0.8", want: []string{"登录"}},
		{name: "unsupported language: Chinese", target: "/login", acceptLanguage: "fr-FR", want: []string{"登录"}},
		{name: "malformed Accept-Language: Chinese", target: "/login", acceptLanguage: ";;;q=x", want: []string{"登录"}},
		{name: "switch link to English", target: "/login?lang=en", want: []string{"Sign in"}},
		{name: "switch link beats Accept-Language", target: "/login?lang=zh-CN", acceptLanguage: "en", want: []string{"登录"}},
		{name: "lang cookie", target: "/login", cookie: "en", want: []string{"Sign in"}},
		{name: "lang cookie beats Accept-Language", target: "/login", cookie: "zh-CN", acceptLanguage: "en", want: []string{"登录"}},
		{name: "unknown lang ignored", target: "/login?lang=xx", acceptLanguage: "en", want: []string{"Sign in"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client(tc.acceptLanguage)
			if tc.cookie != "" {
				c.cookies[langCookie] = &http.Cookie{Name: langCookie, Value: tc.cookie, Path: "/"}
			}
			w := c.get(tc.target)
			wantBody(t, w, http.StatusOK, tc.want...)
			for _, s := range tc.notWant {
				if strings.Contains(w.Body.String(), s) {
					t.Errorf("page contains %q", s)
				}
			}
			checkPageHeaders(t, w)
			if strings.Contains(tc.target, "lang=") && !strings.Contains(tc.target, "xx") {
				ck := cookieOf(w, langCookie)
				if ck == nil || ck.Value != strings.TrimPrefix(tc.target, "/login?lang=") {
					t.Errorf("lang cookie %v", ck)
				}
			}
			ck := cookieOf(w, loginCSRFCookie)
			if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/login" {
				t.Errorf("pre-session CSRF cookie %+v", ck)
			}
		})
	}
}

func TestUILoginCSRF(t *testing.T) {
	h := newUIHarness(t)
	creds := url.Values{"email": {"sales@example.com"}, "password": {uiPassword}}
	withField := func(v string) url.Values {
		f := maps.Clone(creds)
		f.Set(csrfField, v)
		return f
	}
	for _, tc := range []struct {
		name   string
		cookie string
		form   url.Values
		header map[string]string
	}{
		{name: "no cookie, no field", form: creds},
		{name: "cookie, no field", cookie: newToken(), form: creds},
		{name: "field, no cookie", form: withField(newToken())},
		{name: "wrong field", cookie: newToken(), form: withField(newToken())},
		{name: "cross-site", cookie: "same", form: withField("same"), header: map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{name: "foreign origin", cookie: "same", form: withField("same"), header: map[string]string{"Origin": "https://evil.example"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := h.client("en")
			c.header = tc.header
			if tc.cookie != "" {
				c.cookies[loginCSRFCookie] = &http.Cookie{Name: loginCSRFCookie, Value: tc.cookie, Path: "/login"}
			}
			w := c.do("POST", "/login", tc.form)
			wantBody(t, w, http.StatusForbidden, "This form has expired")
			checkPageHeaders(t, w)
			if cookieOf(w, sessionCookie) != nil {
				t.Fatal("a session cookie was set")
			}
		})
	}
}

func TestUILoginPassword(t *testing.T) {
	h := newUIHarness(t)

	t.Run("wrong password and unknown account: same message, no session", func(t *testing.T) {
		var msgs []string
		for _, email := range []string{"sales@example.com", "nobody@example.com"} {
			c := h.client("")
			w := c.login(email, "wrong horse battery")
			wantBody(t, w, http.StatusOK, "邮箱或密码不正确。", `value="`+email+`"`)
			checkPageHeaders(t, w)
			if cookieOf(w, sessionCookie) != nil || cookieOf(w, csrfCookie) != nil {
				t.Fatal("a failed login set a session cookie")
			}
			msgs = append(msgs, regexp.MustCompile(`role="alert">[^<]*<`).FindString(w.Body.String()))
		}
		if msgs[0] != msgs[1] || msgs[0] == "" {
			t.Fatalf("different messages: %q", msgs)
		}
	})

	t.Run("sales signs in and sees the account", func(t *testing.T) {
		c := h.client("en")
		w := c.login("sales@example.com", uiPassword)
		wantRedirect(t, w, "/")
		sc := cookieOf(w, sessionCookie)
		if sc == nil || !sc.HttpOnly || sc.SameSite != http.SameSiteLaxMode || sc.Path != "/" || sc.Secure {
			t.Fatalf("session cookie %+v", sc)
		}
		cc := cookieOf(w, csrfCookie)
		if cc == nil || !cc.HttpOnly || cc.SameSite != http.SameSiteStrictMode || cc.Path != "/" {
			t.Fatalf("CSRF cookie %+v", cc)
		}
		if w.Header().Get("Cache-Control") != "no-store" || w.Header().Get("Content-Security-Policy") != uiCSP {
			t.Fatalf("redirect headers %v", w.Header())
		}
		w = c.get("/account")
		wantBody(t, w, http.StatusOK, "Your account", "sales@example.com", "李雷", "Sales", "Set up two-step verification", `action="/logout"`)
		checkPageHeaders(t, w)
		if !strings.Contains(w.Body.String(), `value="`+cc.Value+`"`) {
			t.Fatal("the forms do not carry the session's CSRF token")
		}

		// Sign out needs the CSRF token.
		bad := c.do("POST", "/logout", url.Values{csrfField: {"forged"}})
		wantBody(t, bad, http.StatusForbidden)
		w = c.postForm("/account", "/logout", nil)
		wantRedirect(t, w, "/login?m=signed_out")
		if _, ok := c.cookies[sessionCookie]; ok {
			t.Fatal("session cookie kept after sign-out")
		}
		wantBody(t, c.get("/login?m=signed_out"), http.StatusOK, "You have signed out.")
		// The old token is dead.
		old := h.client("en")
		old.cookies[sessionCookie], old.cookies[csrfCookie] = sc, cc
		wantRedirect(t, old.get("/account"), "/login?m=expired")
	})

	t.Run("pages need a session", func(t *testing.T) {
		c := h.client("")
		for _, p := range []string{"/account", "/account/mfa", "/account/password", "/account/sessions"} {
			wantRedirect(t, c.get(p), "/login")
		}
		wantRedirect(t, c.get("/login/mfa"), "/login")
	})

	t.Run("a session from the JSON API (no CSRF cookie) must sign in here", func(t *testing.T) {
		res, err := h.n.Auth.Login(context.Background(), audit.Event{Actor: "anonymous"}, "sales@example.com", uiPassword)
		if err != nil {
			t.Fatal(err)
		}
		h.secret(res.Token)
		c := h.client("")
		c.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: res.Token, Path: "/"}
		wantRedirect(t, c.get("/account"), "/login")
		// Its token in the form is not enough without the cookie.
		w := c.do("POST", "/account/password", url.Values{csrfField: {res.CSRF}, "current_password": {uiPassword}, "new_password": {"x"}, "confirm_password": {"x"}})
		wantBody(t, w, http.StatusForbidden)
	})

	t.Run("login policy refuses", func(t *testing.T) {
		err := h.n.Auth.SetRolePolicy(context.Background(), audit.Event{Actor: "test"}, store.RolePolicy{Role: "sales", IPAllowlist: "10.0.0.0/8"})
		if err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = h.n.Auth.SetRolePolicy(context.Background(), audit.Event{Actor: "test"}, store.RolePolicy{Role: "sales"})
		}()
		// Answered like a wrong password: from outside the allowlist nobody
		// learns that the password was right.
		w := h.client("en").login("sales@example.com", uiPassword)
		wantBody(t, w, http.StatusOK, "The email address or password is incorrect.")
	})
}

func TestUILoginLocked(t *testing.T) {
	h := newUIHarness(t)
	c := h.client("")
	for i := 0; i < 5; i++ {
		wantBody(t, c.login("sales@example.com", "wrong horse battery"), http.StatusOK, "邮箱或密码不正确。")
	}
	w := c.login("sales@example.com", uiPassword)
	wantBody(t, w, http.StatusTooManyRequests, "登录失败次数过多，请在 15 分钟后再试。")
	checkPageHeaders(t, w)
	if w.Header().Get("Retry-After") != "900" {
		t.Fatalf("Retry-After %q", w.Header().Get("Retry-After"))
	}
	if cookieOf(w, sessionCookie) != nil {
		t.Fatal("a locked login set a session cookie")
	}
	h.clock.add(14*time.Minute + 30*time.Second)
	wantBody(t, h.client("en").login("sales@example.com", uiPassword), http.StatusTooManyRequests, "Try again in 1 minute.")
}

var (
	qrImg       = regexp.MustCompile(`<img src="data:image/png;base64,([A-Za-z0-9+/=&#;]+)"`)
	secretCode  = regexp.MustCompile(`id="totp-secret"[^>]*>([A-Z2-7 ]+)</code>`)
	recoveryRow = regexp.MustCompile(`<li><code>([0-9a-z]{4}-[0-9a-z]{4}-[0-9a-z]{4})</code></li>`)
)

// enroll takes a signed-in restricted admin through TOTP enrollment and
// returns the secret and the recovery codes.
func enroll(t *testing.T, h *uiHarness, c *uiClient) (string, []string) {
	t.Helper()
	w := c.get("/account/mfa")
	wantBody(t, w, http.StatusOK, `autocomplete="one-time-code"`, `inputmode="numeric"`, `action="/account/mfa/confirm"`)
	checkPageHeaders(t, w)
	qr := qrImg.FindStringSubmatch(w.Body.String())
	if qr == nil {
		t.Fatalf("no QR code image: %s", w.Body)
	}
	b, err := base64.StdEncoding.DecodeString(html.UnescapeString(qr[1]))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := png.Decode(bytes.NewReader(b)); err != nil {
		t.Fatalf("the QR code is not a PNG: %v", err)
	}
	m := secretCode.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no secret: %s", w.Body)
	}
	for _, g := range strings.Fields(m[1]) {
		if len(g) > 4 {
			t.Fatalf("secret not grouped in fours: %q", m[1])
		}
	}
	secret := strings.ReplaceAll(m[1], " ", "")
	csrf := csrfOf(t, w)

	// A wrong code is refused, the form stays.
	w = c.do("POST", "/account/mfa/confirm", url.Values{csrfField: {csrf}, "code": {"000000"}})
	wantBody(t, w, http.StatusOK, `role="alert"`, `action="/account/mfa/confirm"`)
	// Without the CSRF token nothing happens.
	w = c.do("POST", "/account/mfa/confirm", url.Values{"code": {"123456"}})
	wantBody(t, w, http.StatusForbidden)

	code, err := totp.GenerateCode(secret, h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	old := c.cookies[sessionCookie].Value
	w = c.do("POST", "/account/mfa/confirm", url.Values{csrfField: {csrf}, "code": {code}})
	wantBody(t, w, http.StatusOK, `data-print`, `/account?done=mfa`)
	checkPageHeaders(t, w)
	var codes []string
	for _, r := range recoveryRow.FindAllStringSubmatch(w.Body.String(), -1) {
		codes = append(codes, r[1])
	}
	if len(codes) != 10 {
		t.Fatalf("%d recovery codes, want 10: %s", len(codes), w.Body)
	}
	if nc := cookieOf(w, sessionCookie); nc == nil || nc.Value == old || !nc.HttpOnly {
		t.Fatalf("no new session cookie: %+v", nc)
	}
	// The new page's forms carry the new session's CSRF token.
	if cc := cookieOf(w, csrfCookie); cc == nil || !strings.Contains(w.Body.String(), `value="`+cc.Value+`"`) {
		t.Fatal("the recovery page does not carry the new CSRF token")
	}
	return secret, codes
}

func TestUIAdminMFA(t *testing.T) {
	h := newUIHarness(t)
	c := h.client("zh-CN")
	wantRedirect(t, c.login("admin@example.com", uiPassword), "/account/mfa")
	// Restricted to enrollment: every other page sends it back.
	wantRedirect(t, c.get("/account"), "/account/mfa")
	wantRedirect(t, c.get("/account/sessions"), "/account/mfa")
	w := c.get("/account/mfa")
	wantBody(t, w, http.StatusOK, "您的角色要求启用两步验证", "设置两步验证")
	if strings.Contains(w.Body.String(), `href="/account/sessions"`) {
		t.Fatal("a restricted session is offered other pages")
	}

	secret, codes := enroll(t, h, c)
	// The secret is shown on the enrollment page only, never after it.
	h.mu.Lock()
	enrolledAt := len(h.bodies)
	h.mu.Unlock()
	defer func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, b := range h.bodies[enrolledAt:] {
			if strings.Contains(b, secret) || strings.Contains(b, groupBy4(secret)) {
				t.Errorf("a page after enrollment shows the TOTP secret: %s", b)
			}
		}
	}()
	wantBody(t, c.get("/account?done=mfa"), http.StatusOK, "两步验证已启用。", "本次登录已通过验证", "管理员")
	wantBody(t, c.get("/account/mfa"), http.StatusOK, "您的账户已启用两步验证。")

	// The next sign-in asks for a code.
	b := h.client("en")
	w = b.login("admin@example.com", uiPassword)
	wantRedirect(t, w, "/login/mfa")
	mc := cookieOf(w, mfaCookie)
	if mc == nil || !mc.HttpOnly || mc.Path != "/login" || mc.MaxAge <= 0 || mc.MaxAge > 300 {
		t.Fatalf("challenge cookie %+v", mc)
	}
	if cookieOf(w, sessionCookie) != nil {
		t.Fatal("a session before the second factor")
	}
	w = b.get("/login/mfa")
	wantBody(t, w, http.StatusOK, "Two-step verification", `autocomplete="one-time-code"`, `inputmode="numeric"`)
	checkPageHeaders(t, w)
	csrf := csrfOf(t, w)
	wantBody(t, b.do("POST", "/login/mfa", url.Values{csrfField: {"bad"}, "code": {"123456"}}), http.StatusForbidden)
	wantBody(t, b.do("POST", "/login/mfa", url.Values{csrfField: {csrf}, "code": {"000000"}}), http.StatusOK, "That code is not valid.")
	h.clock.add(31 * time.Second) // the enrollment used the current step
	code, err := totp.GenerateCode(secret, h.clock.now())
	if err != nil {
		t.Fatal(err)
	}
	w = b.do("POST", "/login/mfa", url.Values{csrfField: {csrf}, "code": {code}})
	wantRedirect(t, w, "/")
	if _, ok := b.cookies[mfaCookie]; ok {
		t.Fatal("the challenge cookie outlived the sign-in")
	}
	wantBody(t, b.get("/account"), http.StatusOK, "Verified for this session", "admin@example.com")

	// A recovery code works once.
	r := h.client("en")
	wantRedirect(t, r.login("admin@example.com", uiPassword), "/login/mfa")
	w = r.get("/login/mfa?method=recovery")
	wantBody(t, w, http.StatusOK, "Recovery code")
	if strings.Contains(w.Body.String(), `inputmode="numeric"`) {
		t.Fatal("the recovery code field must allow letters")
	}
	w = r.do("POST", "/login/mfa", url.Values{csrfField: {csrfOf(t, w)}, "method": {"recovery"}, "code": {codes[0]}})
	wantRedirect(t, w, "/")
	r2 := h.client("en")
	r2.login("admin@example.com", uiPassword)
	w = r2.postForm("/login/mfa?method=recovery", "/login/mfa", url.Values{"code": {codes[0]}, "method": {"recovery"}})
	wantBody(t, w, http.StatusOK, "That code is not valid.")

	// Without a challenge, the code page sends back to sign-in.
	wantRedirect(t, h.client("").get("/login/mfa"), "/login")
}

func TestUISessions(t *testing.T) {
	h := newUIHarness(t)
	a, b := h.client("en"), h.client("en")
	wantRedirect(t, a.login("sales@example.com", uiPassword), "/")
	wantRedirect(t, b.login("sales@example.com", uiPassword), "/")

	w := a.get("/account/sessions")
	wantBody(t, w, http.StatusOK, "This device", "192.0.2.1", "UTC+8")
	checkPageHeaders(t, w)
	rows := regexp.MustCompile(`<li class="session( current)?">[\s\S]*?action="/account/sessions/([0-9a-f]{64})/revoke"`).FindAllStringSubmatch(w.Body.String(), -1)
	if len(rows) != 2 {
		t.Fatalf("%d sessions listed, want 2: %s", len(rows), w.Body)
	}
	var mine, other string
	for _, r := range rows {
		if r[1] != "" {
			mine = r[2]
		} else {
			other = r[2]
		}
	}
	if mine == "" || other == "" {
		t.Fatalf("current session not marked exactly once: %q", rows)
	}
	csrf := csrfOf(t, w)

	wantBody(t, a.do("POST", "/account/sessions/"+other+"/revoke", url.Values{csrfField: {"forged"}}), http.StatusForbidden)
	wantBody(t, a.do("POST", "/account/sessions/"+strings.Repeat("ab", 32)+"/revoke", url.Values{csrfField: {csrf}}), http.StatusNotFound, "That session no longer exists.")
	wantRedirect(t, a.do("POST", "/account/sessions/"+other+"/revoke", url.Values{csrfField: {csrf}}), "/account/sessions?done=revoked")
	wantRedirect(t, b.get("/account"), "/login?m=expired")
	w = a.get("/account/sessions?done=revoked")
	wantBody(t, w, http.StatusOK, "The session was ended.", "Sign out here")
	if n := strings.Count(w.Body.String(), `<li class="session`); n != 1 {
		t.Fatalf("%d sessions after revoking, want 1", n)
	}
	// Ending the current session signs this browser out.
	wantRedirect(t, a.do("POST", "/account/sessions/"+mine+"/revoke", url.Values{csrfField: {csrf}}), "/login?m=signed_out")
	if _, ok := a.cookies[sessionCookie]; ok {
		t.Fatal("session cookie kept")
	}
	wantRedirect(t, a.get("/account"), "/login")
}

func TestUIPasswordChange(t *testing.T) {
	h := newUIHarness(t)
	const next = "purple elephant umbrella 42"
	h.secret(next)
	c := h.client("")
	wantRedirect(t, c.login("sales@example.com", uiPassword), "/")
	w := c.get("/account/password")
	wantBody(t, w, http.StatusOK, "修改密码", `autocomplete="new-password"`, `autocomplete="current-password"`, `minlength="12"`)
	checkPageHeaders(t, w)
	csrf := csrfOf(t, w)
	post := func(current, n, confirm string) *httptest.ResponseRecorder {
		return c.do("POST", "/account/password", url.Values{csrfField: {csrf}, "current_password": {current}, "new_password": {n}, "confirm_password": {confirm}})
	}
	for _, tc := range []struct{ name, current, next, confirm, want string }{
		{"mismatch", uiPassword, next, next + "x", "两次输入的新密码不一致。"},
		{"wrong current", "wrong horse battery", next, next, "当前密码不正确。"},
		{"too short", uiPassword, "short", "short", "新密码太短，至少需要 12 个字符。"},
		{"trivial", uiPassword, "aaaaaaaaaaaaaaaa", "aaaaaaaaaaaaaaaa", "请不要使用重复的字符或明显的序列。"},
		{"same", uiPassword, uiPassword, uiPassword, "新密码不能与当前密码相同。"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := post(tc.current, tc.next, tc.confirm)
			wantBody(t, w, http.StatusOK, tc.want)
			if cookieOf(w, sessionCookie) != nil {
				t.Fatal("a refused change set a session")
			}
		})
	}
	wantBody(t, c.do("POST", "/account/password", url.Values{"current_password": {uiPassword}, "new_password": {next}, "confirm_password": {next}}), http.StatusForbidden)

	other := h.client("")
	wantRedirect(t, other.login("sales@example.com", uiPassword), "/")
	old := c.cookies[sessionCookie].Value
	w = post(uiPassword, next, next)
	wantRedirect(t, w, "/account?done=password")
	if nc := cookieOf(w, sessionCookie); nc == nil || nc.Value == old {
		t.Fatalf("no new session cookie: %+v", nc)
	}
	wantBody(t, c.get("/account?done=password"), http.StatusOK, "密码已修改")
	// Every other session ended.
	wantRedirect(t, other.get("/account"), "/login?m=expired")
	// The old password no longer works; the new one does.
	wantBody(t, h.client("").login("sales@example.com", uiPassword), http.StatusOK, "邮箱或密码不正确。")
	wantRedirect(t, h.client("").login("sales@example.com", next), "/")
}

func TestUIResetPasswordMustChangeFirst(t *testing.T) {
	h := newUIHarness(t)
	u, err := h.n.Auth.FindUserByEmail(context.Background(), "sales@example.com")
	if err != nil {
		t.Fatal(err)
	}
	const reset, next = "temporary reset phrase 7", "a brand new phrase of mine"
	h.secret(reset)
	h.secret(next)
	if err := h.n.Auth.ResetPassword(context.Background(), audit.Event{Actor: "test"}, u.ID, reset); err != nil {
		t.Fatal(err)
	}
	c := h.client("en")
	wantRedirect(t, c.login("sales@example.com", reset), "/account/password")
	wantRedirect(t, c.get("/account"), "/account/password")
	wantBody(t, c.get("/account/password"), http.StatusOK, "An administrator reset your password.")
	w := c.postForm("/account/password", "/account/password", url.Values{"current_password": {reset}, "new_password": {next}, "confirm_password": {next}})
	wantRedirect(t, w, "/account?done=password")
	wantBody(t, c.get("/account"), http.StatusOK, "Your account")
}

func TestUIAssets(t *testing.T) {
	h := newUIHarness(t)
	page := h.client("").get("/login").Body.String()
	for _, tc := range []struct{ file, ctype string }{
		{"custos.css", "text/css; charset=utf-8"},
		{"custos.js", "text/javascript; charset=utf-8"},
		{"passkey-ui.js", "text/javascript; charset=utf-8"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			u, err := assetURL(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if tc.file == "custos.css" && !strings.Contains(page, `href="`+template.HTMLEscapeString(u)+`"`) {
				t.Fatalf("the page does not link %s: %s", u, page)
			}
			w := h.client("").get(u)
			if w.Code != 200 || w.Header().Get("Content-Type") != tc.ctype || w.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || w.Body.Len() == 0 {
				t.Fatalf("%s: %d %v", u, w.Code, w.Header())
			}
			// Another version must be revalidated.
			if w := h.client("").get("/assets/" + tc.file + "?v=old"); w.Code != 200 || w.Header().Get("Cache-Control") != "no-cache" {
				t.Fatalf("old version: %d %v", w.Code, w.Header())
			}
		})
	}
	for _, p := range []string{"/assets/nope.css", "/assets/..%2fui.go", "/assets/"} {
		if w := h.client("").get(p); w.Code != http.StatusNotFound {
			t.Errorf("%s: %d", p, w.Code)
		}
	}
}

func TestUIMatchAcceptLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"":                        langZH,
		"en":                      langEN,
		"en-GB":                   langEN,
		"de-DE, en;q=0.5":         langEN,
		"zh":                      langZH,
		"zh-Hans-CN":              langZH,
		"zh-TW":                   langZH,
		"ja":                      langZH,
		"*":                       langZH,
		strings.Repeat("a", 2000): langZH,
	} {
		if got := matchAcceptLanguage(in); got != want {
			t.Errorf("%q: %s, want %s", in, got, want)
		}
	}
}

// Both catalogues have the same keys, and every key the templates and the
// Go code use exists.
func TestUICatalogues(t *testing.T) {
	zh, en := uiLocales[langZH].msgs, uiLocales[langEN].msgs
	for k := range zh {
		if _, ok := en[k]; !ok {
			t.Errorf("en lacks %q", k)
		}
	}
	for k := range en {
		if _, ok := zh[k]; !ok {
			t.Errorf("zh-CN lacks %q", k)
		}
	}
	used := map[string]bool{}
	tmplKey := regexp.MustCompile(`\.T "([^"]+)"`)
	err := fs.WalkDir(uiTemplateFiles, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := uiTemplateFiles.ReadFile(p)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// Go code names keys as string literals "<area>.<name>"; the areas are
	// the catalogues' own prefixes.
	var areas []string
	for k := range en {
		a, _, _ := strings.Cut(k, ".")
		if !slices.Contains(areas, a) {
			areas = append(areas, a)
		}
	}
	goKey := regexp.MustCompile(`"((?:` + strings.Join(areas, "|") + `)\.[a-z0-9_.]*[a-z0-9_])"`)
	files, err := filepath.Glob("ui*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = true
		}
	}
	for _, k := range slices.Sorted(maps.Keys(used)) {
		if _, ok := en[k]; !ok {
			t.Errorf("key %q is used but not in the catalogues", k)
		}
	}
	if len(used) < 50 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
}

// Every template renders in both languages with everything filled in.
func TestUITemplatesRender(t *testing.T) {
	user := &auth.User{Email: "a@example.com", Name: "A"}
	for name := range uiTemplates {
		if appTemplate(name) {
			continue // the CRM pages have their own data; their tests render them through the handlers
		}
		for _, lang := range uiLangs {
			p := &page{loc: uiLocales[lang], Lang: lang, Path: "/x", CSRF: "tok", User: user, Error: "e", Notice: "n",
				Email: "a@example.com", Role: "r", SignedInAt: "2026-01-01 10:00", QR: "data:image/png;base64,AAAA",
				OTPAuth: "otpauth://totp/Custos:a", Secret: "ABCD EFGH", Codes: []string{"aaaa-bbbb-cccc"},
				Sessions: []sessionRow{{ID: "ab", Current: true}, {ID: "cd", UserAgent: "UA", MFA: true}}, MinLen: 12, BackHref: "/login",
				PasskeysOn: true, PasskeyMFA: true, Passkeys: []passkeyRow{{ID: "AQ", Name: "Laptop", Created: "2026-01-01 10:00", Synced: true}, {ID: "Ag", Name: "Key", LastUsed: "2026-01-02 10:00"}},
				MaxNameLen: 64, MaxPerUser: 25}
			var buf bytes.Buffer
			if err := uiTemplates[name].ExecuteTemplate(&buf, "layout", p); err != nil {
				t.Errorf("%s in %s: %v", name, lang, err)
			}
		}
	}
}

// The reasons of the password policy all have their own message.
func TestUIPasswordProblems(t *testing.T) {
	for _, tc := range []struct{ pw, key string }{
		{"short", "password.weak.short"},
		{strings.Repeat("xy1z", 40), "password.weak.long"},
		{"abc\xffdefghijklmnop", "password.weak.invalid"},
		{"abcdefghijklmnopq", "password.weak.trivial"},
		{"sales@example.com and more", "password.weak.personal"},
		{"adventuretime", "password.weak.common"},
	} {
		err := auth.CheckPasswordPolicy(tc.pw, "sales@example.com", "Sales Person")
		if err == nil {
			t.Fatalf("%q accepted", tc.pw)
		}
		if got := passwordProblem(err); got != tc.key {
			t.Errorf("%q (%v): %s, want %s", tc.pw, err, got, tc.key)
		}
	}
	if got := passwordProblem(errors.New("invalid input: something new")); got != "password.weak" {
		t.Errorf("unknown reason: %s", got)
	}
}
