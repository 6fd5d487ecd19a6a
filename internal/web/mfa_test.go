package web_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

// browser is a cookie-holding client of the harness.
type browser struct {
	h      *harness
	cookie *http.Cookie
	csrf   string
}

func (b *browser) do(method, path, body string) *httptest.ResponseRecorder {
	b.h.t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	if b.cookie != nil {
		r.AddCookie(b.cookie)
	}
	if b.csrf != "" {
		r.Header.Set("X-CSRF-Token", b.csrf)
	}
	w := httptest.NewRecorder()
	b.h.h.ServeHTTP(w, r)
	for _, c := range w.Result().Cookies() {
		if c.Name == "custos_session" {
			b.cookie = c
		}
	}
	var m struct {
		CSRF string `json:"csrf_token"`
	}
	if json.Unmarshal(w.Body.Bytes(), &m) == nil && m.CSRF != "" {
		b.csrf = m.CSRF
	}
	return w
}

func decode(t *testing.T, w *httptest.ResponseRecorder, v any) {
	t.Helper()
	if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
		t.Fatalf("decode %q: %v", w.Body.String(), err)
	}
}

func TestAdminWithoutMFAIsForcedToEnroll(t *testing.T) {
	clock := &testClock{t: time.Now().UTC()}
	h := newHarnessAt(t, clock.now)
	admin := &browser{h: h}
	w := admin.do("POST", "/api/v1/auth/login", `{"email":"admin@example.com","password":"correct horse battery"}`)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"mfa_enrollment_required":true`) {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	// Nothing but enrollment is reachable.
	for _, rq := range []struct{ method, path, body string }{
		{"GET", "/api/v1/customers", ""},
		{"POST", "/api/v1/customers", `{"name":"X"}`},
		{"GET", "/api/v1/customers/export", ""},
		{"GET", "/api/v1/users", ""},
		{"POST", "/api/v1/users", `{"email":"a@b.cn","name":"x","role":"admin","password":"long enough password"}`},
		{"POST", "/api/v1/tokens", `{"name":"escape"}`},
		{"GET", "/api/v1/tokens", ""},
		{"POST", "/api/v1/users/" + h.ids["s1"] + "/disable", ""},
	} {
		if w := admin.do(rq.method, rq.path, rq.body); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "second factor") {
			t.Fatalf("%s %s while restricted: %d %s", rq.method, rq.path, w.Code, w.Body)
		}
	}
	if w := admin.do("GET", "/api/v1/me", ""); w.Code != 200 {
		t.Fatalf("me: %d", w.Code)
	}
	// Enroll.
	w = admin.do("POST", "/api/v1/auth/totp/enroll", "")
	var en struct {
		Secret string `json:"secret"`
		URL    string `json:"otpauth_url"`
		QR     []byte `json:"qr_png"`
	}
	decode(t, w, &en)
	if w.Code != 200 || en.Secret == "" || !strings.HasPrefix(en.URL, "otpauth://totp/") || len(en.QR) < 100 || string(en.QR[1:4]) != "PNG" {
		t.Fatalf("enroll: %d %s", w.Code, w.Body)
	}
	if w := admin.do("POST", "/api/v1/auth/totp/confirm", `{"code":"000000"}`); w.Code != 401 {
		t.Fatalf("wrong confirm code: %d", w.Code)
	}
	code, _ := totp.GenerateCode(en.Secret, clock.now())
	oldCookie := admin.cookie
	w = admin.do("POST", "/api/v1/auth/totp/confirm", `{"code":"`+code+`"}`)
	var conf struct {
		Recovery []string `json:"recovery_codes"`
	}
	decode(t, w, &conf)
	if w.Code != 200 || len(conf.Recovery) != 10 || admin.cookie.Value == oldCookie.Value {
		t.Fatalf("confirm: %d %s (new session id: %v)", w.Code, w.Body, admin.cookie.Value != oldCookie.Value)
	}
	if w := (&browser{h: h, cookie: oldCookie}).do("GET", "/api/v1/me", ""); w.Code != 401 {
		t.Fatalf("the pre-enrollment session survived: %d", w.Code)
	}
	if w := admin.do("GET", "/api/v1/customers", ""); w.Code != 200 {
		t.Fatalf("after enrollment: %d %s", w.Code, w.Body)
	}

	// A new login asks for the second factor; the code already used in this
	// 30-second step is refused (replay); a recovery code works once.
	login := func() string {
		b := &browser{h: h}
		w := b.do("POST", "/api/v1/auth/login", `{"email":"admin@example.com","password":"correct horse battery"}`)
		var ch struct {
			Required  bool     `json:"mfa_required"`
			Challenge string   `json:"challenge"`
			Methods   []string `json:"methods"`
		}
		decode(t, w, &ch)
		if w.Code != 200 || !ch.Required || ch.Challenge == "" || b.cookie != nil {
			t.Fatalf("login with a factor: %d %s", w.Code, w.Body)
		}
		return ch.Challenge
	}
	ch := login()
	b := &browser{h: h}
	if w := b.do("POST", "/api/v1/auth/mfa", `{"challenge":"`+ch+`","code":"`+code+`"}`); w.Code != 401 {
		t.Fatalf("replayed TOTP code: %d %s", w.Code, w.Body)
	}
	if w := b.do("POST", "/api/v1/auth/mfa", `{"challenge":"`+ch+`","code":"`+strings.ToUpper(conf.Recovery[0])+`"}`); w.Code != 200 || b.cookie == nil {
		t.Fatalf("recovery code: %d %s", w.Code, w.Body)
	}
	if w := b.do("GET", "/api/v1/customers", ""); w.Code != 200 {
		t.Fatalf("after MFA login: %d", w.Code)
	}
	ch2 := login()
	if w := (&browser{h: h}).do("POST", "/api/v1/auth/mfa", `{"challenge":"`+ch2+`","code":"`+conf.Recovery[0]+`"}`); w.Code != 401 {
		t.Fatalf("reused recovery code: %d", w.Code)
	}
	// The next step's code works.
	clock.add(30 * time.Second)
	next, _ := totp.GenerateCode(en.Secret, clock.now())
	b2 := &browser{h: h}
	if w := b2.do("POST", "/api/v1/auth/mfa", `{"challenge":"`+ch2+`","code":"`+next+`"}`); w.Code != 200 {
		t.Fatalf("fresh TOTP code: %d %s", w.Code, w.Body)
	}

	// Step-up: 6 minutes later, export and disabling a user need a fresh
	// authentication.
	clock.add(6 * time.Minute)
	for _, rq := range []struct{ method, path string }{{"GET", "/api/v1/customers/export"}, {"POST", "/api/v1/users/" + h.ids["s1"] + "/disable"}} {
		if w := b2.do(rq.method, rq.path, ""); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "/api/v1/auth/reauth") {
			t.Fatalf("%s without step-up: %d %s", rq.path, w.Code, w.Body)
		}
	}
	// Lasting access needs step-up too: new tokens, users, factors.
	for _, rq := range []struct{ path, body string }{
		{"/api/v1/tokens", `{"name":"persist"}`},
		{"/api/v1/users", `{"email":"x@example.com","name":"X","role":"admin","password":"long enough password"}`},
		{"/api/v1/auth/totp/confirm", `{"code":"123456"}`},
	} {
		if w := b2.do("POST", rq.path, rq.body); w.Code != http.StatusForbidden || !strings.Contains(w.Body.String(), "reauth") {
			t.Fatalf("%s without step-up: %d %s", rq.path, w.Code, w.Body)
		}
	}
	if w := b2.do("POST", "/api/v1/auth/reauth", `{"password":"wrong password!!"}`); w.Code != 401 {
		t.Fatalf("bad step-up: %d", w.Code)
	}
	if w := b2.do("POST", "/api/v1/auth/reauth", `{"password":"correct horse battery"}`); w.Code != 204 {
		t.Fatalf("step-up: %d %s", w.Code, w.Body)
	}
	if w := b2.do("GET", "/api/v1/customers/export", ""); w.Code != 200 {
		t.Fatalf("export after step-up: %d %s", w.Code, w.Body)
	}
	// An enrolled factor cannot be confirmed again (no code oracle, no fresh
	// recovery codes for whoever holds a session).
	if w := b2.do("POST", "/api/v1/auth/totp/confirm", `{"code":"`+next+`"}`); w.Code != http.StatusConflict {
		t.Fatalf("confirm an enrolled factor: %d %s", w.Code, w.Body)
	}
	// API tokens are not interactive: no step-up for them.
	if w := h.do(req{method: "GET", path: "/api/v1/customers/export", as: "admin"}); w.Code != 200 {
		t.Fatalf("token export: %d", w.Code)
	}
}

// An administrator's reset ends the user's sessions; the next session can only
// change the password; the change needs the current one and obeys the policy.
func TestPasswordResetForcesChange(t *testing.T) {
	h := newHarness(t)
	s1 := &browser{h: h}
	if w := s1.do("POST", "/api/v1/auth/login", `{"email":"s1@example.com","password":"correct horse battery"}`); w.Code != 200 {
		t.Fatalf("login: %d", w.Code)
	}
	if w := h.do(req{method: "POST", path: "/api/v1/users/" + h.ids["s1"] + "/reset-password", as: "s2", body: `{"password":"temporary reset passphrase"}`}); w.Code != 403 {
		t.Fatalf("reset by sales: %d", w.Code)
	}
	if w := h.do(req{method: "POST", path: "/api/v1/users/" + h.ids["s1"] + "/reset-password", as: "admin", body: `{"password":"password1234"}`}); w.Code != 422 {
		t.Fatalf("reset to a common password: %d %s", w.Code, w.Body)
	}
	if w := h.do(req{method: "POST", path: "/api/v1/users/" + h.ids["s1"] + "/reset-password", as: "admin", body: `{"password":"temporary reset passphrase"}`}); w.Code != 204 {
		t.Fatalf("reset: %d %s", w.Code, w.Body)
	}
	if w := s1.do("GET", "/api/v1/me", ""); w.Code != 401 {
		t.Fatalf("session survived the reset: %d", w.Code)
	}
	s1 = &browser{h: h}
	if w := s1.do("POST", "/api/v1/auth/login", `{"email":"s1@example.com","password":"temporary reset passphrase"}`); w.Code != 200 {
		t.Fatalf("login after reset: %d", w.Code)
	}
	if w := s1.do("GET", "/api/v1/customers", ""); w.Code != 403 || !strings.Contains(w.Body.String(), "password was reset") {
		t.Fatalf("restricted session: %d %s", w.Code, w.Body)
	}
	for _, bad := range []struct {
		body string
		code int
	}{
		{`{"current_password":"wrong wrong wrong","new_password":"my own new passphrase"}`, 401},
		{`{"current_password":"temporary reset passphrase","new_password":"s1@example.com is me"}`, 422},
		{`{"current_password":"temporary reset passphrase","new_password":"qwerty123456"}`, 422},
	} {
		if w := s1.do("POST", "/api/v1/auth/password", bad.body); w.Code != bad.code {
			t.Fatalf("%s: %d %s", bad.body, w.Code, w.Body)
		}
	}
	if w := s1.do("POST", "/api/v1/auth/password", `{"current_password":"temporary reset passphrase","new_password":"my own new passphrase"}`); w.Code != 200 {
		t.Fatalf("change: %d %s", w.Code, w.Body)
	}
	if w := s1.do("GET", "/api/v1/customers", ""); w.Code != 200 {
		t.Fatalf("after the change: %d %s", w.Code, w.Body)
	}
}

// A role's address allowlist and login hours are enforced at login and on
// every request, for sessions and tokens alike.
func TestRoleLoginPolicy(t *testing.T) {
	clock := &testClock{t: time.Date(2026, 11, 23, 4, 0, 0, 0, time.UTC)} // 12:00 in Shanghai
	h := newHarnessAt(t, clock.now)
	set := func(body string, want int) {
		t.Helper()
		if w := h.do(req{method: "PUT", path: "/api/v1/roles/sales/policy", as: "admin", body: body}); w.Code != want {
			t.Fatalf("set %s: %d %s", body, w.Code, w.Body)
		}
	}
	set(`{"ip_allowlist":["10.0.0.0/8"],"login_hours":"08:00-20:00 Asia/Shanghai"}`, 200)
	set(`{"ip_allowlist":["nope"]}`, 422)
	set(`{"login_hours":"always"}`, 422)
	if w := h.do(req{method: "PUT", path: "/api/v1/roles/sales/policy", as: "s1", body: `{}`}); w.Code != 403 {
		t.Fatalf("sales sets policy: %d", w.Code)
	}
	// httptest requests come from 192.0.2.1: outside 10.0.0.0/8.
	if w := h.do(req{method: "GET", path: "/api/v1/customers", as: "s1"}); w.Code != 403 || !strings.Contains(w.Body.String(), "address") {
		t.Fatalf("token from outside the allowlist: %d %s", w.Code, w.Body)
	}
	// A right password from outside the allowlist is answered like a wrong
	// one, so the allowlist is no password oracle.
	if w := (&browser{h: h}).do("POST", "/api/v1/auth/login", `{"email":"s1@example.com","password":"correct horse battery"}`); w.Code != 401 || !strings.Contains(w.Body.String(), "invalid email or password") {
		t.Fatalf("login from outside the allowlist: %d %s", w.Code, w.Body)
	}
	// Other roles are not affected.
	if w := h.do(req{method: "GET", path: "/api/v1/customers", as: "manager"}); w.Code != 200 {
		t.Fatalf("manager: %d", w.Code)
	}
	set(`{"ip_allowlist":["192.0.2.0/24"],"login_hours":"08:00-20:00 Asia/Shanghai"}`, 200)
	if w := h.do(req{method: "GET", path: "/api/v1/customers", as: "s1"}); w.Code != 200 {
		t.Fatalf("inside the allowlist and hours: %d %s", w.Code, w.Body)
	}
	clock.add(9 * time.Hour) // 21:00 in Shanghai
	if w := h.do(req{method: "GET", path: "/api/v1/customers", as: "s1"}); w.Code != 403 || !strings.Contains(w.Body.String(), "hours") {
		t.Fatalf("outside the hours: %d %s", w.Code, w.Body)
	}
	if w := h.do(req{method: "GET", path: "/api/v1/roles/sales/policy", as: "admin"}); w.Code != 200 || !strings.Contains(w.Body.String(), "192.0.2.0/24") {
		t.Fatalf("read policy: %d %s", w.Code, w.Body)
	}
}

func TestSessionsListAndRevoke(t *testing.T) {
	h := newHarness(t)
	laptop, phone := &browser{h: h}, &browser{h: h}
	for _, b := range []*browser{laptop, phone} {
		if w := b.do("POST", "/api/v1/auth/login", `{"email":"s1@example.com","password":"correct horse battery"}`); w.Code != 200 {
			t.Fatal(w.Code)
		}
	}
	w := laptop.do("GET", "/api/v1/auth/sessions", "")
	var list struct {
		Items []struct {
			ID      string `json:"id"`
			Current bool   `json:"current"`
		} `json:"items"`
	}
	decode(t, w, &list)
	if len(list.Items) != 2 || strings.Contains(w.Body.String(), laptop.cookie.Value) {
		t.Fatalf("list: %s", w.Body)
	}
	var other string
	for _, it := range list.Items {
		if !it.Current {
			other = it.ID
		}
	}
	if w := (&browser{h: h}).do("DELETE", "/api/v1/auth/sessions/"+other, ""); w.Code != 401 {
		t.Fatalf("anonymous revoke: %d", w.Code)
	}
	if w := h.do(req{method: "DELETE", path: "/api/v1/auth/sessions/" + other, as: "s2"}); w.Code != 404 {
		t.Fatalf("someone else's session: %d", w.Code)
	}
	if w := laptop.do("DELETE", "/api/v1/auth/sessions/"+other, ""); w.Code != 204 {
		t.Fatalf("revoke: %d %s", w.Code, w.Body)
	}
	if w := phone.do("GET", "/api/v1/me", ""); w.Code != 401 {
		t.Fatalf("revoked session still works: %d", w.Code)
	}
	if w := h.do(req{method: "DELETE", path: "/api/v1/users/" + h.ids["s1"] + "/sessions", as: "s2"}); w.Code != 403 {
		t.Fatalf("sales revokes all: %d", w.Code)
	}
	if w := h.do(req{method: "DELETE", path: "/api/v1/users/" + h.ids["s1"] + "/sessions", as: "admin"}); w.Code != 204 {
		t.Fatalf("admin revokes all: %d", w.Code)
	}
	if w := laptop.do("GET", "/api/v1/me", ""); w.Code != 401 {
		t.Fatalf("session survived revoke-all: %d", w.Code)
	}
}

// Guessing the enrollment code is throttled like a password.
func TestTOTPConfirmIsThrottled(t *testing.T) {
	clock := &testClock{t: time.Now().UTC()}
	h := newHarnessAt(t, clock.now)
	b := &browser{h: h}
	if w := b.do("POST", "/api/v1/auth/login", `{"email":"s1@example.com","password":"correct horse battery"}`); w.Code != 200 {
		t.Fatal(w.Code)
	}
	var en struct {
		Secret string `json:"secret"`
	}
	decode(t, b.do("POST", "/api/v1/auth/totp/enroll", ""), &en)
	right, _ := totp.GenerateCode(en.Secret, clock.now())
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	for i := 0; i < 5; i++ {
		if w := b.do("POST", "/api/v1/auth/totp/confirm", `{"code":"`+wrong+`"}`); w.Code != 401 {
			t.Fatalf("guess %d: %d", i, w.Code)
		}
	}
	if w := b.do("POST", "/api/v1/auth/totp/confirm", `{"code":"`+right+`"}`); w.Code != http.StatusTooManyRequests {
		t.Fatalf("right code after 5 guesses: %d %s", w.Code, w.Body)
	}
}
