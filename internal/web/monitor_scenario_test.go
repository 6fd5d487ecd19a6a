package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

func newTestClock(t time.Time) *testClock { return &testClock{t: t} }

type alertList struct {
	Items []struct {
		ID       string         `json:"id"`
		Rule     string         `json:"rule"`
		Severity string         `json:"severity"`
		ActorID  string         `json:"actor_id"`
		Status   string         `json:"status"`
		Evidence []int64        `json:"evidence"`
		Details  map[string]any `json:"details"`
	} `json:"items"`
	Next string `json:"next"`
}

// alerts lists alerts of rule through GET /api/v1/alerts, as the admin.
func (h *harness) alerts(rule string) alertList {
	h.t.Helper()
	rec := h.do(req{method: "GET", path: "/api/v1/alerts?rule=" + rule, as: "admin"})
	if rec.Code != http.StatusOK {
		h.t.Fatalf("list alerts: %d %s", rec.Code, rec.Body)
	}
	var l alertList
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		h.t.Fatal(err)
	}
	return l
}

func (h *harness) login(email, password string) (int, *http.Cookie) {
	h.t.Helper()
	rec := h.do(req{method: "POST", path: "/api/v1/auth/login", body: fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)})
	for _, c := range rec.Result().Cookies() {
		if c.Name == "custos_session" || strings.Contains(c.Name, "session") {
			return rec.Code, c
		}
	}
	return rec.Code, nil
}

// Six failed logins: the first five are answered 401 and the fifth locks
// the account; the sixth is refused by the lock (429), the right password
// too. The detectors raise one auth.brute_force alert about the account,
// with the failures as evidence; the lock ends after the lockout period.
func TestScenarioBruteForceLocksAndAlerts(t *testing.T) {
	clock := newTestClock(time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC))
	h := newHarnessAt(t, clock.now)
	eng := &monitor.Engine{DB: h.n.DB, Now: clock.now}
	if _, err := eng.Step(context.Background()); err != nil { // start the cursor
		t.Fatal(err)
	}
	for i := 1; i <= 6; i++ {
		code, _ := h.login("s1@example.com", fmt.Sprintf("wrong password %d", i))
		want := http.StatusUnauthorized
		if i == 6 {
			want = http.StatusTooManyRequests
		}
		t.Logf("failed login %d: HTTP %d", i, code)
		if code != want {
			t.Fatalf("failed login %d: HTTP %d, want %d", i, code, want)
		}
		clock.add(10 * time.Second)
	}
	if code, _ := h.login("s1@example.com", "correct horse battery"); code != http.StatusTooManyRequests {
		t.Fatalf("right password while locked: HTTP %d, want 429", code)
	}
	if n, err := eng.Step(context.Background()); err != nil {
		t.Fatal(err)
	} else {
		t.Logf("detectors judged %d events", n)
	}
	l := h.alerts(monitor.RuleBruteForce)
	if len(l.Items) != 1 {
		t.Fatalf("brute-force alerts: %+v, want exactly one", l.Items)
	}
	a := l.Items[0]
	t.Logf("alert: id=%s rule=%s severity=%s actor_id=%s status=%s evidence=%v details=%v", a.ID, a.Rule, a.Severity, a.ActorID, a.Status, a.Evidence, a.Details)
	if a.ActorID != h.ids["s1"] || a.Severity != monitor.High || a.Status != "open" || len(a.Evidence) == 0 || a.Details["scope"] != "account" {
		t.Fatalf("alert %+v: want an open high alert about s1's account with evidence", a)
	}
	if strings.Contains(fmt.Sprint(a.Details), "s1@example.com") {
		t.Fatal("the alert names the email in clear")
	}
	// More attempts at the lock do not raise it again.
	h.login("s1@example.com", "wrong again")
	if _, err := eng.Step(context.Background()); err != nil {
		t.Fatal(err)
	}
	if l := h.alerts(monitor.RuleBruteForce); len(l.Items) != 1 {
		t.Fatalf("%d brute-force alerts after more attempts, want still 1", len(l.Items))
	}
	clock.add(16 * time.Minute)
	if code, _ := h.login("s1@example.com", "correct horse battery"); code != http.StatusOK {
		t.Fatalf("login after the lock expired: HTTP %d", code)
	}
}

// A sales rep reads 500 distinct customers within an hour: the 200th read
// raises a bulk-viewing alert at once; the 400th is refused, the rep is
// suspended (session ended, token refused, password refused) with a
// critical alert; every further read is denied. An officer resolving the
// alert with reinstate gives access back.
func TestScenarioBulkViewingSuspends(t *testing.T) {
	clock := newTestClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	h := newHarnessAt(t, clock.now)
	ctx := context.Background()
	ids := seedCustomers(t, h, 500, "s1")

	code, cookie := h.login("s1@example.com", "correct horse battery")
	if code != http.StatusOK || cookie == nil {
		t.Fatalf("login: %d", code)
	}
	read := func(i int) int {
		return h.do(req{method: "GET", path: "/api/v1/customers/" + ids[i], as: "s1"}).Code
	}
	firstDenied := -1
	for i := range ids {
		code := read(i)
		clock.add(5 * time.Second) // 500 reads in under 42 minutes
		switch {
		case i+1 == 200:
			if code != http.StatusOK {
				t.Fatalf("read 200: HTTP %d", code)
			}
			l := h.alerts(monitor.RuleBulkView)
			if len(l.Items) != 1 || l.Items[0].ActorID != h.ids["s1"] {
				t.Fatalf("after 200 distinct customers: alerts %+v, want one about s1", l.Items)
			}
			t.Logf("read %d: HTTP %d; alert %s (%s) raised synchronously: %v", i+1, code, l.Items[0].Rule, l.Items[0].Severity, l.Items[0].Details)
		case code != http.StatusOK && firstDenied < 0:
			firstDenied = i + 1
			t.Logf("read %d: HTTP %d (first refusal)", i+1, code)
		case code == http.StatusOK && firstDenied > 0:
			t.Fatalf("read %d allowed after the suspension", i+1)
		}
	}
	if firstDenied != 400 {
		t.Fatalf("first refused read: %d, want 400", firstDenied)
	}
	if l := h.alerts(monitor.RuleBulkView); len(l.Items) != 1 {
		t.Fatalf("%d bulk-view alerts, want 1", len(l.Items))
	}
	sus := h.alerts(monitor.RuleBulkViewSuspend)
	if len(sus.Items) != 1 || sus.Items[0].Severity != monitor.Critical || sus.Items[0].ActorID != h.ids["s1"] {
		t.Fatalf("suspension alerts: %+v", sus.Items)
	}
	t.Logf("alert %s (%s): %v", sus.Items[0].Rule, sus.Items[0].Severity, sus.Items[0].Details)
	// Further reads: the token, the session and a new login are refused.
	if code := read(0); code != http.StatusUnauthorized {
		t.Fatalf("read with the token after suspension: HTTP %d, want 401", code)
	}
	hr := h.do(req{method: "GET", path: "/api/v1/customers/" + ids[0], header: map[string]string{"Cookie": cookie.Name + "=" + cookie.Value}})
	if hr.Code != http.StatusUnauthorized {
		t.Fatalf("read with the session after suspension: HTTP %d, want 401", hr.Code)
	}
	if code, _ := h.login("s1@example.com", "correct horse battery"); code != http.StatusUnauthorized {
		t.Fatalf("login while suspended: HTTP %d, want 401", code)
	}
	// The guarded path itself refuses a principal resolved before.
	p, err := h.n.CRM.Principal(ctx, access.Subject{UserID: h.ids["s1"], Actor: "user:" + h.ids["s1"], Role: "sales"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.n.CRM.GetCustomer(ctx, p, ids[1]); err == nil || !strings.Contains(err.Error(), "suspended") {
		t.Fatalf("crm read while suspended: %v", err)
	}
	// On record: the refused read and the suspension.
	var refused, suspended int
	if err := h.n.DB.Read(ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "customer.view", Outcome: "denied", Limit: 100})
		refused = len(evs)
		if err != nil {
			return err
		}
		evs, err = tx.QueryAudit(ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: "user.suspend", Limit: 10})
		suspended = len(evs)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if refused < 2 || suspended != 1 {
		t.Fatalf("audit: %d refused views, %d suspensions", refused, suspended)
	}
	// Reinstating: only through the alert that suspended, by someone with
	// manage_alerts; resolving without reinstating leaves the suspension.
	body := `{"note":"reviewed with the sales director","reinstate":true}`
	first := h.alerts(monitor.RuleBulkView).Items[0].ID
	if rec := h.do(req{method: "POST", path: "/api/v1/alerts/" + first + "/resolve", as: "admin", body: body}); rec.Code != http.StatusConflict {
		t.Fatalf("reinstate through another alert: %d %s", rec.Code, rec.Body)
	}
	if rec := h.do(req{method: "POST", path: "/api/v1/alerts/" + sus.Items[0].ID + "/resolve", as: "s2", body: body}); rec.Code != http.StatusForbidden {
		t.Fatalf("resolve by a rep: %d", rec.Code)
	}
	rec := h.do(req{method: "POST", path: "/api/v1/alerts/" + sus.Items[0].ID + "/resolve", as: "admin", body: `{"note":"under review"}`})
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"status":"resolved"`) {
		t.Fatalf("resolve: %d %s", rec.Code, rec.Body)
	}
	if code := read(450); code != http.StatusUnauthorized {
		t.Fatalf("read after resolving without reinstatement: HTTP %d", code)
	}
	if rec := h.do(req{method: "POST", path: "/api/v1/alerts/" + sus.Items[0].ID + "/resolve", as: "admin", body: body}); rec.Code != http.StatusOK {
		t.Fatalf("reinstate: %d %s", rec.Code, rec.Body)
	}
	if code := read(450); code != http.StatusOK {
		t.Fatalf("read after reinstatement: HTTP %d", code)
	}
}

// Reads that do not look like reads count too: a patch that changes
// nothing hands the record back, and an export hands out its rows.
func TestScenarioBulkViewingThroughPatchesAndExports(t *testing.T) {
	clock := newTestClock(time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC))
	h := newHarnessAt(t, clock.now)
	ids := seedCustomers(t, h, 12, "s1")
	for k, v := range map[string]string{"monitor.views_alert_per_hour": "3", "monitor.views_suspend_per_hour": "5"} {
		if rec := h.do(req{method: "PUT", path: "/api/v1/settings/" + k, as: "admin", body: fmt.Sprintf(`{"value":%q}`, v)}); rec.Code != http.StatusOK {
			t.Fatalf("set %s: %d %s", k, rec.Code, rec.Body)
		}
	}
	var codes []int
	for _, id := range ids[:6] {
		codes = append(codes, h.do(req{method: "PATCH", path: "/api/v1/customers/" + id, as: "s1", body: `{}`}).Code)
	}
	if fmt.Sprint(codes) != "[200 200 200 200 403 401]" {
		t.Fatalf("empty patches: %v, want the 5th refused and the user suspended", codes)
	}
	if l := h.alerts(monitor.RuleBulkViewSuspend); len(l.Items) != 1 || l.Items[0].ActorID != h.ids["s1"] {
		t.Fatalf("suspension alerts: %+v", l.Items)
	}
	// The manager exports s1's customers directly (12 rows, under the
	// approval threshold): the export stops at the suspension threshold.
	rec := h.do(req{method: "GET", path: "/api/v1/customers/export", as: "manager"})
	if strings.Count(rec.Body.String(), "有限公司") >= 12 {
		t.Fatalf("the export handed out every row: %d", rec.Code)
	}
	if l := h.alerts(monitor.RuleBulkViewSuspend); len(l.Items) != 2 {
		t.Fatalf("after the export: %d suspension alerts, want 2", len(l.Items))
	}
}

// seedCustomers imports n customers owned by user and returns their ids.
func seedCustomers(t *testing.T, h *harness, n int, owner string) []string {
	t.Helper()
	ctx := context.Background()
	ownerID := h.ids[owner]
	rows := make([]crm.ImportRow, n)
	for i := range rows {
		name, phone := fmt.Sprintf("客户 %04d 有限公司", i), fmt.Sprintf("1380000%04d", i)
		rows[i] = crm.ImportRow{Line: i + 1, Fields: crm.CustomerFields{Name: &name, Phones: &[]string{phone}, OwnerID: &ownerID}}
	}
	res, err := h.n.CRM.ImportCustomers(ctx, access.Operator("test"), rows, nil, crm.ImportOptions{})
	if err != nil || len(res.Errors) > 0 {
		t.Fatalf("import: %v %v", err, res.Errors)
	}
	var ids []string
	p := access.Operator("test")
	for lq := (crm.ListQuery{Limit: 200}); ; {
		page, err := h.n.CRM.ListCustomers(ctx, p, lq)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range page.Items {
			ids = append(ids, c.ID)
		}
		if page.Next == "" {
			break
		}
		lq.Cursor = page.Next
	}
	if len(ids) != n {
		t.Fatalf("seeded %d customers, want %d", len(ids), n)
	}
	return ids
}
