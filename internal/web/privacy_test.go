package web_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/store"
)

// POST /api/v1/customers/{id}/erase: the admin's, refused to everyone else;
// the customer is gone from every read; a second erasure is 410; a browser
// session needs the CSRF token and a recent authentication.
func TestEraseCustomerAPI(t *testing.T) {
	c := &testClock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
	h := newHarnessAt(t, c.now)
	secrets := []string{"郑删除贸易", "13755550123", "forget.me@example.com"}
	cust := h.createCustomer("s1", `{"name":"郑删除贸易","phone":"13755550123","email":"forget.me@example.com"}`)
	id := cust["id"].(string)
	other := h.createCustomer("s1", `{"name":"Keep Ltd"}`)["id"].(string)
	path := "/api/v1/customers/" + id + "/erase"
	h.run([]scenario{
		{name: "owner without erase: 403", req: req{method: "POST", path: path, as: "s1"}, status: 403, want: []string{`erase`}, notWant: secrets, problem: true},
		{name: "manager without erase: 403", req: req{method: "POST", path: path, as: "manager"}, status: 403, notWant: secrets, problem: true},
		{name: "malformed id: 404", req: req{method: "POST", path: "/api/v1/customers/nope/erase", as: "admin"}, status: 404, problem: true},
		{name: "unknown id: 404", req: req{method: "POST", path: "/api/v1/customers/0190d5c4-0000-7000-8000-000000000000/erase", as: "admin"}, status: 404, problem: true},
		{name: "GET is not a route", req: req{method: "GET", path: path, as: "admin"}, status: 404, problem: true},
		{name: "still there", req: req{method: "GET", path: "/api/v1/customers/" + id, as: "s1"}, status: 200, want: []string{"郑删除贸易"}},
		{name: "admin erases", req: req{method: "POST", path: path, as: "admin"}, status: 204},
		{name: "gone for the owner", req: req{method: "GET", path: "/api/v1/customers/" + id, as: "s1"}, status: 404, notWant: secrets, problem: true},
		{name: "gone for the admin", req: req{method: "GET", path: "/api/v1/customers/" + id, as: "admin"}, status: 404, notWant: secrets, problem: true},
		{name: "not listed", req: req{method: "GET", path: "/api/v1/customers", as: "admin"}, status: 200, want: []string{other}, notWant: append([]string{id}, secrets...)},
		{name: "not found by phone", req: req{method: "GET", path: "/api/v1/customers?q=13755550123", as: "admin"}, status: 200, want: []string{`"items":[]`}},
		{name: "not exported", req: req{method: "GET", path: "/api/v1/customers/export", as: "admin"}, status: 200, want: []string{"Keep Ltd"}, notWant: secrets},
		{name: "contacts: 404", req: req{method: "GET", path: "/api/v1/customers/" + id + "/contacts", as: "admin"}, status: 404, problem: true},
		{name: "again: 410", req: req{method: "POST", path: path, as: "admin"}, status: 410, want: []string{"already erased"}, problem: true},
	})
	if n := countEvents(t, h, "customer.erase", audit.OK); n != 1 {
		t.Fatalf("%d customer.erase events", n)
	}

	// A browser session: CSRF first, then a recent authentication.
	if err := h.n.Auth.SetRolePolicy(context.Background(), audit.Event{Actor: "test"}, store.RolePolicy{Role: "admin"}); err != nil {
		t.Fatal(err)
	}
	b := &browser{h: h}
	if w := b.do("POST", "/api/v1/auth/login", `{"email":"admin@example.com","password":"correct horse battery"}`); w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	otherPath := "/api/v1/customers/" + other + "/erase"
	csrf := b.csrf
	b.csrf = ""
	if w := b.do("POST", otherPath, ""); w.Code != 403 || !strings.Contains(w.Header().Get("Content-Type"), "problem+json") {
		t.Fatalf("without CSRF: %d %s", w.Code, w.Body)
	}
	b.csrf = csrf
	c.add(10 * time.Minute)
	if w := b.do("POST", otherPath, ""); w.Code != 403 || !strings.Contains(w.Body.String(), "/api/v1/auth/reauth") {
		t.Fatalf("without step-up: %d %s", w.Code, w.Body)
	}
	if w := b.do("GET", "/api/v1/customers/"+other, ""); w.Code != 200 {
		t.Fatalf("refused erasures changed something: %d %s", w.Code, w.Body)
	}
	if w := b.do("POST", "/api/v1/auth/reauth", `{"password":"correct horse battery"}`); w.Code != 204 {
		t.Fatalf("step-up: %d %s", w.Code, w.Body)
	}
	if w := b.do("POST", otherPath, ""); w.Code != 204 {
		t.Fatalf("after step-up: %d %s", w.Code, w.Body)
	}
	if n := countEvents(t, h, "customer.erase", audit.Denied); n != 5 {
		t.Fatalf("%d refusals on record, want 5 (two without erase, one unknown, one already erased, one without step-up)", n)
	}
	// Nothing personal in the server log.
	for _, s := range secrets {
		if strings.Contains(h.log.String(), s) {
			t.Fatalf("server log holds %q", s)
		}
	}
}

func countEvents(t *testing.T, h *harness, action, outcome string) int {
	t.Helper()
	op, err := h.n.CRM.Principal(context.Background(), accessSubject(h, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	page, err := h.n.CRM.QueryAudit(context.Background(), op, crm.AuditQuery{Action: action, Outcome: outcome, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(page.Items)
}
