package web

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/passkey"
	"github.com/custos/custos/internal/store"
)

// chromiumPath finds the Chromium the browser tests drive. A missing browser
// fails the test: a skipped test would pass without proving anything.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Fatal("chromium not installed: run scripts/ensure-chromium.sh")
	return ""
}

// openerLog is a SessionOpener that records whom it opened sessions for.
type openerLog struct {
	mu    sync.Mutex
	users []string
}

func (o *openerLog) open(_ context.Context, userID string, _ *http.Request) (string, string, any, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.users = append(o.users, userID)
	n := len(o.users)
	return fmt.Sprintf("session-%d", n), fmt.Sprintf("csrf-%d", n), map[string]string{"id": userID}, nil
}

func (o *openerLog) calls() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.users)
}

// The test page loads passkey.js as a file under a strict policy: no inline
// script is allowed, so the test proves the script needs none.
const passkeyTestPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Custos passkeys</title>
<script src="/static/passkey.js"></script></head>
<body><p>Custos passkey test page</p></body></html>`

const testCSRF = "test-csrf-token"

// passkeyTestMux serves the page, the script and the passkey routes. The
// authenticated routes act as the signed-in user (p, id) after checking the
// CSRF header a cookie session needs, which the real middleware will do.
func passkeyTestMux(h *PasskeyHandlers, svc *passkey.Service, p access.Principal, id auth.Identity) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, passkeyTestPage)
	})
	mux.Handle("GET /static/", StaticHandler())
	as := func(next authedHandler) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			if !safeMethod(r.Method) && r.Header.Get("X-CSRF-Token") != testCSRF {
				writeProblem(w, r, http.StatusForbidden, "missing or wrong X-CSRF-Token header", nil)
				return
			}
			next(w, r, p, id)
		}
	}
	mux.HandleFunc("POST /api/v1/passkeys/register/begin", as(h.RegisterBegin))
	mux.HandleFunc("POST /api/v1/passkeys/register/finish", as(h.RegisterFinish))
	mux.HandleFunc("GET /api/v1/passkeys", as(h.List))
	mux.HandleFunc("DELETE /api/v1/passkeys/{id}", as(h.Remove))
	mux.HandleFunc("POST /api/v1/auth/passkey/begin", h.LoginBegin)
	mux.HandleFunc("POST /api/v1/auth/passkey/finish", h.LoginFinish)
	// A passkey as the second factor of a user known from a password step.
	mux.HandleFunc("POST /api/v1/test/mfa/begin", func(w http.ResponseWriter, r *http.Request) {
		options, token, err := svc.BeginSecondFactor(r.Context(), id.User.ID)
		if err != nil {
			h.writeError(w, r, err, http.StatusUnauthorized)
			return
		}
		h.setCeremony(w, token)
		writeOptions(w, options)
	})
	mux.HandleFunc("POST /api/v1/test/mfa/finish", func(w http.ResponseWriter, r *http.Request) {
		token, ok := ceremony(w, r)
		if !ok {
			return
		}
		var body json.RawMessage
		if !decodeJSON(w, r, &body) {
			return
		}
		h.clearCeremony(w)
		if err := svc.FinishSecondFactor(r.Context(), audit.Event{Actor: "anonymous"}, id.User.ID, token, body); err != nil {
			h.writeError(w, r, err, http.StatusUnauthorized)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		w.Header().Set("Cache-Control", "no-store")
		mux.ServeHTTP(w, r)
	})
}

// jsResult is what custosPasskey.register and .login resolve to.
type jsResult struct {
	OK     bool            `json:"ok"`
	Status int             `json:"status"`
	Body   json.RawMessage `json:"body"`
}

// cdpCall sends one DevTools protocol command to the tab of ctx.
func cdpCall[P, R any](ctx context.Context, cmd cdp.Command[P, R], params P) (R, error) {
	return chromedp.Run(ctx, chromedp.Action[R](func(ctx context.Context, t *chromedp.Target) (R, error) {
		return cdp.Call(ctx, t, cmd, params)
	}))
}

// TestPasskeyBrowser drives headless Chromium with DevTools virtual
// authenticators through the whole life of passkeys: register two (on two
// authenticators), refuse registering one authenticator twice, log in without
// a password, confirm a second factor, remove one (which then no longer logs
// in) and log in with the other; a disabled user cannot log in.
func TestPasskeyBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	auth.UseCheapHashingForTests(t)
	ctx := context.Background()
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	n, err := node.Open(ctx, cfg, node.Options{Create: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	u, err := n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: "ada@example.com", Name: "Ada Lovelace", Role: "sales", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	id := auth.Identity{User: u, Via: "session"}
	p, err := n.CRM.Principal(ctx, access.Subject{UserID: u.ID, Actor: id.Actor(), Role: u.Role})
	if err != nil {
		t.Fatal(err)
	}

	// The browser reaches the server as http://localhost:PORT, so the origin
	// is a secure context and its host is the relying party id.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	origin := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	svc, err := passkey.New(n.DB, "localhost", origin, "Custos", nil)
	if err != nil {
		t.Fatal(err)
	}
	logBuf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logBuf, nil))
	opener := &openerLog{}
	h := &PasskeyHandlers{Svc: svc, Open: opener.open, Log: logger}
	srv := httptest.NewUnstartedServer(passkeyTestMux(h, svc, p, id))
	_ = srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)

	// Without a browser: the ceremony cookie, and API tokens refused.
	t.Run("ceremony cookie", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.LoginBegin(rec, httptest.NewRequest("POST", "/api/v1/auth/passkey/begin", nil))
		res := rec.Result()
		if res.StatusCode != http.StatusOK {
			t.Fatalf("status %d", res.StatusCode)
		}
		var c *http.Cookie
		for _, k := range res.Cookies() {
			if k.Name == passkeyCookie {
				c = k
			}
		}
		if c == nil || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.MaxAge != 300 || c.Path != "/api/v1/" || len(c.Value) < 40 {
			t.Fatalf("ceremony cookie %+v", c)
		}
		var opts struct {
			PublicKey struct {
				Challenge        string `json:"challenge"`
				RPID             string `json:"rpId"`
				UserVerification string `json:"userVerification"`
				AllowCredentials []any  `json:"allowCredentials"`
			} `json:"publicKey"`
		}
		if err := json.NewDecoder(res.Body).Decode(&opts); err != nil {
			t.Fatal(err)
		}
		if opts.PublicKey.RPID != "localhost" || opts.PublicKey.UserVerification != "required" || len(opts.PublicKey.Challenge) < 22 || opts.PublicKey.AllowCredentials != nil {
			t.Fatalf("login options %+v", opts)
		}
	})
	t.Run("api token refused", func(t *testing.T) {
		tokenID := id
		tokenID.Via, tokenID.TokenID = "token", "t1"
		rec := httptest.NewRecorder()
		h.RegisterBegin(rec, httptest.NewRequest("POST", "/api/v1/passkeys/register/begin", nil), p, tokenID)
		if rec.Code != http.StatusForbidden || !strings.Contains(rec.Body.String(), "not with an API token") {
			t.Fatalf("register with an API token: %d %s", rec.Code, rec.Body)
		}
	})

	bctx := headlessChromium(t, ctx, chrome, logBuf)

	if err := chromedp.Do(bctx, chromedp.Navigate(origin+"/")); err != nil {
		t.Fatalf("open the test page: %v", err)
	}
	if ok, err := chromedp.Run(bctx, chromedp.Evaluate[bool](`typeof window.custosPasskey === "object" && window.custosPasskey.supported()`)); err != nil || !ok {
		t.Fatalf("passkey.js not loaded under the page's CSP, or WebAuthn unsupported: %v %v", ok, err)
	}
	if _, err := cdpCall(bctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	addAuthenticator := func(transport cdpwebauthn.AuthenticatorTransport) cdpwebauthn.AuthenticatorID {
		t.Helper()
		res, err := cdpCall(bctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
			Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21, Transport: transport,
			HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
			// Only so that a credential read back from one authenticator
			// can be added to another: cdproto always sends the CMTG
			// field generateCmtgKeyOnNextOperation, which Chromium refuses
			// for an authenticator without CMTG support.
			HasCmtgKey: true,
		}})
		if err != nil {
			t.Fatalf("add a virtual authenticator: %v", err)
		}
		return res.AuthenticatorID
	}
	removeAuthenticator := func(a cdpwebauthn.AuthenticatorID) {
		t.Helper()
		if _, err := cdpCall(bctx, cdpwebauthn.RemoveVirtualAuthenticator, cdpwebauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: a}); err != nil {
			t.Fatal(err)
		}
	}
	credentialsOf := func(a cdpwebauthn.AuthenticatorID) []*cdpwebauthn.Credential {
		t.Helper()
		res, err := cdpCall(bctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: a})
		if err != nil {
			t.Fatal(err)
		}
		return res.Credentials
	}
	run := func(expr string) (jsResult, error) {
		return chromedp.Run(bctx, chromedp.Evaluate[jsResult](expr, chromedp.EvalAwaitPromise))
	}
	register := func(name string) (jsResult, error) {
		return run(fmt.Sprintf(`window.custosPasskey.register({begin: "/api/v1/passkeys/register/begin", finish: "/api/v1/passkeys/register/finish", name: %q, csrf: %q})`, name, testCSRF))
	}
	login := func() (jsResult, error) {
		return run(`window.custosPasskey.login({begin: "/api/v1/auth/passkey/begin", finish: "/api/v1/auth/passkey/finish"})`)
	}
	stored := func() []store.Passkey {
		t.Helper()
		var ps []store.Passkey
		if err := n.DB.Read(ctx, func(tx *store.Tx) error { ps, err = tx.UserPasskeys(ctx, u.ID); return err }); err != nil {
			t.Fatal(err)
		}
		return ps
	}
	listed := func() []passkey.Passkey {
		t.Helper()
		res, err := run(`fetch("/api/v1/passkeys").then(r => r.json()).then(b => ({ok: true, status: 200, body: b}))`)
		if err != nil {
			t.Fatal(err)
		}
		var page struct{ Items []passkey.Passkey }
		if err := json.Unmarshal(res.Body, &page); err != nil {
			t.Fatal(err)
		}
		return page.Items
	}
	cookies := func() map[string]*network.Cookie {
		t.Helper()
		res, err := cdpCall(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/api/v1/"}})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]*network.Cookie{}
		for _, c := range res.Cookies {
			out[c.Name] = c
		}
		return out
	}
	b64 := base64.RawURLEncoding.EncodeToString

	// 1. Register a passkey on a platform authenticator ("internal").
	laptop := addAuthenticator(cdpwebauthn.AuthenticatorTransportInternal)
	res, err := register("Laptop")
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if res.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", res.Status, res.Body)
	}
	var first passkey.Passkey
	if err := json.Unmarshal(res.Body, &first); err != nil {
		t.Fatal(err)
	}
	if first.Name != "Laptop" || first.ID == "" || strings.Contains(string(res.Body), "publicKey") {
		t.Fatalf("registered passkey %s", res.Body)
	}
	if ps := stored(); len(ps) != 1 || b64(ps[0].ID) != first.ID || ps[0].UserID != u.ID || ps[0].LastUsedAt != nil {
		t.Fatalf("stored after one registration: %+v", ps)
	}
	onLaptop := credentialsOf(laptop)
	if len(onLaptop) != 1 || !onLaptop[0].IsResidentCredential || string(onLaptop[0].UserHandle) != u.ID || b64(onLaptop[0].CredentialID) != first.ID {
		t.Fatalf("credential on the authenticator: %+v", onLaptop)
	}
	if _, ok := cookies()[passkeyCookie]; ok {
		t.Fatal("ceremony cookie left after the registration")
	}

	// 2. The same authenticator is excluded from registering again.
	if res, err := register("Laptop again"); err == nil || !strings.Contains(err.Error(), "InvalidStateError") {
		t.Fatalf("registering one authenticator twice: %+v %v", res, err)
	}
	if ps := stored(); len(ps) != 1 {
		t.Fatalf("%d passkeys after an excluded registration", len(ps))
	}

	// 3. A second passkey on a security key; the laptop is put away (its
	// credential kept, to bring it back later).
	removeAuthenticator(laptop)
	key := addAuthenticator(cdpwebauthn.AuthenticatorTransportUsb)
	res, err = register("Security key")
	if err != nil || res.Status != http.StatusCreated {
		t.Fatalf("register a second passkey: %+v %v", res, err)
	}
	var second passkey.Passkey
	if err := json.Unmarshal(res.Body, &second); err != nil {
		t.Fatal(err)
	}
	if ls := listed(); len(ls) != 2 || ls[0].ID != first.ID || ls[1].ID != second.ID || ls[1].Name != "Security key" {
		t.Fatalf("listed: %+v", ls)
	}

	// 4. Log in without a password with the security key.
	res, err = login()
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("passkey login: %+v %v", res, err)
	}
	if calls := opener.calls(); len(calls) != 1 || calls[0] != u.ID {
		t.Fatalf("sessions opened for %v, want [%s]", calls, u.ID)
	}
	var loggedIn struct {
		User struct{ ID string } `json:"user"`
		CSRF string              `json:"csrf_token"`
	}
	if err := json.Unmarshal(res.Body, &loggedIn); err != nil || loggedIn.User.ID != u.ID || loggedIn.CSRF != "csrf-1" {
		t.Fatalf("login answer %s (%v)", res.Body, err)
	}
	jar := cookies()
	if c := jar[sessionCookie]; c == nil || c.Value != "session-1" || !c.HTTPOnly {
		t.Fatalf("session cookie %+v", c)
	}
	if _, ok := jar[passkeyCookie]; ok {
		t.Fatal("ceremony cookie left after the login")
	}
	ps := stored()
	onKey := credentialsOf(key)
	if len(ps) != 2 || ps[1].LastUsedAt == nil || ps[0].LastUsedAt != nil {
		t.Fatalf("last use not recorded on the right passkey: %+v", ps)
	}
	if len(onKey) != 1 || onKey[0].SignCount < 1 || ps[1].SignCount != int64(onKey[0].SignCount) {
		t.Fatalf("sign count stored %d, authenticator's %+v", ps[1].SignCount, onKey)
	}
	t.Logf("logged in with %q; signature counter %d", second.Name, ps[1].SignCount)

	// 5. The passkey as the second factor of a known user.
	res, err = run(`window.custosPasskey.login({begin: "/api/v1/test/mfa/begin", finish: "/api/v1/test/mfa/finish"})`)
	if err != nil || res.Status != http.StatusNoContent {
		t.Fatalf("passkey as second factor: %+v %v", res, err)
	}
	if ps := stored(); ps[1].SignCount <= int64(onKey[0].SignCount) {
		t.Fatalf("counter did not advance with the second factor: %d", ps[1].SignCount)
	}

	// 6. Remove the security key's passkey: it no longer logs in.
	res, err = run(fmt.Sprintf(`fetch("/api/v1/passkeys/%s", {method: "DELETE", headers: {"X-CSRF-Token": %q}}).then(r => ({ok: r.ok, status: r.status, body: null}))`, second.ID, testCSRF))
	if err != nil || res.Status != http.StatusNoContent {
		t.Fatalf("remove: %+v %v", res, err)
	}
	if ls := listed(); len(ls) != 1 || ls[0].ID != first.ID {
		t.Fatalf("listed after removal: %+v", ls)
	}
	res, err = run(fmt.Sprintf(`fetch("/api/v1/passkeys/%s", {method: "DELETE", headers: {"X-CSRF-Token": %q}}).then(r => ({ok: r.ok, status: r.status, body: null}))`, second.ID, testCSRF))
	if err != nil || res.Status != http.StatusNotFound {
		t.Fatalf("remove twice: %+v %v", res, err)
	}
	res, err = login()
	if err != nil || res.Status != http.StatusUnauthorized || !strings.Contains(string(res.Body), "passkey not accepted") {
		t.Fatalf("login with a removed passkey: %+v %v", res, err)
	}
	if calls := opener.calls(); len(calls) != 1 {
		t.Fatalf("a session was opened for a removed passkey: %v", calls)
	}

	// 7. The laptop comes back: its passkey still logs in.
	removeAuthenticator(key)
	laptop = addAuthenticator(cdpwebauthn.AuthenticatorTransportInternal)
	back := *onLaptop[0]
	back.CmtgKeys, back.ActiveCmtgKeyIndex = nil, nil // read back as empty, refused when sent
	if _, err := cdpCall(bctx, cdpwebauthn.AddCredential, cdpwebauthn.AddCredentialParams{AuthenticatorID: laptop, Credential: &back}); err != nil {
		t.Fatal(err)
	}
	res, err = login()
	if err != nil || res.Status != http.StatusOK {
		t.Fatalf("login with the remaining passkey: %+v %v", res, err)
	}
	if calls := opener.calls(); len(calls) != 2 || calls[1] != u.ID {
		t.Fatalf("sessions opened for %v", calls)
	}
	ps = stored()
	onLaptop = credentialsOf(laptop)
	if len(ps) != 1 || ps[0].LastUsedAt == nil || ps[0].SignCount < 1 || ps[0].SignCount != int64(onLaptop[0].SignCount) {
		t.Fatalf("after login with the laptop: stored %+v, authenticator %+v", ps, onLaptop)
	}

	// 8. A disabled user cannot log in with a passkey.
	if err := n.Auth.SetDisabled(ctx, audit.Event{Actor: "test"}, u.ID, true); err != nil {
		t.Fatal(err)
	}
	res, err = login()
	if err != nil || res.Status != http.StatusUnauthorized {
		t.Fatalf("login of a disabled user: %+v %v", res, err)
	}
	if calls := opener.calls(); len(calls) != 2 {
		t.Fatalf("a session was opened for a disabled user: %v", calls)
	}

	// The audit trail has every step, and the reason of each refusal.
	var evs []store.AuditEvent
	if err := n.DB.Read(ctx, func(tx *store.Tx) error { evs, err = tx.AuditEvents(ctx, 0, 1000); return err }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		if strings.HasPrefix(e.Action, "passkey.") || e.Action == "auth.passkey" {
			got = append(got, e.Action+" "+e.Outcome+" "+e.Reason)
		}
	}
	want := []string{
		"passkey.register ok ", "passkey.register ok ", "auth.passkey ok ", "auth.passkey ok ", "passkey.remove ok ",
		"auth.passkey denied unknown passkey", "auth.passkey ok ", "auth.passkey denied user disabled",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail:\n got %q\nwant %q", got, want)
	}
}

// lockedBuffer collects output written from other goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// headlessChromium starts Chromium for one test with the flags this machine
// needs (no background connections: the network is closed) and returns a
// browser context bounded to two minutes. When the test fails, the server
// log and the end of the browser's output are logged.
func headlessChromium(t *testing.T, ctx context.Context, chrome string, serverLog *lockedBuffer) context.Context {
	t.Helper()
	browserOut := &lockedBuffer{}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(chrome),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.CombinedOutput(browserOut),
	)
	bctx, cancelBrowser := chromedp.NewContext(allocCtx)
	bctx, cancelTimeout := context.WithTimeout(bctx, 2*time.Minute)
	// Cleanups run last-in first-out: log first, then close the browser.
	t.Cleanup(cancelAlloc)
	t.Cleanup(cancelBrowser)
	t.Cleanup(cancelTimeout)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", serverLog.String())
			t.Logf("browser output (last 4 KiB):\n%s", tail(browserOut.String(), 4096))
		}
	})
	return bctx
}
