package web_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/oidc/oidctest"
	"github.com/custos/custos/internal/web"
)

// Single sign-on end to end against a real (in-process) OpenID provider:
// provisioning with a role mapped from the groups claim, MFA taken from the
// provider's amr, refusal of an unverified email, single-use state.
func TestSingleSignOn(t *testing.T) {
	auth.UseCheapHashingForTests(t)
	idp := oidctest.New(t)
	srv := httptest.NewUnstartedServer(nil)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	origin := "http://localhost:" + port
	idp.Redirect = origin + "/api/v1/auth/oidc/callback"
	cfg := config.Default()
	cfg.DataDir, cfg.PublicURL = t.TempDir(), origin
	ic := idp.Config()
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCClientSecret, cfg.OIDCRoleClaim = ic.Issuer, ic.ClientID, ic.ClientSecret, "groups"
	cfg.OIDCRoleMap = "crm-sales=sales, crm-admin=admin"
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, HTTPClient: idp.Client()})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	srv.Config.Handler = web.New(n.DB, n.Auth, n.CRM, web.Options{SSO: n.SSO, Passkeys: n.Passkeys}).Handler()
	srv.Start()
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{}, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	defer client.CloseIdleConnections()
	defer idp.Client().CloseIdleConnections()
	get := func(u string, cookie *http.Cookie) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", u, nil)
		if cookie != nil {
			req.AddCookie(cookie)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// signIn runs the browser's part of a login and returns the callback's answer.
	var binding *http.Cookie
	signIn := func() (*http.Response, string) {
		t.Helper()
		resp := get(srv.URL+"/api/v1/auth/oidc/login", nil)
		if resp.StatusCode != http.StatusFound {
			t.Fatalf("login: %d", resp.StatusCode)
		}
		binding = nil
		for _, c := range resp.Cookies() {
			if c.Name == "custos_sso" {
				binding = c
			}
		}
		if binding == nil || !binding.HttpOnly || binding.SameSite != http.SameSiteLaxMode {
			t.Fatalf("no browser-binding cookie: %v", resp.Cookies())
		}
		state, code := idp.Browse(resp.Header.Get("Location"))
		cb := srv.URL + "/api/v1/auth/oidc/callback?state=" + url.QueryEscape(state) + "&code=" + url.QueryEscape(code)
		return get(cb, binding), cb
	}
	session := func(resp *http.Response) *http.Cookie {
		for _, c := range resp.Cookies() {
			if c.Name == "custos_session" {
				return c
			}
		}
		return nil
	}
	me := func(c *http.Cookie) string {
		t.Helper()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/me", nil)
		req.AddCookie(c)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}

	// 1. A new user is provisioned with the first mapped group (crm-sales);
	// the provider asserted MFA (amr otp).
	resp, cb := signIn()
	c := session(resp)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Refresh") != "0; url=/account" || c == nil {
		t.Fatalf("callback: %d %s", resp.StatusCode, resp.Header.Get("Refresh"))
	}
	if body := me(c); !strings.Contains(body, `"email":"alice.example@example.com"`) || !strings.Contains(body, `"role":"sales"`) {
		t.Fatalf("me: %s", body)
	}
	// 2. The callback's state works once.
	if resp := get(cb, binding); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("replayed callback: %d", resp.StatusCode)
	}
	// 2b. Login CSRF: a callback of someone else's sign-in, opened in a
	// browser without its binding cookie, is refused.
	resp = get(srv.URL+"/api/v1/auth/oidc/login", nil)
	state, code := idp.Browse(resp.Header.Get("Location"))
	if r := get(srv.URL+"/api/v1/auth/oidc/callback?state="+url.QueryEscape(state)+"&code="+url.QueryEscape(code), nil); r.StatusCode != http.StatusUnauthorized || session(r) != nil {
		t.Fatalf("callback in another browser: %d", r.StatusCode)
	}
	// 3. An unverified email is refused.
	idp.Claims = func(c map[string]any) { c["email_verified"] = false }
	if resp, _ := signIn(); resp.StatusCode != http.StatusUnauthorized || session(resp) != nil {
		t.Fatalf("unverified email: %d", resp.StatusCode)
	}
	// 4. An administrator the provider did not assert MFA for, without a local
	// factor, gets a session restricted to enrollment.
	idp.Claims = func(c map[string]any) {
		c["email"], c["sub"], c["groups"], c["amr"] = "root.admin@example.com", "admin-1", []string{"crm-admin"}, []string{"pwd"}
	}
	resp, _ = signIn()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Refresh") != "0; url=/account/mfa" {
		t.Fatalf("admin without MFA: %d %s", resp.StatusCode, resp.Header.Get("Refresh"))
	}
	req, _ := http.NewRequest("GET", srv.URL+"/api/v1/customers", nil)
	req.AddCookie(session(resp))
	if r2 := doClose(t, client, req); r2.StatusCode != http.StatusForbidden {
		t.Fatalf("restricted admin reads customers: %d", r2.StatusCode)
	}
	// 5. No account and no mapped role: refused, nobody provisioned.
	idp.Claims = func(c map[string]any) {
		c["email"], c["sub"], c["groups"] = "stranger@example.com", "x-2", []string{"employees"}
	}
	if resp, _ := signIn(); resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("unmapped stranger: %d", resp.StatusCode)
	}
	if _, err := n.Auth.FindUserByEmail(context.Background(), "stranger@example.com"); err == nil {
		t.Fatal("a stranger was provisioned")
	}
}

func doClose(t *testing.T, c *http.Client, req *http.Request) *http.Response {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}
