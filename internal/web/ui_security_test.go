package web

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// secXSS is stored wherever a page shows outside text.
const secXSS = `<script>alert(1)</script>"'><img src=x onerror=alert(1)>`

// secHarness is the harness with the users of the security pages.
type secHarness struct {
	*uiHarness
	ids map[string]string // email → user id
}

func newSecHarness(t *testing.T) *secHarness {
	t.Helper()
	h := &secHarness{uiHarness: newUIHarness(t), ids: map[string]string{}}
	ctx := context.Background()
	for _, email := range []string{"rep@example.com", "rep2@example.com"} {
		if _, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: email, Name: "Rep " + email[:4], Role: "sales", Password: uiPassword}); err != nil {
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
	return h
}

func (h *secHarness) principal(email string) access.Principal {
	h.t.Helper()
	u, err := h.n.Auth.GetUser(context.Background(), h.ids[email])
	if err != nil {
		h.t.Fatal(err)
	}
	p, err := h.n.CRM.Principal(context.Background(), access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role})
	if err != nil {
		h.t.Fatal(err)
	}
	return p
}

// admin signs the administrator in (enrolling the second factor).
func (h *secHarness) admin(lang string) *uiClient {
	h.t.Helper()
	c := h.client(lang)
	wantRedirect(h.t, c.login("admin@example.com", uiPassword), "/account/mfa")
	enroll(h.t, h.uiHarness, c)
	return c
}

// in is the same browser (its cookies) asking for another language.
func in(c *uiClient, lang string) *uiClient {
	return &uiClient{h: c.h, lang: lang, cookies: c.cookies}
}

func (h *secHarness) sales(lang string) *uiClient {
	h.t.Helper()
	c := h.client(lang)
	wantRedirect(h.t, c.login("sales@example.com", uiPassword), "/")
	return c
}

// countAudit counts the events of action with outcome in the store.
func (h *secHarness) countAudit(action, outcome string) int {
	h.t.Helper()
	n := 0
	err := h.n.DB.Read(context.Background(), func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(context.Background(), 0, 100000)
		for _, ev := range evs {
			if ev.Action == action && ev.Outcome == outcome {
				n++
			}
		}
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func (h *secHarness) record(at time.Time, ev audit.Event) {
	h.t.Helper()
	if err := audit.RecordAlone(context.Background(), h.n.DB, at, ev); err != nil {
		h.t.Fatal(err)
	}
}

// checkSecPage is checkPageHeaders for a page that shows secXSS: its
// escaped text (which names an event handler) is taken out first, so an
// unescaped one is still caught.
func checkSecPage(t *testing.T, w *httptest.ResponseRecorder) {
	t.Helper()
	r := httptest.NewRecorder()
	maps.Copy(r.Header(), w.Header())
	r.Code = w.Code
	r.Body.WriteString(strings.ReplaceAll(w.Body.String(), "&lt;img src=x onerror=alert(1)&gt;", ""))
	checkPageHeaders(t, r)
}

// notIn fails when the page holds any of s.
func notIn(t *testing.T, body string, s ...string) {
	t.Helper()
	for _, x := range s {
		if strings.Contains(body, x) {
			t.Errorf("the page contains %q", x)
		}
	}
}

var auditRow = regexp.MustCompile(`<tr>\s*<td><span title="#`)

func TestUISecurityAudit(t *testing.T) {
	h := newSecHarness(t)
	now := h.clock.now()
	for i := range 60 {
		h.record(now, audit.Event{Actor: "cli:bulk", Action: "bulk.test", ObjectType: "thing", ObjectID: fmt.Sprint(i), Outcome: audit.OK})
	}
	h.record(now, audit.Event{Actor: "cli:xss", IP: "203.0.113.9", UserAgent: secXSS, Action: "customer.view", ObjectType: "customer",
		ObjectID: "c-" + secXSS, Outcome: audit.Denied, Reason: secXSS, RequestID: "req-xss-1", Details: map[string]any{"note": secXSS}})
	h.record(now, audit.Event{Actor: "system", Action: "audit.verify", ObjectType: "audit", Outcome: audit.OK,
		Details: map[string]any{"events": 1234, "through_seq": 1240, "checkpoints": 3}})
	c := h.admin("en")

	t.Run("the trail, escaped, with the chain's status", func(t *testing.T) {
		w := c.get("/audit")
		wantBody(t, w, http.StatusOK, "Audit trail", "Every action in Custos", "Tamper check", "Intact", "1,234 events checked, through event #1,240",
			"req-xss-1", "203.0.113.9", `<details>`, "&lt;script&gt;alert(1)&lt;/script&gt;", `aria-current="page"`)
		checkSecPage(t, w)
		notIn(t, w.Body.String(), "<script>alert(1)", "<img src=x")
		if n := len(auditRow.FindAllString(w.Body.String(), -1)); n != secAuditPage {
			t.Errorf("%d rows, want a page of %d", n, secAuditPage)
		}
	})

	t.Run("Chinese", func(t *testing.T) {
		zh := in(c, "zh-CN")
		w := zh.get("/audit?outcome=denied")
		wantBody(t, w, http.StatusOK, `lang="zh-CN"`, "审计日志", "防篡改校验", "完好", "被拒绝", "起始日期")
		checkSecPage(t, w)
	})

	t.Run("filters and paging", func(t *testing.T) {
		w := c.get("/audit?actor=cli%3Axss&outcome=denied&from=2026-03-02&until=2026-03-02")
		wantBody(t, w, http.StatusOK, "req-xss-1", `value="2026-03-02"`)
		notIn(t, w.Body.String(), "bulk.test")
		if n := len(auditRow.FindAllString(w.Body.String(), -1)); n != 1 {
			t.Errorf("%d rows, want 1", n)
		}
		// The next day (in Shanghai) holds nothing.
		w = c.get("/audit?actor=cli%3Axss&from=2026-03-03")
		wantBody(t, w, http.StatusOK, "No events match.")

		w = c.get("/audit?actor=cli%3Abulk&action=bulk.")
		wantBody(t, w, http.StatusOK, "Next page")
		next := regexp.MustCompile(`href="(/audit\?[^"]*cursor=[^"]+)" rel="next"`).FindStringSubmatch(w.Body.String())
		if next == nil {
			t.Fatalf("no next link: %s", w.Body)
		}
		w = c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		wantBody(t, w, http.StatusOK, "First page", "bulk.test")
		if n := len(auditRow.FindAllString(w.Body.String(), -1)); n != 10 {
			t.Errorf("second page: %d rows, want 10", n)
		}
		notIn(t, w.Body.String(), "rel=\"next\"")
	})

	t.Run("form errors re-render the form", func(t *testing.T) {
		w := c.get("/audit?from=2026-13-45&actor=cli%3Axss")
		wantBody(t, w, http.StatusBadRequest, "Please correct the search.", "not a valid date", `aria-invalid="true"`, `value="cli:xss"`)
		checkSecPage(t, w)
		w = c.get("/audit?from=2026-03-05&until=2026-03-04")
		wantBody(t, w, http.StatusBadRequest, "must not be before the start date")
		w = c.get("/audit?outcome=maybe")
		wantBody(t, w, http.StatusBadRequest, "outcome")
		w = c.get("/audit?cursor=xyz")
		wantBody(t, w, http.StatusBadRequest, "cursor")
	})

	t.Run("the search is on record", func(t *testing.T) {
		before := h.countAudit("audit.query", audit.OK)
		c.get("/audit?action=customer.")
		if after := h.countAudit("audit.query", audit.OK); after <= before {
			t.Fatalf("audit.query events %d → %d", before, after)
		}
	})

	t.Run("a broken chain shows", func(t *testing.T) {
		h.record(h.clock.now(), audit.Event{Actor: "system", Action: "audit.verify", ObjectType: "audit", Outcome: audit.Failed, Reason: "hash_mismatch",
			Details: map[string]any{"seq": 7, "kind": "hash_mismatch"}})
		w := c.get("/audit")
		wantBody(t, w, http.StatusOK, "Tampering found", "found a problem (hash_mismatch)", `role="alert"`)
		notIn(t, w.Body.String(), "Intact")
	})

	t.Run("without read_audit: only one's own trail", func(t *testing.T) {
		s := h.sales("en")
		w := s.get("/audit")
		wantBody(t, w, http.StatusOK, "Your own actions")
		checkSecPage(t, w)
		notIn(t, w.Body.String(), "req-xss-1", "cli:bulk", "Tamper check", `href="/audit"`)
		w = s.get("/audit?actor=cli%3Axss")
		wantBody(t, w, http.StatusOK, "No events match.")
	})
}

// raise raises an alert and, with suspend, suspends its user by it.
func (h *secHarness) raise(a monitor.Alert, suspend bool) string {
	h.t.Helper()
	ctx := context.Background()
	var id string
	err := h.n.DB.Write(ctx, func(tx *store.Tx) error {
		var err error
		if id, err = monitor.Raise(ctx, tx, h.clock.now(), a); err != nil || !suspend {
			return err
		}
		_, err = tx.Suspend(ctx, store.Suspension{UserID: a.ActorID, At: h.clock.now(), Rule: a.Rule, AlertID: id, Reason: "test"})
		return err
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return id
}

func (h *secHarness) alert(id string) crm.Alert {
	h.t.Helper()
	a, err := h.n.CRM.GetAlert(context.Background(), h.principal("admin@example.com"), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return a
}

func TestUISecurityAlerts(t *testing.T) {
	h := newSecHarness(t)
	rep, rep2 := h.ids["rep@example.com"], h.ids["rep2@example.com"]
	bulk := h.raise(monitor.Alert{Rule: monitor.RuleBulkViewSuspend, Severity: monitor.High, ActorID: rep, Evidence: []int64{3, 4},
		Details: map[string]any{"viewed": 120, "comment": secXSS}}, true)
	backup := h.raise(monitor.Alert{Rule: monitor.RuleBackupFailed, Severity: monitor.Critical, Details: map[string]any{"reason": "disk full"}}, false)
	self := h.raise(monitor.Alert{Rule: monitor.RuleNewIP, Severity: monitor.Low, ActorID: h.ids["admin@example.com"]}, false)
	late := h.raise(monitor.Alert{Rule: monitor.RuleBulkViewSuspend, Severity: monitor.High, ActorID: rep2}, true)
	c := h.admin("en")

	t.Run("the inbox", func(t *testing.T) {
		w := c.get("/alerts")
		wantBody(t, w, http.StatusOK, "Bulk viewing of customers: user suspended", "Backup failed", "Login from a new IP address",
			"Critical", "High", "Low", "Open", "Rep rep@", `href="/alerts/`+bulk+`"`, `aria-current="page"`)
		checkSecPage(t, w)
		notIn(t, w.Body.String(), "<script>alert(1)")
		w = c.get("/alerts?status=open&severity=critical")
		wantBody(t, w, http.StatusOK, "Backup failed")
		notIn(t, w.Body.String(), "Bulk viewing")
		w = c.get("/alerts?status=resolved")
		wantBody(t, w, http.StatusOK, "No alerts here.")
		w = c.get("/alerts?status=bogus")
		wantBody(t, w, http.StatusBadRequest)
	})

	t.Run("Chinese", func(t *testing.T) {
		zh := in(c, "zh-CN")
		w := zh.get("/alerts")
		wantBody(t, w, http.StatusOK, "告警", "批量查看客户：用户已被暂停", "备份失败", "严重", "待处理", "全部")
		checkSecPage(t, w)
		w = zh.get("/alerts/" + bulk)
		wantBody(t, w, http.StatusOK, "证据", "认领告警", "恢复该用户", "已暂停")
		checkSecPage(t, w)
	})

	t.Run("the detail, escaped", func(t *testing.T) {
		w := c.get("/alerts/" + bulk)
		wantBody(t, w, http.StatusOK, "monitor.bulk_view_suspended", "Suspended", "rep@example.com", "Event #3", `href="/audit?cursor=4"`,
			"&lt;script&gt;alert(1)&lt;/script&gt;", `action="/alerts/`+bulk+`/ack"`, `name="reinstate"`, `href="/audit?actor_id=`+rep+`"`)
		checkSecPage(t, w)
		notIn(t, w.Body.String(), "<script>alert(1)", "<img src=x")
		w = c.get("/alerts/" + backup)
		wantBody(t, w, http.StatusOK, "No user: the alert concerns the installation.", "disk full")
		notIn(t, w.Body.String(), `name="reinstate"`)
		w = c.get("/alerts/00000000-0000-4000-8000-000000000000")
		wantBody(t, w, http.StatusNotFound)
	})

	t.Run("acknowledge: CSRF, then done and audited", func(t *testing.T) {
		w := c.do("POST", "/alerts/"+bulk+"/ack", url.Values{})
		wantBody(t, w, http.StatusForbidden)
		if a := h.alert(bulk); a.Status != "open" {
			t.Fatalf("acknowledged without a CSRF token: %s", a.Status)
		}
		wantRedirect(t, c.postForm("/alerts/"+bulk, "/alerts/"+bulk+"/ack", nil), "/alerts/"+bulk+"?done=ack")
		if a := h.alert(bulk); a.Status != "acknowledged" || a.AckedBy != "user:"+h.ids["admin@example.com"] {
			t.Fatalf("after ack: %+v", a)
		}
		if h.countAudit("alert.ack", audit.OK) != 1 {
			t.Fatal("no alert.ack event")
		}
		w = c.get("/alerts/" + bulk + "?done=ack")
		wantBody(t, w, http.StatusOK, "Alert acknowledged.", "Acknowledged")
		notIn(t, w.Body.String(), `/ack"`)
		// Twice: a conflict, nothing changes.
		w = c.postForm("/alerts/"+backup, "/alerts/"+backup+"/ack", nil)
		wantRedirect(t, w, "/alerts/"+backup+"?done=ack")
		w = c.postForm("/alerts/"+bulk, "/alerts/"+bulk+"/ack", nil)
		wantBody(t, w, http.StatusConflict)
	})

	t.Run("resolve: the note is required, the form keeps its state", func(t *testing.T) {
		w := c.postForm("/alerts/"+bulk, "/alerts/"+bulk+"/resolve", url.Values{"note": {"  "}, "reinstate": {"on"}})
		wantBody(t, w, http.StatusBadRequest, "Please correct the form.", "required", `aria-invalid="true"`, `name="reinstate" value="on" checked`)
		checkSecPage(t, w)
		if a := h.alert(bulk); a.Status != "acknowledged" || !a.ActorSuspended {
			t.Fatalf("changed by an invalid form: %+v", a)
		}
	})

	t.Run("resolve and reinstate", func(t *testing.T) {
		w := c.do("POST", "/alerts/"+bulk+"/resolve", url.Values{"note": {"checked"}, "reinstate": {"on"}})
		wantBody(t, w, http.StatusForbidden)
		if a := h.alert(bulk); a.Status == "resolved" {
			t.Fatal("resolved without a CSRF token")
		}
		note := "Talked to the rep: a client list for a tender. " + secXSS
		w = c.postForm("/alerts/"+bulk, "/alerts/"+bulk+"/resolve", url.Values{"note": {note}, "reinstate": {"on"}})
		wantRedirect(t, w, "/alerts/"+bulk+"?done=reinstated")
		a := h.alert(bulk)
		if a.Status != "resolved" || a.ActorSuspended || a.Note != note {
			t.Fatalf("after resolve: %+v", a)
		}
		if h.countAudit("alert.resolve", audit.OK) != 1 || h.countAudit("user.reinstate", audit.OK) != 1 {
			t.Fatal("resolve or reinstate not on record")
		}
		w = c.get("/alerts/" + bulk + "?done=reinstated")
		wantBody(t, w, http.StatusOK, "Alert resolved and the user reinstated.", "Talked to the rep", "&lt;script&gt;")
		checkSecPage(t, w)
		notIn(t, w.Body.String(), "<script>alert(1)", `/resolve"`)
	})

	t.Run("resolve without reinstating", func(t *testing.T) {
		wantRedirect(t, c.postForm("/alerts/"+backup, "/alerts/"+backup+"/resolve", url.Values{"note": {"disk replaced"}}), "/alerts/"+backup+"?done=resolved")
		if a := h.alert(backup); a.Status != "resolved" || a.Note != "disk replaced" {
			t.Fatalf("%+v", a)
		}
	})

	t.Run("an alert about oneself is another officer's", func(t *testing.T) {
		w := c.get("/alerts/" + self)
		wantBody(t, w, http.StatusOK, "This alert is about you.")
		notIn(t, w.Body.String(), `/ack"`, `/resolve"`)
		w = c.postForm("/alerts/"+self, "/alerts/"+self+"/ack", nil)
		wantBody(t, w, http.StatusForbidden)
		if a := h.alert(self); a.Status != "open" {
			t.Fatalf("%+v", a)
		}
	})

	t.Run("reinstating needs a recent sign-in", func(t *testing.T) {
		h.clock.add(6 * time.Minute)
		w := c.postForm("/alerts/"+late, "/alerts/"+late+"/resolve", url.Values{"note": {"ok"}, "reinstate": {"on"}})
		wantBody(t, w, http.StatusForbidden, "recent sign-in")
		if a := h.alert(late); a.Status != "open" || !a.ActorSuspended {
			t.Fatalf("%+v", a)
		}
		// Resolved without reinstating, the page still offers to reinstate.
		wantRedirect(t, c.postForm("/alerts/"+late, "/alerts/"+late+"/resolve", url.Values{"note": {"looked into it"}}), "/alerts/"+late+"?done=resolved")
		w = c.get("/alerts/" + late + "?done=resolved")
		wantBody(t, w, http.StatusOK, "Alert resolved.", "Reinstate the user", `name="reinstate" value="on" checked`, "looked into it")
		checkSecPage(t, w)
	})

	t.Run("paging", func(t *testing.T) {
		for range secAlertsPage + 1 {
			h.raise(monitor.Alert{Rule: monitor.RuleTest, Severity: monitor.Info}, false)
		}
		row := regexp.MustCompile(`<td><a href="/alerts/`)
		w := c.get("/alerts?status=all&severity=info")
		wantBody(t, w, http.StatusOK, "Test message from Custos", `rel="next"`)
		if n := len(row.FindAllString(w.Body.String(), -1)); n != secAlertsPage {
			t.Fatalf("%d rows, want %d", n, secAlertsPage)
		}
		next := regexp.MustCompile(`href="(/alerts\?[^"]+)" rel="next"`).FindStringSubmatch(w.Body.String())
		w = c.get(strings.ReplaceAll(next[1], "&amp;", "&"))
		wantBody(t, w, http.StatusOK, "First page")
		if n := len(row.FindAllString(w.Body.String(), -1)); n != 1 {
			t.Fatalf("second page: %d rows, want 1", n)
		}
	})

	t.Run("without manage_alerts: refused, nothing shown or changed", func(t *testing.T) {
		s := h.sales("en")
		for _, p := range []string{"/alerts", "/alerts/" + late} {
			w := s.get(p)
			wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
			notIn(t, w.Body.String(), "Bulk viewing", "rep2@example.com")
		}
		w := s.postForm("/", "/alerts/"+self+"/ack", nil)
		wantBody(t, w, http.StatusForbidden)
		if a := h.alert(self); a.Status != "open" {
			t.Fatalf("%+v", a)
		}
		if h.countAudit("alert.list", audit.Denied) == 0 || h.countAudit("alert.ack", audit.Denied) == 0 {
			t.Fatal("refusals not on record")
		}
		notIn(t, s.get("/").Body.String(), `href="/alerts"`)
	})
}

func TestUISecurityBackups(t *testing.T) {
	h := newSecHarness(t)
	ctx := context.Background()
	c := h.admin("en")

	t.Run("nothing configured", func(t *testing.T) {
		w := c.get("/admin/backups")
		wantBody(t, w, http.StatusOK, "Scheduled backups are off", "docs/backup.md", "No backup has run yet.", "Not running", "0 2 * * *",
			"Not exported", `aria-current="page"`)
		checkSecPage(t, w)
		zh := in(c, "zh-CN")
		w = zh.get("/admin/backups")
		wantBody(t, w, http.StatusOK, "备份", "定时备份未开启", "尚未运行过任何备份", "全量备份", "保留策略")
		checkSecPage(t, w)
	})

	const secret = "TOPSECRET"
	admin := h.principal("admin@example.com")
	// A destination with credentials is refused (they would be shown and
	// audited); the page still shows only scheme and bucket of any URL.
	if _, err := h.n.CRM.SetSetting(ctx, admin, settings.BackupDestinations, "s3://AKIDEXAMPLE:"+secret+"@crm-bucket"); err == nil {
		t.Fatal("a destination with credentials was accepted")
	}
	for k, v := range map[string]string{
		settings.BackupDestinations:   "file:///srv/backups s3://crm-bucket?region=cn-north-1",
		settings.BackupVerifySchedule: "off",
	} {
		if _, err := h.n.CRM.SetSetting(ctx, admin, k, v); err != nil {
			t.Fatal(err)
		}
	}
	now := h.clock.now()
	if err := h.n.DB.Write(ctx, func(tx *store.Tx) error {
		return tx.RecordBackupRun(ctx, store.BackupRun{ID: "20260301-full-abc", Kind: "full", Position: "seq:1",
			Destinations: []string{"file:///srv/backups"}, At: now.Add(-3 * time.Hour), Bytes: 4096})
	}); err != nil {
		t.Fatal(err)
	}
	h.record(now.Add(-3*time.Hour+time.Minute), audit.Event{Actor: "system", Action: "backup.create", ObjectType: "backup", ObjectID: "20260301-full-abc",
		Outcome: audit.OK, Details: map[string]any{"kind": "full"}})
	h.record(now.Add(-time.Hour), audit.Event{Actor: "system", Action: "backup.create", ObjectType: "backup", Outcome: audit.Failed,
		Reason: secXSS, Details: map[string]any{"kind": "incremental", "destinations": []string{"s3://crm-bucket?secret_access_key=REDACTED"}}})

	t.Run("runs, schedules, destinations without credentials", func(t *testing.T) {
		w := c.get("/admin/backups")
		wantBody(t, w, http.StatusOK, "Full backup", "Incremental backup", "4.0 KiB", "20260301-full-abc", "Failed", "OK",
			"&lt;script&gt;alert(1)&lt;/script&gt;", "crm-bucket", "/srv/backups",
			// 02:00 UTC is 10:00 in Shanghai: the next incremental is at 02:00 tomorrow there.
			"3 Mar 2026 02:00", "Off", "Daily backups kept")
		checkSecPage(t, w)
		notIn(t, w.Body.String(), secret, "AKIDEXAMPLE", "REDACTED", "<script>alert(1)", "Scheduled backups are off")
	})

	t.Run("on record; refused without manage_config", func(t *testing.T) {
		if h.countAudit("backup.status", audit.OK) < 3 {
			t.Fatal("backup.status reads not on record")
		}
		s := h.sales("en")
		w := s.get("/admin/backups")
		wantBody(t, w, http.StatusForbidden, "Your role does not allow this.")
		notIn(t, w.Body.String(), "crm-bucket", "20260301-full-abc")
		if h.countAudit("backup.status", audit.Denied) != 1 {
			t.Fatal("the refusal is not on record")
		}
	})
}
