package web

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	cdppage "github.com/chromedp/cdproto/page"
	cdpruntime "github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
)

// screenshotDir is where the browser tests write their screenshots of the
// pages: -screenshots DIR, else test-output/screenshots at the top of the
// repository (ignored by git).
func screenshotDir(t *testing.T) string {
	t.Helper()
	dir := *screenshots
	if dir == "" {
		dir = filepath.Join("..", "..", "test-output", "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// browser is one headless Chromium tab on the test server, with what its
// console said and whether a dialog (an alert) ever opened.
type browser struct {
	t       *testing.T
	ctx     context.Context
	origin  string
	shots   string
	mu      sync.Mutex
	console []string
	dialogs []string
}

func (b *browser) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	if err := chromedp.Do(b.ctx, steps...); err != nil {
		b.t.Fatalf("%s: %v", what, err)
	}
}

// at waits until the browser shows path (with its query, without the
// fragment) and the page has loaded.
func (b *browser) at(path string) {
	b.t.Helper()
	want := b.origin + path
	var href string
	var err error
	for deadline := time.Now().Add(20 * time.Second); ; {
		href, err = chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href.split("#")[0]`))
		if err == nil && href == want {
			break
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the browser is at %s (%v), want %s", href, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	b.do("load "+path, chromedp.WaitReady(chromedp.CSS("footer")))
}

func (b *browser) open(path string) {
	b.t.Helper()
	b.do("open "+path, chromedp.Navigate(b.origin+path))
	b.at(path)
}

func (b *browser) text(sel string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return s
}

func (b *browser) wantText(sel string, want ...string) {
	b.t.Helper()
	got := b.text(sel)
	for _, w := range want {
		if !strings.Contains(got, w) {
			b.t.Fatalf("%s lacks %q: %s", sel, w, got)
		}
	}
}

func (b *browser) eval(js string) string {
	b.t.Helper()
	s, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js, chromedp.EvalAwaitPromise))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return s
}

// shoot writes a screenshot of the whole page.
func (b *browser) shoot(name string) {
	b.t.Helper()
	png, err := chromedp.Run(b.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Fatal(err)
	}
	p := filepath.Join(b.shots, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", p)
}

func (b *browser) consoleText() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.console, "\n")
}

// signIn signs in through the form; a role that needs a second factor
// enrolls TOTP as a person would, reading the secret off the page.
func (b *browser) signIn(email, lang string) {
	b.t.Helper()
	b.open("/login?lang=" + lang)
	b.do("sign in",
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), uiPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
	)
	href := ""
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		href = b.eval(`location.pathname`)
		if href == "/" || href == "/account/mfa" {
			break
		}
	}
	if href == "/account/mfa" {
		b.do("load the enrollment page", chromedp.WaitVisible(chromedp.CSS("#totp-secret")))
		secret := strings.ReplaceAll(b.text("#totp-secret"), " ", "")
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			b.t.Fatal(err)
		}
		b.do("confirm the authenticator",
			chromedp.SendKeys(chromedp.CSS("#code"), code),
			chromedp.Click(chromedp.CSS(`form[action="/account/mfa/confirm"] button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.CSS(`a[href^="/account?done=mfa"]`)),
		)
		b.open("/")
		return
	}
	b.at("/")
}

func (b *browser) signOut() {
	b.t.Helper()
	b.do("sign out", chromedp.Click(chromedp.CSS(`form[action="/logout"] button`)))
	b.at("/login?m=signed_out")
}

// newBrowser starts headless Chromium with a viewport of w×h and records
// its console and dialogs.
func newBrowser(t *testing.T, origin string, logBuf *lockedBuffer, w, h int64) *browser {
	t.Helper()
	bctx := headlessChromium(t, context.Background(), chromiumPath(t), logBuf)
	b := &browser{t: t, ctx: bctx, origin: origin, shots: screenshotDir(t)}
	if err := chromedp.Listen(bctx, func(ev any) {
		b.mu.Lock()
		defer b.mu.Unlock()
		switch e := ev.(type) {
		case *cdplog.EventEntryAdded:
			b.console = append(b.console, string(e.Entry.Source)+": "+e.Entry.Text)
		case *cdpruntime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value))
			}
			b.console = append(b.console, "console."+string(e.Type)+": "+strings.Join(parts, " "))
		case *cdpruntime.EventExceptionThrown:
			b.console = append(b.console, "exception: "+e.ExceptionDetails.Text)
		case *cdppage.EventJavascriptDialogOpening:
			b.dialogs = append(b.dialogs, e.Message)
		}
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := cdpCall(bctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	if _, err := cdpCall(bctx, cdpruntime.Enable, cdp.Empty{}); err != nil {
		t.Fatal(err)
	}
	b.do("set the viewport", chromedp.EmulateViewport(w, h))
	return b
}

// uiServer is the whole server (pages, API, assets) on a loopback port
// over a node with a sales team: 李雷 and 张伟 (reps), 王芳 (their
// manager) and Ada (administrator). The sales role sees phone numbers
// masked.
type uiServer struct {
	n      *node.Node
	origin string
	log    *lockedBuffer
	users  map[string]auth.User // by email
}

func newUIServer(t *testing.T) *uiServer {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	ctx := context.Background()
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
	s := &uiServer{n: n, origin: origin, log: logBuf, users: map[string]auth.User{}}
	for _, u := range []struct{ email, name, role string }{
		{"lilei@example.com", "李雷", "sales"},
		{"zhangwei@example.com", "张伟", "sales"},
		{"wangfang@example.com", "王芳", "manager"},
		{"ada@example.com", "Ada Admin", "admin"},
	} {
		user, err := n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: u.email, Name: u.name, Role: u.role, Password: uiPassword})
		if err != nil {
			t.Fatal(err)
		}
		s.users[u.email] = user
	}
	masked := map[string]string{access.FieldPhone: "masked"}
	if _, err := n.CRM.UpdateRole(ctx, access.Operator("test"), "sales", crm.RoleInput{Fields: &masked}); err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = New(n.DB, n.Auth, n.CRM, Options{Logger: logger, Passkeys: n.Passkeys}).Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return s
}

func (s *uiServer) principal(t *testing.T, email string) access.Principal {
	t.Helper()
	u := s.users[email]
	p, err := s.n.CRM.Principal(context.Background(), access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// seed gives 李雷 a book of customers (some with follow-ups due) and puts
// a few into the pool; it returns the id of 上海明远科技有限公司.
func (s *uiServer) seed(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	p := s.principal(t, "lilei@example.com")
	str := func(v string) *string { return &v }
	strs := func(v ...string) *[]string { return &v }
	var target string
	for i, c := range []struct{ name, phone, level, status, industry, summary, next string }{
		{"上海明远科技有限公司", "13812345678", "b", "prospect", "software", "电话沟通，客户对报价感兴趣，约下周拜访。", "past"},
		{"杭州青禾农业发展有限公司", "13957112345", "a", "active", "agriculture", "签订年度框架协议。", "today"},
		{"深圳前海启航物流有限公司", "13600001111", "c", "lead", "logistics", "展会上交换名片。", "future"},
		{"北京华信医疗器械有限公司", "13911112222", "b", "prospect", "healthcare", "发送产品资料，等待反馈。", "past"},
		{"成都锦城教育咨询有限公司", "13888886666", "d", "dormant", "education", "", ""},
		{"Evergreen Trading Ltd", "+85291234567", "b", "lead", "retail", "Intro call; wants a quote for Q3.", "today"},
	} {
		in := crm.CustomerFields{Kind: str("company"), Name: str(c.name), Phones: strs(c.phone), Level: str(c.level), Status: str(c.status),
			Industry: str(c.industry), Tags: strs("2026")}
		cust, err := s.n.CRM.CreateCustomer(ctx, p, in)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			target = cust.ID
		}
		if c.summary == "" {
			continue
		}
		today := time.Now().In(chinaTime)
		next := map[string]time.Time{"past": today.AddDate(0, 0, -3), "today": today, "future": today.AddDate(0, 0, 5)}[c.next].Format(time.DateOnly)
		when := time.Now().Add(-time.Duration(i+1) * 26 * time.Hour)
		if _, err := s.n.CRM.CreateInteraction(ctx, p, cust.ID, crm.InteractionFields{Kind: str("call"), Summary: str(c.summary), NextFollowUp: &next, OccurredAt: &when}); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"广州南沙港务贸易有限公司", "苏州工业园区精工机械有限公司"} {
		c, err := s.n.CRM.CreateCustomer(ctx, p, crm.CustomerFields{Kind: str("company"), Name: str(name), Phones: strs("13700002222"), Level: str("c")})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.n.CRM.ReleaseCustomer(ctx, p, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	return target
}

// xssPayload is stored in every text field of a customer, its contact and
// its interaction: rendered, it must stay text.
const xssPayload = `<script>window.__xss=1</script>"'><img src=x onerror="window.__xss=2">`

// TestUIBrowserE2E drives headless Chromium through the real server as
// the people who use it: a sales rep signs in in Chinese, searches a
// customer by a Chinese fragment, opens it, sees the phone masked, reveals
// it with a reason and adds a follow-up; the manager sees that customer;
// another rep gets "not found" for its URL. Stored markup renders inert, a
// post without the CSRF token is refused, and an injected inline script is
// blocked by the Content-Security-Policy, as the browser's console says.
// It writes screenshots of the main pages in zh-CN and en.
func TestUIBrowserE2E(t *testing.T) {
	s := newUIServer(t)
	id := s.seed(t)
	b := newBrowser(t, s.origin, s.log, 1280, 900)

	// 1. The rep, in Chinese.
	b.open("/login?lang=zh-CN")
	b.shoot("zh-login.png")
	b.signIn("lilei@example.com", "zh-CN")
	b.wantText("main", "李雷，您好", "北京华信医疗器械有限公司", "已逾期", "杭州青禾农业发展有限公司", "今天")
	b.shoot("zh-home.png")

	b.do("open the customers", chromedp.Click(chromedp.CSS(`.appnav a[href="/customers"]`)))
	b.at("/customers")
	b.wantText("table.customers", "上海明远科技有限公司", "138****5678", "深圳前海启航物流有限公司")
	b.shoot("zh-customers.png")
	b.do("search 明远",
		chromedp.SendKeys(chromedp.CSS("#q"), "明远"),
		chromedp.Click(chromedp.CSS(`form[role="search"] button[type="submit"]`)),
	)
	b.at("/customers?q=%E6%98%8E%E8%BF%9C&owner=&level=&status=&kind=&tag=&sort=newest")
	if got := b.text("table.customers tbody"); !strings.Contains(got, "上海明远科技有限公司") || strings.Contains(got, "杭州") {
		t.Fatalf("the search found: %s", got)
	}
	b.do("open the customer", chromedp.Click(chromedp.CSS(`table.customers a[href="/customers/`+id+`"]`)))
	b.at("/customers/" + id)
	b.wantText("main", "上海明远科技有限公司", "138****5678", "电话沟通，客户对报价感兴趣")
	if strings.Contains(b.text("main"), "13812345678") {
		t.Fatal("the phone is shown in clear before the reveal")
	}
	b.shoot("zh-customer.png")

	b.do("reveal the phone with a reason",
		chromedp.SendKeys(chromedp.CSS("#reason-phone"), "客户来电要求回拨"),
		chromedp.Click(chromedp.CSS(`form.reveal button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-revealed="phone"]`)),
	)
	b.wantText(`[data-revealed="phone"]`, "8613812345678")
	b.wantText("main", "此操作连同原因已记录")
	b.shoot("zh-customer-revealed.png")

	next := time.Now().In(chinaTime).AddDate(0, 0, 2).Format(time.DateOnly)
	b.do("add a follow-up",
		chromedp.SendKeys(chromedp.CSS("#fu-summary"), "回拨成功，确认周四上门拜访。"),
		chromedp.SetValue(chromedp.CSS("#fu-next"), next),
		chromedp.Click(chromedp.CSS(`form.followup button[type="submit"]`)),
	)
	b.at("/customers/" + id + "?done=followup")
	b.wantText("main", "跟进已添加", "回拨成功，确认周四上门拜访。")
	b.wantText(".timeline", "回拨成功")
	its, err := s.n.CRM.ListInteractions(context.Background(), s.principal(t, "lilei@example.com"), id)
	if err != nil || len(its) != 2 || its[0].NextFollowUp != next {
		t.Fatalf("the follow-up in the store: %+v %v", its, err)
	}

	// A form post without the CSRF token is refused and changes nothing.
	status := b.eval(`fetch("/customers/` + id + `/interactions", {method: "POST", body: new URLSearchParams({kind: "note", summary: "forged"})}).then(r => String(r.status))`)
	if status != "403" {
		t.Fatalf("a post without the CSRF token: %s", status)
	}
	if its, err := s.n.CRM.ListInteractions(context.Background(), s.principal(t, "lilei@example.com"), id); err != nil || len(its) != 2 {
		t.Fatalf("after the forged post: %d interactions, %v", len(its), err)
	}

	// An injected inline script does not run: the console says why.
	b.eval(`new Promise(done => { const s = document.createElement("script"); s.textContent = "window.__injected = 1"; document.body.appendChild(s); setTimeout(() => done(""), 300); })`)
	if got := b.eval(`String(window.__injected)`); got != "undefined" {
		t.Fatalf("the injected inline script ran: %s", got)
	}
	// Chromium words it "security: Executing inline script violates the
	// following Content Security Policy directive 'script-src 'self''. …
	// The action has been blocked." (older versions: "Refused to execute
	// inline script because it violates …").
	var csp string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && csp == ""; time.Sleep(50 * time.Millisecond) {
		csp = firstLineWith(b.consoleText(), "Content Security Policy directive 'script-src 'self''")
	}
	if !strings.HasPrefix(csp, "security: ") || !strings.Contains(csp, "inline script") {
		t.Fatalf("the console does not report the CSP block:\n%s", b.consoleText())
	}
	t.Logf("browser console: %s", csp)

	// Stored markup in every text field renders as text.
	x := s.xssCustomer(t)
	for _, path := range []string{"/customers/" + x, "/customers?q=acme", "/customers/" + x + "/edit", "/"} {
		b.open(path)
		if got := b.eval(`String(window.__xss)`); got != "undefined" {
			t.Fatalf("%s: stored markup ran (%s)", path, got)
		}
		if n := b.eval(`String(document.querySelectorAll("main img, main script").length)`); n != "0" {
			t.Fatalf("%s: stored markup became %s elements", path, n)
		}
	}
	b.open("/customers/" + x)
	b.wantText("main", "<script>window.__xss=1</script>", `<img src=x onerror="window.__xss=2">`)
	b.shoot("en-xss-inert.png")

	// The same pages in English, and on a phone.
	b.open("/?lang=en")
	b.wantText("main", "Hello, 李雷", "Overdue")
	b.shoot("en-home.png")
	b.open("/customers")
	b.shoot("en-customers.png")
	b.open("/customers/" + id)
	b.wantText("main", "Timeline", "Add follow-up")
	b.shoot("en-customer.png")
	b.open("/customers/new")
	b.do("submit an empty form", chromedp.Click(chromedp.CSS(`form.panel button[type="submit"]`)))
	b.at("/customers")
	b.wantText("main", "Please correct the marked fields.")
	b.shoot("en-customer-form-errors.png")
	b.open("/pool")
	b.wantText("main", "广州南沙港务贸易有限公司")
	b.shoot("en-pool.png")
	b.do("phone viewport", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/customers/" + id)
	b.shoot("en-customer-phone.png")
	b.open("/customers?lang=zh-CN")
	b.shoot("zh-customers-phone.png")
	b.do("desktop viewport", chromedp.EmulateViewport(1280, 900))
	b.signOut()

	// 2. The manager sees the rep's customer.
	b.signIn("wangfang@example.com", "zh-CN")
	b.open("/customers/" + id)
	b.wantText("main", "上海明远科技有限公司", "回拨成功")
	b.signOut()

	// 3. Another rep gets "not found" for its URL.
	b.signIn("zhangwei@example.com", "zh-CN")
	b.open("/customers/" + id)
	b.wantText("main", "这里没有内容，或者您无权查看。")
	if strings.Contains(b.text("body"), "明远") {
		t.Fatal("the not-found page names the customer")
	}
	b.shoot("zh-not-found.png")
	b.signOut()

	// 4. The administrator's and security officer's screens, in both
	// languages: each must render in the frame, with nothing the CSP would
	// block, and each is photographed.
	// Something for the alerts inbox: the rep runs through the day's
	// reveals (the detector raises an alert at the first refusal).
	rep := s.principal(t, "lilei@example.com")
	for i := 0; ; i++ {
		_, err := s.n.CRM.RevealField(context.Background(), rep, id, "phone", "checking the book")
		if errors.Is(err, crm.ErrQuota) {
			break
		}
		if err != nil || i > 100 {
			t.Fatalf("reveal %d: %v", i, err)
		}
	}
	b.signIn("ada@example.com", "zh-CN")
	csv := filepath.Join(t.TempDir(), "customers.csv")
	if err := os.WriteFile(csv, []byte("客户名称,电话,邮箱,级别,标签\n宁波港湾贸易有限公司,13812340000,ning@example.com,a,展会\n坏电话公司,12ab,,b,\n,13812340001,,c,\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, lang := range []string{"zh-CN", "en"} {
		short := map[string]string{"zh-CN": "zh", "en": "en"}[lang]
		b.open("/?lang=" + lang)
		// sel must match something on the page: what it is for.
		for _, pg := range []struct{ path, shot, sel string }{
			{"/admin/users", "admin-users", "table.list tbody tr"},
			{"/admin/roles/sales", "admin-role-matrix", `table.matrix input[type="radio"][value="masked"]:checked`},
			{"/admin/grants", "admin-grants", "form"},
			{"/customers/" + id + "/shares", "admin-shares", "form"},
			{"/audit?action=customer.reveal", "audit", "table.list tbody tr"},
			{"/alerts?status=all", "alerts", "table.list tbody tr"},
			{"/admin/backups", "backups", "main h1"},
			{"/exports", "exports", "main h1"},
			{"/exports/new", "export-request", `form input[name="password"]`},
			{"/account", "account", "main h1"},
			{"/account/sessions", "sessions", ".session.current"},
		} {
			b.open(pg.path)
			if n := b.eval(`String(document.querySelectorAll(` + "`" + pg.sel + "`" + `).length)`); n == "0" {
				t.Fatalf("%s: nothing matches %s", pg.path, pg.sel)
			}
			if n := b.eval(`String(document.querySelectorAll(".appnav a").length)`); n == "0" {
				t.Fatalf("%s has no navigation", pg.path)
			}
			b.shoot(short + "-" + pg.shot + ".png")
		}
		b.open("/import")
		b.do("upload a file to import",
			chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csv}),
			chromedp.Click(chromedp.CSS(`form[action="/import"] button[type="submit"]`)),
		)
		b.at("/import/preview")
		b.wantText("main", "宁波港湾贸易有限公司")
		b.shoot(short + "-import-preview.png")
		b.do("discard the upload", chromedp.Click(chromedp.CSS(`form[action="/import/discard"] button[type="submit"]`)))
		b.at("/import?m=discarded")
	}
	if c := b.consoleText(); strings.Contains(c, "Content Security Policy") && strings.Count(c, "Content Security Policy") > 1 {
		t.Fatalf("a page broke the CSP:\n%s", c)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.dialogs) > 0 {
		t.Fatalf("dialogs opened: %q", b.dialogs)
	}
}

// xssCustomer stores the payload in every text field of a customer of
// 李雷's (named "Acme …"), a contact and an interaction.
func (s *uiServer) xssCustomer(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	p := s.principal(t, "lilei@example.com")
	v := func(x string) *string { return &x }
	c, err := s.n.CRM.CreateCustomer(ctx, p, crm.CustomerFields{Kind: v("company"), Name: v("Acme " + xssPayload), Address: v(xssPayload),
		Notes: v(xssPayload), Tags: &[]string{"<svg/onload=1>"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.n.CRM.CreateContact(ctx, p, c.ID, crm.ContactFields{Name: v("C " + xssPayload), Title: v("<b>t</b>"), Notes: v(xssPayload)}); err != nil {
		t.Fatal(err)
	}
	today := time.Now().In(chinaTime).Format(time.DateOnly)
	if _, err := s.n.CRM.CreateInteraction(ctx, p, c.ID, crm.InteractionFields{Kind: v("note"), Summary: v(xssPayload), NextFollowUp: &today}); err != nil {
		t.Fatal(err)
	}
	return c.ID
}

func firstLineWith(text, sub string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			return l
		}
	}
	return ""
}
