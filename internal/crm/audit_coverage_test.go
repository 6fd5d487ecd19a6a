package crm_test

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// Personal values the coverage scenario enters; none may appear in the audit
// table in plaintext.
const (
	covName       = "覆盖测试张三"
	covName2      = "覆盖测试李四"
	covPhone      = "13912345601"
	covPhone2     = "13912345602"
	covEmail      = "zhang.san@example.com"
	covAddress    = "海淀区中关村大街甲一号"
	covIDNumber   = "11010519491231002X"
	covNotes      = "欠款记录九万"
	covContact    = "联系人王五"
	covCPhone     = "13812345603"
	covCPhone2    = "13812345604"
	covCEmail     = "wang.wu@example.com"
	covSummary    = "张三提到贷款的事"
	covSummary2   = "张三改口说没有贷款"
	covReason     = "客户来电核对号码工单八八"
	covImport     = "导入客户赵六"
	covImportTel  = "13712345605"
	covImportCont = "导入联系人孙七"
)

// TestAuditCoverage drives every guarded action of the CRM once and checks
// that each left its event (action, outcome, object), that views and result
// sets are indexed by the customers they showed, that changes carry their old
// and new values sealed under the customer's key, and that no personal value
// is anywhere in the audit table in plaintext.
func TestAuditCoverage(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		ctx := e.ctx
		// Create (as the operator, who may write every field), view, update.
		cust, err := e.n.CRM.CreateCustomer(ctx, op, crm.CustomerFields{Name: str(covName), Phones: strs(covPhone), Emails: strs(covEmail),
			Address: str(covAddress), IDNumber: str(covIDNumber), Notes: str(covNotes), Status: str("active"), OwnerID: str(e.s1.UserID)})
		if err != nil {
			t.Fatal(err)
		}
		other := e.mk(e.s1, "另一个覆盖客户", "13912345690", nil)
		if _, err := e.n.CRM.GetCustomer(ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.GetCustomer(ctx, e.s2, cust.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("outsider view: %v", err)
		}
		if _, err := e.n.CRM.UpdateCustomer(ctx, e.s1, cust.ID, crm.CustomerFields{Name: str(covName2), Phones: strs(covPhone2), Status: str("lost")}, 0); err != nil {
			t.Fatal(err)
		}
		// Contacts.
		ct, err := e.n.CRM.CreateContact(ctx, e.s1, cust.ID, crm.ContactFields{Name: str(covContact), Phones: strs(covCPhone), Emails: strs(covCEmail)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.GetContact(ctx, e.s1, ct.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ListContacts(ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.UpdateContact(ctx, e.s1, ct.ID, crm.ContactFields{Phones: strs(covCPhone2)}, 0); err != nil {
			t.Fatal(err)
		}
		// Interactions.
		it, err := e.n.CRM.CreateInteraction(ctx, e.s1, cust.ID, crm.InteractionFields{Kind: str("call"), Summary: str(covSummary)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.UpdateInteraction(ctx, e.s1, it.ID, crm.InteractionFields{Summary: str(covSummary2)}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ListInteractions(ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.DeleteInteraction(ctx, e.s1, it.ID); err != nil {
			t.Fatal(err)
		}
		// List, search, count, reveal, export.
		listed, err := e.n.CRM.ListCustomers(ctx, e.s1, crm.ListQuery{Status: "lost"})
		if err != nil || len(listed.Items) != 1 {
			t.Fatalf("list: %d %v", len(listed.Items), err)
		}
		if _, err := e.n.CRM.ListCustomers(ctx, e.s1, crm.ListQuery{Q: "覆盖测试"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.CountCustomers(ctx, e.s1, crm.ListQuery{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.RevealField(ctx, e.support, cust.ID, "phone", covReason); err != nil {
			t.Fatal(err)
		}
		var exported []string
		if _, err := e.n.CRM.ExportCustomers(ctx, e.admin, crm.ListQuery{}, func(c crm.Customer) error { exported = append(exported, c.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		// Import, with a bundled contact.
		res, err := e.n.CRM.ImportCustomers(ctx, op, []crm.ImportRow{{Line: 2, Fields: crm.CustomerFields{Name: str(covImport), Phones: strs(covImportTel)},
			Contacts: []crm.ContactFields{{Name: str(covImportCont)}}}}, nil, crm.ImportOptions{})
		if err != nil || res.Imported != 1 {
			t.Fatalf("import: %+v %v", res, err)
		}
		// Shares.
		sh, err := e.n.CRM.ShareCustomer(ctx, e.s1, cust.ID, crm.ShareInput{UserID: e.s2.UserID, Level: "read"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ListShares(ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.RevokeShare(ctx, e.s1, sh.ID); err != nil {
			t.Fatal(err)
		}
		// Pool.
		if err := e.n.CRM.ReleaseCustomer(ctx, e.s1, other.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ClaimCustomer(ctx, e.s2, other.ID); err != nil {
			t.Fatal(err)
		}
		// Roles, users, grants, settings, alerts.
		if _, err := e.n.CRM.CreateRole(ctx, op, "cov_role", "sales", crm.RoleInput{}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.UpdateRole(ctx, op, "cov_role", crm.RoleInput{RevealQuota: ptr(3)}); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.DeleteRole(ctx, op, "cov_role"); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.SetUserRole(ctx, op, e.manager.UserID, "sales_director"); err != nil {
			t.Fatal(err)
		}
		g, err := e.n.CRM.CreateGrant(ctx, op, e.s1.UserID, "export", "quarterly review", c.now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.RevokeGrant(ctx, op, g.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.SetSetting(ctx, op, "pool.return_days", "30"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ListAlerts(ctx, op, crm.AlertQuery{}); err != nil {
			t.Fatal(err)
		}
		// Deletes, then the departure of s2 (who owns the claimed customer).
		if err := e.n.CRM.DeleteContact(ctx, e.s1, ct.ID); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.DeleteCustomer(ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.Offboard(ctx, op, e.s2.UserID, "", true); err != nil {
			t.Fatal(err)
		}

		// Every action left its event.
		for _, w := range []struct{ action, outcome, objType, objID string }{
			{"customer.create", audit.OK, "customer", cust.ID},
			{"customer.view", audit.OK, "customer", cust.ID},
			{"customer.view", audit.Denied, "customer", cust.ID},
			{"customer.update", audit.OK, "customer", cust.ID},
			{"contact.create", audit.OK, "contact", ct.ID},
			{"contact.view", audit.OK, "contact", ct.ID},
			{"contact.list", audit.OK, "customer", cust.ID},
			{"contact.update", audit.OK, "contact", ct.ID},
			{"contact.delete", audit.OK, "contact", ct.ID},
			{"interaction.create", audit.OK, "interaction", it.ID},
			{"interaction.update", audit.OK, "interaction", it.ID},
			{"interaction.list", audit.OK, "customer", cust.ID},
			{"interaction.delete", audit.OK, "interaction", it.ID},
			{"customer.list", audit.OK, "customer", ""},
			{"customer.search", audit.OK, "customer", ""},
			{"customer.count", audit.OK, "customer", ""},
			{"customer.reveal", audit.OK, "customer", cust.ID},
			{"customer.export.start", audit.OK, "customer", ""},
			{"customer.export.page", audit.OK, "customer", ""},
			{"customer.export", audit.OK, "customer", ""},
			{"customer.import", audit.OK, "customer", ""},
			{"customer.import_related", audit.OK, "customer", ""},
			{"share.create", audit.OK, "share", sh.ID},
			{"share.list", audit.OK, "customer", cust.ID},
			{"share.revoke", audit.OK, "share", sh.ID},
			{"customer.release", audit.OK, "customer", other.ID},
			{"customer.claim", audit.OK, "customer", other.ID},
			{"role.create", audit.OK, "role", "cov_role"},
			{"role.update", audit.OK, "role", "cov_role"},
			{"role.delete", audit.OK, "role", "cov_role"},
			{"user.role", audit.OK, "user", e.manager.UserID},
			{"grant.create", audit.OK, "grant", g.ID},
			{"grant.revoke", audit.OK, "grant", g.ID},
			{"config.set", audit.OK, "setting", "pool.return_days"},
			{"alert.list", audit.OK, "alert", ""},
			{"customer.delete", audit.OK, "customer", cust.ID},
			{"customer.handover", audit.OK, "customer", other.ID},
			{"user.offboard", audit.OK, "user", e.s2.UserID},
		} {
			if _, ok := e.findEvent(w.action, w.outcome, w.objType, w.objID); !ok {
				t.Errorf("no %s event %s on %s %s", w.outcome, w.action, w.objType, w.objID)
			}
		}

		// "Who saw customer X" is one query: views, result sets and changes.
		seen := e.subjectActions(cust.ID)
		for _, a := range []string{"customer.create", "customer.view", "customer.update", "contact.create", "contact.view", "contact.list",
			"contact.update", "contact.delete", "interaction.create", "interaction.update", "interaction.list", "interaction.delete",
			"customer.list", "customer.search", "customer.reveal", "customer.export.page", "share.create", "share.list", "share.revoke", "customer.delete"} {
			if !slices.Contains(seen, a) {
				t.Errorf("the events concerning the customer lack %s: %v", a, seen)
			}
		}
		for _, id := range exported {
			if !slices.Contains(e.subjectActions(id), "customer.export.page") {
				t.Errorf("exported customer %s is not indexed by the export", id)
			}
		}
		if slices.Contains(e.subjectActions(other.ID), "customer.list") {
			t.Error("a customer the status filter left out is indexed by the list")
		}
		imported := e.importedID(t)
		if got := e.subjectActions(imported); !slices.Contains(got, "customer.create") || !slices.Contains(got, "customer.import_related") {
			t.Errorf("imported customer's events: %v", got)
		}

		// Changes carry their values, sealed under the customer's key.
		ev, _ := e.findEvent("customer.update", audit.OK, "customer", cust.ID)
		if f := e.detailFields(ev); !slices.Equal(f, []string{"name", "phones", "status"}) {
			t.Errorf("customer.update fields = %v", f)
		}
		e.wantSealed(ev, `{"name":{"new":"`+covName2+`","old":"`+covName+`"},"phones":{"new":["+86`+covPhone2+`"],"old":["+86`+covPhone+`"]},"status":{"new":"lost","old":"active"}}`)
		ev, _ = e.findEvent("customer.create", audit.OK, "customer", cust.ID)
		e.wantSealed(ev, `{"address":{"new":"`+covAddress+`"},"emails":{"new":["`+covEmail+`"]},"id_number":{"new":"`+covIDNumber+`"},"name":{"new":"`+covName+`"},"notes":{"new":"`+covNotes+`"},"phones":{"new":["+86`+covPhone+`"]}}`)
		ev, _ = e.findEvent("contact.update", audit.OK, "contact", ct.ID)
		e.wantSealed(ev, `{"phones":{"new":["+86`+covCPhone2+`"],"old":["+86`+covCPhone+`"]}}`)
		ev, _ = e.findEvent("contact.delete", audit.OK, "contact", ct.ID)
		e.wantSealed(ev, `{"emails":{"old":["`+covCEmail+`"]},"name":{"old":"`+covContact+`"},"phones":{"old":["+86`+covCPhone2+`"]}}`)
		ev, _ = e.findEvent("interaction.update", audit.OK, "interaction", it.ID)
		e.wantSealed(ev, `{"summary":{"new":"`+covSummary2+`","old":"`+covSummary+`"}}`)
		ev, _ = e.findEvent("customer.delete", audit.OK, "customer", cust.ID)
		if got := e.openSealed(ev); got["name"].(map[string]any)["old"] != covName2 {
			t.Errorf("customer.delete sealed %v", got)
		}
		ev, _ = e.findEvent("customer.reveal", audit.OK, "customer", cust.ID)
		e.wantSealed(ev, `{"reason":"`+covReason+`"}`)
		ev, _ = e.findEvent("customer.import_related", audit.OK, "customer", imported)
		if got, _ := json.Marshal(e.openSealed(ev)); !strings.Contains(string(got), covImportCont) {
			t.Errorf("import_related sealed %s", got)
		}
		// A box opens only as the customer's: not with another customer's key.
		ev, _ = e.findEvent("customer.update", audit.OK, "customer", cust.ID)
		box := e.sealedOf(ev)
		box.Subject = other.ID
		if err := e.n.DB.Read(ctx, func(tx *store.Tx) error {
			dk, err := e.n.Keys.DataKey(ctx, tx, other.ID, 1)
			if err != nil {
				return err
			}
			_, err = audit.Open(seal.GCM{}, dk, box)
			return err
		}); err == nil {
			t.Error("a sealed box opened under another customer's key")
		}

		// Nothing personal in plaintext, anywhere in the table.
		e.noPlaintextInAuditTable(covName, covName2, covPhone, covPhone2, covEmail, covAddress, covIDNumber, covNotes, covContact, covCPhone,
			covCPhone2, covCEmail, covSummary, covSummary2, covReason, covImport, covImportTel, covImportCont, "覆盖测试", "quarterly review")
	})
}

// findEvent returns the last event with action and outcome on the object
// (any object of objType when objID is "").
func (e *env) findEvent(action, outcome, objType, objID string) (store.AuditEvent, bool) {
	e.t.Helper()
	var out store.AuditEvent
	found := false
	err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(e.ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, Action: action, Outcome: outcome, ObjectType: objType, ObjectID: objID, Limit: 1})
		if len(evs) > 0 {
			out, found = evs[0], true
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out, found
}

// subjectActions lists the actions of the events indexed under a customer.
func (e *env) subjectActions(customerID string) []string {
	e.t.Helper()
	var out []string
	err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		evs, err := tx.QueryAudit(e.ctx, store.AuditQuery{Scope: store.AuditScope{All: true}, CustomerID: customerID, Limit: 1000})
		for _, ev := range evs {
			out = append(out, ev.Action)
		}
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return out
}

// importedID is the customer the import created.
func (e *env) importedID(t *testing.T) string {
	t.Helper()
	ev, ok := e.findEvent("customer.import_related", audit.OK, "customer", "")
	if !ok {
		t.Fatal("no import_related event")
	}
	return ev.ObjectID
}

func (e *env) detailFields(ev store.AuditEvent) []string {
	e.t.Helper()
	var d struct {
		Fields []string `json:"fields"`
	}
	if err := json.Unmarshal([]byte(ev.Details), &d); err != nil {
		e.t.Fatal(err)
	}
	return d.Fields
}

func (e *env) sealedOf(ev store.AuditEvent) audit.Sealed {
	e.t.Helper()
	var d struct {
		Personal *audit.Sealed `json:"personal"`
	}
	if err := json.Unmarshal([]byte(ev.Details), &d); err != nil {
		e.t.Fatal(err)
	}
	if d.Personal == nil {
		e.t.Fatalf("%s event %d has no sealed values: %s", ev.Action, ev.Seq, ev.Details)
	}
	return *d.Personal
}

// openSealed opens an event's sealed values with its customer's data key.
func (e *env) openSealed(ev store.AuditEvent) map[string]any {
	e.t.Helper()
	box := e.sealedOf(ev)
	var out map[string]any
	if err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		dk, err := e.n.Keys.DataKey(e.ctx, tx, box.Subject, box.KeyVersion)
		if err != nil {
			return err
		}
		out, err = audit.Open(seal.GCM{}, dk, box)
		return err
	}); err != nil {
		e.t.Fatalf("%s event %d: %v", ev.Action, ev.Seq, err)
	}
	return out
}

// wantSealed checks an event's sealed values against their JSON encoding.
func (e *env) wantSealed(ev store.AuditEvent, want string) {
	e.t.Helper()
	got, err := json.Marshal(e.openSealed(ev))
	if err != nil {
		e.t.Fatal(err)
	}
	if string(got) != want {
		e.t.Errorf("%s sealed values:\n got %s\nwant %s", ev.Action, got, want)
	}
}

// noPlaintextInAuditTable scans every text column of audit_events, and the
// customer index, for the values.
func (e *env) noPlaintextInAuditTable(values ...string) {
	e.t.Helper()
	rows, err := e.rawDB().Query(`SELECT seq, actor, ip, user_agent, action, object_type, object_id, outcome, reason, request_id, details FROM audit_events`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var seq int64
		cols := make([]string, 10)
		ptrs := []any{&seq}
		for i := range cols {
			ptrs = append(ptrs, &cols[i])
		}
		if err := rows.Scan(ptrs...); err != nil {
			e.t.Fatal(err)
		}
		n++
		row := strings.Join(cols, "\x00")
		for _, v := range values {
			if strings.Contains(row, v) {
				e.t.Fatalf("audit event %d holds %q in plaintext: %q", seq, v, row)
			}
		}
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	if n < 40 {
		e.t.Fatalf("only %d audit events scanned", n)
	}
	var subjects string
	if err := e.rawDB().QueryRow(`SELECT COALESCE(` + e.concat() + `, '') FROM audit_subjects`).Scan(&subjects); err != nil {
		e.t.Fatal(err)
	}
	for _, v := range values {
		if strings.Contains(subjects, v) {
			e.t.Fatalf("the customer index holds %q", v)
		}
	}
}

func (e *env) concat() string {
	if e.n.DB.Dialect() == store.Postgres {
		return `string_agg(customer_id, ',')`
	}
	return `group_concat(customer_id, ',')`
}
