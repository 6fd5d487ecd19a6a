package web

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	cdpwebauthn "github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

// screenshots names a directory for the browser tests' screenshots, to
// look at the pages: go test -run E2E ./internal/web -args -screenshots /tmp
var screenshots = flag.String("screenshots", "", "write screenshots of the pages the browser tests visit to this directory")

// TestPasskeyPagesE2E drives headless Chromium with a DevTools virtual
// authenticator through the real server and its pages, as a person would:
// sign in with the password, add a passkey on the passkeys page, confirm the
// next password sign-in with it, sign in with it alone, remove it, and see
// the passwordless sign-in refused.
func TestPasskeyPagesE2E(t *testing.T) {
	chrome := chromiumPath(t)
	auth.UseCheapHashingForTests(t)
	ctx := context.Background()

	// The browser reaches the server as http://localhost:PORT: a secure
	// context whose host is the relying party id.
	srv := httptest.NewUnstartedServer(nil)
	origin := fmt.Sprintf("http://localhost:%d", srv.Listener.Addr().(*net.TCPAddr).Port)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	cfg.PublicURL = origin
	logBuf := &lockedBuffer{}
	logger := slog.New(slog.NewTextHandler(logBuf, nil))
	n, err := node.Open(ctx, cfg, node.Options{Create: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	if n.Passkeys == nil {
		t.Fatalf("no passkey service for %s", origin)
	}
	const email, password = "ada@example.com", "correct horse battery"
	u, err := n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: email, Name: "Ada Lovelace", Role: "sales", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = New(n.DB, n.Auth, n.CRM, Options{Logger: logger, Passkeys: n.Passkeys}).Handler()
	srv.Start()
	t.Cleanup(srv.Close)

	bctx := headlessChromium(t, ctx, chrome, logBuf)

	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(bctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// at waits until the browser shows path (with its query). A passkey
	// error shown meanwhile ends the wait.
	at := func(path string) {
		t.Helper()
		want := origin + path
		type state struct{ Href, Error string }
		var st state
		var err error
		for deadline := time.Now().Add(20 * time.Second); ; {
			st, err = chromedp.Run(bctx, chromedp.Evaluate[state](`({href: location.href, error: (document.querySelector("[data-passkey-error]:not([hidden])") || {}).textContent || ""})`))
			if err == nil && st.Href == want {
				break
			}
			if err == nil && st.Error != "" {
				t.Fatalf("waiting for %s at %s, the page says: %s", want, st.Href, st.Error)
			}
			if time.Now().After(deadline) {
				t.Fatalf("the browser is at %s (%v), want %s", st.Href, err, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
		do("load "+path, chromedp.WaitReady(chromedp.CSS("footer")))
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	wantText := func(sel string, want ...string) {
		t.Helper()
		got := text(sel)
		for _, w := range want {
			if !strings.Contains(got, w) {
				t.Fatalf("%s lacks %q: %s", sel, w, got)
			}
		}
	}
	shoot := func(name string) {
		t.Helper()
		if *screenshots == "" {
			return
		}
		png, err := chromedp.Run(bctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(*screenshots, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
	signInWithPassword := func() {
		t.Helper()
		do("sign in with the password",
			chromedp.SendKeys(chromedp.CSS("#email"), email),
			chromedp.SendKeys(chromedp.CSS("#password"), password),
			chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		)
	}
	signOut := func() {
		t.Helper()
		do("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
		at("/login?m=signed_out")
	}
	passkeyLogin := `[data-passkey="login"] button[data-passkey-start]`

	// The sign-in page, in English, offers a passkey once its scripts run
	// under the page's Content-Security-Policy.
	do("open the sign-in page",
		chromedp.EmulateViewport(1000, 1000),
		chromedp.Navigate(origin+"/login?lang=en"),
		chromedp.WaitVisible(chromedp.CSS(passkeyLogin)),
	)
	wantText(passkeyLogin, "Sign in with a passkey")
	shoot("login.png")

	if _, err := cdpCall(bctx, cdpwebauthn.Enable, cdpwebauthn.EnableParams{}); err != nil {
		t.Fatal(err)
	}
	added, err := cdpCall(bctx, cdpwebauthn.AddVirtualAuthenticator, cdpwebauthn.AddVirtualAuthenticatorParams{Options: &cdpwebauthn.VirtualAuthenticatorOptions{
		Protocol: cdpwebauthn.AuthenticatorProtocolCtap2, Ctap2version: cdpwebauthn.Ctap2versionCtap21, Transport: cdpwebauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("add a virtual authenticator: %v", err)
	}
	authenticator := added.AuthenticatorID

	// 1. Sign in with the password (no second factor yet) and add a passkey.
	signInWithPassword()
	at("/")
	do("open the account page", chromedp.Navigate(origin+"/account"))
	at("/account")
	do("open the passkeys page", chromedp.Click(chromedp.CSS(`a[href="/account/passkeys"]`)))
	at("/account/passkeys")
	wantText("main", "You have no passkeys yet.")
	do("register a passkey",
		chromedp.SendKeys(chromedp.CSS("#passkey-name"), "Laptop"),
		chromedp.Click(chromedp.CSS(`form[data-passkey="register"] button[type="submit"]`)),
	)
	at("/account/passkeys?done=added")
	wantText("main", "The passkey was added.", "Laptop", "This device only", "Never")
	if got := text(".passkeys"); strings.Count(got, "Remove") != 1 {
		t.Fatalf("listed: %s", got)
	}
	shoot("passkeys-page.png")
	creds, err := cdpCall(bctx, cdpwebauthn.GetCredentials, cdpwebauthn.GetCredentialsParams{AuthenticatorID: authenticator})
	if err != nil || len(creds.Credentials) != 1 || string(creds.Credentials[0].UserHandle) != u.ID {
		t.Fatalf("credentials on the authenticator: %+v %v", creds, err)
	}
	signOut()

	// 2. The passkey is now the second factor of a password sign-in.
	signInWithPassword()
	at("/login/mfa")
	do("confirm with the passkey", chromedp.WaitVisible(chromedp.CSS(`[data-passkey="mfa"] button[data-passkey-start]`)))
	wantText("main", "Confirm it's you with the passkey")
	if n, err := chromedp.Run(bctx, chromedp.Evaluate[int](`document.querySelectorAll("input[name=code], [data-passkey-unsupported]:not([hidden])").length`)); err != nil || n != 0 {
		t.Fatalf("the passkey-only second step shows a code field or the no-passkey notice (%d, %v)", n, err)
	}
	shoot("login-mfa.png")
	do("confirm with the passkey", chromedp.Click(chromedp.CSS(`[data-passkey="mfa"] button[data-passkey-start]`)))
	at("/")
	do("open the account page", chromedp.Navigate(origin+"/account"))
	at("/account")
	wantText("main", email, "Verified for this session")
	signOut()

	// 3. The passkey alone signs in, with the second factor satisfied.
	do("sign in with the passkey", chromedp.Click(chromedp.CSS(passkeyLogin)))
	at("/")
	do("open the account page", chromedp.Navigate(origin+"/account"))
	at("/account")
	wantText("main", email, "Ada Lovelace", "Verified for this session")
	type sessionItem struct {
		MFA     bool `json:"mfa"`
		Current bool `json:"current"`
	}
	sessions, err := chromedp.Run(bctx, chromedp.Evaluate[struct{ Items []sessionItem }](`fetch("/api/v1/auth/sessions").then(r => r.json())`, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(sessions.Items, func(s sessionItem) bool { return s.Current }); i < 0 || !sessions.Items[i].MFA {
		t.Fatalf("the passkey session has no second factor: %+v", sessions)
	}

	// 4. Remove the passkey.
	do("open the passkeys page", chromedp.Click(chromedp.CSS(`a[href="/account/passkeys"]`)))
	at("/account/passkeys")
	do("remove the passkey", chromedp.Click(chromedp.CSS(`.passkey form button[type="submit"]`)))
	at("/account/passkeys?done=removed")
	wantText("main", "The passkey was removed.", "You have no passkeys yet.")
	signOut()

	// 5. The authenticator still holds the credential, but the server no
	// longer accepts it: the page says so and nobody is signed in.
	do("sign in with the removed passkey",
		chromedp.Click(chromedp.CSS(passkeyLogin)),
		chromedp.WaitVisible(chromedp.CSS(`[data-passkey="login"] [data-passkey-error]`)),
	)
	wantText(`[data-passkey="login"] [data-passkey-error]`, "That passkey was not accepted.")
	shoot("login-passkey-refused.png")
	if loc, err := chromedp.Run(bctx, chromedp.Location()); err != nil || loc != origin+"/login?m=signed_out" {
		t.Fatalf("after a refused passkey the browser is at %s (%v)", loc, err)
	}
	cookies, err := cdpCall(bctx, network.GetCookies, network.GetCookiesParams{URLs: []string{origin + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(cookies.Cookies, func(c *network.Cookie) bool { return c.Name == sessionCookie }) {
		t.Fatal("a session cookie after a refused passkey")
	}

	// The audit trail has every step with its method.
	var evs []store.AuditEvent
	if err := n.DB.Read(ctx, func(tx *store.Tx) error { evs, err = tx.AuditEvents(ctx, 0, 1000); return err }); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		switch {
		case strings.HasPrefix(e.Action, "passkey.") || e.Action == "auth.passkey":
			got = append(got, strings.TrimSpace(e.Action+" "+e.Outcome+" "+e.Reason))
		case (e.Action == "auth.mfa" || e.Action == "auth.login") && strings.Contains(e.Details, `"passkey"`):
			got = append(got, e.Action+" "+e.Outcome+" via passkey")
		}
	}
	want := []string{
		"passkey.register ok",
		"auth.passkey ok", "auth.mfa ok via passkey",
		"auth.passkey ok", "auth.login ok via passkey",
		"passkey.remove ok",
		"auth.passkey denied unknown passkey",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit trail:\n got %q\nwant %q", got, want)
	}
}
