package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/web"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) { s.mu.Lock(); defer s.mu.Unlock(); return s.b.Write(p) }
func (s *syncBuf) String() string              { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type harness struct {
	t      *testing.T
	n      *node.Node
	h      http.Handler
	log    *syncBuf
	tokens map[string]string // user -> bearer token
	ids    map[string]string // user -> user id
}

func newHarness(t *testing.T) *harness { return newHarnessAt(t, nil) }

func newHarnessAt(t *testing.T, now func() time.Time) *harness {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	logBuf := &syncBuf{}
	logger := slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, Logger: logger, Now: now, Auth: auth.Settings{DelayBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	h := &harness{t: t, n: n, log: logBuf, tokens: map[string]string{}, ids: map[string]string{},
		h: web.New(n.DB, n.Auth, n.CRM, web.Options{Logger: logger, Now: now}).Handler()}
	for _, u := range []struct{ name, role string }{{"admin", "admin"}, {"s1", "sales"}, {"s2", "sales"}, {"manager", "manager"}} {
		user, err := n.Auth.CreateUser(context.Background(), audit.Event{Actor: "test"}, auth.NewUser{Email: u.name + "@example.com", Name: u.name, Role: u.role, Password: "correct horse battery"})
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := n.Auth.CreateToken(context.Background(), audit.Event{Actor: "test"}, user.ID, "test", 0)
		if err != nil {
			t.Fatal(err)
		}
		h.tokens[u.name], h.ids[u.name] = tok, user.ID
	}
	return h
}

type req struct {
	method, path, as, body string
	ctype                  string
	header                 map[string]string
}

func (h *harness) do(r req) *httptest.ResponseRecorder {
	h.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.body != "" {
		ct := r.ctype
		if ct == "" {
			ct = "application/json"
		}
		hr.Header.Set("Content-Type", ct)
	}
	if r.as != "" {
		hr.Header.Set("Authorization", "Bearer "+h.tokens[r.as])
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.h.ServeHTTP(rec, hr)
	return rec
}

func (h *harness) createCustomer(as, body string) map[string]any {
	h.t.Helper()
	rec := h.do(req{method: "POST", path: "/api/v1/customers", as: as, body: body})
	if rec.Code != http.StatusCreated {
		h.t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil {
		h.t.Fatal(err)
	}
	return m
}

// scenario: one request, its status, what the body must and must NOT hold.
type scenario struct {
	name    string
	req     req
	status  int
	want    []string
	notWant []string
	problem bool // the body must be application/problem+json
}

func (h *harness) run(scenarios []scenario) {
	h.t.Helper()
	for _, sc := range scenarios {
		h.t.Run(sc.name, func(t *testing.T) {
			rec := h.do(sc.req)
			body := rec.Body.String()
			if rec.Code != sc.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, sc.status, body)
			}
			for _, w := range sc.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %q: %s", w, body)
				}
			}
			for _, nw := range sc.notWant {
				if strings.Contains(body, nw) {
					t.Errorf("body must not contain %q: %s", nw, body)
				}
			}
			if sc.problem && !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/problem+json") {
				t.Errorf("content type %q, want application/problem+json", rec.Header().Get("Content-Type"))
			}
		})
	}
}

func TestTwoSalesUsersSeeOnlyTheirOwn(t *testing.T) {
	h := newHarness(t)
	mine := h.createCustomer("s1", `{"name":"李雷贸易有限公司","phone":"13811112222","email":"lilei@leimao.cn","id_number":"11010519491231002X"}`)
	theirs := h.createCustomer("s2", `{"name":"韩梅梅咨询","phone":"13933334444","email":"meimei@hanmei.cn","notes":"机密备注"}`)
	mineID, theirsID := mine["id"].(string), theirs["id"].(string)
	theirSecrets := []string{theirsID, "韩梅梅", "13933334444", "meimei@hanmei.cn", "机密备注"}
	mySecrets := []string{mineID, "李雷", "13811112222", "lilei@leimao.cn", "11010519491231002X"}
	h.run([]scenario{
		{name: "s1 lists only own", req: req{method: "GET", path: "/api/v1/customers", as: "s1"}, status: 200, want: []string{mineID, "李雷贸易有限公司"}, notWant: theirSecrets},
		{name: "s2 lists only own", req: req{method: "GET", path: "/api/v1/customers", as: "s2"}, status: 200, want: []string{theirsID}, notWant: mySecrets},
		{name: "s1 gets own", req: req{method: "GET", path: "/api/v1/customers/" + mineID, as: "s1"}, status: 200, want: []string{"+8613811112222"}},
		{name: "s1 gets other's: 404", req: req{method: "GET", path: "/api/v1/customers/" + theirsID, as: "s1"}, status: 404, notWant: theirSecrets[1:], problem: true},
		{name: "s2 gets other's: 404", req: req{method: "GET", path: "/api/v1/customers/" + mineID, as: "s2"}, status: 404, notWant: mySecrets[1:], problem: true},
		{name: "s1 searches other's phone", req: req{method: "GET", path: "/api/v1/customers?q=13933334444", as: "s1"}, status: 200, want: []string{`"items":[]`}, notWant: theirSecrets},
		{name: "s1 searches other's email", req: req{method: "GET", path: "/api/v1/customers?q=meimei%40hanmei.cn", as: "s1"}, status: 200, want: []string{`"items":[]`}, notWant: theirSecrets},
		{name: "s1 searches other's name", req: req{method: "GET", path: "/api/v1/customers?q=%E9%9F%A9%E6%A2%85", as: "s1"}, status: 200, want: []string{`"items":[]`}, notWant: theirSecrets},
		{name: "s1 searches own phone", req: req{method: "GET", path: "/api/v1/customers?q=138-1111-2222", as: "s1"}, status: 200, want: []string{mineID}, notWant: theirSecrets},
		{name: "s1 patches other's: 404", req: req{method: "PATCH", path: "/api/v1/customers/" + theirsID, as: "s1", body: `{"name":"x"}`}, status: 404, notWant: theirSecrets[1:]},
		{name: "s1 deletes other's: 404", req: req{method: "DELETE", path: "/api/v1/customers/" + theirsID, as: "s1"}, status: 404},
		{name: "s1 contacts of other's: 404", req: req{method: "GET", path: "/api/v1/customers/" + theirsID + "/contacts", as: "s1"}, status: 404},
		{name: "s1 export: 403", req: req{method: "GET", path: "/api/v1/customers/export", as: "s1"}, status: 403, notWant: theirSecrets, problem: true},
		{name: "s2 export: 403", req: req{method: "GET", path: "/api/v1/customers/export", as: "s2"}, status: 403, notWant: mySecrets, problem: true},
		{name: "s1 filters by s2 as owner", req: req{method: "GET", path: "/api/v1/customers?owner_id=" + h.ids["s2"], as: "s1"}, status: 200, want: []string{`"items":[]`}, notWant: theirSecrets},
		{name: "manager sees both", req: req{method: "GET", path: "/api/v1/customers", as: "manager"}, status: 200, want: []string{mineID, theirsID}},
		{name: "admin exports both as CSV", req: req{method: "GET", path: "/api/v1/customers/export", as: "admin"}, status: 200, want: []string{"\ufeffname,kind,phone", "李雷贸易有限公司", "韩梅梅咨询", "'+8613933334444", "s2@example.com"}},
		{name: "s1 lists users: 403", req: req{method: "GET", path: "/api/v1/users", as: "s1"}, status: 403},
	})
	// The other's customer is unchanged.
	rec := h.do(req{method: "GET", path: "/api/v1/customers/" + theirsID, as: "s2"})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), "韩梅梅咨询") {
		t.Fatalf("other's customer changed: %d %s", rec.Code, rec.Body)
	}
	// The server log never holds personal data or the search text.
	logs := h.log.String()
	for _, s := range append(theirSecrets[1:], mySecrets[1:]...) {
		if strings.Contains(logs, s) {
			t.Fatalf("server log contains %q", s)
		}
	}
}

func TestBadInputGets4xxAndChangesNothing(t *testing.T) {
	h := newHarness(t)
	c := h.createCustomer("s1", `{"name":"Acme","phone":"13800138000"}`)
	id := c["id"].(string)
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	h.run([]scenario{
		{name: "malformed JSON", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":`}, status: 400, want: []string{"truncated JSON"}, problem: true},
		{name: "syntax error", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name" "x"}`}, status: 400, want: []string{"malformed JSON"}, problem: true},
		{name: "not an object", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `[1,2]`}, status: 400, problem: true},
		{name: "unknown field", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X","nmae":"Y"}`}, status: 400, want: []string{`unknown field \"nmae\"`}, problem: true},
		{name: "wrong type", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":42}`}, status: 400, want: []string{"must be a string"}, problem: true},
		{name: "trailing data", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X"} {"name":"Y"}`}, status: 400, problem: true},
		{name: "oversized body", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: big}, status: 413, problem: true},
		{name: "bad UTF-8", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: "{\"name\":\"\xff\xfe\"}"}, status: 400, want: []string{"UTF-8"}, problem: true},
		{name: "wrong content type", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X"}`, ctype: "text/plain"}, status: 415, problem: true},
		{name: "invalid phone", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X","phone":"12345-SECRET"}`}, status: 422, want: []string{`"field":"phones[0]"`}, notWant: []string{"SECRET"}, problem: true},
		{name: "invalid email", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X","email":"secret.at.example"}`}, status: 422, want: []string{`"field":"emails[0]"`}, notWant: []string{"secret.at"}, problem: true},
		{name: "phone and phones", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"name":"X","phone":"13800138000","phones":[]}`}, status: 422, problem: true},
		{name: "missing name", req: req{method: "POST", path: "/api/v1/customers", as: "s1", body: `{"phone":"13800138000"}`}, status: 422, want: []string{`"field":"name"`}, problem: true},
		{name: "bad patch", req: req{method: "PATCH", path: "/api/v1/customers/" + id, as: "s1", body: `{"email":"nope"}`}, status: 422, problem: true},
		{name: "bad If-Match", req: req{method: "PATCH", path: "/api/v1/customers/" + id, as: "s1", body: `{"name":"Y"}`, header: map[string]string{"If-Match": "abc"}}, status: 400, problem: true},
		{name: "stale If-Match", req: req{method: "PATCH", path: "/api/v1/customers/" + id, as: "s1", body: `{"name":"Y"}`, header: map[string]string{"If-Match": `"7"`}}, status: 409, problem: true},
		{name: "malformed id", req: req{method: "GET", path: "/api/v1/customers/not-an-id", as: "s1"}, status: 404, problem: true},
		{name: "unknown query parameter", req: req{method: "GET", path: "/api/v1/customers?sort=name", as: "s1"}, status: 400, problem: true},
		{name: "bad limit", req: req{method: "GET", path: "/api/v1/customers?limit=abc", as: "s1"}, status: 400, problem: true},
		{name: "limit too large", req: req{method: "GET", path: "/api/v1/customers?limit=1000", as: "s1"}, status: 422, problem: true},
		{name: "bad cursor", req: req{method: "GET", path: "/api/v1/customers?cursor=%00%01", as: "s1"}, status: 422, problem: true},
		{name: "search too short", req: req{method: "GET", path: "/api/v1/customers?q=a", as: "s1"}, status: 422, problem: true},
		{name: "unknown endpoint", req: req{method: "GET", path: "/api/v1/nope", as: "s1"}, status: 404, problem: true},
		{name: "bad interaction", req: req{method: "POST", path: "/api/v1/customers/" + id + "/interactions", as: "s1", body: `{"kind":"dance","summary":"x","next_follow_up":"soon"}`}, status: 422, want: []string{`"field":"kind"`, `"field":"next_follow_up"`}, problem: true},
		{name: "a token cannot mint tokens", req: req{method: "POST", path: "/api/v1/tokens", as: "s1", body: `{"name":"x","ttl":"1h"}`}, status: 400, want: []string{"browser session"}, problem: true},
	})
	// Nothing changed: still one customer, version 1, same name.
	rec := h.do(req{method: "GET", path: "/api/v1/customers", as: "admin"})
	var page struct {
		Items []map[string]any `json:"items"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0]["name"] != "Acme" || page.Items[0]["version"].(float64) != 1 {
		t.Fatalf("state changed: %v", page.Items)
	}
}

func TestAuthentication(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	h.run([]scenario{
		{name: "no credentials", req: req{method: "GET", path: "/api/v1/customers"}, status: 401, problem: true},
		{name: "bad scheme", req: req{method: "GET", path: "/api/v1/customers", header: map[string]string{"Authorization": "Basic eDp5"}}, status: 401, problem: true},
		{name: "unknown token", req: req{method: "GET", path: "/api/v1/customers", header: map[string]string{"Authorization": "Bearer cst_nope"}}, status: 401, problem: true},
		{name: "me", req: req{method: "GET", path: "/api/v1/me", as: "s1"}, status: 200, want: []string{"s1@example.com", `"via":"token"`}},
		{name: "wrong password", req: req{method: "POST", path: "/api/v1/login", body: `{"email":"s1@example.com","password":"wrong password!"}`}, status: 401, want: []string{"invalid email or password"}},
		{name: "unknown user", req: req{method: "POST", path: "/api/v1/login", body: `{"email":"ghost@example.com","password":"wrong password!"}`}, status: 401, want: []string{"invalid email or password"}},
		{name: "health", req: req{method: "GET", path: "/healthz"}, status: 200},
		{name: "ready", req: req{method: "GET", path: "/readyz"}, status: 200},
	})

	// Session login: cookie works for reads; writes need the CSRF header.
	rec := h.do(req{method: "POST", path: "/api/v1/login", body: `{"email":"s1@example.com","password":"correct horse battery"}`})
	if rec.Code != 200 {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
	cookie := rec.Result().Cookies()[0]
	if !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie flags: %+v", cookie)
	}
	var login struct {
		CSRF string `json:"csrf_token"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &login)
	withCookie := func(method, path, body, csrf string) int {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.AddCookie(cookie)
		if body != "" {
			r.Header.Set("Content-Type", "application/json")
		}
		if csrf != "" {
			r.Header.Set("X-CSRF-Token", csrf)
		}
		w := httptest.NewRecorder()
		h.h.ServeHTTP(w, r)
		return w.Code
	}
	if c := withCookie("GET", "/api/v1/customers", "", ""); c != 200 {
		t.Fatalf("cookie read: %d", c)
	}
	if c := withCookie("POST", "/api/v1/customers", `{"name":"X"}`, ""); c != 403 {
		t.Fatalf("cookie write without CSRF: %d", c)
	}
	if c := withCookie("POST", "/api/v1/customers", `{"name":"X"}`, "wrong"); c != 403 {
		t.Fatalf("cookie write with wrong CSRF: %d", c)
	}
	if c := withCookie("POST", "/api/v1/customers", `{"name":"X"}`, login.CSRF); c != 201 {
		t.Fatalf("cookie write with CSRF: %d", c)
	}

	// Disabling a user ends their sessions and tokens on the very next request.
	if err := h.n.Auth.SetDisabled(ctx, audit.Event{Actor: "test"}, h.ids["s1"], true); err != nil {
		t.Fatal(err)
	}
	if rec := h.do(req{method: "GET", path: "/api/v1/customers", as: "s1"}); rec.Code != 401 {
		t.Fatalf("disabled user's token: %d", rec.Code)
	}
	if c := withCookie("GET", "/api/v1/customers", "", ""); c != 401 {
		t.Fatalf("disabled user's session: %d", c)
	}

	// Revoking a token takes effect at once.
	s2 := &browser{h: h}
	if w := s2.do("POST", "/api/v1/auth/login", `{"email":"s2@example.com","password":"correct horse battery"}`); w.Code != 200 {
		t.Fatalf("s2 login: %d", w.Code)
	}
	if w := s2.do("POST", "/api/v1/tokens", `{"name":"x","ttl":"forever"}`); w.Code != 422 {
		t.Fatalf("bad ttl: %d %s", w.Code, w.Body)
	}
	rec = s2.do("POST", "/api/v1/tokens", `{"name":"laptop","ttl":"1h"}`)
	var created struct {
		Token string `json:"token"`
		Info  struct {
			ID string `json:"id"`
		} `json:"info"`
	}
	if rec.Code != 201 || json.Unmarshal(rec.Body.Bytes(), &created) != nil || !strings.HasPrefix(created.Token, "cst_") {
		t.Fatalf("create token: %d %s", rec.Code, rec.Body)
	}
	h.tokens["laptop"] = created.Token
	if rec := h.do(req{method: "GET", path: "/api/v1/me", as: "laptop"}); rec.Code != 200 {
		t.Fatalf("new token: %d", rec.Code)
	}
	if rec := h.do(req{method: "DELETE", path: "/api/v1/tokens/" + created.Info.ID, as: "manager"}); rec.Code != 404 {
		t.Fatalf("someone else's token: %d", rec.Code)
	}
	if rec := h.do(req{method: "DELETE", path: "/api/v1/tokens/" + created.Info.ID, as: "s2"}); rec.Code != 204 {
		t.Fatalf("revoke: %d", rec.Code)
	}
	if rec := h.do(req{method: "GET", path: "/api/v1/me", as: "laptop"}); rec.Code != 401 {
		t.Fatalf("revoked token: %d", rec.Code)
	}
}

func TestSecurityHeaders(t *testing.T) {
	h := newHarness(t)
	rec := h.do(req{method: "GET", path: "/api/v1/customers", as: "s1"})
	for k, v := range map[string]string{
		"X-Content-Type-Options":  "nosniff",
		"Cache-Control":           "no-store",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
	} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if rec.Header().Get("X-Request-Id") == "" {
		t.Error("no request id")
	}
}

func TestUsersAPI(t *testing.T) {
	h := newHarness(t)
	h.run([]scenario{
		{name: "admin creates user", req: req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"email":"new@example.com","name":"新同事","role":"support","password":"long enough password"}`}, status: 201, want: []string{"new@example.com"}, notWant: []string{"long enough password", "password_hash"}},
		{name: "duplicate", req: req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"email":"NEW@example.com","name":"x","role":"support","password":"long enough password"}`}, status: 409, problem: true},
		{name: "weak password", req: req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"email":"w@example.com","name":"x","role":"support","password":"short"}`}, status: 422, notWant: []string{"short\""}, problem: true},
		{name: "unknown role", req: req{method: "POST", path: "/api/v1/users", as: "admin", body: `{"email":"r@example.com","name":"x","role":"god","password":"long enough password"}`}, status: 422, problem: true},
		{name: "sales cannot create users", req: req{method: "POST", path: "/api/v1/users", as: "s1", body: `{"email":"x@example.com","name":"x","role":"admin","password":"long enough password"}`}, status: 403, problem: true},
		{name: "list users", req: req{method: "GET", path: "/api/v1/users", as: "admin"}, status: 200, want: []string{"s1@example.com", "new@example.com"}, notWant: []string{"password"}},
		{name: "self", req: req{method: "GET", path: "/api/v1/users/" + h.ids["s1"], as: "s1"}, status: 200},
		{name: "other user as sales", req: req{method: "GET", path: "/api/v1/users/" + h.ids["s2"], as: "s1"}, status: 403},
		{name: "admin cannot disable self", req: req{method: "POST", path: "/api/v1/users/" + h.ids["admin"] + "/disable", as: "admin"}, status: 409},
		{name: "admin disables s2", req: req{method: "POST", path: "/api/v1/users/" + h.ids["s2"] + "/disable", as: "admin"}, status: 200, want: []string{`"disabled":true`}},
	})
}
