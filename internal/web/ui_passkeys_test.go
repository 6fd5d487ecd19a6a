package web

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// addStoredPasskey stores a passkey for the user of email as if it had been
// registered (the pages only list and remove it; the browser test covers
// the ceremonies).
func addStoredPasskey(t *testing.T, h *uiHarness, email, name string, id []byte, synced bool) string {
	t.Helper()
	ctx := context.Background()
	u, err := h.n.Auth.FindUserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	cred, err := json.Marshal(map[string]any{"id": id, "flags": map[string]bool{"backupEligible": true, "backupState": synced}})
	if err != nil {
		t.Fatal(err)
	}
	err = h.n.DB.Write(ctx, func(tx *store.Tx) error {
		return tx.InsertPasskey(ctx, store.Passkey{ID: id, UserID: u.ID, Name: name, Credential: cred, CreatedAt: h.clock.now()})
	})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(id)
}

// Without a passkey service the pages offer no passkey and load no script
// for them.
func TestUIPasskeysOff(t *testing.T) {
	h := newUIHarness(t)
	c := h.client("en")
	for _, tc := range []struct {
		path    string
		want    []string
		notWant []string
	}{
		{"/login", []string{"Sign in"}, []string{"data-passkey", "passkey.js", "passkey-ui.js", "Sign in with a passkey"}},
	} {
		w := c.get(tc.path)
		wantBody(t, w, http.StatusOK, tc.want...)
		for _, s := range tc.notWant {
			if strings.Contains(w.Body.String(), s) {
				t.Errorf("%s shows %q", tc.path, s)
			}
		}
	}
	wantRedirect(t, c.login("sales@example.com", uiPassword), "/")
	if w := c.get("/account"); strings.Contains(w.Body.String(), "/account/passkeys") {
		t.Error("the account page links the passkeys page")
	}
	w := c.get("/account/passkeys")
	wantBody(t, w, http.StatusOK, "Passkeys are not available on this server.")
	checkPageHeaders(t, w)
	if strings.Contains(w.Body.String(), "data-passkey") {
		t.Error("the passkeys page offers to register a passkey")
	}
	wantBody(t, c.do("POST", "/account/passkeys/AQ/remove", url.Values{csrfField: {csrfOf(t, w)}}), http.StatusNotFound, "That passkey no longer exists.")
}

// The passkeys page lists the user's passkeys (and only theirs), carries
// the CSRF token for its script in a data attribute, and removes a passkey
// with a form that needs the token.
func TestUIPasskeysPage(t *testing.T) {
	h := newUIHarnessWith(t, true)
	admin := h.client("en")
	wantRedirect(t, admin.login("admin@example.com", uiPassword), "/account/mfa")
	enroll(t, h, admin)
	laptop := addStoredPasskey(t, h, "sales@example.com", "Laptop <b>", []byte{1, 2, 3}, false)
	phone := addStoredPasskey(t, h, "sales@example.com", "Phone", []byte{4, 5, 6}, true)
	theirs := addStoredPasskey(t, h, "admin@example.com", "Admin key", []byte{7, 8, 9}, true)

	c := h.client("en")
	wantRedirect(t, c.get("/account/passkeys"), "/login")
	w := c.get("/login")
	wantBody(t, w, http.StatusOK, "Sign in with a passkey", `data-passkey="login"`, `src="/static/passkey.js"`, "/assets/passkey-ui.js?v=")
	checkPageHeaders(t, w)
	// A passkey is a second factor: the only one of this user, so the page
	// asks for nothing else.
	wantRedirect(t, c.login("sales@example.com", uiPassword), "/login/mfa")
	if mc := c.cookies[mfaMethodsCookie]; mc == nil || mc.Value != "passkey" || !mc.HttpOnly || mc.Path != "/login" {
		t.Fatalf("methods cookie %+v", mc)
	}
	w = c.get("/login/mfa")
	wantBody(t, w, http.StatusOK, "Use your passkey", "Confirm it's you with the passkey", `data-passkey="mfa"`, `data-passkey-unsupported`)
	checkPageHeaders(t, w)
	if strings.Contains(w.Body.String(), `name="code"`) || strings.Contains(w.Body.String(), "authenticator app") {
		t.Fatalf("a passkey-only sign-in is asked for a code: %s", w.Body)
	}
	pageCSRF := regexp.MustCompile(`data-csrf="([^"]+)"`).FindStringSubmatch(w.Body.String())
	if pageCSRF == nil || pageCSRF[1] != c.cookies[loginCSRFCookie].Value {
		t.Fatalf("the page's CSRF token %q", pageCSRF)
	}

	// The passkey's own step of the second-factor page.
	begin := func(csrf string) *httptest.ResponseRecorder {
		c.header = map[string]string{"X-CSRF-Token": csrf}
		defer func() { c.header = nil }()
		return c.do("POST", "/login/mfa/passkey/begin", nil)
	}
	if res := begin("forged"); res.Code != http.StatusForbidden {
		t.Fatalf("begin with a forged token: %d %s", res.Code, res.Body)
	}
	res := begin(pageCSRF[1])
	var opts struct {
		PublicKey struct {
			AllowCredentials []struct{ ID string } `json:"allowCredentials"`
		} `json:"publicKey"`
	}
	if err := json.Unmarshal(res.Body.Bytes(), &opts); err != nil || res.Code != http.StatusOK {
		t.Fatalf("begin: %d %v %s", res.Code, err, res.Body)
	}
	if ids := opts.PublicKey.AllowCredentials; len(ids) != 2 || ids[0].ID != laptop || ids[1].ID != phone {
		t.Fatalf("allowed credentials %+v: %s", ids, res.Body)
	}
	if ck := c.cookies[passkeyCookie]; ck == nil || ck.Path != mfaPasskeyPath || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode {
		t.Fatalf("ceremony cookie %+v", ck)
	}
	// A challenge that is gone sends the script back to sign-in.
	delete(c.cookies, mfaCookie)
	if res := begin(pageCSRF[1]); res.Code != http.StatusUnauthorized || !strings.Contains(res.Body.String(), `"next":"/login?m=expired"`) {
		t.Fatalf("begin without a challenge: %d %s", res.Code, res.Body)
	}

	// A user with a TOTP app and a passkey is offered both.
	b := h.client("en")
	wantRedirect(t, b.login("admin@example.com", uiPassword), "/login/mfa")
	wantBody(t, b.get("/login/mfa"), http.StatusOK, "Open your authenticator app", `name="code"`, "or enter a code from your authenticator app")
	wantBody(t, b.do("POST", "/login/mfa", url.Values{csrfField: {b.cookies[loginCSRFCookie].Value}, "code": {"000000"}}),
		http.StatusOK, "That code is not valid.", "Use your passkey", `name="code"`)
	// Without the methods cookie, the page offers every form.
	delete(b.cookies, mfaMethodsCookie)
	wantBody(t, b.get("/login/mfa"), http.StatusOK, "Use your passkey", `name="code"`)

	// A session (as after the passkey): the account page links the list.
	c = h.client("en")
	signIn(t, h, c, "sales@example.com")
	wantBody(t, c.get("/account"), http.StatusOK, `href="/account/passkeys"`, "Manage passkeys")
	w = c.get("/account/passkeys")
	checkPageHeaders(t, w)
	csrf := csrfOf(t, w)
	wantBody(t, w, http.StatusOK, "Laptop &lt;b&gt;", "Phone", "Synced", "This device only", "Never", "2026-03-02 10:00",
		`action="/account/passkeys/`+laptop+`/remove"`, `data-passkey="register"`, `data-csrf="`+csrf+`"`, `maxlength="64"`)
	if strings.Contains(w.Body.String(), "Admin key") || strings.Contains(w.Body.String(), "Laptop <b>") {
		t.Fatalf("another user's passkey, or an unescaped name: %s", w.Body)
	}
	if strings.Contains(w.Body.String(), "?csrf") || strings.Contains(w.Body.String(), "&csrf") {
		t.Fatal("the CSRF token is in a URL")
	}

	for _, tc := range []struct {
		name, id, csrf string
		status         int
		want           string
	}{
		{"forged token", laptop, "forged", http.StatusForbidden, "did not come from this site"},
		{"another user's passkey", theirs, csrf, http.StatusNotFound, "That passkey no longer exists."},
		{"no such passkey", "AAAA", csrf, http.StatusNotFound, "That passkey no longer exists."},
		{"not base64url", "%2E%2E", csrf, http.StatusNotFound, "That passkey no longer exists."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantBody(t, c.do("POST", "/account/passkeys/"+tc.id+"/remove", url.Values{csrfField: {tc.csrf}}), tc.status, tc.want)
		})
	}
	wantRedirect(t, c.do("POST", "/account/passkeys/"+laptop+"/remove", url.Values{csrfField: {csrf}}), "/account/passkeys?done=removed")
	w = c.get("/account/passkeys?done=removed")
	wantBody(t, w, http.StatusOK, "The passkey was removed.", "Phone")
	if strings.Contains(w.Body.String(), "Laptop") {
		t.Fatal("a removed passkey is listed")
	}
	wantBody(t, c.do("POST", "/account/passkeys/"+laptop+"/remove", url.Values{csrfField: {csrf}}), http.StatusNotFound, "That passkey no longer exists.")

	// Chinese.
	c.lang = "zh-CN"
	delete(c.cookies, langCookie)
	wantBody(t, c.get("/account/passkeys"), http.StatusOK, "通行密钥", "已同步", "创建通行密钥")
}

// signIn opens a session for the user of email as a passkey login does and
// gives it to the client, with the pages' CSRF cookie.
func signIn(t *testing.T, h *uiHarness, c *uiClient, email string) {
	t.Helper()
	ctx := context.Background()
	u, err := h.n.Auth.FindUserByEmail(ctx, email)
	if err != nil {
		t.Fatal(err)
	}
	res, err := h.n.Auth.OpenVerifiedSession(ctx, audit.Event{Actor: "test"}, u.ID, "passkey", true)
	if err != nil {
		t.Fatal(err)
	}
	h.secret(res.Token)
	c.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: res.Token, Path: "/"}
	c.cookies[csrfCookie] = &http.Cookie{Name: csrfCookie, Value: res.CSRF, Path: "/"}
}
