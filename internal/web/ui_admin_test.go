package web

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/store"
)

// adminXSSProbe is a stored value that must come back escaped.
const adminXSSProbe = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`

// adminUI is a harness with the administrator signed in (second factor
// enrolled) and helpers for the services behind the pages.
type adminUI struct {
	*uiHarness
	admin *uiClient
	ctx   context.Context
}

func newAdminUI(t *testing.T) *adminUI {
	t.Helper()
	h := newUIHarness(t)
	c := h.client("en")
	wantRedirect(t, c.login("admin@example.com", uiPassword), "/account/mfa")
	enroll(t, h, c)
	return &adminUI{uiHarness: h, admin: c, ctx: context.Background()}
}

// user creates a user and returns it.
func (a *adminUI) user(email, name, role string) auth.User {
	a.t.Helper()
	u, err := a.n.Auth.CreateUser(a.ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: email, Name: name, Role: role, Password: uiPassword})
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

func (a *adminUI) byEmail(email string) auth.User {
	a.t.Helper()
	u, err := a.n.Auth.FindUserByEmail(a.ctx, email)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// principal is the service principal of a user (not interactive: no
// step-up), for setting up and checking data.
func (a *adminUI) principal(u auth.User) access.Principal {
	a.t.Helper()
	p, err := a.n.CRM.Principal(a.ctx, access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role})
	if err != nil {
		a.t.Fatal(err)
	}
	return p
}

// signIn signs a user without a second factor in.
func (a *adminUI) signIn(email, lang string) *uiClient {
	a.t.Helper()
	c := a.client(lang)
	wantRedirect(a.t, c.login(email, uiPassword), "/")
	return c
}

// audited reports whether the trail holds an event of action with outcome
// on objectID ("" matches any object).
func (a *adminUI) audited(action, outcome, objectID string) bool {
	a.t.Helper()
	found := false
	err := a.n.DB.Read(a.ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(a.ctx, 0, 100000)
		for _, ev := range evs {
			if ev.Action == action && ev.Outcome == outcome && (objectID == "" || ev.ObjectID == objectID) {
				found = true
			}
		}
		return err
	})
	if err != nil {
		a.t.Fatal(err)
	}
	return found
}

// wantAudited fails unless the trail holds the event.
func (a *adminUI) wantAudited(action, outcome, objectID string) {
	a.t.Helper()
	if !a.audited(action, outcome, objectID) {
		a.t.Errorf("no audit event %s/%s on %q", action, outcome, objectID)
	}
}

// adminWantPage fetches a page in both languages: status 200, the strict
// headers, and the expected text of each language.
func adminWantPage(t *testing.T, c *uiClient, target string, en, zh []string) {
	t.Helper()
	lang := c.lang
	defer func() { c.lang = lang }()
	for _, tc := range []struct {
		lang string
		want []string
	}{{"en", en}, {"zh-CN", zh}} {
		c.lang = tc.lang
		w := c.get(target)
		wantBody(t, w, http.StatusOK, append([]string{`lang="` + tc.lang + `"`}, tc.want...)...)
		checkPageHeaders(t, w)
	}
}

// adminWantEscaped checks that the probe came back as text, never as markup.
func adminWantEscaped(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	body := w.Body.String()
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "<img src=x") {
		t.Fatalf("unescaped probe in the page: %s", body)
	}
	if !strings.Contains(body, "&lt;script&gt;alert(1)&lt;/script&gt;") {
		t.Fatalf("the probe is not shown escaped: %s", body)
	}
}

var adminTempPassword = regexp.MustCompile(`id="temp-pw" class="code" value="([^"]+)"`)

func TestUIAdminUsersList(t *testing.T) {
	a := newAdminUI(t)
	adminWantPage(t, a.admin, "/admin/users",
		[]string{"Users", "Ada Admin", "admin@example.com", "李雷", "Sales rep", "Enrolled", `aria-current="page"`, `action="/admin/users"`},
		[]string{"用户", "Ada Admin", "李雷", "销售代表", "系统管理员", "已启用", "新建用户"})
	// The search narrows the list.
	w := a.admin.get("/admin/users?q=" + url.QueryEscape("李"))
	wantBody(t, w, http.StatusOK, "李雷")
	if strings.Contains(w.Body.String(), "admin@example.com</td>") {
		t.Error("the search did not narrow the list")
	}
	a.wantAudited("user.list", audit.OK, "")

	// A sales rep may not manage users: refused, audited, nothing shown.
	s := a.signIn("sales@example.com", "en")
	for _, target := range []string{"/admin/users", "/admin/users/" + a.byEmail("admin@example.com").ID} {
		w := s.get(target)
		wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
		checkPageHeaders(t, w)
		if strings.Contains(w.Body.String(), "admin@example.com") {
			t.Errorf("%s shows a user to sales", target)
		}
	}
	a.wantAudited("user.list", audit.Denied, "")
	a.wantAudited("user.view", audit.Denied, "")
	// Unknown and malformed ids are not found.
	wantBody(t, a.admin.get("/admin/users/01890000-0000-7000-8000-000000000000"), http.StatusNotFound)
	wantBody(t, a.admin.get("/admin/users/nope"), http.StatusNotFound)
}

func TestUIAdminCreateUser(t *testing.T) {
	a := newAdminUI(t)

	t.Run("generated password shown once", func(t *testing.T) {
		w := a.admin.postForm("/admin/users", "/admin/users", url.Values{"name": {"Wang Wu"}, "email": {"wang@example.com"}, "role": {"support"}})
		wantBody(t, w, http.StatusOK, "User created", "Wang Wu", "wang@example.com", "shown only this once")
		checkPageHeaders(t, w)
		m := adminTempPassword.FindStringSubmatch(w.Body.String())
		if m == nil {
			t.Fatalf("no temporary password: %s", w.Body)
		}
		pw := m[1]
		if strings.Contains(a.log.String(), pw) {
			t.Fatal("the generated password is in the log")
		}
		u := a.byEmail("wang@example.com")
		if u.Role != "support" || u.Name != "Wang Wu" {
			t.Fatalf("created %+v", u)
		}
		a.wantAudited("user.create", audit.OK, u.ID)
		// The user signs in with it.
		wantRedirect(t, a.client("en").login("wang@example.com", pw), "/")
	})

	t.Run("given password", func(t *testing.T) {
		w := a.admin.postForm("/admin/users", "/admin/users", url.Values{"name": {"赵六"}, "email": {"zhao@example.com"}, "role": {"sales"}, "password": {"a much longer passphrase"}})
		u := a.byEmail("zhao@example.com")
		wantRedirect(t, w, "/admin/users/"+u.ID+"?done=created")
		wantBody(t, a.admin.get("/admin/users/"+u.ID+"?done=created"), http.StatusOK, "The user was created.", "赵六")
		wantRedirect(t, a.client("en").login("zhao@example.com", "a much longer passphrase"), "/")
	})

	t.Run("validation errors keep the form", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			form  url.Values
			lang  string
			want  []string
			field string
		}{
			{"bad email", url.Values{"name": {"Kept Name"}, "email": {"not-an-email"}, "role": {"sales"}}, "en", []string{"not a valid email address", `value="Kept Name"`}, "email"},
			{"bad email zh", url.Values{"name": {"Kept Name"}, "email": {"not-an-email"}, "role": {"sales"}}, "zh-CN", []string{"邮箱地址无效", "请修改标出的字段。"}, "email"},
			{"taken email", url.Values{"name": {"Again"}, "email": {"sales@example.com"}, "role": {"sales"}}, "en", []string{"A user with this email already exists."}, "email"},
			{"weak password", url.Values{"name": {"Weak"}, "email": {"weak@example.com"}, "role": {"sales"}, "password": {"short"}}, "en", []string{"too short"}, "password"},
			{"no name", url.Values{"name": {""}, "email": {"noname@example.com"}, "role": {"sales"}}, "en", []string{"Enter a name"}, "name"},
			{"unknown role", url.Values{"name": {"Role"}, "email": {"role@example.com"}, "role": {"nosuch"}}, "en", []string{"No such role."}, "role"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a.admin.lang = tc.lang
				defer func() { a.admin.lang = "en" }()
				w := a.admin.postForm("/admin/users", "/admin/users", tc.form)
				wantBody(t, w, http.StatusBadRequest, append(tc.want, `aria-invalid="true"`, `id="nu-`+tc.field+`-err"`)...)
				checkPageHeaders(t, w)
				if strings.Contains(w.Body.String(), `value="short"`) {
					t.Error("the password is echoed back")
				}
			})
		}
		if _, err := a.n.Auth.FindUserByEmail(a.ctx, "weak@example.com"); err == nil {
			t.Error("a refused user was created")
		}
	})

	t.Run("stored markup is escaped", func(t *testing.T) {
		u := a.user("xss@example.com", adminXSSProbe, "sales")
		w := a.admin.get("/admin/users")
		wantBody(t, w, http.StatusOK)
		adminWantEscaped(t, w)
		w = a.admin.get("/admin/users/" + u.ID)
		wantBody(t, w, http.StatusOK)
		adminWantEscaped(t, w)
	})

	t.Run("sales may not create users", func(t *testing.T) {
		s := a.signIn("sales@example.com", "en")
		w := s.postForm("/account", "/admin/users", url.Values{"name": {"Intruder"}, "email": {"intruder@example.com"}, "role": {"admin"}})
		wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
		if _, err := a.n.Auth.FindUserByEmail(a.ctx, "intruder@example.com"); err == nil {
			t.Fatal("sales created a user")
		}
		a.wantAudited("user.create", audit.Denied, "")
	})

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		w := a.admin.do("POST", "/admin/users", url.Values{"name": {"No Token"}, "email": {"notoken@example.com"}, "role": {"sales"}})
		wantBody(t, w, http.StatusForbidden)
		if _, err := a.n.Auth.FindUserByEmail(a.ctx, "notoken@example.com"); err == nil {
			t.Fatal("a user was created without the CSRF token")
		}
	})
}

func TestUIAdminUserActions(t *testing.T) {
	a := newAdminUI(t)
	sales := a.byEmail("sales@example.com")
	page := "/admin/users/" + sales.ID
	post := func(action string, form url.Values) *httptest.ResponseRecorder {
		t.Helper()
		return a.admin.postForm(page, page+"/"+action, form)
	}
	adminWantPage(t, a.admin, page,
		[]string{"李雷", "sales@example.com", "Sales rep", "Active", "Change role", "Offboard", `action="` + page + `/disable"`},
		[]string{"李雷", "销售代表", "正常", "变更角色", "离职交接", "重置密码"})
	a.wantAudited("user.view", audit.OK, sales.ID)

	t.Run("change role", func(t *testing.T) {
		wantRedirect(t, post("role", url.Values{"role": {"support"}}), page+"?done=role")
		if u := a.byEmail("sales@example.com"); u.Role != "support" {
			t.Fatalf("role %s", u.Role)
		}
		a.wantAudited("user.role", audit.OK, sales.ID)
		w := post("role", url.Values{"role": {"nosuch"}})
		wantBody(t, w, http.StatusBadRequest, "No such role.", `id="u-role-err"`)
		wantRedirect(t, post("role", url.Values{"role": {"sales"}}), page+"?done=role")
	})

	t.Run("disable and enable", func(t *testing.T) {
		s := a.signIn("sales@example.com", "en")
		wantRedirect(t, post("disable", nil), page+"?done=disabled")
		if u := a.byEmail("sales@example.com"); !u.Disabled {
			t.Fatal("not disabled")
		}
		a.wantAudited("user.disable", audit.OK, sales.ID)
		// The session ended with it.
		if w := s.get("/"); w.Code != http.StatusSeeOther {
			t.Fatalf("a disabled user's session still works: %d", w.Code)
		}
		wantBody(t, a.admin.get(page+"?done=disabled"), http.StatusOK, "The user was disabled", "Disabled", `action="`+page+`/enable"`)
		wantRedirect(t, post("enable", nil), page+"?done=enabled")
		if u := a.byEmail("sales@example.com"); u.Disabled {
			t.Fatal("not enabled")
		}
		a.wantAudited("user.enable", audit.OK, sales.ID)
	})

	t.Run("an administrator cannot disable themselves", func(t *testing.T) {
		me := a.byEmail("admin@example.com")
		self := "/admin/users/" + me.ID
		w := a.admin.get(self)
		wantBody(t, w, http.StatusOK, "You")
		if strings.Contains(w.Body.String(), `action="`+self+`/disable"`) || strings.Contains(w.Body.String(), `action="`+self+`/offboard"`) {
			t.Error("the own page offers disable or offboard")
		}
		w = a.admin.postForm(self, self+"/disable", nil)
		wantBody(t, w, http.StatusConflict, "You cannot disable your own account.")
		if a.byEmail("admin@example.com").Disabled {
			t.Fatal("the administrator disabled themselves")
		}
	})

	t.Run("locked account is shown and unlocked", func(t *testing.T) {
		c := a.client("en")
		for range 5 {
			c.login("sales@example.com", "wrong horse battery")
		}
		wantBody(t, c.login("sales@example.com", uiPassword), http.StatusTooManyRequests)
		wantBody(t, a.admin.get(page), http.StatusOK, "Locked", "Locked until", `action="`+page+`/unlock"`)
		wantBody(t, a.admin.get("/admin/users"), http.StatusOK, `badge-warn">Locked`)
		wantRedirect(t, post("unlock", nil), page+"?done=unlocked")
		a.wantAudited("user.unlock", audit.OK, sales.ID)
		wantRedirect(t, c.login("sales@example.com", uiPassword), "/")
		if strings.Contains(a.admin.get(page).Body.String(), "Locked until") {
			t.Error("still shown locked")
		}
	})

	t.Run("reset password", func(t *testing.T) {
		s := a.signIn("sales@example.com", "en")
		w := post("reset-password", nil)
		wantBody(t, w, http.StatusOK, "Password reset", "李雷", "shown only this once")
		checkPageHeaders(t, w)
		m := adminTempPassword.FindStringSubmatch(w.Body.String())
		if m == nil {
			t.Fatalf("no temporary password: %s", w.Body)
		}
		a.wantAudited("user.password.reset", audit.OK, sales.ID)
		if strings.Contains(a.log.String(), m[1]) {
			t.Fatal("the temporary password is in the log")
		}
		if w := s.get("/"); w.Code != http.StatusSeeOther {
			t.Fatal("the session survived the reset")
		}
		// The old password no longer works; the new one must be changed.
		wantRedirect(t, a.client("en").login("sales@example.com", m[1]), "/account/password")
		if err := a.n.Auth.ResetPassword(a.ctx, audit.Event{Actor: "test"}, sales.ID, uiPassword); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("end all sessions", func(t *testing.T) {
		// Restricted after the reset above: it must change the password first.
		s := a.client("en")
		wantRedirect(t, s.login("sales@example.com", uiPassword), "/account/password")
		wantRedirect(t, post("revoke-sessions", nil), page+"?done=sessions")
		a.wantAudited("session.revoke_all", audit.OK, sales.ID)
		w := s.get("/account/password")
		if w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/login") {
			t.Fatalf("the session survived: %d %s", w.Code, w.Header().Get("Location"))
		}
	})

	t.Run("sales may not act on users", func(t *testing.T) {
		other := a.user("other@example.com", "Other", "support")
		// A signed-in sales rep, posting with their own valid CSRF token.
		if err := a.n.Auth.ResetPassword(a.ctx, audit.Event{Actor: "test"}, sales.ID, "another fine passphrase"); err != nil {
			t.Fatal(err)
		}
		s := a.client("en")
		wantRedirect(t, s.login("sales@example.com", "another fine passphrase"), "/account/password")
		w := s.postForm("/account/password", "/account/password", url.Values{"current_password": {"another fine passphrase"},
			"new_password": {"yet another passphrase"}, "confirm_password": {"yet another passphrase"}})
		if w.Code != http.StatusSeeOther {
			t.Fatalf("password change: %d %s", w.Code, w.Body)
		}
		target := "/admin/users/" + other.ID
		for _, action := range []string{"disable", "reset-password", "revoke-sessions", "unlock", "role"} {
			w := s.postForm("/account", target+"/"+action, url.Values{"role": {"admin"}})
			wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
		}
		if u := a.byEmail("other@example.com"); u.Disabled || u.Role != "support" {
			t.Fatalf("sales changed another user: %+v", u)
		}
		a.wantAudited("user.disable", audit.Denied, other.ID)
		a.wantAudited("user.role", audit.Denied, other.ID)
	})

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		for _, action := range []string{"disable", "role", "offboard", "reset-password"} {
			w := a.admin.do("POST", page+"/"+action, url.Values{"role": {"admin"}, "to": {"pool"}})
			wantBody(t, w, http.StatusForbidden)
		}
		if u := a.byEmail("sales@example.com"); u.Disabled || u.Role != "sales" {
			t.Fatalf("changed without the CSRF token: %+v", u)
		}
	})
}

func TestUIAdminOffboard(t *testing.T) {
	a := newAdminUI(t)
	leaver := a.user("leaver@example.com", "Leaver", "sales")
	heir := a.user("heir@example.com", "Heir", "sales")
	lp := a.principal(leaver)
	var ids []string
	for _, name := range []string{"Leaver Customer A", "Leaver Customer B"} {
		n := name
		c, err := a.n.CRM.CreateCustomer(a.ctx, lp, crm.CustomerFields{Name: &n})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, c.ID)
	}
	page := "/admin/users/" + leaver.ID
	// The successor list offers active colleagues, and the pool.
	wantBody(t, a.admin.get(page), http.StatusOK, `value="pool"`, `value="`+heir.ID+`"`)

	// Neither successor nor pool: the form again with the message.
	w := a.admin.postForm(page, page+"/offboard", url.Values{"to": {""}})
	wantBody(t, w, http.StatusBadRequest, "Choose a successor or the public pool.", `id="off-to-err"`)
	checkPageHeaders(t, w)
	if a.byEmail("leaver@example.com").Disabled {
		t.Fatal("a refused offboarding disabled the user")
	}

	wantRedirect(t, a.admin.postForm(page, page+"/offboard", url.Values{"to": {heir.ID}}), page+"?done=offboarded&n=2")
	wantBody(t, a.admin.get(page+"?done=offboarded&n=2"), http.StatusOK, "2 customers were handed over", "Disabled")
	if !a.byEmail("leaver@example.com").Disabled {
		t.Fatal("not disabled")
	}
	for _, id := range ids {
		c, err := a.n.CRM.GetCustomer(a.ctx, a.principal(heir), id)
		if err != nil || c.OwnerID != heir.ID {
			t.Fatalf("customer %s: owner %q, %v", id, c.OwnerID, err)
		}
	}
	a.wantAudited("user.offboard", audit.OK, leaver.ID)

	// To the pool.
	leaver2 := a.user("leaver2@example.com", "Leaver Two", "sales")
	n := "Pool Bound"
	c, err := a.n.CRM.CreateCustomer(a.ctx, a.principal(leaver2), crm.CustomerFields{Name: &n})
	if err != nil {
		t.Fatal(err)
	}
	page2 := "/admin/users/" + leaver2.ID
	a.admin.lang = "zh-CN"
	wantRedirect(t, a.admin.postForm(page2, page2+"/offboard", url.Values{"to": {"pool"}}), page2+"?done=offboarded&n=1")
	wantBody(t, a.admin.get(page2+"?done=offboarded&n=1"), http.StatusOK, "已移交 1 个客户")
	got, err := a.n.CRM.GetCustomer(a.ctx, a.principal(a.byEmail("admin@example.com")), c.ID)
	if err != nil || got.OwnerID != "" {
		t.Fatalf("pool customer: owner %q, %v", got.OwnerID, err)
	}
}

func TestUIAdminStepUp(t *testing.T) {
	a := newAdminUI(t)
	sales := a.byEmail("sales@example.com")
	page := "/admin/users/" + sales.ID
	w := a.admin.get(page)
	csrf := csrfOf(t, w)
	// Past the step-up window (but within the session's idle time).
	a.clock.add(access.StepUpWindow + time.Minute)
	for _, action := range []string{"disable", "role", "reset-password", "revoke-sessions"} {
		w := a.admin.do("POST", page+"/"+action, url.Values{csrfField: {csrf}, "role": {"support"}})
		wantBody(t, w, http.StatusForbidden, "This needs a recent sign-in.")
		checkPageHeaders(t, w)
	}
	if u := a.byEmail("sales@example.com"); u.Disabled || u.Role != "sales" {
		t.Fatalf("changed without step-up: %+v", u)
	}
	a.wantAudited("user.disable", audit.Denied, sales.ID)
	// Viewing needs no step-up.
	wantBody(t, a.admin.get(page), http.StatusOK, "李雷")
}

// adminRoleFormOf is the editor's form for a role as it stands.
func adminRoleFormOf(r crm.Role) url.Values {
	f := url.Values{"label": {r.Label}, "parent": {r.Parent}, "reveal_quota": {strconv.Itoa(r.RevealQuota)},
		"claim_daily": {strconv.Itoa(r.ClaimDaily)}, "max_owned": {strconv.Itoa(r.MaxOwned)}, "claim_cooldown_days": {strconv.Itoa(r.ClaimCooldownDays)}}
	if r.SeeAll {
		f.Set("see_all", "1")
	}
	for _, p := range r.Permissions {
		f.Add("perm", string(p))
	}
	for field, l := range r.Fields {
		f.Set("fields."+field, l.String())
	}
	return f
}

func TestUIAdminRoles(t *testing.T) {
	a := newAdminUI(t)
	ap := a.principal(a.byEmail("admin@example.com"))
	getRole := func(name string) crm.Role {
		t.Helper()
		r, err := a.n.CRM.GetRole(a.ctx, ap, name)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	adminWantPage(t, a.admin, "/admin/roles",
		[]string{"Roles", "Sales rep", "Sales manager", `href="/admin/roles/sales"`, "New role"},
		[]string{"角色", "销售代表", "销售经理", "系统管理员", "新建角色"})
	adminWantPage(t, a.admin, "/admin/roles/sales",
		[]string{"Sales rep", "Field policy", `class="list matrix"`, `name="fields.id_number" value="masked" checked`,
			`name="fields.phone" value="edit" checked`, `name="perm" value="share" checked`, "Claims per day", `value="20"`},
		[]string{"销售代表", "字段策略", "脱敏", "可编辑", "共享客户", "每日领取上限"})

	t.Run("edit permissions, field policy and quotas", func(t *testing.T) {
		f := adminRoleFormOf(getRole("sales"))
		f.Set("fields.phone", "masked")
		f.Set("fields.notes", "hidden")
		f.Del("perm")
		for _, p := range []string{"create", "read", "update", "claim"} {
			f.Add("perm", p)
		}
		f.Set("claim_daily", "5")
		f.Set("label", "Field sales")
		wantRedirect(t, a.admin.postForm("/admin/roles/sales", "/admin/roles/sales", f), "/admin/roles/sales?done=role_saved")
		r := getRole("sales")
		if r.Fields["phone"] != access.Masked || r.Fields["notes"] != access.Hidden || r.Fields["email"] != access.Editable {
			t.Fatalf("fields %v", r.Fields)
		}
		if !slices.Equal(r.Permissions, []access.Permission{access.Create, access.Read, access.Update, access.Claim}) {
			t.Fatalf("permissions %v", r.Permissions)
		}
		if r.ClaimDaily != 5 || r.Label != "Field sales" || r.Template {
			t.Fatalf("role %+v", r)
		}
		a.wantAudited("role.update", audit.OK, "sales")
		// An edited template shows its own label in both languages.
		adminWantPage(t, a.admin, "/admin/roles/sales?done=role_saved", []string{"Field sales", "The role was saved."}, []string{"Field sales", "角色已保存"})
	})

	t.Run("validation errors keep the form", func(t *testing.T) {
		before := getRole("sales")
		f := adminRoleFormOf(before)
		f.Set("claim_daily", "abc")
		f.Set("max_owned", "-1")
		f.Set("fields.phone", "read")
		w := a.admin.postForm("/admin/roles/sales", "/admin/roles/sales", f)
		wantBody(t, w, http.StatusBadRequest, "Enter a whole number.", `id="q-claim_daily-err"`, `value="abc"`)
		checkPageHeaders(t, w)
		// Only the number the page checks itself; then the service's range.
		f.Set("claim_daily", "3")
		w = a.admin.postForm("/admin/roles/sales", "/admin/roles/sales", f)
		wantBody(t, w, http.StatusBadRequest, "Out of the allowed range.", `id="q-max_owned-err"`, `name="fields.phone" value="read" checked`)
		f.Set("max_owned", "10")
		f.Set("parent", "sales")
		a.admin.lang = "zh-CN"
		w = a.admin.postForm("/admin/roles/sales", "/admin/roles/sales", f)
		a.admin.lang = "en"
		wantBody(t, w, http.StatusBadRequest, "请修改标出的字段。", `id="r-parent-err"`)
		if r := getRole("sales"); r.ClaimDaily != before.ClaimDaily || r.Fields["phone"] != before.Fields["phone"] || r.Parent != before.Parent {
			t.Fatalf("a refused edit changed the role: %+v", r)
		}
	})

	t.Run("create, copy and delete", func(t *testing.T) {
		w := a.admin.postForm("/admin/roles", "/admin/roles", url.Values{"name": {"Bad Name"}, "from": {"sales"}})
		wantBody(t, w, http.StatusBadRequest, "2–32 characters", `value="Bad Name"`, `id="nr-name-err"`)
		wantRedirect(t, a.admin.postForm("/admin/roles", "/admin/roles", url.Values{"name": {"east_sales"}, "from": {"support"}}),
			"/admin/roles/east_sales?done=role_created")
		r := getRole("east_sales")
		if !r.SeeAll || r.Fields["phone"] != access.Masked {
			t.Fatalf("copy of support: %+v", r)
		}
		a.wantAudited("role.create", audit.OK, "east_sales")
		w = a.admin.postForm("/admin/roles", "/admin/roles", url.Values{"name": {"east_sales"}})
		wantBody(t, w, http.StatusConflict, "A role with this name already exists.")
		// A role someone holds stays.
		w = a.admin.postForm("/admin/roles/sales", "/admin/roles/sales/delete", nil)
		wantBody(t, w, http.StatusConflict, "This role cannot be deleted")
		getRole("sales")
		wantRedirect(t, a.admin.postForm("/admin/roles/east_sales", "/admin/roles/east_sales/delete", nil), "/admin/roles?done=deleted")
		if _, err := a.n.CRM.GetRole(a.ctx, ap, "east_sales"); err == nil {
			t.Fatal("not deleted")
		}
		a.wantAudited("role.delete", audit.OK, "east_sales")
		wantBody(t, a.admin.get("/admin/roles/east_sales"), http.StatusNotFound)
	})

	t.Run("sign-in policy", func(t *testing.T) {
		page := "/admin/roles/finance"
		wantBody(t, a.admin.get(page), http.StatusOK, "Sign-in policy", `action="/admin/roles/finance/policy"`)
		w := a.admin.postForm(page, page+"/policy", url.Values{"ip_allowlist": {"10.0.0.0/8\nnot-an-ip"}, "login_hours": {"08:00-20:00"}})
		wantBody(t, w, http.StatusBadRequest, "Give addresses or CIDR ranges", "not-an-ip", `id="pol-ips-err"`)
		checkPageHeaders(t, w)
		w = a.admin.postForm(page, page+"/policy", url.Values{"login_hours": {"late"}})
		wantBody(t, w, http.StatusBadRequest, `id="pol-hours-err"`, `value="late"`)
		wantRedirect(t, a.admin.postForm(page, page+"/policy", url.Values{"mfa_required": {"1"}, "ip_allowlist": {"10.0.0.0/8\r\n192.0.2.7"}, "login_hours": {"08:00-20:00 Asia/Shanghai"}}),
			page+"?done=policy_saved")
		pol, err := a.n.Auth.RolePolicy(a.ctx, "finance")
		if err != nil || !pol.MFARequired || pol.IPAllowlist != "10.0.0.0/8 192.0.2.7" || pol.LoginHours != "08:00-20:00 Asia/Shanghai" {
			t.Fatalf("policy %+v %v", pol, err)
		}
		a.wantAudited("role.policy.update", audit.OK, "finance")
		adminWantPage(t, a.admin, page+"?done=policy_saved", []string{"The sign-in policy was saved.", "192.0.2.7"}, []string{"登录策略已保存。"})
	})

	t.Run("stored markup is escaped", func(t *testing.T) {
		f := adminRoleFormOf(getRole("support"))
		f.Set("label", adminXSSProbe)
		wantRedirect(t, a.admin.postForm("/admin/roles/support", "/admin/roles/support", f), "/admin/roles/support?done=role_saved")
		for _, target := range []string{"/admin/roles", "/admin/roles/support", "/admin/users"} {
			w := a.admin.get(target)
			wantBody(t, w, http.StatusOK)
			if target != "/admin/users" {
				adminWantEscaped(t, w)
			}
			if strings.Contains(w.Body.String(), "<script>alert") {
				t.Fatalf("%s: unescaped", target)
			}
		}
	})

	t.Run("sales may not edit roles", func(t *testing.T) {
		s := a.signIn("sales@example.com", "en")
		for _, target := range []string{"/admin/roles", "/admin/roles/sales"} {
			w := s.get(target)
			wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
			if strings.Contains(w.Body.String(), "fields.phone") {
				t.Fatal("the editor shown to sales")
			}
		}
		before := getRole("sales")
		f := adminRoleFormOf(before)
		f.Set("see_all", "1")
		wantBody(t, s.postForm("/account", "/admin/roles/sales", f), http.StatusForbidden)
		wantBody(t, s.postForm("/account", "/admin/roles", url.Values{"name": {"mine"}}), http.StatusForbidden)
		wantBody(t, s.postForm("/account", "/admin/roles/sales/policy", url.Values{"ip_allowlist": {"0.0.0.0/0"}}), http.StatusForbidden)
		a.wantAudited("role.policy.update", audit.Denied, "sales")
		if getRole("sales").SeeAll {
			t.Fatal("sales widened their own role")
		}
		a.wantAudited("role.list", audit.Denied, "")
		a.wantAudited("role.view", audit.Denied, "sales")
		a.wantAudited("role.update", audit.Denied, "sales")
	})

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		f := adminRoleFormOf(getRole("sales"))
		f.Set("see_all", "1")
		wantBody(t, a.admin.do("POST", "/admin/roles/sales", f), http.StatusForbidden)
		wantBody(t, a.admin.do("POST", "/admin/roles/finance/delete", url.Values{}), http.StatusForbidden)
		if getRole("sales").SeeAll {
			t.Fatal("changed without the CSRF token")
		}
		getRole("finance")
	})
}

func TestUIAdminGrants(t *testing.T) {
	a := newAdminUI(t)
	sales := a.byEmail("sales@example.com")
	ap := a.principal(a.byEmail("admin@example.com"))
	adminWantPage(t, a.admin, "/admin/grants",
		[]string{"Temporary grants", "No grants.", `name="expires_at"`, `value="export"`, "李雷 (sales@example.com)"},
		[]string{"临时授权", "暂无授权。", "批量导出"})
	tomorrow := a.clock.now().In(chinaTime).Add(24 * time.Hour).Format(adminDateTime)

	t.Run("validation errors keep the form", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			form url.Values
			want []string
		}{
			{"no reason", url.Values{"user_id": {sales.ID}, "permission": {"export"}, "expires_at": {tomorrow}}, []string{"required", `id="g-reason-err"`}},
			{"no expiry", url.Values{"user_id": {sales.ID}, "permission": {"export"}, "reason": {"quarter close"}}, []string{`id="g-expires-err"`, "quarter close"}},
			{"bad expiry", url.Values{"user_id": {sales.ID}, "permission": {"export"}, "reason": {"x"}, "expires_at": {"tomorrow"}}, []string{"not a valid date"}},
			{"past expiry", url.Values{"user_id": {sales.ID}, "permission": {"export"}, "reason": {"x"}, "expires_at": {"2020-01-01T10:00"}}, []string{"at most 90 days away"}},
			{"no permission", url.Values{"user_id": {sales.ID}, "reason": {"x"}, "expires_at": {tomorrow}}, []string{"Choose one permission.", `id="g-perm-err"`}},
			{"no user", url.Values{"permission": {"export"}, "reason": {"x"}, "expires_at": {tomorrow}}, []string{`id="g-user-err"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := a.admin.postForm("/admin/grants", "/admin/grants", tc.form)
				wantBody(t, w, http.StatusBadRequest, tc.want...)
				checkPageHeaders(t, w)
			})
		}
		if gs, _ := a.n.CRM.ListGrants(a.ctx, ap, ""); len(gs) != 0 {
			t.Fatalf("refused grants were made: %v", gs)
		}
	})

	var grant crm.Grant
	t.Run("grant and revoke", func(t *testing.T) {
		wantRedirect(t, a.admin.postForm("/admin/grants", "/admin/grants",
			url.Values{"user_id": {sales.ID}, "permission": {"export"}, "reason": {"quarter close " + adminXSSProbe}, "expires_at": {tomorrow}}),
			"/admin/grants?done=granted")
		gs, err := a.n.CRM.ListGrants(a.ctx, ap, sales.ID)
		if err != nil || len(gs) != 1 || gs[0].Permission != "export" || !gs[0].Active {
			t.Fatalf("grants %v %v", gs, err)
		}
		grant = gs[0]
		want := time.Date(2026, 3, 3, 10, 0, 0, 0, chinaTime) // harness clock 02:00 UTC = 10:00 UTC+8, plus a day
		if !grant.ExpiresAt.Equal(want) {
			t.Fatalf("expires %v, want %v", grant.ExpiresAt, want)
		}
		a.wantAudited("grant.create", audit.OK, grant.ID)
		// The grant is in force for the user.
		if p := a.principal(sales); !p.Can(access.Export) {
			t.Fatal("the grant does not apply")
		}
		adminWantPage(t, a.admin, "/admin/grants?done=granted",
			[]string{"The temporary grant was given.", "李雷", "Bulk export", "In force", "Ada Admin", `action="/admin/grants/` + grant.ID + `/revoke"`},
			[]string{"临时授权已生效。", "生效中", "3月3日"})
		wantRedirect(t, a.admin.postForm("/admin/grants", "/admin/grants/"+grant.ID+"/revoke", nil), "/admin/grants?done=revoked")
		if p := a.principal(sales); p.Can(access.Export) {
			t.Fatal("the revoked grant still applies")
		}
		a.wantAudited("grant.revoke", audit.OK, grant.ID)
		w := a.admin.get("/admin/grants")
		if strings.Contains(w.Body.String(), grant.ID) {
			t.Error("an ended grant in the list of grants in force")
		}
		wantBody(t, a.admin.get("/admin/grants?all=1"), http.StatusOK, "Revoked", "Bulk export")
	})

	t.Run("sales may not see or give grants", func(t *testing.T) {
		s := a.signIn("sales@example.com", "en")
		wantBody(t, s.get("/admin/grants"), http.StatusForbidden, "Your role does not allow this.")
		wantBody(t, s.postForm("/account", "/admin/grants", url.Values{"user_id": {sales.ID}, "permission": {"manage_roles"}, "reason": {"me"}, "expires_at": {tomorrow}}),
			http.StatusForbidden)
		if p := a.principal(sales); p.Can(access.ManageRoles) {
			t.Fatal("sales granted themselves")
		}
		a.wantAudited("grant.list", audit.Denied, "")
		a.wantAudited("grant.create", audit.Denied, sales.ID)
	})

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		wantBody(t, a.admin.do("POST", "/admin/grants", url.Values{"user_id": {sales.ID}, "permission": {"export"}, "reason": {"x"}, "expires_at": {tomorrow}}),
			http.StatusForbidden)
		if gs, _ := a.n.CRM.ListGrants(a.ctx, ap, sales.ID); len(gs) != 1 {
			t.Fatalf("grants %v", gs)
		}
	})
}

func TestUIShares(t *testing.T) {
	a := newAdminUI(t)
	owner := a.byEmail("sales@example.com")
	colleague := a.user("colleague@example.com", "韩梅梅", "sales")
	support := a.user("support@example.com", "Support Person", "support")
	name := "共享测试客户"
	cust, err := a.n.CRM.CreateCustomer(a.ctx, a.principal(owner), crm.CustomerFields{Name: &name})
	if err != nil {
		t.Fatal(err)
	}
	page := "/customers/" + cust.ID + "/shares"
	s := a.signIn("sales@example.com", "zh-CN")
	adminWantPage(t, s, page,
		[]string{"Shares", "This customer is not shared with anyone.", "韩梅梅 (colleague@example.com)", `href="/customers/` + cust.ID + `"`, `class="wm"`},
		[]string{"共享", "此客户尚未共享给任何人。", "共享给同事"})
	if strings.Contains(s.get(page).Body.String(), `value="`+owner.ID+`"`) {
		t.Error("the owner is offered as a share target")
	}
	xss := "XSS " + adminXSSProbe
	xc, err := a.n.CRM.CreateCustomer(a.ctx, a.principal(owner), crm.CustomerFields{Name: &xss})
	if err != nil {
		t.Fatal(err)
	}
	w := s.get("/customers/" + xc.ID + "/shares")
	wantBody(t, w, http.StatusOK)
	adminWantEscaped(t, w)

	t.Run("validation errors keep the form", func(t *testing.T) {
		s.lang = "en"
		for _, tc := range []struct {
			name string
			form url.Values
			want []string
		}{
			{"no user", url.Values{"level": {"edit"}}, []string{`id="s-user-err"`, `value="edit" selected`}},
			{"self", url.Values{"user_id": {owner.ID}, "level": {"read"}}, []string{"You cannot share with yourself."}},
			{"past expiry", url.Values{"user_id": {colleague.ID}, "level": {"read"}, "expires_at": {"2020-01-01T00:00"}}, []string{"Must be in the future.", `value="2020-01-01T00:00"`}},
			{"bad expiry", url.Values{"user_id": {colleague.ID}, "level": {"read"}, "expires_at": {"soon"}}, []string{"not a valid date"}},
			{"bad level", url.Values{"user_id": {colleague.ID}, "level": {"own"}}, []string{`id="s-level-err"`}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				w := s.postForm(page, page, tc.form)
				wantBody(t, w, http.StatusBadRequest, tc.want...)
			})
		}
		shares, err := a.n.CRM.ListShares(a.ctx, a.principal(owner), cust.ID)
		if err != nil || len(shares) != 0 {
			t.Fatalf("refused shares were made: %v %v", shares, err)
		}
	})

	var share crm.Share
	t.Run("share and revoke", func(t *testing.T) {
		// Before the share the colleague cannot see the customer.
		if _, err := a.n.CRM.GetCustomer(a.ctx, a.principal(colleague), cust.ID); err == nil {
			t.Fatal("visible before the share")
		}
		wantRedirect(t, s.postForm(page, page, url.Values{"user_id": {colleague.ID}, "level": {"edit"}, "expires_at": {"2026-03-10T18:00"}}), page+"?done=shared")
		shares, err := a.n.CRM.ListShares(a.ctx, a.principal(owner), cust.ID)
		if err != nil || len(shares) != 1 || shares[0].UserID != colleague.ID || shares[0].Level != "edit" || shares[0].ExpiresAt == nil ||
			!shares[0].ExpiresAt.Equal(time.Date(2026, 3, 10, 18, 0, 0, 0, chinaTime)) {
			t.Fatalf("shares %+v %v", shares, err)
		}
		share = shares[0]
		a.wantAudited("share.create", audit.OK, share.ID)
		if _, err := a.n.CRM.GetCustomer(a.ctx, a.principal(colleague), cust.ID); err != nil {
			t.Fatalf("not visible after the share: %v", err)
		}
		adminWantPage(t, s, page+"?done=shared",
			[]string{"The customer was shared.", "韩梅梅", "Edit", "In force", "李雷", `action="` + page + `/` + share.ID + `/revoke"`},
			[]string{"客户已共享。", "可编辑", "生效中", "3月10日"})
		wantRedirect(t, s.postForm(page, page+"/"+share.ID+"/revoke", nil), page+"?done=unshared")
		a.wantAudited("share.revoke", audit.OK, share.ID)
		if _, err := a.n.CRM.GetCustomer(a.ctx, a.principal(colleague), cust.ID); err == nil {
			t.Fatal("visible after the revocation")
		}
		wantBody(t, s.get(page), http.StatusOK, "Revoked")
	})

	t.Run("a share of another customer is not found here", func(t *testing.T) {
		other := "Other Customer"
		oc, err := a.n.CRM.CreateCustomer(a.ctx, a.principal(owner), crm.CustomerFields{Name: &other})
		if err != nil {
			t.Fatal(err)
		}
		sh, err := a.n.CRM.ShareCustomer(a.ctx, a.principal(owner), oc.ID, crm.ShareInput{UserID: colleague.ID, Level: "read"})
		if err != nil {
			t.Fatal(err)
		}
		wantBody(t, s.postForm(page, page+"/"+sh.ID+"/revoke", nil), http.StatusNotFound)
		shares, _ := a.n.CRM.ListShares(a.ctx, a.principal(owner), oc.ID)
		if len(shares) != 1 || !shares[0].Active {
			t.Fatal("revoked through another customer's page")
		}
	})

	t.Run("others get nothing", func(t *testing.T) {
		// A colleague who does not reach the customer: not found.
		c := a.signIn("colleague@example.com", "en")
		w := c.get(page)
		wantBody(t, w, http.StatusNotFound, "There is nothing here, or you may not see it.")
		if strings.Contains(w.Body.String(), "共享测试客户") {
			t.Fatal("the name leaked")
		}
		wantBody(t, c.postForm("/account", page, url.Values{"user_id": {support.ID}, "level": {"edit"}}), http.StatusNotFound)
		// Support reads every customer but may not share: refused.
		sp := a.signIn("support@example.com", "en")
		w = sp.get(page)
		wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
		if strings.Contains(w.Body.String(), "共享测试客户") {
			t.Fatal("the name leaked")
		}
		shares, _ := a.n.CRM.ListShares(a.ctx, a.principal(owner), cust.ID)
		if slices.ContainsFunc(shares, func(sh crm.Share) bool { return sh.Active }) {
			t.Fatal("an outsider shared the customer")
		}
		a.wantAudited("share.list", audit.Denied, cust.ID)
		a.wantAudited("share.create", audit.Denied, cust.ID)
		wantBody(t, s.get("/customers/not-an-id/shares"), http.StatusNotFound)
	})

	t.Run("without the CSRF token nothing happens", func(t *testing.T) {
		wantBody(t, s.do("POST", page, url.Values{"user_id": {colleague.ID}, "level": {"read"}}), http.StatusForbidden)
		shares, _ := a.n.CRM.ListShares(a.ctx, a.principal(owner), cust.ID)
		if slices.ContainsFunc(shares, func(sh crm.Share) bool { return sh.Active }) {
			t.Fatal("shared without the CSRF token")
		}
	})
}
