package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
)

// GET /api/v1/audit: auditors answer "who viewed customer X" and "what did
// user Y do" with one query each; everyone else sees only their own events
// and their subordinates'.
func TestAuditAPI(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	u, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: "aud@example.com", Name: "aud", Role: "auditor", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.n.Auth.CreateToken(ctx, audit.Event{Actor: "test"}, u.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.tokens["auditor"], h.ids["auditor"] = tok, u.ID
	x := h.createCustomer("s1", `{"name":"李雷贸易","phone":"13811112222"}`)["id"].(string)
	y := h.createCustomer("s2", `{"name":"韩梅梅咨询","phone":"13933334444"}`)["id"].(string)
	for _, as := range []string{"s1", "manager"} {
		if rec := h.do(req{method: "GET", path: "/api/v1/customers/" + x, as: as}); rec.Code != 200 {
			t.Fatalf("%s views x: %d", as, rec.Code)
		}
	}
	if rec := h.do(req{method: "GET", path: "/api/v1/customers", as: "s2"}); rec.Code != 200 {
		t.Fatal(rec.Code)
	}
	query := func(as string, params url.Values, want int) []audit.Entry {
		t.Helper()
		rec := h.do(req{method: "GET", path: "/api/v1/audit?" + params.Encode(), as: as})
		if rec.Code != want {
			t.Fatalf("%s GET /api/v1/audit?%s: %d %s", as, params.Encode(), rec.Code, rec.Body)
		}
		var page struct {
			Items []audit.Entry `json:"items"`
			Next  string        `json:"next"`
		}
		_ = json.Unmarshal(rec.Body.Bytes(), &page)
		return page.Items
	}
	actorsOf := func(items []audit.Entry) map[string]bool {
		m := map[string]bool{}
		for _, e := range items {
			m[e.Actor] = true
		}
		return m
	}
	tokenActor := func(user string) string {
		t.Helper()
		id, err := h.n.Auth.ResolveToken(ctx, h.tokens[user])
		if err != nil {
			t.Fatal(err)
		}
		return id.Actor()
	}

	// Who viewed customer x: s1 and the manager, not s2.
	viewers := actorsOf(query("auditor", url.Values{"customer_id": {x}, "action": {"customer.view"}}, 200))
	if !viewers[tokenActor("s1")] || !viewers[tokenActor("manager")] || viewers[tokenActor("s2")] || len(viewers) != 2 {
		t.Fatalf("viewers of x: %v", viewers)
	}
	// y was in s2's list result: the list event concerns y.
	if items := query("auditor", url.Values{"customer_id": {y}, "action": {"customer.list"}}, 200); len(items) != 1 {
		t.Fatalf("list events concerning y: %+v", items)
	}
	// What did s1 do: every event by s1's session or tokens, nobody else's.
	s1 := query("auditor", url.Values{"actor_id": {h.ids["s1"]}}, 200)
	if len(s1) < 2 || len(actorsOf(s1)) != 1 || !actorsOf(s1)[tokenActor("s1")] {
		t.Fatalf("events of s1: %v", actorsOf(s1))
	}
	// A sales rep sees their own events only; a manager sees theirs.
	if items := query("s1", url.Values{"customer_id": {y}}, 200); len(items) != 0 {
		t.Fatalf("s1 sees events about s2's customer: %+v", items)
	}
	if items := query("s1", url.Values{"actor_id": {h.ids["manager"]}}, 200); len(items) != 0 {
		t.Fatalf("s1 sees the manager's events: %+v", items)
	}
	own := query("s1", url.Values{}, 200)
	if len(own) == 0 || len(actorsOf(own)) != 1 || !actorsOf(own)[tokenActor("s1")] {
		t.Fatalf("s1's own events: %v", actorsOf(own))
	}
	if got := actorsOf(query("manager", url.Values{"actor_id": {h.ids["s2"]}}, 200)); !got[tokenActor("s2")] {
		t.Fatalf("manager cannot see a subordinate's events: %v", got)
	}
	// Paging.
	first := h.do(req{method: "GET", path: "/api/v1/audit?limit=2", as: "auditor"})
	var p1 struct {
		Items []audit.Entry
		Next  string
	}
	_ = json.Unmarshal(first.Body.Bytes(), &p1)
	if len(p1.Items) != 2 || p1.Next == "" {
		t.Fatalf("page 1: %s", first.Body)
	}
	p2 := query("auditor", url.Values{"limit": {"2"}, "cursor": {p1.Next}}, 200)
	if len(p2) != 2 || p2[0].Seq >= p1.Items[1].Seq {
		t.Fatalf("page 2 after seq %d: %+v", p1.Items[1].Seq, p2)
	}
	// Unparsable input is a 400, invalid values a 422 naming the field; no
	// token is a 401.
	for _, bad := range []url.Values{{"limit": {"0"}}, {"since": {"yesterday"}}} {
		query("auditor", bad, http.StatusBadRequest)
	}
	for _, bad := range []url.Values{{"outcome": {"maybe"}}, {"cursor": {"x"}}, {"since": {"2026-02-01T00:00:00Z"}, "until": {"2026-01-01T00:00:00Z"}}} {
		query("auditor", bad, http.StatusUnprocessableEntity)
	}
	if rec := h.do(req{method: "GET", path: "/api/v1/audit"}); rec.Code != http.StatusUnauthorized {
		t.Fatalf("anonymous: %d", rec.Code)
	}
	// The queries are on record, without personal data.
	q := query("auditor", url.Values{"action": {"audit.query"}, "actor_id": {h.ids["auditor"]}}, 200)
	if len(q) == 0 || strings.Contains(string(q[0].Details), "李雷") {
		t.Fatalf("audit.query events: %+v", q)
	}
}
