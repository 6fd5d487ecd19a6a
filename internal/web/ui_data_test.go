package web

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/pquerna/otp/totp"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/exportfile"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

const dataXSS = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`

// dataUser creates a user and returns their principal.
func dataUser(t *testing.T, h *uiHarness, email, name, role string) access.Principal {
	t.Helper()
	ctx := context.Background()
	u, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: email, Name: name, Role: role, Password: uiPassword})
	if err != nil {
		t.Fatal(err)
	}
	p, err := h.n.CRM.Principal(ctx, access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// dataTOTP holds the TOTP secrets of the users dataSignIn enrolled, by
// harness and email.
var dataTOTP sync.Map

// dataSignIn signs a user in, enrolling the second factor their role
// requires the first time and answering it afterwards.
func dataSignIn(t *testing.T, h *uiHarness, email, lang string) *uiClient {
	t.Helper()
	c := h.client(lang)
	w := c.login(email, uiPassword)
	key := fmt.Sprintf("%p %s", h, email)
	switch w.Header().Get("Location") {
	case "/account/mfa":
		secret, _ := enroll(t, h, c)
		dataTOTP.Store(key, secret)
	case "/login/mfa":
		secret, ok := dataTOTP.Load(key)
		if !ok {
			t.Fatalf("%s has a second factor this test did not enroll", email)
		}
		h.clock.add(31 * time.Second) // a code is good once
		code, err := totp.GenerateCode(secret.(string), h.clock.now())
		if err != nil {
			t.Fatal(err)
		}
		wantRedirect(t, c.postForm("/login/mfa", "/login/mfa", url.Values{"code": {code}}), "/")
	default:
		wantRedirect(t, w, "/")
	}
	return c
}

// dataPost sends a request body of content type ct as the client does
// (its cookies and language), and keeps the page for the secrets check.
func dataPost(c *uiClient, target, ct string, body []byte) *httptest.ResponseRecorder {
	c.h.t.Helper()
	r := httptest.NewRequest("POST", target, bytes.NewReader(body))
	r.Header.Set("Content-Type", ct)
	if c.lang != "" {
		r.Header.Set("Accept-Language", c.lang)
	}
	for _, ck := range c.cookies {
		if cookiePathMatch(r.URL.Path, ck.Path) {
			r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
		}
	}
	w := httptest.NewRecorder()
	c.h.h.ServeHTTP(w, r)
	c.h.mu.Lock()
	c.h.bodies = append(c.h.bodies, w.Body.String())
	c.h.mu.Unlock()
	return w
}

// dataUpload posts a CSV file to /import with the page's CSRF token ("" for
// none).
func dataUpload(t *testing.T, c *uiClient, csrf, name string, content []byte, encoding string) *httptest.ResponseRecorder {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if csrf != "" {
		_ = mw.WriteField(csrfField, csrf)
	}
	_ = mw.WriteField("encoding", encoding)
	if name != "" {
		fw, err := mw.CreateFormFile("file", name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fw.Write(content)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return dataPost(c, "/import", mw.FormDataContentType(), buf.Bytes())
}

// dataCSRF is the CSRF token of the client's page at target.
func dataCSRF(t *testing.T, c *uiClient, target string) string {
	t.Helper()
	w := c.get(target)
	if w.Code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", target, w.Code, w.Body)
	}
	return csrfOf(t, w)
}

// dataEvents counts the audit events of an action with an outcome.
func dataEvents(t *testing.T, h *uiHarness, action, outcome string) int {
	t.Helper()
	n := 0
	ctx := context.Background()
	err := h.n.DB.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(ctx, 0, 100000)
		for _, ev := range evs {
			if ev.Action == action && ev.Outcome == outcome {
				n++
			}
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func dataCustomers(t *testing.T, h *uiHarness, p access.Principal) []crm.Customer {
	t.Helper()
	page, err := h.n.CRM.ListCustomers(context.Background(), p, crm.ListQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	return page.Items
}

// dataCheckEscaped is checkPageHeaders for a page that shows dataXSS as
// text (where " onerror=" is harmless text): the headers, and no markup
// of the value.
func dataCheckEscaped(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	if got := w.Header().Get("Content-Security-Policy"); got != uiCSP {
		t.Errorf("CSP %q", got)
	}
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("Cache-Control %q", got)
	}
	body := w.Body.String()
	for _, tag := range scriptTag.FindAllString(body, -1) {
		if !strings.Contains(tag, " src=") {
			t.Errorf("inline script %q", tag)
		}
	}
	if strings.Contains(body, "<img") || styleAttr.MatchString(body) {
		t.Errorf("markup of a value in the page: %s", body)
	}
}

var dataToken = regexp.MustCompile(`name="token" value="([^"]+)"`)

func dataTokenOf(t *testing.T, w *httptest.ResponseRecorder) string {
	t.Helper()
	m := dataToken.FindStringSubmatch(w.Body.String())
	if m == nil {
		t.Fatalf("no import token in the page: %s", w.Body)
	}
	return m[1]
}

// The good file: two valid rows, one with an owner; the bad file adds a bad
// phone, an empty name, an unknown owner, a bad kind and a short record.
const (
	dataGoodCSV = "客户名称,电话,邮箱,级别,负责人,标签,备注\n" +
		"导入甲公司,13812345678,jia@example.com,a,,重点;华东,第一行\n" +
		"Import Beta Ltd,13912345678,,b,sales@example.com,,\n"
	dataBadCSV = "name,phone,email,kind,owner,notes\n" +
		"Good Row Co,13712345670,,,,\n" +
		"Bad Phone Co,12ab,,,,\n" +
		",13712345671,,,,\n" +
		"Bad Owner Co,,,,nobody@example.com,\n" +
		"Bad Kind Co,,,robot,,\n" +
		"Short Row\n"
)

func TestUIDataImportHappyPath(t *testing.T) {
	h := newUIHarness(t)
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			c := dataSignIn(t, h, "manager@example.com", lang)
			w := c.get("/import")
			title := map[string]string{"en": "Import customers", "zh-CN": "导入客户"}[lang]
			wantBody(t, w, http.StatusOK, title, `enctype="multipart/form-data"`, `href="/import/template.csv"`, `aria-current="page"`)
			checkPageHeaders(t, w)
			csrf := csrfOf(t, w)

			before := len(dataCustomers(t, h, mgr))
			checks := dataEvents(t, h, "customer.import_check", audit.OK)
			csv := strings.ReplaceAll(dataGoodCSV, "导入甲公司", "导入甲公司"+lang)
			w = dataUpload(t, c, csrf, "clients.csv", []byte(csv), "auto")
			wantRedirect(t, w, "/import/preview")
			w = c.get("/import/preview")
			confirm := map[string]string{"en": "Import 2 valid rows", "zh-CN": "导入 2 行有效数据"}[lang]
			wantBody(t, w, http.StatusOK, "clients.csv", "导入甲公司"+lang, "13812345678", "jia@example.com", "sales@example.com", confirm,
				`name="atomic"`, `action="/import/confirm"`)
			checkPageHeaders(t, w)
			if !strings.Contains(w.Body.String(), `class="wm"`) {
				t.Error("the preview shows customer data without the watermark")
			}
			// The preview wrote nothing but its audit event.
			if n := len(dataCustomers(t, h, mgr)); n != before {
				t.Fatalf("the preview imported: %d customers, had %d", n, before)
			}
			if n := dataEvents(t, h, "customer.import_check", audit.OK); n != checks+1 {
				t.Fatalf("%d check events, want %d", n, checks+1)
			}
			token := dataTokenOf(t, w)
			w = c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}})
			wantRedirect(t, w, "/import/result")
			w = c.get("/import/result")
			done := map[string]string{"en": "All 2 rows were imported.", "zh-CN": "全部 2 行已导入。"}[lang]
			wantBody(t, w, http.StatusOK, done)
			checkPageHeaders(t, w)
			var names []string
			for _, cu := range dataCustomers(t, h, mgr) {
				names = append(names, cu.Name)
			}
			if len(names) != before+2 || !strings.Contains(strings.Join(names, "|"), "导入甲公司"+lang) {
				t.Fatalf("customers after the import: %q", names)
			}
			// Confirming twice imports once.
			w = c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}})
			wantBody(t, w, http.StatusNotFound)
			if n := len(dataCustomers(t, h, mgr)); n != before+2 {
				t.Fatalf("a second confirmation imported again: %d", n)
			}
		})
	}
	if n := dataEvents(t, h, "customer.import", audit.OK); n != 2 {
		t.Fatalf("%d import events, want 2", n)
	}
	// The owner column was resolved: the second row belongs to sales.
	sales, err := h.n.Auth.FindUserByEmail(context.Background(), "sales@example.com")
	if err != nil {
		t.Fatal(err)
	}
	owned := 0
	for _, cu := range dataCustomers(t, h, mgr) {
		if cu.OwnerID == sales.ID {
			owned++
		}
	}
	if owned != 2 {
		t.Fatalf("%d customers owned by sales, want 2", owned)
	}
	// No imported value was logged.
	for _, v := range []string{"13812345678", "jia@example.com", "导入甲公司"} {
		if strings.Contains(h.log.String(), v) {
			t.Errorf("the log holds %q", v)
		}
	}
}

func TestUIDataImportBadRows(t *testing.T) {
	h := newUIHarness(t)
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	for _, lang := range []string{"en", "zh-CN"} {
		t.Run(lang, func(t *testing.T) {
			c := dataSignIn(t, h, "manager@example.com", lang)
			csrf := dataCSRF(t, c, "/import")
			before := len(dataCustomers(t, h, mgr))
			w := dataUpload(t, c, csrf, "bad.csv", []byte(strings.ReplaceAll(dataBadCSV, "Bad Kind Co", `"`+strings.ReplaceAll(dataXSS, `"`, `""`)+`"`)), "utf-8")
			wantRedirect(t, w, "/import/preview")
			w = c.get("/import/preview")
			want := map[string][]string{
				"en":    {"Rows with errors", "phone number", "name is empty", "no such user", `must be "company" or "person"`, "record has 1 fields, header has 6", "Import 1 valid rows"},
				"zh-CN": {"有错误的行", "电话号码无效", "必填", "没有此在职用户", "不是允许的取值", "该行的单元格数与第一行不一致", "导入 1 行有效数据"},
			}[lang]
			wantBody(t, w, http.StatusOK, want...)
			dataCheckEscaped(t, w)
			body := w.Body.String()
			// Row numbers of the report: the file's lines.
			for _, line := range []string{">3<", ">4<", ">5<", ">6<", ">7<"} {
				if !strings.Contains(body, `<th scope="row">`+line[1:]) {
					t.Errorf("the report lacks line %s", line)
				}
			}
			if strings.Contains(body, "<script>alert(1)") || strings.Contains(body, "<img src=x") {
				t.Fatal("a value of the file is not escaped")
			}
			if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
				t.Fatal("the escaped value is missing")
			}
			if n := len(dataCustomers(t, h, mgr)); n != before {
				t.Fatalf("the preview wrote %d customers", n-before)
			}
			// All or nothing: nothing is imported.
			w = c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {dataTokenOf(t, w)}, "atomic": {"1"}})
			wantRedirect(t, w, "/import/result")
			w = c.get("/import/result")
			wantBody(t, w, http.StatusOK, map[string]string{"en": "Nothing was imported: some rows have errors", "zh-CN": "未导入任何数据：部分行有错误"}[lang])
			checkPageHeaders(t, w)
			if n := len(dataCustomers(t, h, mgr)); n != before {
				t.Fatalf("an atomic import with errors wrote %d customers", n-before)
			}
		})
	}
	// Without all-or-nothing, the good row is imported and the bad ones are
	// listed on the result page.
	c := dataSignIn(t, h, "manager@example.com", "en")
	csrf := dataCSRF(t, c, "/import")
	wantRedirect(t, dataUpload(t, c, csrf, "bad.csv", []byte(dataBadCSV), "auto"), "/import/preview")
	w := c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {dataTokenOf(t, c.get("/import/preview"))}})
	wantRedirect(t, w, "/import/result")
	wantBody(t, c.get("/import/result"), http.StatusOK, "1 of 6 rows were imported", "phone number", "name is empty")
	if got := dataCustomers(t, h, mgr); len(got) != 1 || got[0].Name != "Good Row Co" {
		t.Fatalf("customers: %+v", got)
	}
}

func TestUIDataImportBadFile(t *testing.T) {
	h := newUIHarness(t)
	dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	c := dataSignIn(t, h, "manager@example.com", "zh-CN")
	csrf := dataCSRF(t, c, "/import")
	for _, tc := range []struct {
		name, file, content, encoding, want string
	}{
		{"no name column", "x.csv", "phone,email\n13812345678,a@example.com\n", "auto", "第一行缺少客户名称列"},
		{"unknown column", "x.csv", "name,shoe size\nAcme,42\n", "auto", "第一行中有无法识别的列名"},
		{"no file", "", "", "auto", "请选择一个非空的 CSV 文件"},
		{"empty file", "x.csv", "", "auto", "请选择一个非空的 CSV 文件"},
		{"bad encoding", "x.csv", "name\nAcme\n", "latin-1", "请选择列表中的编码"},
		{"too many rows", "x.csv", "name\n" + strings.Repeat("Acme\n", webImportMaxRows+1), "auto", "网页单次导入上限"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := dataUpload(t, c, csrf, tc.file, []byte(tc.content), tc.encoding)
			wantBody(t, w, http.StatusBadRequest, tc.want, `aria-invalid="true"`, `role="alert"`)
			checkPageHeaders(t, w)
		})
	}
	// Nothing is pending.
	wantRedirect(t, c.get("/import/preview"), "/import?m=expired")

	// Only the import takes a file: a multipart body anywhere else, and
	// before any sign-in, is refused unread.
	for target, want := range map[string]int{"/login": http.StatusUnsupportedMediaType, "/customers": http.StatusSeeOther, "/import": http.StatusSeeOther} {
		w := dataPost(h.client("en"), target, "multipart/form-data; boundary=x", bytes.Repeat([]byte("x"), 1<<20))
		if w.Code != want {
			t.Fatalf("a stranger's multipart to %s: %d, want %d", target, w.Code, want)
		}
	}
	w := dataPost(c, "/customers", "multipart/form-data; boundary=x", []byte("--x--"))
	wantBody(t, w, http.StatusUnsupportedMediaType)
}

// An upload is bound to the user and the session that made it.
func TestUIDataImportBoundToUser(t *testing.T) {
	h := newUIHarness(t)
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	dataUser(t, h, "other@example.com", "Otto Other", "manager")
	a := dataSignIn(t, h, "manager@example.com", "en")
	csrf := dataCSRF(t, a, "/import")
	wantRedirect(t, dataUpload(t, a, csrf, "clients.csv", []byte(dataGoodCSV), "auto"), "/import/preview")
	token := dataTokenOf(t, a.get("/import/preview"))

	// Another importer, with their own valid session and CSRF token, cannot
	// see or confirm it.
	b := dataSignIn(t, h, "other@example.com", "en")
	bcsrf := dataCSRF(t, b, "/import")
	wantRedirect(t, b.get("/import/preview"), "/import?m=expired")
	w := b.do("POST", "/import/confirm", url.Values{csrfField: {bcsrf}, "token": {token}})
	wantBody(t, w, http.StatusNotFound, "There is no upload waiting for you")
	checkPageHeaders(t, w)
	// Nor can the same user from another session.
	a2 := dataSignIn(t, h, "manager@example.com", "en")
	w = a2.do("POST", "/import/confirm", url.Values{csrfField: {dataCSRF(t, a2, "/import")}, "token": {token}})
	wantBody(t, w, http.StatusNotFound)
	// A wrong token does not confirm it either.
	w = a.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {newToken()}})
	wantBody(t, w, http.StatusNotFound)
	if n := len(dataCustomers(t, h, mgr)); n != 0 {
		t.Fatalf("%d customers imported by others", n)
	}
	// The owner still can.
	wantRedirect(t, a.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}}), "/import/result")
	if n := len(dataCustomers(t, h, mgr)); n != 2 {
		t.Fatalf("%d customers imported", n)
	}

	// An upload expires after 15 minutes.
	wantRedirect(t, dataUpload(t, a, csrf, "clients.csv", []byte(strings.ReplaceAll(dataGoodCSV, "导入甲", "再导入甲")), "auto"), "/import/preview")
	token = dataTokenOf(t, a.get("/import/preview"))
	h.clock.add(16 * time.Minute)
	wantRedirect(t, a.get("/import/preview"), "/import?m=expired")
	wantBody(t, a.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}}), http.StatusNotFound)

	// Discarding drops it.
	csrf = dataCSRF(t, a, "/import")
	wantRedirect(t, dataUpload(t, a, csrf, "clients.csv", []byte(dataGoodCSV), "auto"), "/import/preview")
	token = dataTokenOf(t, a.get("/import/preview"))
	wantRedirect(t, a.do("POST", "/import/discard", url.Values{csrfField: {csrf}}), "/import?m=discarded")
	wantBody(t, a.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}}), http.StatusNotFound)
	if n := len(dataCustomers(t, h, mgr)); n != 2 {
		t.Fatalf("%d customers after discard", n)
	}
}

func TestUIDataImportCSRF(t *testing.T) {
	h := newUIHarness(t)
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	c := dataSignIn(t, h, "manager@example.com", "en")
	csrf := dataCSRF(t, c, "/import")
	// An upload without the token is refused and nothing is kept.
	w := dataUpload(t, c, "", "clients.csv", []byte(dataGoodCSV), "auto")
	wantBody(t, w, http.StatusForbidden)
	checkPageHeaders(t, w)
	wantRedirect(t, c.get("/import/preview"), "/import?m=expired")

	wantRedirect(t, dataUpload(t, c, csrf, "clients.csv", []byte(dataGoodCSV), "auto"), "/import/preview")
	token := dataTokenOf(t, c.get("/import/preview"))
	for _, form := range []url.Values{
		{"token": {token}},
		{"token": {token}, csrfField: {newToken()}},
	} {
		w := c.do("POST", "/import/confirm", form)
		wantBody(t, w, http.StatusForbidden)
	}
	// Cross-site, even with the token.
	c.header = map[string]string{"Sec-Fetch-Site": "cross-site"}
	wantBody(t, c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}}), http.StatusForbidden)
	c.header = nil
	if n := len(dataCustomers(t, h, mgr)); n != 0 {
		t.Fatalf("%d customers imported without CSRF token", n)
	}
	// The upload is still there for the real confirmation.
	wantRedirect(t, c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {token}}), "/import/result")
	if n := len(dataCustomers(t, h, mgr)); n != 2 {
		t.Fatalf("%d customers imported", n)
	}
}

func TestUIDataImportDenied(t *testing.T) {
	h := newUIHarness(t)
	c := dataSignIn(t, h, "sales@example.com", "zh-CN")
	denied := dataEvents(t, h, "customer.import_check", audit.Denied)
	for _, target := range []string{"/import", "/import/preview", "/import/result", "/import/template.csv"} {
		w := c.get(target)
		wantBody(t, w, http.StatusForbidden, "您的角色")
		checkPageHeaders(t, w)
	}
	if strings.Contains(c.get("/").Body.String(), `href="/import"`) {
		t.Error("the navigation offers the import to sales")
	}
	csrf := dataCSRF(t, c, "/")
	w := dataUpload(t, c, csrf, "clients.csv", []byte(dataGoodCSV), "auto")
	wantBody(t, w, http.StatusForbidden)
	w = c.do("POST", "/import/confirm", url.Values{csrfField: {csrf}, "token": {"x"}})
	wantBody(t, w, http.StatusForbidden)
	if n := dataEvents(t, h, "customer.import_check", audit.Denied); n != denied+6 {
		t.Fatalf("%d denied events, want %d", n, denied+6)
	}
}

// The template's columns are the import's, in the page's language, and it
// reads back without error.
func TestUIDataImportTemplate(t *testing.T) {
	h := newUIHarness(t)
	dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	for _, lang := range []string{"en", "zh-CN"} {
		c := dataSignIn(t, h, "manager@example.com", lang)
		w := c.get("/import/template.csv")
		if w.Code != http.StatusOK || !strings.HasPrefix(w.Header().Get("Content-Type"), "text/csv") ||
			!strings.HasPrefix(w.Header().Get("Content-Disposition"), "attachment;") || w.Header().Get("Cache-Control") != "no-store" {
			t.Fatalf("%s: %d %v", lang, w.Code, w.Header())
		}
		r, err := csvio.NewReader(bytes.NewReader(w.Body.Bytes()), "auto", nil)
		if err != nil {
			t.Fatalf("%s: %v\n%s", lang, err, w.Body)
		}
		if got := strings.Join(r.Columns(), ","); got != strings.Join(customercsv.Columns, ",") {
			t.Fatalf("%s: columns %s", lang, got)
		}
		if lang == "zh-CN" && !strings.Contains(w.Body.String(), "客户名称") {
			t.Fatalf("the Chinese template is not in Chinese: %s", w.Body)
		}
	}
}

// The pending uploads are bounded: one per user, at most pendingMax, and
// at most pendingMaxBytes, the oldest dropped first.
func TestUIDataPendingBounds(t *testing.T) {
	clock := &uiClock{t: time.Date(2026, 3, 2, 2, 0, 0, 0, time.UTC)}
	pi := newPendingImports(clock.now)
	var sk [32]byte
	for i := range pendingMax + 5 {
		clock.add(time.Second)
		pi.put(strings.Repeat("u", i+1), &pendingImport{session: sk, size: 1})
	}
	if len(pi.byUser) != pendingMax {
		t.Fatalf("%d pending, want %d", len(pi.byUser), pendingMax)
	}
	if _, ok := pi.get("u", sk); ok {
		t.Fatal("the oldest upload was kept")
	}
	pi.put("big", &pendingImport{session: sk, size: pendingMaxBytes})
	if len(pi.byUser) != 1 {
		t.Fatalf("%d pending beside a maximal upload", len(pi.byUser))
	}
	first := pi.put("big", &pendingImport{session: sk, size: 10})
	if len(pi.byUser) != 1 || pi.byUser["big"].token != first {
		t.Fatal("a second upload of a user did not replace the first")
	}
}

// --- exports ----------------------------------------------------------------------

const dataExportPW = "lantern harbour 2026"

func TestUIDataExportFlow(t *testing.T) {
	exportfile.UseCheapScryptForTests(t)
	h := newUIHarness(t)
	h.secret(dataExportPW)
	ctx := context.Background()
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	dataUser(t, h, "officer@example.com", "Olga Officer", "security_officer")
	for _, name := range []string{"出口甲公司", dataXSS} {
		if _, err := h.n.CRM.CreateCustomer(ctx, mgr, crm.CustomerFields{Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	admin, err := h.n.Auth.FindUserByEmail(ctx, "admin@example.com")
	if err != nil {
		t.Fatal(err)
	}
	op, err := h.n.CRM.Principal(ctx, access.Subject{UserID: admin.ID, Actor: "user:" + admin.ID, Role: "admin"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.n.CRM.SetSetting(ctx, op, settings.ExportApprovalRows, "0"); err != nil {
		t.Fatal(err)
	}

	m := dataSignIn(t, h, "manager@example.com", "zh-CN")
	w := m.get("/exports")
	wantBody(t, w, http.StatusOK, "导出", "暂无导出申请", `href="/exports/new"`)
	checkPageHeaders(t, w)
	w = m.get("/exports/new")
	wantBody(t, w, http.StatusOK, "申请导出", `name="password"`, `name="recipient"`, `name="reveal" type="checkbox" value="id_number"`)
	checkPageHeaders(t, w)
	csrf := csrfOf(t, w)

	// Validation: the passwords differ; a weak password; an unknown owner.
	form := url.Values{csrfField: {csrf}, "format": {"csv"}, "encryption": {"password"}, "password": {dataExportPW}, "password_confirm": {dataExportPW + "x"}, "q": {"出口"}}
	w = m.do("POST", "/exports/new", form)
	wantBody(t, w, http.StatusBadRequest, "两次输入的密码不一致", `value="出口"`)
	checkPageHeaders(t, w)
	form.Set("password", "short")
	form.Set("password_confirm", "short")
	wantBody(t, m.do("POST", "/exports/new", form), http.StatusBadRequest, `id="password-error"`)
	form.Set("password", "")
	wantBody(t, m.do("POST", "/exports/new", form), http.StatusBadRequest, `id="password-error"`, "必填")
	recipient := url.Values{csrfField: {csrf}, "format": {"csv"}, "encryption": {"recipient"}, "recipient": {"age1notakey"}}
	wantBody(t, m.do("POST", "/exports/new", recipient), http.StatusBadRequest, `id="recipient-error"`, `value="age1notakey"`)
	form.Set("password", dataExportPW)
	form.Set("password_confirm", dataExportPW)
	form.Set("format", "pdf")
	wantBody(t, m.do("POST", "/exports/new", form), http.StatusBadRequest, `role="alert">`)
	form.Set("format", "csv")
	form.Set("owner", "nobody@example.com")
	wantBody(t, m.do("POST", "/exports/new", form), http.StatusBadRequest, "没有此在职用户")
	form.Del("owner")
	// Without the CSRF token nothing is filed.
	noCSRF := url.Values{"format": {"csv"}, "password": {dataExportPW}, "password_confirm": {dataExportPW}}
	wantBody(t, m.do("POST", "/exports/new", noCSRF), http.StatusForbidden)
	if page, _ := h.n.CRM.ListExportRequests(ctx, mgr, crm.ExportListQuery{}); len(page.Items) != 0 {
		t.Fatalf("%d requests filed by invalid forms", len(page.Items))
	}

	// The request waits for approval.
	form.Set("owner", "manager@example.com")
	w = m.do("POST", "/exports/new", form)
	if w.Code != http.StatusSeeOther {
		t.Fatalf("request: %d %s", w.Code, w.Body)
	}
	loc := w.Header().Get("Location")
	id := strings.TrimSuffix(strings.TrimPrefix(loc, "/exports/"), "?done=requested")
	if !validExportID(id) {
		t.Fatalf("redirect to %s", loc)
	}
	w = m.get(loc)
	wantBody(t, w, http.StatusOK, "申请已提交", "待审批", "Mia Manager", "搜索关键词（不显示）", "负责人: Mia Manager", `action="/exports/`+id+`/cancel"`)
	checkPageHeaders(t, w)
	if strings.Contains(w.Body.String(), "/approve") || strings.Contains(w.Body.String(), "出口") {
		t.Fatalf("the requester is offered the approval, or the search text is shown: %s", w.Body)
	}
	// The requester cannot approve it, nor download it yet.
	wantBody(t, m.do("POST", "/exports/"+id+"/approve", url.Values{csrfField: {csrf}}), http.StatusForbidden)
	wantBody(t, m.get("/exports/"+id+"/download"), http.StatusConflict, "没有可下载的文件")
	if n := dataEvents(t, h, "export.approve", audit.Denied); n != 1 {
		t.Fatalf("%d denied approvals on record", n)
	}

	// A requester's name is shown as text.
	xss := dataUser(t, h, "xss@example.com", dataXSS, "manager")
	xreq, err := h.n.CRM.RequestExport(ctx, xss, crm.ExportInput{Format: "xlsx", Password: crm.Secret(dataExportPW)})
	if err != nil {
		t.Fatal(err)
	}

	// The officer sees it in the queue and approves it.
	o := dataSignIn(t, h, "officer@example.com", "en")
	w = o.get("/exports")
	wantBody(t, w, http.StatusOK, "Waiting for approval", "awaits your decision", "Mia Manager", "/exports/"+id, "&lt;script&gt;alert(1)", "Excel (XLSX)")
	dataCheckEscaped(t, w)
	w = o.get("/exports/" + xreq.ID)
	wantBody(t, w, http.StatusOK, "&lt;script&gt;alert(1)")
	dataCheckEscaped(t, w)
	if strings.Contains(w.Body.String(), `href="/exports/new"`) {
		t.Error("the officer, who may not export, is offered a request")
	}
	w = o.get("/exports/" + id)
	wantBody(t, w, http.StatusOK, "Approve", "Reject", `action="/exports/`+id+`/approve"`)
	checkPageHeaders(t, w)
	ocsrf := csrfOf(t, w)
	// Without the CSRF token nothing happens.
	wantBody(t, o.do("POST", "/exports/"+id+"/approve", url.Values{}), http.StatusForbidden)
	if r, _ := h.n.CRM.GetExportRequest(ctx, mgr, id); r.Status != crm.ExportPending {
		t.Fatalf("approved without CSRF token: %s", r.Status)
	}
	wantRedirect(t, o.do("POST", "/exports/"+id+"/approve", url.Values{csrfField: {ocsrf}}), "/exports/"+id+"?done=approved")
	wantBody(t, o.get("/exports/"+id+"?done=approved"), http.StatusOK, "The request was approved", "Ready", "Olga Officer")
	if r, _ := h.n.CRM.GetExportRequest(ctx, mgr, id); r.Status != crm.ExportApproved {
		t.Fatalf("status %s after the approval", r.Status)
	}
	if n := dataEvents(t, h, "export.approve", audit.OK); n != 1 {
		t.Fatalf("%d approvals on record", n)
	}
	// The officer may not download it.
	wantBody(t, o.get("/exports/"+id+"/download"), http.StatusForbidden)

	// The requester downloads the encrypted file.
	w = m.get("/exports/" + id)
	wantBody(t, w, http.StatusOK, "可下载", "Olga Officer", `href="/exports/`+id+`/download"`)
	w = m.get("/exports/" + id + "/download")
	if w.Code != http.StatusOK || w.Header().Get("Cache-Control") != "no-store" ||
		w.Header().Get("Content-Disposition") != `attachment; filename="custos-export-`+id+`.csv.age"` {
		t.Fatalf("download: %d %v", w.Code, w.Header())
	}
	ident, err := age.NewScryptIdentity(dataExportPW)
	if err != nil {
		t.Fatal(err)
	}
	r, err := age.Decrypt(bytes.NewReader(w.Body.Bytes()), ident)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(r)
	if !strings.Contains(string(plain), "出口甲公司") || strings.Contains(string(plain), "alert(1)") {
		t.Fatalf("file:\n%s", plain)
	}
	if n := dataEvents(t, h, "export.download", audit.OK); n != 1 {
		t.Fatalf("%d downloads on record", n)
	}

	// Cancel and reject.
	delete(form, "owner")
	form.Set("q", "")
	fileOne := func() string {
		w := m.do("POST", "/exports/new", form)
		if w.Code != http.StatusSeeOther {
			t.Fatalf("request: %d %s", w.Code, w.Body)
		}
		return strings.TrimSuffix(strings.TrimPrefix(w.Header().Get("Location"), "/exports/"), "?done=requested")
	}
	second := fileOne()
	wantBody(t, o.do("POST", "/exports/"+second+"/cancel", url.Values{csrfField: {ocsrf}}), http.StatusForbidden)
	wantRedirect(t, m.do("POST", "/exports/"+second+"/cancel", url.Values{csrfField: {csrf}}), "/exports/"+second+"?done=cancelled")
	third := fileOne()
	wantRedirect(t, o.do("POST", "/exports/"+third+"/reject", url.Values{csrfField: {ocsrf}}), "/exports/"+third+"?done=rejected")
	for id, want := range map[string]string{second: crm.ExportCancelled, third: crm.ExportRejected} {
		if r, _ := h.n.CRM.GetExportRequest(ctx, mgr, id); r.Status != want {
			t.Fatalf("%s: %s, want %s", id, r.Status, want)
		}
	}
	// A decided request cannot be decided again.
	wantBody(t, o.do("POST", "/exports/"+third+"/approve", url.Values{csrfField: {ocsrf}}), http.StatusConflict, "already been decided")
	// The list filters by status.
	w = m.get("/exports?status=rejected")
	wantBody(t, w, http.StatusOK, "已驳回", "/exports/"+third)
	if strings.Contains(w.Body.String(), "/exports/"+second) {
		t.Fatal("the status filter let a cancelled request through")
	}
	wantBody(t, m.get("/exports?status=bogus"), http.StatusBadRequest)
	// An unknown or malformed id is not found.
	wantBody(t, m.get("/exports/00000000-0000-4000-8000-000000000000"), http.StatusNotFound)
	wantBody(t, m.get("/exports/nope"), http.StatusNotFound)

	// An approval needs a recent sign-in.
	fourth := fileOne()
	h.clock.add(10 * time.Minute)
	wantBody(t, o.do("POST", "/exports/"+fourth+"/approve", url.Values{csrfField: {ocsrf}}), http.StatusForbidden, "recent sign-in")
	if r, _ := h.n.CRM.GetExportRequest(ctx, mgr, fourth); r.Status != crm.ExportPending {
		t.Fatalf("approved without a recent sign-in: %s", r.Status)
	}
}

func TestUIDataExportsDenied(t *testing.T) {
	exportfile.UseCheapScryptForTests(t)
	h := newUIHarness(t)
	ctx := context.Background()
	mgr := dataUser(t, h, "manager@example.com", "Mia Manager", "manager")
	name := "秘密客户"
	if _, err := h.n.CRM.CreateCustomer(ctx, mgr, crm.CustomerFields{Name: &name}); err != nil {
		t.Fatal(err)
	}
	req, err := h.n.CRM.RequestExport(ctx, mgr, crm.ExportInput{Format: "csv", Password: crm.Secret(dataExportPW), Reveal: []string{access.FieldIDNumber}})
	if err != nil {
		t.Fatal(err)
	}
	c := dataSignIn(t, h, "sales@example.com", "en")
	for _, target := range []string{"/exports", "/exports/new"} {
		w := c.get(target)
		wantBody(t, w, http.StatusForbidden, "Your role does not allow this")
		checkPageHeaders(t, w)
	}
	// Another person's request is not found, and cannot be acted on.
	wantBody(t, c.get("/exports/"+req.ID), http.StatusNotFound)
	wantBody(t, c.get("/exports/"+req.ID+"/download"), http.StatusForbidden)
	csrf := dataCSRF(t, c, "/")
	for _, action := range []string{"approve", "reject", "cancel"} {
		w := c.do("POST", "/exports/"+req.ID+"/"+action, url.Values{csrfField: {csrf}})
		if w.Code != http.StatusForbidden && w.Code != http.StatusNotFound {
			t.Fatalf("%s: %d", action, w.Code)
		}
	}
	w := c.do("POST", "/exports/new", url.Values{csrfField: {csrf}, "format": {"csv"}, "password": {dataExportPW}, "password_confirm": {dataExportPW}})
	wantBody(t, w, http.StatusForbidden)
	if r, _ := h.n.CRM.GetExportRequest(ctx, mgr, req.ID); r.Status != crm.ExportPending {
		t.Fatalf("status %s", r.Status)
	}
	if strings.Contains(c.get("/").Body.String(), `href="/exports"`) {
		t.Error("the navigation offers the exports to sales")
	}
}
