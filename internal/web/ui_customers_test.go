package web

import (
	"context"
	"html"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	xhtml "golang.org/x/net/html"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/settings"
)

// crmHarness is the pages' harness with a sales team: 李雷 (sales, from
// newUIHarness), 张伟 (another rep) and 王芳 (their manager); the sales
// role sees phone numbers masked, as many companies configure it.
type crmHarness struct {
	*uiHarness
	ids map[string]string // email → user id
}

func newCRMHarness(t *testing.T) *crmHarness {
	t.Helper()
	h := &crmHarness{uiHarness: newUIHarness(t), ids: map[string]string{}}
	ctx := context.Background()
	for _, u := range []struct{ email, name, role string }{
		{"rep2@example.com", "张伟", "sales"},
		{"boss@example.com", "王芳", "manager"},
	} {
		if _, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: u.email, Name: u.name, Role: u.role, Password: uiPassword}); err != nil {
			t.Fatal(err)
		}
	}
	users, err := h.n.Auth.ListUsers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range users {
		h.ids[u.Email] = u.ID
	}
	masked := map[string]string{access.FieldPhone: "masked"}
	if _, err := h.n.CRM.UpdateRole(ctx, access.Operator("test"), "sales", crm.RoleInput{Fields: &masked}); err != nil {
		t.Fatal(err)
	}
	return h
}

// signIn returns a browser signed in as email; the manager's role needs a
// second factor, which it enrolls.
func (h *crmHarness) signIn(email, lang string) *uiClient {
	h.t.Helper()
	c := h.client(lang)
	w := c.login(email, uiPassword)
	if w.Header().Get("Location") == "/account/mfa" {
		enroll(h.t, h.uiHarness, c)
		return c
	}
	wantRedirect(h.t, w, "/")
	return c
}

func (h *crmHarness) principal(email string) access.Principal {
	h.t.Helper()
	users, err := h.n.Auth.ListUsers(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for _, u := range users {
		if u.Email == email {
			p, err := h.n.CRM.Principal(context.Background(), access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role})
			if err != nil {
				h.t.Fatal(err)
			}
			return p
		}
	}
	h.t.Fatalf("no user %s", email)
	return access.Principal{}
}

// createByForm creates a customer through the form and returns its id.
func (c *uiClient) createByForm(form url.Values) string {
	c.h.t.Helper()
	w := c.postForm("/customers/new", "/customers", form)
	loc := w.Header().Get("Location")
	id, ok := strings.CutPrefix(loc, "/customers/")
	if w.Code != http.StatusSeeOther || !ok {
		c.h.t.Fatalf("create: %d %q %s", w.Code, loc, w.Body)
	}
	id, _, _ = strings.Cut(id, "?")
	return id
}

func TestUICustomerJourney(t *testing.T) {
	h := newCRMHarness(t)
	stranger := h.client("en")
	for _, path := range []string{"/", "/customers", "/pool", "/customers/new", "/watermark.svg"} {
		wantRedirect(t, stranger.get(path), "/login")
	}
	rep := h.signIn("sales@example.com", "zh-CN")

	// The watermark tile names the viewer and the day; the pages with
	// customer data use it, the others do not.
	w := rep.get("/watermark.svg")
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "image/svg+xml" || !strings.Contains(w.Body.String(), "李雷 sales@example.com") ||
		!strings.Contains(w.Body.String(), h.clock.now().In(chinaTime).Format("2006-01-02")) {
		t.Fatalf("watermark: %d %s", w.Code, w.Body)
	}
	if !strings.Contains(rep.get("/customers").Body.String(), `<body class="wm">`) || strings.Contains(rep.get("/account").Body.String(), `class="wm"`) {
		t.Fatal("the watermark is not where customer data is, or where it is not")
	}
	if _, err := h.n.CRM.SetSetting(context.Background(), access.Operator("test"), settings.UIWatermark, "off"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rep.get("/customers").Body.String(), `class="wm"`) {
		t.Fatal("ui.watermark off, and the watermark is still there")
	}
	if _, err := h.n.CRM.SetSetting(context.Background(), access.Operator("test"), settings.UIWatermark, ""); err != nil {
		t.Fatal(err)
	}

	// Home: nothing due yet, and the navigation the rep's role allows.
	w = rep.get("/")
	wantBody(t, w, http.StatusOK, "李雷，您好", "没有待跟进的客户", `href="/customers"`, `href="/pool"`)
	checkPageHeaders(t, w)
	if strings.Contains(w.Body.String(), `href="/admin/users"`) || strings.Contains(w.Body.String(), `href="/audit"`) {
		t.Fatalf("a rep's navigation offers administration: %s", w.Body)
	}

	// A form with errors comes back with them, keeps what was typed, and
	// creates nothing.
	w = rep.postForm("/customers/new", "/customers", url.Values{"name": {""}, "phones": {"12345"}, "kind": {"company"}})
	wantBody(t, w, http.StatusBadRequest, "请更正标出的字段", `id="name-err"`, `id="phones-err"`, ">12345</textarea>")
	checkPageHeaders(t, w)
	if n, err := h.n.CRM.CountCustomers(context.Background(), h.principal("sales@example.com"), crm.ListQuery{}); err != nil || n != 0 {
		t.Fatalf("after a refused form: %d customers, %v", n, err)
	}

	id := rep.createByForm(url.Values{"kind": {"company"}, "name": {"上海明远科技有限公司"}, "phones": {"13812345678"},
		"emails": {"li@mingyuan.example"}, "level": {"b"}, "status": {"lead"}, "industry": {"software"}, "tags": {"展会, 重点"}})

	// Search by a Chinese fragment finds it; the list shows the phone masked.
	w = rep.get("/customers?q=" + url.QueryEscape("明远"))
	wantBody(t, w, http.StatusOK, "上海明远科技有限公司", "/customers/"+id, "138****5678")
	if strings.Contains(w.Body.String(), "13812345678") {
		t.Fatal("the list shows the masked phone in clear")
	}
	wantBody(t, rep.get("/customers?q="+url.QueryEscape("无此公司")), http.StatusOK, "没有符合条件的客户")
	wantBody(t, rep.get("/customers?q=x"), http.StatusBadRequest, "搜索内容太短")

	// The detail: masked phone with a reveal form that needs a reason.
	w = rep.get("/customers/" + id)
	wantBody(t, w, http.StatusOK, "上海明远科技有限公司", "138****5678", `action="/customers/`+id+`/reveal"`, "软件", "B 类", "线索", "展会")
	checkPageHeaders(t, w)
	if strings.Contains(w.Body.String(), "13812345678") {
		t.Fatal("the detail shows the masked phone in clear")
	}
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/reveal", url.Values{"field": {"phone"}, "reason": {" "}})
	wantBody(t, w, http.StatusBadRequest, "请填写查看此字段的原因")
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/reveal", url.Values{"field": {"tags"}, "reason": {"x"}})
	wantBody(t, w, http.StatusBadRequest, "请更正", `role="alert"`)
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/reveal", url.Values{"field": {"phone"}, "reason": {"客户来电要求回拨"}})
	wantBody(t, w, http.StatusOK, `data-revealed="phone">&#43;8613812345678<`, "今天剩余查看次数：49")
	if w.Header().Get("Cache-Control") != "no-store" {
		t.Fatalf("a revealed value may be cached: %q", w.Header().Get("Cache-Control"))
	}
	// Reloading the page shows it masked again: a reveal is for once.
	if strings.Contains(rep.get("/customers/"+id).Body.String(), "13812345678") {
		t.Fatal("the reveal outlived its response")
	}

	// Add a follow-up due today: the home page lists it.
	today := h.clock.now().In(chinaTime).Format("2006-01-02")
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/interactions", url.Values{"kind": {"call"}, "summary": {"电话沟通，客户对报价感兴趣"},
		"occurred_at": {h.clock.now().In(chinaTime).Format("2006-01-02T15:04")}, "next_follow_up": {today}})
	wantRedirect(t, w, "/customers/"+id+"?done=followup#timeline")
	wantBody(t, rep.get("/customers/"+id+"?done=followup"), http.StatusOK, "跟进已添加", "电话沟通，客户对报价感兴趣", "下次跟进")
	wantBody(t, rep.get("/"), http.StatusOK, "上海明远科技有限公司", "今天", "电话沟通")
	// A follow-up without a summary is refused with the field marked.
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/interactions", url.Values{"kind": {"call"}, "summary": {""}})
	wantBody(t, w, http.StatusBadRequest, "跟进未保存", `aria-invalid="true"`)

	// The rep's manager sees the customer; another rep gets "not found",
	// exactly as for an id that does not exist.
	boss := h.signIn("boss@example.com", "en")
	wantBody(t, boss.get("/customers/"+id), http.StatusOK, "上海明远科技有限公司", ">Call<", "电话沟通")
	other := h.signIn("rep2@example.com", "en")
	w = other.get("/customers/" + id)
	wantBody(t, w, http.StatusNotFound, "There is nothing here, or you may not see it.")
	if strings.Contains(w.Body.String(), "明远") {
		t.Fatal("the not-found page names the customer")
	}
	wantBody(t, other.get("/customers/00000000-0000-7000-8000-000000000000"), http.StatusNotFound, "There is nothing here")
	wantBody(t, other.get("/customers/not-an-id"), http.StatusNotFound, "There is nothing here")
	if strings.Contains(other.get("/customers?q="+url.QueryEscape("明远")).Body.String(), id) {
		t.Fatal("another rep finds the customer by search")
	}

	// A post without the CSRF token changes nothing.
	w = rep.do("POST", "/customers/"+id+"/interactions", url.Values{"kind": {"note"}, "summary": {"forged"}})
	wantBody(t, w, http.StatusForbidden, "表单已过期")
	its, err := h.n.CRM.ListInteractions(context.Background(), h.principal("sales@example.com"), id)
	if err != nil || len(its) != 1 {
		t.Fatalf("interactions after a forged post: %d, %v", len(its), err)
	}

	// The reveal is on the audit trail with the customer.
	page, err := h.n.CRM.QueryAudit(context.Background(), access.Operator("test"), crm.AuditQuery{Action: "customer.reveal", CustomerID: id})
	if err != nil || len(page.Items) != 1 || page.Items[0].Outcome != audit.OK {
		t.Fatalf("reveal audit: %+v %v", page.Items, err)
	}
}

// Stored markup in every text field renders as text.
func TestUICustomerXSS(t *testing.T) {
	h := newCRMHarness(t)
	rep := h.signIn("sales@example.com", "en")
	const x = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`
	id := rep.createByForm(url.Values{"kind": {"company"}, "name": {"Acme " + x}, "address": {x}, "notes": {x}, "tags": {"<svg/onload=1>"},
		"industry": {"software"}})
	w := rep.postForm("/customers/"+id, "/customers/"+id+"/contacts", url.Values{"name": {"C " + x}, "title": {x}, "notes": {x}})
	wantRedirect(t, w, "/customers/"+id+"?done=contact#contacts")
	w = rep.postForm("/customers/"+id, "/customers/"+id+"/interactions", url.Values{"kind": {"note"}, "summary": {x}})
	wantRedirect(t, w, "/customers/"+id+"?done=followup#timeline")
	for _, path := range []string{"/customers/" + id, "/customers", "/customers/" + id + "/edit", "/customers?q=acme"} {
		w := rep.get(path)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d %s", path, w.Code, w.Body)
		}
		body := w.Body.String()
		if w.Header().Get("Content-Security-Policy") != uiCSP {
			t.Fatalf("%s: CSP %q", path, w.Header().Get("Content-Security-Policy"))
		}
		checkInertDOM(t, path, body)
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") || strings.Contains(body, "<svg/onload") {
			t.Fatalf("%s renders stored markup: %s", path, body)
		}
		if !strings.Contains(html.UnescapeString(body), "Acme <script>alert(1)</script>") {
			t.Fatalf("%s lacks the escaped name", path)
		}
	}
}

// Editing keeps the version (a stale form is a conflict) and the field
// policy (a masked field is not in the form).
func TestUICustomerEdit(t *testing.T) {
	h := newCRMHarness(t)
	rep := h.signIn("sales@example.com", "en")
	id := rep.createByForm(url.Values{"kind": {"company"}, "name": {"Acme"}, "phones": {"13812345678"}, "level": {"c"}})
	w := rep.get("/customers/" + id + "/edit")
	wantBody(t, w, http.StatusOK, `name="version" value="1"`, `id="name"`)
	if strings.Contains(w.Body.String(), `id="phones"`) {
		t.Fatal("the form offers a field the rep sees masked")
	}
	w = rep.postForm("/customers/"+id+"/edit", "/customers/"+id+"/edit", url.Values{"version": {"1"}, "kind": {"company"}, "name": {"Acme Ltd"}, "level": {"a"}})
	wantRedirect(t, w, "/customers/"+id+"?done=saved")
	c, err := h.n.CRM.GetCustomer(context.Background(), h.principal("sales@example.com"), id)
	if err != nil || c.Name != "Acme Ltd" || c.Level != "a" || len(c.Phones) != 1 {
		t.Fatalf("after the edit: %+v %v", c, err)
	}
	w = rep.postForm("/customers/"+id+"/edit", "/customers/"+id+"/edit", url.Values{"version": {"1"}, "kind": {"company"}, "name": {"Stale"}})
	wantBody(t, w, http.StatusConflict, "Someone else changed this")
	// Another rep can neither open nor post the form.
	other := h.signIn("rep2@example.com", "en")
	wantBody(t, other.get("/customers/"+id+"/edit"), http.StatusNotFound)
}

// The pool: a released customer is there for another rep to claim, with
// its contact details masked until then.
func TestUIPool(t *testing.T) {
	h := newCRMHarness(t)
	rep := h.signIn("sales@example.com", "en")
	id := rep.createByForm(url.Values{"kind": {"company"}, "name": {"Pool Co"}, "phones": {"13912345678"}})
	wantRedirect(t, rep.postForm("/customers/"+id, "/customers/"+id+"/release", nil), "/pool?done=released")
	other := h.signIn("rep2@example.com", "en")
	w := other.get("/pool")
	wantBody(t, w, http.StatusOK, "Pool Co", `action="/customers/`+id+`/claim"`)
	if strings.Contains(w.Body.String(), "13912345678") {
		t.Fatal("the pool shows a phone in clear")
	}
	wantRedirect(t, other.postForm("/pool", "/customers/"+id+"/claim", nil), "/customers/"+id+"?done=claimed")
	wantBody(t, other.get("/customers/"+id+"?done=claimed"), http.StatusOK, "You now own this customer.", "Owner: 张伟")
	wantBody(t, rep.get("/customers/"+id), http.StatusNotFound)
}

// checkInertDOM parses a page as a browser would and fails on anything
// that could run: a script element without src (every script of ours is a
// file), an event handler attribute, a style attribute, or a javascript:
// URL.
func checkInertDOM(t *testing.T, what, body string) {
	t.Helper()
	z := xhtml.NewTokenizer(strings.NewReader(body))
	for {
		tt := z.Next()
		if tt == xhtml.ErrorToken {
			if z.Err() != io.EOF {
				t.Fatalf("%s: %v", what, z.Err())
			}
			return
		}
		if tt != xhtml.StartTagToken && tt != xhtml.SelfClosingTagToken {
			continue
		}
		tok := z.Token()
		hasSrc := false
		for _, a := range tok.Attr {
			k, v := strings.ToLower(a.Key), strings.ToLower(strings.TrimSpace(a.Val))
			switch {
			case strings.HasPrefix(k, "on"):
				t.Fatalf("%s: <%s %s=%q>: an event handler", what, tok.Data, a.Key, a.Val)
			case k == "style":
				t.Fatalf("%s: <%s style=%q>", what, tok.Data, a.Val)
			case (k == "href" || k == "src" || k == "action" || k == "formaction") && strings.HasPrefix(v, "javascript:"):
				t.Fatalf("%s: <%s %s=%q>", what, tok.Data, a.Key, a.Val)
			case k == "src":
				hasSrc = true
			}
		}
		if (tok.Data == "script" && !hasSrc) || tok.Data == "iframe" || tok.Data == "object" || tok.Data == "embed" || tok.Data == "svg" {
			t.Fatalf("%s: a <%s> element", what, tok.Data)
		}
		if tok.Data == "img" && hasSrc {
			t.Fatalf("%s: an <img> (we draw none)", what)
		}
	}
}

// The language chosen on the account page follows the user to another
// browser; "as my browser" gives the choice back to Accept-Language.
func TestUILanguagePreference(t *testing.T) {
	h := newCRMHarness(t)
	a := h.signIn("sales@example.com", "zh-CN")
	wantBody(t, a.get("/account"), http.StatusOK, "页面语言", `<option value="">跟随浏览器</option>`)
	wantBody(t, a.postForm("/account", "/account/language", url.Values{"lang": {"fr"}}), http.StatusBadRequest)
	wantRedirect(t, a.postForm("/account", "/account/language", url.Values{"lang": {"en"}}), "/account?done=language")
	wantBody(t, a.get("/account?done=language"), http.StatusOK, "Your language was saved.", `<option value="en" lang="en" selected>`)

	b := h.signIn("sales@example.com", "zh-CN") // another browser, asking for Chinese
	wantBody(t, b.get("/"), http.StatusOK, "Hello, 李雷")
	wantBody(t, b.get("/?lang=zh-CN"), http.StatusOK, "李雷，您好") // a switch still wins, in that browser

	wantRedirect(t, a.postForm("/account", "/account/language", url.Values{"lang": {""}}), "/account?done=language")
	c := h.signIn("sales@example.com", "zh-CN")
	wantBody(t, c.get("/"), http.StatusOK, "李雷，您好")
	page, err := h.n.CRM.QueryAudit(context.Background(), access.Operator("test"), crm.AuditQuery{Action: "user.language"})
	if err != nil || len(page.Items) != 2 {
		t.Fatalf("language changes on record: %d %v", len(page.Items), err)
	}
}
