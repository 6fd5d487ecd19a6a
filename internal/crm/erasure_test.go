package crm_test

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/exportfile"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

const (
	eraseName    = "郑可删除贸易有限公司"
	eraseName2   = "郑可删除贸易集团"
	erasePhone   = "13755550123"
	eraseEmail   = "forget.me@example.com"
	eraseContact = "联系人钱某某"
	eraseSummary = "讨论了续约价格"
)

// eraseTarget creates a customer owned by s1 with everything that hangs off
// it: a contact, an interaction, a share, an update (sealed old and new
// values in the trail) and a view.
func (e *env) eraseTarget(t *testing.T) crm.Customer {
	t.Helper()
	c := e.create(e.s1, eraseName, func(f *crm.CustomerFields) { f.Phones, f.Emails = strs(erasePhone), strs(eraseEmail) })
	ct, err := e.n.CRM.CreateContact(e.ctx, e.s1, c.ID, crm.ContactFields{Name: str(eraseContact), Phones: strs("13600001111")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.CRM.CreateInteraction(e.ctx, e.s1, c.ID, crm.InteractionFields{ContactID: &ct.ID, Kind: str("call"), Summary: str(eraseSummary)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.CRM.ShareCustomer(e.ctx, e.s1, c.ID, crm.ShareInput{UserID: e.s2.UserID, Level: "read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, c.ID, crm.CustomerFields{Name: str(eraseName2)}, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := e.n.CRM.GetCustomer(e.ctx, e.admin, c.ID); err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) ledger(t *testing.T) []crm.Erasure {
	t.Helper()
	l, err := e.n.CRM.ErasureLedger(e.ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// Erasing a customer removes it from every read path, destroys its key so
// that the old values in the audit trail no longer open, keeps the trail
// itself, and enters the erasure in the ledger.
func TestEraseCustomer(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		c := e.eraseTarget(t)
		other := e.create(e.s1, "郑可保留贸易", func(f *crm.CustomerFields) { f.Phones = strs("13755550999") })
		update, _ := e.findEvent("customer.update", audit.OK, "customer", c.ID)
		if got := e.openSealed(update); got["name"].(map[string]any)["new"] != eraseName2 {
			t.Fatalf("before erasure the change opens: %v", got)
		}
		before := e.subjectActions(c.ID)

		if err := e.n.CRM.EraseCustomer(e.ctx, e.admin, c.ID); err != nil {
			t.Fatalf("EraseCustomer: %v", err)
		}
		// The trail keeps every event about the customer, and adds the erasure.
		if got := e.subjectActions(c.ID); !slices.Equal(got, append([]string{"customer.erase"}, before...)) {
			t.Errorf("events about the customer after erasure: %v, before: %v", got, before)
		}

		// Nothing of it can be read any more, by anyone.
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.admin, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("get after erasure: %v", err)
		}
		if _, err := e.n.CRM.ListContacts(e.ctx, e.admin, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("contacts after erasure: %v", err)
		}
		if _, err := e.n.CRM.ListInteractions(e.ctx, e.admin, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Errorf("interactions after erasure: %v", err)
		}
		for _, p := range []access.Principal{e.admin, e.s1, e.s2} {
			for _, q := range []string{"", eraseName2, erasePhone, eraseEmail, "郑可"} {
				page, err := e.n.CRM.ListCustomers(e.ctx, p, crm.ListQuery{Q: q, Hidden: hiddenFor(p)})
				if err != nil {
					t.Fatalf("list %q: %v", q, err)
				}
				if slices.ContainsFunc(page.Items, func(x crm.Customer) bool { return x.ID == c.ID }) {
					t.Errorf("%s: list/search %q still finds the erased customer", p.Role, q)
				}
			}
		}
		var exported []string
		if _, err := e.n.CRM.ExportCustomers(e.ctx, e.admin, crm.ListQuery{}, func(x crm.Customer) error {
			exported = append(exported, x.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if slices.Contains(exported, c.ID) || !slices.Contains(exported, other.ID) {
			t.Errorf("export after erasure: %v", exported)
		}

		// The key is destroyed (the cache forgot it too): the trail's sealed
		// values are ciphertext for good.
		err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
			box := e.sealedOf(update)
			_, err := e.n.Keys.DataKey(e.ctx, tx, box.Subject, box.KeyVersion)
			return err
		})
		if !errors.Is(err, keys.ErrKeyDestroyed) {
			t.Fatalf("the erased customer's key: %v, want ErrKeyDestroyed", err)
		}
		// The other customer is untouched.
		if got, err := e.n.CRM.GetCustomer(e.ctx, e.admin, other.ID); err != nil || got.Name != "郑可保留贸易" {
			t.Fatalf("other customer: %v %v", got.Name, err)
		}

		// The erasure is on record, chained, with no personal value in it.
		ev, ok := e.findEvent("customer.erase", audit.OK, "customer", c.ID)
		if !ok || ev.Actor != e.admin.Actor {
			t.Fatalf("no erase event: %+v", ev)
		}
		for _, v := range []string{eraseName, eraseName2, erasePhone, eraseEmail, eraseContact, eraseSummary} {
			if strings.Contains(ev.Details, v) {
				t.Errorf("erase event details hold %q: %s", v, ev.Details)
			}
		}
		if d := details(t, ev); d["personal"] != nil || d["was_deleted"] != false {
			t.Errorf("erase event details: %v", d)
		}
		if rep, err := audit.Verify(e.ctx, e.n.DB, audit.VerifyOptions{}); err != nil || !rep.OK() {
			t.Fatalf("audit chain after erasure: %+v %v", rep, err)
		}

		// The ledger: the id and the time.
		l := e.ledger(t)
		if len(l) != 1 || l[0].CustomerID != c.ID || l[0].ErasedAt.IsZero() || !l[0].ErasedAt.Equal(ev.At) {
			t.Fatalf("ledger = %+v (event at %v)", l, ev.At)
		}

		// Again: a clear refusal, on record, and nothing changes.
		err = e.n.CRM.EraseCustomer(e.ctx, e.admin, c.ID)
		if !errors.Is(err, crm.ErrErased) || !errors.Is(err, crm.ErrNotFound) || !strings.Contains(err.Error(), "already erased") {
			t.Fatalf("erasing twice: %v", err)
		}
		if ev, ok := e.findEvent("customer.erase", audit.Denied, "customer", c.ID); !ok || ev.Reason != "already erased" {
			t.Fatalf("second erasure not on record as refused: %+v", ev)
		}
		if l2 := e.ledger(t); !slices.Equal(l2, l) {
			t.Fatalf("ledger changed by a second erasure: %+v", l2)
		}
		if n := e.auditCount("customer.erase", audit.OK); n != 1 {
			t.Fatalf("%d successful erase events", n)
		}
	})
}

func hiddenFor(p access.Principal) string {
	if p.Can(access.ViewHidden) {
		return "include"
	}
	return ""
}

// Deny by default: erase is the administrator's; a recent authentication
// in a browser session; full access to the customer; every refusal on
// record.
func TestEraseCustomerRefusals(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		c := e.eraseTarget(t)
		director := e.user("director@example.com", "sales_director")
		for _, p := range []access.Principal{e.manager, e.s1, e.support, director} {
			if err := e.n.CRM.EraseCustomer(e.ctx, p, c.ID); !errors.Is(err, access.ErrDenied) {
				t.Errorf("%s erases: %v, want ErrDenied", p.Role, err)
			}
		}
		if n := e.auditCount("customer.erase", audit.Denied); n != 4 {
			t.Errorf("%d refusals on record, want 4", n)
		}

		// A stale browser session must authenticate again first.
		stale := e.admin
		stale.Interactive, stale.AuthAt = true, time.Now().Add(-time.Hour)
		if err := e.n.CRM.EraseCustomer(e.ctx, stale, c.ID); !errors.Is(err, access.ErrStepUp) {
			t.Fatalf("stale session: %v, want ErrStepUp", err)
		}
		if ev, ok := e.findEvent("customer.erase", audit.Denied, "customer", c.ID); !ok || ev.Reason != "step-up required" {
			t.Fatalf("step-up refusal: %+v", ev)
		}

		// Unknown and malformed ids.
		if err := e.n.CRM.EraseCustomer(e.ctx, e.admin, "0190d5c4-0000-7000-8000-000000000000"); !errors.Is(err, crm.ErrNotFound) || errors.Is(err, crm.ErrErased) {
			t.Fatalf("unknown id: %v", err)
		}
		if err := e.n.CRM.EraseCustomer(e.ctx, e.admin, "not-an-id"); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("malformed id: %v", err)
		}

		// Someone granted erase reaches only what they fully reach: the
		// manager erases a rep's customer, not one merely shared with them,
		// and cannot tell one they do not see from a missing one.
		mgr := e.manager
		mgr.Perms = append(slices.Clone(mgr.Perms), access.Erase)
		mine := e.create(e.admin, "郑总部客户", nil) // owned by the admin
		if err := e.n.CRM.EraseCustomer(e.ctx, mgr, mine.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("manager erases a customer they do not see: %v", err)
		}
		if _, err := e.n.CRM.ShareCustomer(e.ctx, e.admin, mine.ID, crm.ShareInput{UserID: e.manager.UserID, Level: "edit"}); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.EraseCustomer(e.ctx, mgr, mine.ID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("manager erases a customer shared with them: %v", err)
		}
		if len(e.ledger(t)) != 0 {
			t.Fatal("a refused erasure reached the ledger")
		}
		if err := e.n.CRM.EraseCustomer(e.ctx, mgr, c.ID); err != nil {
			t.Fatalf("manager erases a rep's customer: %v", err)
		}

		// Hidden customers need view_hidden; soft-deleted ones can be erased.
		hidden := e.create(e.admin, "郑隐藏客户", func(f *crm.CustomerFields) { f.Hidden = ptr(true); f.OwnerID = &e.s1.UserID })
		if err := e.n.CRM.EraseCustomer(e.ctx, mgr, hidden.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("erasing a hidden customer without view_hidden: %v", err)
		}
		if err := e.n.CRM.EraseCustomer(e.ctx, e.admin, hidden.ID); err != nil {
			t.Fatalf("admin erases a hidden customer: %v", err)
		}
		deleted := e.create(e.admin, "郑已删除客户", nil)
		if err := e.n.CRM.DeleteCustomer(e.ctx, e.admin, deleted.ID); err != nil {
			t.Fatal(err)
		}
		fresh := e.admin
		fresh.Interactive, fresh.AuthAt = true, time.Now()
		if err := e.n.CRM.EraseCustomer(e.ctx, fresh, deleted.ID); err != nil {
			t.Fatalf("erasing a soft-deleted customer: %v", err)
		}
		if ev, _ := e.findEvent("customer.erase", audit.OK, "customer", deleted.ID); details(t, ev)["was_deleted"] != true {
			t.Fatalf("erase of a deleted customer: %s", ev.Details)
		}
		if got := len(e.ledger(t)); got != 3 {
			t.Fatalf("ledger has %d entries, want 3", got)
		}

		// The ledger is for erase and read_audit holders only.
		auditor := e.user("auditor@example.com", "auditor")
		if l, err := e.n.CRM.ErasureLedger(e.ctx, auditor); err != nil || len(l) != 3 {
			t.Fatalf("auditor reads the ledger: %v %v", l, err)
		}
		if _, err := e.n.CRM.ErasureLedger(e.ctx, e.manager); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("manager reads the ledger: %v", err)
		}
	})
}

// An approved export file that holds the customer goes with it: it cannot
// be edited (age, under a key Custos does not keep), so it is expired.
func TestEraseCustomerExpiresExportFiles(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		exportfile.UseCheapScryptForTests(t)
		c := e.eraseTarget(t)
		e.create(e.s1, "郑另一客户", nil)
		req, err := e.n.CRM.RequestExport(e.ctx, e.manager, crm.ExportInput{Format: "csv", Password: exportPW})
		if err != nil || req.Status != crm.ExportApproved {
			t.Fatalf("export request: %+v %v", req, err)
		}
		if _, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID); err != nil {
			t.Fatalf("download before erasure: %v", err)
		}
		if err := e.n.CRM.EraseCustomer(e.ctx, e.admin, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.DownloadExport(e.ctx, e.manager, req.ID); err == nil {
			t.Fatal("the export file holding the erased customer is still downloadable")
		}
		got, err := e.n.CRM.GetExportRequest(e.ctx, e.manager, req.ID)
		if err != nil || got.Status != crm.ExportExpired {
			t.Fatalf("request after erasure: %+v %v", got, err)
		}
		ev, _ := e.findEvent("customer.erase", audit.OK, "customer", c.ID)
		if d := details(t, ev); !slices.Equal(d["exports_expired"].([]any), []any{req.ID}) {
			t.Fatalf("erase event: %s", ev.Details)
		}
		if ev, ok := e.findEvent("export.expire", audit.OK, "export", req.ID); !ok || ev.Actor != e.admin.Actor {
			t.Fatalf("no export.expire event: %+v", ev)
		}
	})
}

// An installation whose admin role came from the previous template gets
// erase on upgrade; a customized admin role is left alone.
func TestTemplateUpgradeGivesAdminErase(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		old := strings.Join(strings.Fields(strings.ReplaceAll(" "+access.FormatPermissions(access.AllPermissions)+" ", " erase ", " ")), " ")
		setAdmin := func(version int) {
			t.Helper()
			if err := e.n.DB.Write(e.ctx, func(tx *store.Tx) error {
				r, err := tx.GetRole(e.ctx, "admin")
				if err != nil {
					return err
				}
				r.Permissions, r.TemplateVersion = old, version
				return tx.UpdateRole(e.ctx, r)
			}); err != nil {
				t.Fatal(err)
			}
		}
		canErase := func() bool {
			t.Helper()
			return e.again(e.admin).Can(access.Erase)
		}
		setAdmin(2)
		if canErase() {
			t.Fatal("the version 2 admin role can erase")
		}
		if err := e.n.CRM.SeedRoles(e.ctx, access.Templates, access.MFARoles); err != nil {
			t.Fatal(err)
		}
		if !canErase() {
			t.Fatal("the upgraded admin role cannot erase")
		}
		setAdmin(0) // customized
		if err := e.n.CRM.SeedRoles(e.ctx, access.Templates, access.MFARoles); err != nil {
			t.Fatal(err)
		}
		if canErase() {
			t.Fatal("a customized admin role was changed by the upgrade")
		}
	})
}
