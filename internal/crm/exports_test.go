package crm_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"filippo.io/age"
	"github.com/xuri/excelize/v2"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/exportfile"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// A customer every export test can look for, in the file and (never) in
// the database.
const (
	knownName  = "王秘密客户有限公司"
	knownPhone = "13912345678"
	knownEmail = "secret.person@example.com"
	knownID    = "11010519491231002X"
	exportPW   = "tiger-orchid-2026 export"
)

// seed stores n customers owned by p (the known one first) and returns
// the known customer's id.
func (e *env) seed(p access.Principal, n int) string {
	e.t.Helper()
	rows := []crm.CustomerFields{{Name: str(knownName), Kind: str("person"), Phones: strs(knownPhone),
		Emails: strs(knownEmail), IDNumber: str(knownID), Level: str("a"), Notes: str("见面于北京")}}
	for i := 1; i < n; i++ {
		rows = append(rows, crm.CustomerFields{Name: str(fmt.Sprintf("客户%04d 贸易", i)), Phones: strs(fmt.Sprintf("1380000%04d", i)), Level: str("b")})
	}
	if err := e.n.CRM.SeedCustomersForTest(e.ctx, p, rows); err != nil {
		e.t.Fatalf("seed: %v", err)
	}
	page, err := e.n.CRM.ListCustomers(e.ctx, p, crm.ListQuery{Q: knownPhone})
	if err != nil || len(page.Items) != 1 {
		e.t.Fatalf("find the known customer: %v %v", page.Items, err)
	}
	return page.Items[0].ID
}

func decryptWith(t *testing.T, data []byte, id age.Identity) ([]byte, error) {
	t.Helper()
	r, err := age.Decrypt(bytes.NewReader(data), id)
	if err != nil {
		return nil, err
	}
	return io.ReadAll(r)
}

func scrypt(t *testing.T, pw string) age.Identity {
	t.Helper()
	id, err := age.NewScryptIdentity(pw)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// events returns the audit events of action, oldest first.
func (e *env) events(action string) []store.AuditEvent {
	e.t.Helper()
	var out []store.AuditEvent
	if err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(e.ctx, 0, 1000000)
		for _, ev := range evs {
			if ev.Action == action {
				out = append(out, ev)
			}
		}
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func details(t *testing.T, ev store.AuditEvent) map[string]any {
	t.Helper()
	var d map[string]any
	if err := json.Unmarshal([]byte(ev.Details), &d); err != nil {
		t.Fatal(err)
	}
	return d
}

// TestExportOf1000RowsNeedsASecondPerson is the scenario of issue 6: an
// export of 1,000 rows is a pending request; the requester cannot approve
// it; a second person with approve_export can; the file opens only with its
// password and carries the watermark; only the requester downloads it, and
// it is gone after the download window.
func TestExportOf1000RowsNeedsASecondPerson(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		exportfile.UseCheapScryptForTests(t)
		officer := e.user("officer@example.com", "security_officer")
		knownCust := e.seed(e.manager, 1000)

		// A direct export of 1,000 rows is refused before any row is read.
		called := false
		_, err := e.n.CRM.ExportCustomers(e.ctx, e.manager, crm.ListQuery{}, func(crm.Customer) error { called = true; return nil })
		var are *crm.ApprovalRequiredError
		if !errors.As(err, &are) || !errors.Is(err, crm.ErrApprovalRequired) || are.Rows != 1000 || are.Limit != 200 || called {
			t.Fatalf("direct export of 1000 rows: %v (called %v)", err, called)
		}
		if !strings.Contains(err.Error(), "export request") {
			t.Fatalf("the refusal does not say what to do: %v", err)
		}
		if ev := e.events("customer.export"); len(ev) != 1 || ev[0].Outcome != "denied" || ev[0].Reason != "approval required" {
			t.Fatalf("refusal not on record: %+v", ev)
		}

		req, err := e.n.CRM.RequestExport(e.ctx, e.manager, crm.ExportInput{Format: "csv", Password: exportPW})
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != crm.ExportPending || req.Rows != 1000 || !req.Mine || req.Requester.Email != "manager@example.com" || req.Encryption != "password" {
			t.Fatalf("request: %+v", req)
		}
		t.Logf("request %s: status %s, %d rows, encryption %s", req.ID, req.Status, req.Rows, req.Encryption)

		// The requester cannot approve, nor can someone without approve_export.
		for _, p := range []access.Principal{e.manager, e.s1} {
			_, err := e.n.CRM.ApproveExport(e.ctx, p, req.ID)
			if !errors.Is(err, access.ErrDenied) {
				t.Fatalf("approval by %s: %v", p.Role, err)
			}
			t.Logf("approval by %s (%s): refused: %v", p.Actor, p.Role, err)
		}
		if n := e.countAudit("export.approve", "denied"); n != 2 {
			t.Fatalf("%d refused approvals on record, want 2", n)
		}
		// The approver sees what is asked, and no customer.
		q, err := e.n.CRM.ListExportRequests(e.ctx, officer, crm.ExportListQuery{Status: "pending"})
		if err != nil || len(q.Items) != 1 || q.Items[0].ID != req.ID || q.Items[0].Mine {
			t.Fatalf("approval queue: %+v %v", q.Items, err)
		}
		got := q.Items[0]
		if got.Requester.Email != "manager@example.com" || got.Rows != 1000 || got.Format != "csv" || len(got.Reveal) != 0 {
			t.Fatalf("what the approver sees: %+v", got)
		}
		if b, _ := json.Marshal(got); bytes.Contains(b, []byte(knownName)) || bytes.Contains(b, []byte(knownPhone)) || bytes.Contains(b, []byte(exportPW)) {
			t.Fatalf("the request shows customer data or the password: %s", b)
		}
		// Other users neither see nor find it.
		if mine, err := e.n.CRM.ListExportRequests(e.ctx, e.s1, crm.ExportListQuery{}); err != nil || len(mine.Items) != 0 {
			t.Fatalf("s1's list: %+v %v", mine.Items, err)
		}
		if _, err := e.n.CRM.GetExportRequest(e.ctx, e.s1, req.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("s1 gets the request: %v", err)
		}

		c.add(10 * time.Minute)
		approvedAt := c.now().UTC()
		done, err := e.n.CRM.ApproveExport(e.ctx, officer, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if done.Status != crm.ExportApproved || done.FileRows != 1000 || done.DecidedBy == nil || done.DecidedBy.Email != "officer@example.com" ||
			done.ExpiresAt == nil || !done.ExpiresAt.Equal(approvedAt.Add(24*time.Hour)) {
			t.Fatalf("approved: %+v", done)
		}
		if _, err := e.n.CRM.ApproveExport(e.ctx, e.admin, req.ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("second approval: %v", err)
		}
		// The production's events are the export's, naming the request and
		// the requester, with every id.
		pages := e.events("customer.export.page")
		ids := 0
		for _, ev := range pages {
			d := details(t, ev)
			if d["request"] != req.ID || ev.Actor != e.manager.Actor {
				t.Fatalf("page event without the request: %s %s", ev.Actor, ev.Details)
			}
			ids += int(d["count"].(float64))
		}
		if ids != 1000 {
			t.Fatalf("page events name %d customers, want 1000", ids)
		}

		// Only the requester downloads, each time on record.
		for _, p := range []access.Principal{officer, e.admin, e.s1} {
			if _, err := e.n.CRM.DownloadExport(e.ctx, p, req.ID); err == nil {
				t.Fatalf("%s downloaded the file", p.Role)
			}
		}
		f, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if n := e.countAudit("export.download", "ok"); n != 1 {
			t.Fatalf("%d downloads on record, want 1", n)
		}
		if n := e.countAudit("export.download", "denied"); n != 3 {
			t.Fatalf("%d refused downloads on record, want 3", n)
		}
		if bytes.Contains(f.Data, []byte(knownName)) || !strings.HasSuffix(f.Filename, ".csv.age") {
			t.Fatalf("file %s is not encrypted", f.Filename)
		}

		// The file opens with the password only.
		if _, err := decryptWith(t, f.Data, scrypt(t, exportPW+"x")); err == nil {
			t.Fatal("a wrong password opened the file")
		}
		other, _ := age.GenerateX25519Identity()
		if _, err := decryptWith(t, f.Data, other); err == nil {
			t.Fatal("an X25519 identity opened a password file")
		}
		plain, err := decryptWith(t, f.Data, scrypt(t, exportPW))
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(plain), "\n")
		wantWM := "\ufeff# Custos export " + req.ID + " · requested by User manager <manager@example.com> · approved by User security_officer <officer@example.com> · " +
			approvedAt.Format(time.RFC3339)
		if first != wantWM {
			t.Fatalf("watermark:\n%q\nwant\n%q", first, wantWM)
		}
		t.Logf("approved by the security officer: %d rows; wrong password and another age identity fail to open it; the right password opens it, first line: %s", done.FileRows, strings.TrimPrefix(first, "\ufeff"))
		cr := csv.NewReader(strings.NewReader(strings.TrimPrefix(string(plain), "\ufeff")))
		cr.Comment = '#'
		recs, err := cr.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 1001 || !slices.Equal(recs[0], customercsv.Columns) {
			t.Fatalf("%d records, header %q", len(recs), recs[0])
		}
		// Rows as a direct export writes them: the manager's policy masks
		// ID numbers, and nothing was revealed.
		known, err := e.n.CRM.GetCustomer(e.ctx, e.manager, knownCust)
		if err != nil {
			t.Fatal(err)
		}
		want := customercsv.Record(known, map[string]string{e.manager.UserID: "manager@example.com"})
		for i := range want {
			want[i] = csvio.SafeCell(want[i])
		}
		i := slices.IndexFunc(recs, func(r []string) bool { return r[0] == knownName })
		if i < 0 || !slices.Equal(recs[i], want) || strings.Contains(string(plain), knownID) {
			t.Fatalf("known row %q, want %q", recs[max(i, 0)], want)
		}

		// After the download window the file is refused, then swept.
		c.add(24*time.Hour + time.Minute)
		if _, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("download after expiry: %v", err)
		}
		if n, err := e.n.CRM.SweepExports(e.ctx); err != nil || n != 1 {
			t.Fatalf("sweep: %d %v", n, err)
		}
		if n, err := e.n.CRM.SweepExports(e.ctx); err != nil || n != 0 {
			t.Fatalf("second sweep: %d %v", n, err)
		}
		var files int
		if err := e.rawDB().QueryRow(`SELECT COUNT(*) FROM export_files`).Scan(&files); err != nil || files != 0 {
			t.Fatalf("%d files left after the sweep (%v)", files, err)
		}
		gone, err := e.n.CRM.GetExportRequest(e.ctx, e.manager, req.ID)
		if err != nil || gone.Status != crm.ExportExpired || gone.Downloads != 1 {
			t.Fatalf("after the sweep: %+v %v", gone, err)
		}
		if n := e.countAudit("export.expire", "ok"); n != 1 {
			t.Fatalf("%d expiries on record", n)
		}
		e.noPlaintextInAudit(knownName, knownPhone, knownEmail, knownID, exportPW)
	})
}

// TestRevealedFieldsMakeASmallExportPending: one row with a revealed field
// waits for approval; the approved XLSX, encrypted to an age recipient,
// holds the field in clear and the watermark in its header and footer.
func TestRevealedFieldsMakeASmallExportPending(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		e.seed(e.manager, 5)
		id, _ := age.GenerateX25519Identity()
		other, _ := age.GenerateX25519Identity()
		in := crm.ExportInput{Query: crm.ListQuery{Q: knownName}, Format: "xlsx", Reveal: []string{"id_number"}, Recipient: id.Recipient().String()}
		req, err := e.n.CRM.RequestExport(e.ctx, e.manager, in)
		if err != nil {
			t.Fatal(err)
		}
		if req.Status != crm.ExportPending || req.Rows != 1 || !slices.Equal(req.Reveal, []string{"id_number"}) || !req.Search ||
			req.Recipient != id.Recipient().String() {
			t.Fatalf("request: %+v", req)
		}
		// The search text (a customer's name) is sealed: the row and the
		// audit trail hold ciphertext only.
		var sealed []byte
		var filters string
		if err := e.rawDB().QueryRow(`SELECT sealed, filters FROM export_requests`).Scan(&sealed, &filters); err != nil {
			t.Fatal(err)
		}
		if len(sealed) == 0 || bytes.Contains(sealed, []byte(knownName)) || strings.Contains(filters, knownName) || !strings.Contains(filters, `"search":true`) {
			t.Fatalf("sealed %q filters %s", sealed, filters)
		}
		e.noPlaintextInAudit(knownName)

		c.add(time.Hour)
		approvedAt := c.now().UTC()
		if _, err := e.n.CRM.ApproveExport(e.ctx, e.admin, req.ID); err != nil {
			t.Fatal(err)
		}
		// Decided: the sealed query is gone and its key destroyed.
		var destroyed int
		if err := e.rawDB().QueryRow(`SELECT COUNT(*) FROM export_requests r JOIN data_keys k ON k.subject = r.id WHERE r.sealed IS NULL AND k.wrapped IS NULL`).Scan(&destroyed); err != nil || destroyed != 1 {
			t.Fatalf("sealed part not destroyed: %d %v", destroyed, err)
		}
		f, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decryptWith(t, f.Data, other); err == nil {
			t.Fatal("another identity opened the file")
		}
		if _, err := decryptWith(t, f.Data, scrypt(t, "some password or other")); err == nil {
			t.Fatal("a password opened a recipient file")
		}
		plain, err := decryptWith(t, f.Data, id)
		if err != nil {
			t.Fatal(err)
		}
		x, err := excelize.OpenReader(bytes.NewReader(plain))
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		wm := "Custos export " + req.ID + " · requested by User manager <manager@example.com> · approved by User admin <admin@example.com> · " + approvedAt.Format(time.RFC3339)
		hf, err := x.GetHeaderFooter(exportfile.SheetName)
		if err != nil || hf == nil || hf.OddHeader != "&C"+wm || hf.OddFooter != "&C"+wm {
			t.Fatalf("header/footer %+v %v, want %q", hf, err, wm)
		}
		rows, err := x.GetRows(exportfile.SheetName)
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) != 3 || rows[0][0] != wm || !slices.Equal(rows[1], customercsv.Columns) {
			t.Fatalf("rows %q", rows)
		}
		if row := rows[2]; row[0] != knownName || row[5] != knownID {
			t.Fatalf("revealed row %q: want the ID number in clear", row)
		}
		// The production's events say what was revealed.
		start := e.events("customer.export.start")
		if d := details(t, start[len(start)-1]); d["request"] != req.ID || fmt.Sprint(d["revealed"]) != "[id_number]" {
			t.Fatalf("start event %v", d)
		}
	})
}

// TestAnAdministratorCannotApproveTheirOwnExport: even holding every
// permission.
func TestAnAdministratorCannotApproveTheirOwnExport(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		exportfile.UseCheapScryptForTests(t)
		e.seed(e.admin, 3)
		req, err := e.n.CRM.RequestExport(e.ctx, e.admin, crm.ExportInput{Format: "csv", Reveal: nil, Password: exportPW,
			Query: crm.ListQuery{Level: "b"}})
		if err != nil {
			t.Fatal(err)
		}
		// Two rows, nothing revealed: no approval needed, produced at once.
		if req.Status != crm.ExportApproved || req.DecidedBy == nil || req.DecidedBy.Actor != "auto" || req.FileRows != 2 {
			t.Fatalf("small export: %+v", req)
		}
		f, err := e.n.CRM.DownloadExport(e.ctx, e.admin, req.ID)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := decryptWith(t, f.Data, scrypt(t, exportPW))
		if err != nil || !strings.Contains(string(plain), "approved by nobody: not required for 2 rows (approval above 200)") {
			t.Fatalf("auto-approved file: %v\n%s", err, plain)
		}
		// An admin's revealing request waits, and the admin cannot approve it.
		_, err = e.n.CRM.UpdateRole(e.ctx, e.admin, "admin", crm.RoleInput{Fields: &map[string]string{"phone": "masked"}})
		if err != nil {
			t.Fatal(err)
		}
		admin := e.again(e.admin)
		req, err = e.n.CRM.RequestExport(e.ctx, admin, crm.ExportInput{Format: "csv", Reveal: []string{"phone"}, Password: exportPW})
		if err != nil || req.Status != crm.ExportPending {
			t.Fatalf("revealing request: %+v %v", req, err)
		}
		if _, err := e.n.CRM.ApproveExport(e.ctx, admin, req.ID); !errors.Is(err, access.ErrDenied) || !strings.Contains(err.Error(), "your own") {
			t.Fatalf("self-approval: %v", err)
		}
		if _, err := e.n.CRM.RejectExport(e.ctx, admin, req.ID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("self-rejection: %v", err)
		}
		var denied store.AuditEvent
		for _, ev := range e.events("export.approve") {
			if ev.Outcome == "denied" {
				denied = ev
			}
		}
		if denied.ObjectID != req.ID || denied.Actor != admin.Actor || denied.Reason != "permission" {
			t.Fatalf("self-approval not on record: %+v", denied)
		}
		// The requester may cancel; then nobody can approve.
		if _, err := e.n.CRM.CancelExport(e.ctx, e.manager, req.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("cancel by someone else: %v", err)
		}
		got, err := e.n.CRM.CancelExport(e.ctx, admin, req.ID)
		if err != nil || got.Status != crm.ExportCancelled {
			t.Fatalf("cancel: %+v %v", got, err)
		}
		officer := e.user("officer@example.com", "security_officer")
		if _, err := e.n.CRM.ApproveExport(e.ctx, officer, req.ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("approval of a cancelled request: %v", err)
		}
		if _, err := e.n.CRM.DownloadExport(e.ctx, admin, req.ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("download of a cancelled request: %v", err)
		}
	})
}

// TestExportApprovalFollowsTheRequesterNow: approval produces what the
// requester may do at approval time, and refuses what they no longer may.
func TestExportApprovalFollowsTheRequesterNow(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		exportfile.UseCheapScryptForTests(t)
		officer := e.user("officer@example.com", "security_officer")
		e.seed(e.manager, 3)
		// Every export above one row needs approval.
		if _, err := e.n.CRM.SetSetting(e.ctx, e.admin, settings.ExportApprovalRows, "1"); err != nil {
			t.Fatal(err)
		}
		ask := func(reveal ...string) crm.ExportRequest {
			t.Helper()
			req, err := e.n.CRM.RequestExport(e.ctx, e.manager, crm.ExportInput{Format: "csv", Reveal: reveal, Password: exportPW})
			if err != nil || req.Status != crm.ExportPending {
				t.Fatalf("request: %+v %v", req, err)
			}
			return req
		}
		revealing, grown, denied := ask("id_number"), ask(), ask()
		// A revealed field no longer revealable: refused, the request stays.
		if _, err := e.n.CRM.UpdateRole(e.ctx, e.admin, "manager", crm.RoleInput{Fields: &map[string]string{"id_number": "hidden"}}); err != nil {
			t.Fatal(err)
		}
		_, err := e.n.CRM.ApproveExport(e.ctx, officer, revealing.ID)
		if !errors.Is(err, crm.ErrConflict) || !strings.Contains(err.Error(), "no longer reveal the field id_number") {
			t.Fatalf("approval of a field now hidden: %v", err)
		}
		if r, _ := e.n.CRM.GetExportRequest(e.ctx, officer, revealing.ID); r.Status != crm.ExportPending {
			t.Fatalf("a refused approval changed the request: %+v", r)
		}
		if r, err := e.n.CRM.RejectExport(e.ctx, officer, revealing.ID); err != nil || r.Status != crm.ExportRejected {
			t.Fatalf("reject: %+v %v", r, err)
		}
		// An export that grew beyond what was asked is refused.
		many := make([]crm.ImportRow, 20)
		for i := range many {
			many[i] = crm.ImportRow{Line: i + 1, Fields: crm.CustomerFields{Name: str(fmt.Sprintf("新客户%02d", i))}}
		}
		if _, err := e.n.CRM.ImportCustomers(e.ctx, e.manager, many, nil, crm.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ApproveExport(e.ctx, officer, grown.ID); !errors.Is(err, crm.ErrConflict) || !strings.Contains(err.Error(), "grown from 3 to 23") {
			t.Fatalf("approval of a grown export: %v", err)
		}
		// A requester who lost the export permission gets nothing.
		if _, err := e.n.CRM.UpdateRole(e.ctx, e.admin, "manager", crm.RoleInput{Permissions: strs("read", "reveal", "create", "import")}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ApproveExport(e.ctx, officer, denied.ID); !errors.Is(err, crm.ErrConflict) || !strings.Contains(err.Error(), "export permission") {
			t.Fatalf("approval for a requester without export: %v", err)
		}
		if n := e.countAudit("export.approve", "denied"); n != 3 {
			t.Fatalf("%d refused approvals on record, want 3", n)
		}
		if n := e.countAudit("customer.export.start", "ok"); n != 0 {
			t.Fatalf("a refused approval exported: %d", n)
		}
		if _, err := e.n.CRM.ApproveExport(e.ctx, officer, revealing.ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("approval of a rejected request: %v", err)
		}
	})
}

// TestExportRequestRefusesBadInput: a clear error, nothing stored.
func TestExportRequestRefusesBadInput(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		exportfile.UseCheapScryptForTests(t)
		e.seed(e.manager, 2)
		id, _ := age.GenerateX25519Identity()
		for _, tc := range []struct {
			name string
			p    access.Principal
			in   crm.ExportInput
			want error
			msg  string
		}{
			{"no permission", e.s1, crm.ExportInput{Format: "csv", Password: exportPW}, access.ErrDenied, "export"},
			{"support cannot export", e.support, crm.ExportInput{Format: "csv", Password: exportPW, Reveal: []string{"phone"}}, access.ErrDenied, "export"},
			{"bad format", e.manager, crm.ExportInput{Format: "pdf", Password: exportPW}, crm.ErrInvalid, "format"},
			{"no key", e.manager, crm.ExportInput{Format: "csv"}, crm.ErrInvalid, "password"},
			{"both keys", e.manager, crm.ExportInput{Format: "csv", Password: exportPW, Recipient: id.Recipient().String()}, crm.ErrInvalid, "not both"},
			{"weak password", e.manager, crm.ExportInput{Format: "csv", Password: "123456"}, crm.ErrInvalid, "12 characters"},
			{"bad recipient", e.manager, crm.ExportInput{Format: "csv", Recipient: "age1notakey"}, crm.ErrInvalid, "age_recipient"},
			{"secret key as recipient", e.manager, crm.ExportInput{Format: "csv", Recipient: id.String()}, crm.ErrInvalid, "age_recipient"},
			{"unknown reveal", e.manager, crm.ExportInput{Format: "csv", Password: exportPW, Reveal: []string{"salary"}}, crm.ErrInvalid, "reveal"},
			{"tags", e.manager, crm.ExportInput{Format: "csv", Password: exportPW, Reveal: []string{"tags"}}, crm.ErrInvalid, "reveal"},
			{"readable field", e.manager, crm.ExportInput{Format: "csv", Password: exportPW, Reveal: []string{"phone"}}, crm.ErrInvalid, "not masked"},
			{"bad filter", e.manager, crm.ExportInput{Format: "csv", Password: exportPW, Query: crm.ListQuery{Hidden: "yes"}}, crm.ErrInvalid, "hidden"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.n.CRM.RequestExport(e.ctx, tc.p, tc.in)
				if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("got %v, want %v mentioning %q", err, tc.want, tc.msg)
				}
				if strings.Contains(err.Error(), exportPW) || strings.Contains(err.Error(), "123456") {
					t.Fatalf("error echoes the password: %v", err)
				}
			})
		}
		var n int
		if err := e.rawDB().QueryRow(`SELECT COUNT(*) FROM export_requests`).Scan(&n); err != nil || n != 0 {
			t.Fatalf("%d requests stored (%v)", n, err)
		}
		// A hidden field is never included, whatever the reveal permission.
		if _, err := e.n.CRM.UpdateRole(e.ctx, e.admin, "manager", crm.RoleInput{Fields: &map[string]string{"notes": "hidden"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.RequestExport(e.ctx, e.again(e.manager), crm.ExportInput{Format: "csv", Password: exportPW, Reveal: []string{"notes"}}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("revealing a hidden field: %v", err)
		}
		// The password never prints.
		in := crm.ExportInput{Format: "csv", Password: exportPW}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%d", "%x"} {
			if s := fmt.Sprintf(verb, in); strings.Contains(s, exportPW) || strings.Contains(s, fmt.Sprintf("%x", exportPW)) {
				t.Fatalf("%s prints the password: %s", verb, s)
			}
		}
	})
}

// TestNothingPersonalAtRestInAnExport greps the SQLite files (database and
// write-ahead log) after a full request, approval and download for the
// known customer's name and phone, the search text and the password.
func TestNothingPersonalAtRestInAnExport(t *testing.T) {
	c := &clock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
	e := newEnv(t, "sqlite", crm.Options{Now: c.now})
	exportfile.UseCheapScryptForTests(t)
	e.seed(e.manager, 50)
	req, err := e.n.CRM.RequestExport(e.ctx, e.manager, crm.ExportInput{Query: crm.ListQuery{Q: knownPhone}, Format: "csv",
		Reveal: []string{"id_number"}, Password: exportPW})
	if err != nil {
		t.Fatal(err)
	}
	// Pending: the search text and the derived key are sealed.
	grep := func(when string) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(e.cfg.DataDir, "*"))
		scanned := 0
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				continue // a directory
			}
			scanned += len(b)
			for _, v := range []string{knownName, knownPhone, "+86" + knownPhone, knownEmail, knownID, exportPW} {
				if bytes.Contains(b, []byte(v)) {
					t.Fatalf("%s: %s holds %q in plaintext", when, filepath.Base(f), v)
				}
			}
		}
		if scanned < 100000 {
			t.Fatalf("%s: only %d bytes scanned", when, scanned)
		}
	}
	grep("pending")
	if _, err := e.n.CRM.ApproveExport(e.ctx, e.admin, req.ID); err != nil {
		t.Fatal(err)
	}
	f, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := decryptWith(t, f.Data, scrypt(t, exportPW))
	if err != nil || !bytes.Contains(plain, []byte(knownID)) || !bytes.Contains(plain, []byte(knownName)) {
		t.Fatalf("the file lacks the revealed row: %v", err)
	}
	grep("approved and downloaded")
	e.noPlaintextInAudit(knownName, knownPhone, knownEmail, knownID, exportPW)
}
