package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/exportfile"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

const webExportPW = "harbour-lantern 2026"

type exportView struct {
	ID        string `json:"id"`
	Status    string `json:"status"`
	Rows      int    `json:"rows"`
	FileRows  int    `json:"file_rows"`
	Mine      bool   `json:"mine"`
	Requester struct {
		Email string `json:"email"`
	} `json:"requester"`
	DecidedBy *struct {
		Actor string `json:"actor"`
		Email string `json:"email"`
	} `json:"decided_by"`
}

func decodeExport(t *testing.T, b []byte) exportView {
	t.Helper()
	var v exportView
	if err := json.Unmarshal(b, &v); err != nil || v.ID == "" {
		t.Fatalf("not an export request: %s (%v)", b, err)
	}
	return v
}

// exportHarness: the standard users plus a security officer with a token,
// three customers of the manager, and export.approval_rows at 2.
func exportHarness(t *testing.T, c *testClock) *harness {
	t.Helper()
	exportfile.UseCheapScryptForTests(t)
	h := newHarnessAt(t, c.now)
	ctx := context.Background()
	u, err := h.n.Auth.CreateUser(ctx, audit.Event{Actor: "test"}, auth.NewUser{Email: "officer@example.com", Name: "officer", Role: "security_officer", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := h.n.Auth.CreateToken(ctx, audit.Event{Actor: "test"}, u.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	h.tokens["officer"], h.ids["officer"] = tok, u.ID
	for _, body := range []string{`{"name":"赵秘密工贸","phone":"13698765432","id_number":"11010519491231002X"}`, `{"name":"Acme"}`, `{"name":"Globex"}`} {
		h.createCustomer("manager", body)
	}
	op, err := h.n.CRM.Principal(ctx, accessSubject(h, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.n.CRM.SetSetting(ctx, op, settings.ExportApprovalRows, "2"); err != nil {
		t.Fatal(err)
	}
	return h
}

// accessSubject is the subject of a harness user, for calls that bypass HTTP.
func accessSubject(h *harness, name string) access.Subject {
	h.t.Helper()
	u, err := h.n.Auth.GetUser(context.Background(), h.ids[name])
	if err != nil {
		h.t.Fatal(err)
	}
	return access.Subject{UserID: u.ID, Actor: "user:" + u.ID, Role: u.Role}
}

func TestExportApprovalOverHTTP(t *testing.T) {
	c := &testClock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
	h := exportHarness(t, c)
	secrets := []string{"赵秘密", "13698765432", "11010519491231002X", webExportPW}

	// Above the threshold the direct export refuses, streaming nothing.
	h.run([]scenario{
		{name: "direct export above the threshold", req: req{method: "GET", path: "/api/v1/customers/export", as: "manager"}, status: 409,
			want: []string{"3 rows", "more than the 2", "export request", "POST /api/v1/exports"}, notWant: secrets, problem: true},
		{name: "small direct export still streams", req: req{method: "GET", path: "/api/v1/customers/export?q=Acme", as: "manager"}, status: 200, want: []string{"Acme"}},
		{name: "no permission", req: req{method: "POST", path: "/api/v1/exports", as: "s1", body: `{"format":"csv","password":"` + webExportPW + `"}`}, status: 403, notWant: secrets, problem: true},
		{name: "weak password", req: req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","password":"secret"}`}, status: 422,
			want: []string{`"field":"password"`}, notWant: []string{`"secret"`}, problem: true},
		{name: "no key", req: req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv"}`}, status: 422, problem: true},
		{name: "bad format", req: req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"ods","password":"` + webExportPW + `"}`}, status: 422,
			want: []string{`"field":"format"`}, notWant: []string{webExportPW}, problem: true},
		{name: "unknown field", req: req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","passwd":"x"}`}, status: 400, problem: true},
		{name: "reveal of a readable field", req: req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","reveal":["phone"],"password":"` + webExportPW + `"}`}, status: 422,
			want: []string{"not masked"}, problem: true},
		{name: "bad list parameter", req: req{method: "GET", path: "/api/v1/exports?sort=x", as: "manager"}, status: 400, problem: true},
		{name: "bad status", req: req{method: "GET", path: "/api/v1/exports?status=done", as: "manager"}, status: 422, problem: true},
		{name: "malformed id", req: req{method: "GET", path: "/api/v1/exports/nope", as: "manager"}, status: 404, problem: true},
	})
	if rec := h.do(req{method: "GET", path: "/api/v1/exports", as: "manager"}); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"items":[]`) {
		t.Fatalf("bad input stored something: %d %s", rec.Code, rec.Body)
	}

	// Three rows: a pending request.
	rec := h.do(req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","password":"` + webExportPW + `"}`})
	if rec.Code != 201 {
		t.Fatalf("request: %d %s", rec.Code, rec.Body)
	}
	ex := decodeExport(t, rec.Body.Bytes())
	if ex.Status != "pending" || ex.Rows != 3 || !ex.Mine || rec.Header().Get("Location") != "/api/v1/exports/"+ex.ID {
		t.Fatalf("request: %+v %s", ex, rec.Body)
	}
	base := "/api/v1/exports/" + ex.ID
	h.run([]scenario{
		{name: "the requester cannot approve", req: req{method: "POST", path: base + "/approve", as: "manager"}, status: 403, want: []string{"approve_export"}, problem: true},
		{name: "sales cannot approve", req: req{method: "POST", path: base + "/approve", as: "s1"}, status: 403, problem: true},
		{name: "others cannot see it", req: req{method: "GET", path: base, as: "s1"}, status: 404, problem: true},
		{name: "others cannot cancel it", req: req{method: "POST", path: base + "/cancel", as: "s2"}, status: 404, problem: true},
		{name: "no file yet", req: req{method: "GET", path: base + "/download", as: "manager"}, status: 409, want: []string{"pending"}, problem: true},
		{name: "the approver sees the queue", req: req{method: "GET", path: "/api/v1/exports?status=pending", as: "officer"}, status: 200,
			want: []string{ex.ID, "manager@example.com", `"rows":3`, `"mine":false`}, notWant: secrets},
	})
	rec = h.do(req{method: "POST", path: base + "/approve", as: "officer"})
	if rec.Code != 200 {
		t.Fatalf("approve: %d %s", rec.Code, rec.Body)
	}
	if got := decodeExport(t, rec.Body.Bytes()); got.Status != "approved" || got.FileRows != 3 || got.DecidedBy == nil || got.DecidedBy.Email != "officer@example.com" {
		t.Fatalf("approved: %s", rec.Body)
	}
	h.run([]scenario{
		{name: "approved twice", req: req{method: "POST", path: base + "/approve", as: "admin"}, status: 409, want: []string{"approved, not pending"}, problem: true},
		{name: "rejected after approval", req: req{method: "POST", path: base + "/reject", as: "officer"}, status: 409, problem: true},
		{name: "the approver cannot download", req: req{method: "GET", path: base + "/download", as: "officer"}, status: 403, problem: true},
		{name: "an administrator cannot download", req: req{method: "GET", path: base + "/download", as: "admin"}, status: 403, want: []string{"only the requester"}, problem: true},
		{name: "a stranger cannot download", req: req{method: "GET", path: base + "/download", as: "s1"}, status: 403, problem: true},
	})
	rec = h.do(req{method: "GET", path: base + "/download", as: "manager"})
	if rec.Code != 200 {
		t.Fatalf("download: %d %s", rec.Code, rec.Body)
	}
	for k, v := range map[string]string{"Content-Type": "application/octet-stream", "Cache-Control": "no-store",
		"Content-Disposition": `attachment; filename="custos-export-` + ex.ID + `.csv.age"`} {
		if got := rec.Header().Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	id, _ := age.NewScryptIdentity(webExportPW)
	r, err := age.Decrypt(bytes.NewReader(rec.Body.Bytes()), id)
	if err != nil {
		t.Fatal(err)
	}
	plain, _ := io.ReadAll(r)
	if !strings.HasPrefix(string(plain), "\ufeff# Custos export "+ex.ID+" · requested by manager <manager@example.com> · approved by officer <officer@example.com> · 2026-03-02T01:00:00Z\n") ||
		!strings.Contains(string(plain), "赵秘密工贸") || strings.Contains(string(plain), "11010519491231002X") {
		t.Fatalf("file:\n%s", plain)
	}
	wrong, _ := age.NewScryptIdentity(webExportPW + "!")
	if _, err := age.Decrypt(bytes.NewReader(rec.Body.Bytes()), wrong); err == nil {
		t.Fatal("a wrong password opened the file")
	}
	// The download window closes.
	c.add(25 * time.Hour)
	h.run([]scenario{
		{name: "expired", req: req{method: "GET", path: base + "/download", as: "manager"}, status: 409, want: []string{"expired"}, problem: true},
		{name: "shown expired", req: req{method: "GET", path: base, as: "manager"}, status: 200, want: []string{`"status":"expired"`, `"downloads":1`}},
	})
	// Nothing personal or secret in the server log.
	logs := h.log.String()
	for _, s := range secrets {
		if strings.Contains(logs, s) {
			t.Fatalf("server log holds %q", s)
		}
	}
}

func TestExportRequestLifecycleOverHTTP(t *testing.T) {
	c := &testClock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
	h := exportHarness(t, c)
	ident, _ := age.GenerateX25519Identity()
	// One row, nothing revealed: produced at once, no approval needed.
	rec := h.do(req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"q":"Acme","format":"xlsx","age_recipient":"` + ident.Recipient().String() + `"}`})
	if rec.Code != 201 {
		t.Fatalf("small request: %d %s", rec.Code, rec.Body)
	}
	if small := decodeExport(t, rec.Body.Bytes()); small.Status != "approved" || small.DecidedBy == nil || small.DecidedBy.Actor != "auto" || small.FileRows != 1 {
		t.Fatalf("small request: %s", rec.Body)
	}
	// One row with a revealed field: pending.
	rec = h.do(req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"q":"赵秘密","format":"csv","reveal":["id_number"],"age_recipient":"` + ident.Recipient().String() + `"}`})
	if rec.Code != 201 {
		t.Fatalf("revealing request: %d %s", rec.Code, rec.Body)
	}
	rev := decodeExport(t, rec.Body.Bytes())
	if rev.Status != "pending" || rev.Rows != 1 || strings.Contains(rec.Body.String(), "赵秘密") {
		t.Fatalf("revealing request: %s", rec.Body)
	}
	rec = h.do(req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","password":"` + webExportPW + `"}`})
	other := decodeExport(t, rec.Body.Bytes())
	rec = h.do(req{method: "POST", path: "/api/v1/exports", as: "admin", body: `{"format":"csv","password":"` + webExportPW + `"}`})
	admins := decodeExport(t, rec.Body.Bytes())
	h.run([]scenario{
		{name: "an administrator cannot approve their own", req: req{method: "POST", path: "/api/v1/exports/" + admins.ID + "/approve", as: "admin"}, status: 403,
			want: []string{"cannot approve your own export request"}, problem: true},
		{name: "an approver cannot cancel", req: req{method: "POST", path: "/api/v1/exports/" + rev.ID + "/cancel", as: "officer"}, status: 403, want: []string{"reject it instead"}, problem: true},
		{name: "the requester cannot reject", req: req{method: "POST", path: "/api/v1/exports/" + rev.ID + "/reject", as: "manager"}, status: 403, problem: true},
		{name: "the approver rejects", req: req{method: "POST", path: "/api/v1/exports/" + rev.ID + "/reject", as: "officer"}, status: 200, want: []string{`"status":"rejected"`}},
		{name: "rejected cannot be approved", req: req{method: "POST", path: "/api/v1/exports/" + rev.ID + "/approve", as: "officer"}, status: 409, want: []string{"rejected, not pending"}, problem: true},
		{name: "the requester cancels", req: req{method: "POST", path: "/api/v1/exports/" + other.ID + "/cancel", as: "manager"}, status: 200, want: []string{`"status":"cancelled"`}},
		{name: "cancelled twice", req: req{method: "POST", path: "/api/v1/exports/" + other.ID + "/cancel", as: "manager"}, status: 409, problem: true},
		{name: "no file for a rejected request", req: req{method: "GET", path: "/api/v1/exports/" + rev.ID + "/download", as: "manager"}, status: 409, problem: true},
		{name: "the requester lists all three", req: req{method: "GET", path: "/api/v1/exports?limit=2", as: "manager"}, status: 200, want: []string{other.ID, rev.ID, `"next":"`}, notWant: []string{admins.ID}},
		{name: "the queue holds the admin's", req: req{method: "GET", path: "/api/v1/exports?status=pending", as: "officer"}, status: 200, want: []string{admins.ID}, notWant: []string{other.ID, rev.ID}},
	})
	// Each transition is on record.
	ctx := context.Background()
	op, err := h.n.CRM.Principal(ctx, accessSubject(h, "admin"))
	if err != nil {
		t.Fatal(err)
	}
	for action, want := range map[string]int{"export.request": 4, "export.approve": 1, "export.reject": 1, "export.cancel": 1} {
		page, err := h.n.CRM.QueryAudit(ctx, op, crm.AuditQuery{Action: action, Outcome: "ok"})
		if err != nil || len(page.Items) != want {
			t.Errorf("%s: %d events, want %d (%v)", action, len(page.Items), want, err)
		}
	}
}

// A browser session approves only after a recent authentication.
func TestExportApprovalNeedsStepUpInABrowser(t *testing.T) {
	c := &testClock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
	h := exportHarness(t, c)
	rec := h.do(req{method: "POST", path: "/api/v1/exports", as: "manager", body: `{"format":"csv","password":"` + webExportPW + `"}`})
	ex := decodeExport(t, rec.Body.Bytes())
	if err := h.n.Auth.SetRolePolicy(context.Background(), audit.Event{Actor: "test"}, store.RolePolicy{Role: "security_officer"}); err != nil {
		t.Fatal(err)
	}
	b := &browser{h: h}
	if w := b.do("POST", "/api/v1/auth/login", `{"email":"officer@example.com","password":"correct horse battery"}`); w.Code != 200 {
		t.Fatalf("login: %d %s", w.Code, w.Body)
	}
	c.add(10 * time.Minute)
	if w := b.do("POST", "/api/v1/exports/"+ex.ID+"/approve", ""); w.Code != 403 || !strings.Contains(w.Body.String(), "recent authentication") {
		t.Fatalf("approval without step-up: %d %s", w.Code, w.Body)
	}
	if w := b.do("GET", "/api/v1/exports/"+ex.ID, ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"pending"`) {
		t.Fatalf("after the refusal: %d %s", w.Code, w.Body)
	}
	if w := b.do("POST", "/api/v1/auth/reauth", `{"password":"correct horse battery"}`); w.Code != 204 {
		t.Fatalf("step-up: %d %s", w.Code, w.Body)
	}
	if w := b.do("POST", "/api/v1/exports/"+ex.ID+"/approve", ""); w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"approved"`) {
		t.Fatalf("approval after step-up: %d %s", w.Code, w.Body)
	}
}
