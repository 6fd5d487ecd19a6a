package crm_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// A ciphertext copied to another customer's row, or to another field of the
// same row, must not open: the AAD binds it to table, record and field, and
// each customer has its own data key.
func TestCiphertextBoundToRecordAndField(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		a := e.create(e.admin, "Alice Example", func(f *crm.CustomerFields) {
			f.Phones, f.Emails = strs("13800138000"), strs("alice@example.com")
		})
		b := e.create(e.admin, "Bob Example", func(f *crm.CustomerFields) { f.Phones = strs("13900139000") })
		c := e.create(e.admin, "Carol Example", nil)
		raw := e.rawDB()
		q := func(s string) string {
			if e.cfg.DB != "" { // PostgreSQL placeholders
				n := 0
				for strings.Contains(s, "?") {
					n++
					s = strings.Replace(s, "?", fmt.Sprintf("$%d", n), 1)
				}
			}
			return s
		}
		// Another customer's row.
		if _, err := raw.Exec(q(`UPDATE customers SET name = (SELECT name FROM customers WHERE id = ?) WHERE id = ?`), a.ID, b.ID); err != nil {
			t.Fatal(err)
		}
		_, err := e.n.CRM.GetCustomer(e.ctx, e.admin, b.ID)
		if !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), "customers/"+b.ID+"/name") {
			t.Fatalf("copied row: err = %v, want ErrOpen naming customers/%s/name", err, b.ID)
		}
		// Another field of the same row (same key, different AAD).
		if _, err := raw.Exec(q(`UPDATE customers SET emails = phones WHERE id = ?`), a.ID); err != nil {
			t.Fatal(err)
		}
		_, err = e.n.CRM.GetCustomer(e.ctx, e.admin, a.ID)
		if !errors.Is(err, seal.ErrOpen) || !strings.Contains(err.Error(), "authentication failed") {
			t.Fatalf("copied field: err = %v", err)
		}
		// The error names where, never what: no plaintext in it.
		for _, secret := range []string{"Alice", "13800138000", "alice@"} {
			if strings.Contains(err.Error(), secret) {
				t.Fatalf("error leaks %q: %v", secret, err)
			}
		}
		// Untouched customers still open.
		if got, err := e.n.CRM.GetCustomer(e.ctx, e.admin, c.ID); err != nil || got.Name != "Carol Example" {
			t.Fatalf("untouched customer: %v %v", got.Name, err)
		}
	})
}

// Search is an index probe: finding one customer among many decrypts only
// the matches, never a scan of the others.
func TestSearchFindsByIndexWithoutScanning(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		// 300 other customers, imported in batches.
		var rows []crm.ImportRow
		for i := range 300 {
			rows = append(rows, crm.ImportRow{Line: i + 2, Fields: crm.CustomerFields{
				Name: str(fmt.Sprintf("Filler Company %03d 有限公司", i)), Phones: strs(fmt.Sprintf("1370000%04d", i)),
				Emails: strs(fmt.Sprintf("filler%d@example.org", i)),
			}})
		}
		if res, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, nil, crm.ImportOptions{}); err != nil || res.Imported != 300 {
			t.Fatalf("import: %+v %v", res, err)
		}
		zsf := e.create(e.admin, "张三丰", func(f *crm.CustomerFields) {
			f.Phones, f.Emails, f.IDNumber = strs("+86 138-0013-8000"), strs("Zhang.SanFeng@Wudang.cn"), str("11010519491231002x")
			f.Kind = str("person")
		})
		zs := e.create(e.admin, "Zhang San", func(f *crm.CustomerFields) { f.Phones = strs("010-6552 9988") })
		decoy := e.create(e.admin, "张三和三丰", nil) // has 张三 and 三丰 but not 张三丰
		cases := []struct {
			q       string
			want    []string
			notWant []string
		}{
			{"13800138000", []string{zsf.ID}, nil},
			{"138 0013 8000", []string{zsf.ID}, nil},
			{"zhang.sanfeng@wudang.cn", []string{zsf.ID}, nil},
			{"ZHANG.SANFENG@WUDANG.CN", []string{zsf.ID}, nil},
			{"11010519491231002X", []string{zsf.ID}, nil},
			{"张三", []string{zsf.ID, decoy.ID}, nil},
			{"三丰", []string{zsf.ID, decoy.ID}, nil},
			{"张三丰", []string{zsf.ID}, []string{decoy.ID}},
			{"zha", []string{zs.ID}, nil},
			{"Zhang S", nil, nil}, // single letter word is too short: refused below
			{"zhang san", []string{zs.ID}, nil},
			{"01065529988", []string{zs.ID}, nil},
		}
		for _, tc := range cases {
			t.Run(tc.q, func(t *testing.T) {
				before := e.cipher.opens.Load()
				page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Q: tc.q})
				if tc.want == nil {
					if err == nil && len(page.Items) > 0 && tc.q == "Zhang S" {
						// "Zhang S": "s" alone is skipped, "zhang" must still match.
						if page.Items[0].ID != zs.ID {
							t.Fatalf("got %v", page.Items[0].Name)
						}
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, c := range page.Items {
					got = append(got, c.ID)
				}
				slices.Sort(got)
				want := slices.Clone(tc.want)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Fatalf("q=%q got %d results %v, want %v", tc.q, len(got), got, want)
				}
				// Decryptions: at most the fields of the candidates (7
				// sealed fields each, plus one false positive for 张三丰).
				opens := e.cipher.opens.Load() - before
				t.Logf("q=%q: %d result(s), %d field decryptions among 303 customers", tc.q, len(got), opens)
				if limit := int64(7 * (len(tc.want) + 1)); opens > limit {
					t.Fatalf("q=%q decrypted %d fields for %d results: a scan, not an index probe", tc.q, opens, len(tc.want))
				}
			})
		}
		if _, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Q: "z"}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("one-letter search: err = %v, want ErrInvalid", err)
		}
	})
}

func ids(cs []crm.Customer) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}

// Two sales users each see only their own customers through every path.
func TestSalesSeeOnlyTheirOwn(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		mine := e.create(e.s1, "李雷的客户", func(f *crm.CustomerFields) { f.Phones = strs("13811112222") })
		theirs := e.create(e.s2, "韩梅梅的客户", func(f *crm.CustomerFields) { f.Phones = strs("13933334444") })
		if mine.OwnerID != e.s1.UserID || theirs.OwnerID != e.s2.UserID {
			t.Fatal("owner not set to creator")
		}
		for _, tc := range []struct {
			name  string
			p     access.Principal
			own   crm.Customer
			other crm.Customer
		}{{"s1", e.s1, mine, theirs}, {"s2", e.s2, theirs, mine}} {
			t.Run(tc.name, func(t *testing.T) {
				page, err := e.n.CRM.ListCustomers(e.ctx, tc.p, crm.ListQuery{})
				if err != nil || !slices.Equal(ids(page.Items), []string{tc.own.ID}) {
					t.Fatalf("list: %v %v", ids(page.Items), err)
				}
				if _, err := e.n.CRM.GetCustomer(e.ctx, tc.p, tc.other.ID); !errors.Is(err, crm.ErrNotFound) {
					t.Fatalf("get other's: %v", err)
				}
				for _, q := range []string{tc.other.Phones[0], tc.other.Name[:3]} {
					page, err := e.n.CRM.ListCustomers(e.ctx, tc.p, crm.ListQuery{Q: q})
					if err != nil {
						t.Fatal(err)
					}
					if slices.Contains(ids(page.Items), tc.other.ID) {
						t.Fatalf("search %q found the other's customer", q)
					}
				}
				name := "hijack"
				if _, err := e.n.CRM.UpdateCustomer(e.ctx, tc.p, tc.other.ID, crm.CustomerFields{Name: &name}, 0); !errors.Is(err, crm.ErrNotFound) {
					t.Fatalf("update other's: %v", err)
				}
				if err := e.n.CRM.DeleteCustomer(e.ctx, tc.p, tc.other.ID); !errors.Is(err, crm.ErrNotFound) {
					t.Fatalf("delete other's: %v", err)
				}
				if _, err := e.n.CRM.ListContacts(e.ctx, tc.p, tc.other.ID); !errors.Is(err, crm.ErrNotFound) {
					t.Fatalf("contacts of other's: %v", err)
				}
				if _, err := e.n.CRM.CreateInteraction(e.ctx, tc.p, tc.other.ID, crm.InteractionFields{Kind: str("call"), Summary: str("x")}); !errors.Is(err, crm.ErrNotFound) {
					t.Fatalf("interaction on other's: %v", err)
				}
				// Sales may not export at all.
				n, err := e.n.CRM.ExportCustomers(e.ctx, tc.p, crm.ListQuery{}, func(crm.Customer) error { return nil })
				if !errors.Is(err, access.ErrDenied) || n != 0 {
					t.Fatalf("export by sales: %d %v", n, err)
				}
				// With the export permission, the export still holds to the scope.
				withExport := tc.p
				withExport.Perms = append(slices.Clone(tc.p.Perms), access.Export)
				var got []string
				if _, err := e.n.CRM.ExportCustomers(e.ctx, withExport, crm.ListQuery{}, func(c crm.Customer) error { got = append(got, c.ID); return nil }); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(got, []string{tc.own.ID}) {
					t.Fatalf("scoped export: %v", got)
				}
			})
		}
		// The other's customer is unchanged, and managers see both.
		page, err := e.n.CRM.ListCustomers(e.ctx, e.manager, crm.ListQuery{})
		if err != nil || len(page.Items) != 2 {
			t.Fatalf("manager list: %d %v", len(page.Items), err)
		}
		for _, c := range page.Items {
			if c.Name == "hijack" {
				t.Fatal("a denied update changed a customer")
			}
		}
		// Every refusal left an audit event.
		if n := e.auditCount("customer.view", audit.Denied); n != 2 {
			t.Fatalf("denied views audited: %d", n)
		}
		if n := e.auditCount("customer.export", audit.Denied); n != 2 {
			t.Fatalf("denied exports audited: %d", n)
		}
	})
}

func TestValidationChangesNothing(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		good := e.create(e.s1, "Valid Name", nil)
		cases := []struct {
			name   string
			f      crm.CustomerFields
			fields []string
		}{
			{"missing name", crm.CustomerFields{}, []string{"name"}},
			{"bad phone", crm.CustomerFields{Name: str("X Corp"), Phones: strs("12345SECRET")}, []string{"phones[0]"}},
			{"bad email", crm.CustomerFields{Name: str("X Corp"), Emails: strs("secret-at-example")}, []string{"emails[0]"}},
			{"bad id checksum", crm.CustomerFields{Name: str("X Corp"), IDNumber: str("110105194912310021")}, []string{"id_number"}},
			{"bad kind", crm.CustomerFields{Name: str("X Corp"), Kind: str("alien")}, []string{"kind"}},
			{"control chars", crm.CustomerFields{Name: str("X\x00Corp")}, []string{"name"}},
			{"bad utf8", crm.CustomerFields{Name: str("X\xffCorp")}, []string{"name"}},
			{"bad level code", crm.CustomerFields{Name: str("X Corp"), Level: str("VIP!!")}, []string{"level"}},
			{"several", crm.CustomerFields{Name: str(""), Phones: strs("x"), Emails: strs("y")}, []string{"name", "phones[0]", "emails[0]"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				_, err := e.n.CRM.CreateCustomer(e.ctx, e.s1, tc.f)
				var ve *crm.ValidationError
				if !errors.As(err, &ve) {
					t.Fatalf("err = %v, want a ValidationError", err)
				}
				var got []string
				for _, f := range ve.Fields {
					got = append(got, f.Field)
					for _, secret := range []string{"SECRET", "secret-at", "194912310021", "alien"} {
						if strings.Contains(f.Message, secret) {
							t.Fatalf("message echoes the value: %q", f.Message)
						}
					}
				}
				if !slices.Equal(got, tc.fields) {
					t.Fatalf("fields %v, want %v", got, tc.fields)
				}
				// The same input as a patch (by the admin, who may edit every
				// field) changes nothing either.
				if tc.f.Name != nil && *tc.f.Name != "" {
					if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.admin, good.ID, tc.f, 0); !errors.As(err, &ve) {
						t.Fatalf("patch: %v", err)
					}
				}
			})
		}
		page, _ := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{})
		if len(page.Items) != 1 || page.Items[0].Version != 1 || page.Items[0].Name != "Valid Name" {
			t.Fatalf("state changed: %+v", page.Items)
		}
	})
}

func TestUpdateDeleteAndConcurrency(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		c := e.create(e.s1, "Acme 公司", func(f *crm.CustomerFields) { f.Phones = strs("13800000001") })
		up, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, c.ID, crm.CustomerFields{Phones: strs("13800000002"), Tags: strs("VIP", "华东区")}, c.Version)
		if err != nil || up.Version != 2 || up.Phone != "+8613800000002" || !slices.Equal(up.Tags, []string{"vip", "华东区"}) {
			t.Fatalf("update: %+v %v", up, err)
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, c.ID, crm.CustomerFields{Name: str("Stale")}, 1); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("stale update: %v", err)
		}
		// The search index follows the change.
		for q, want := range map[string]int{"13800000001": 0, "13800000002": 1} {
			page, err := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{Q: q})
			if err != nil || len(page.Items) != want {
				t.Fatalf("search %s: %d %v", q, len(page.Items), err)
			}
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{Tag: "VIP"}); len(page.Items) != 1 {
			t.Fatalf("tag filter: %d", len(page.Items))
		}
		// Sales may not hand a customer to someone else.
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, c.ID, crm.CustomerFields{OwnerID: &e.s2.UserID}, 0); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("reassign by sales: %v", err)
		}
		// A manager may.
		moved, err := e.n.CRM.UpdateCustomer(e.ctx, e.manager, c.ID, crm.CustomerFields{OwnerID: &e.s2.UserID}, 0)
		if err != nil || moved.OwnerID != e.s2.UserID {
			t.Fatalf("reassign by manager: %v", err)
		}
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s1, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("old owner still sees it: %v", err)
		}
		// Support cannot delete.
		if err := e.n.CRM.DeleteCustomer(e.ctx, e.support, c.ID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("support delete: %v", err)
		}
		if err := e.n.CRM.DeleteCustomer(e.ctx, e.s2, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.admin, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("deleted customer still visible: %v", err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Q: "13800000002"}); len(page.Items) != 0 {
			t.Fatal("deleted customer still found by search")
		}
	})
}

func TestContactsAndInteractions(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		c := e.create(e.s1, "深圳市华信达电子有限公司", nil)
		ct, err := e.n.CRM.CreateContact(e.ctx, e.s1, c.ID, crm.ContactFields{Name: str("王总"), Title: str("总经理"), Phones: strs("13712345678")})
		if err != nil {
			t.Fatal(err)
		}
		// The customer is found by its contact's phone.
		page, err := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{Q: "137 1234 5678"})
		if err != nil || len(page.Items) != 1 || page.Items[0].ID != c.ID {
			t.Fatalf("search by contact phone: %v %v", page.Items, err)
		}
		it, err := e.n.CRM.CreateInteraction(e.ctx, e.s1, c.ID, crm.InteractionFields{Kind: str("visit"), Summary: str("拜访王总，客户对报价比较敏感"), NextFollowUp: str("2026-12-01"), ContactID: &ct.ID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.CreateInteraction(e.ctx, e.s1, c.ID, crm.InteractionFields{Kind: str("dance"), Summary: str("x"), NextFollowUp: str("tomorrow")}); err == nil {
			t.Fatal("bad interaction accepted")
		}
		list, err := e.n.CRM.ListInteractions(e.ctx, e.s1, c.ID)
		if err != nil || len(list) != 1 || list[0].Summary != "拜访王总，客户对报价比较敏感" || list[0].ContactID != ct.ID {
			t.Fatalf("timeline: %+v %v", list, err)
		}
		if _, err := e.n.CRM.ListInteractions(e.ctx, e.s2, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("other sales sees timeline: %v", err)
		}
		if _, err := e.n.CRM.GetContact(e.ctx, e.s2, ct.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("other sales sees contact: %v", err)
		}
		if _, err := e.n.CRM.UpdateInteraction(e.ctx, e.s1, it.ID, crm.InteractionFields{Summary: str("改")}, it.Version); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.DeleteContact(e.ctx, e.s1, ct.ID); err != nil {
			t.Fatal(err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{Q: "13712345678"}); len(page.Items) != 0 {
			t.Fatal("deleted contact's phone still finds the customer")
		}
	})
}

func TestImportAtomicAndPartial(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		rows := []crm.ImportRow{
			{Line: 2, Fields: crm.CustomerFields{Name: str("甲公司")}},
			{Line: 3, Fields: crm.CustomerFields{Name: str("乙公司"), Phones: strs("nope")}},
			{Line: 4, Fields: crm.CustomerFields{Name: str("丙公司")}},
		}
		parseErrs := []crm.RowError{{Line: 5, Msg: "wrong number of fields"}}
		res, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, parseErrs, crm.ImportOptions{Atomic: true})
		if err != nil || res.Imported != 0 || len(res.Errors) != 2 {
			t.Fatalf("atomic: %+v %v", res, err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{}); len(page.Items) != 0 {
			t.Fatal("atomic import with errors wrote rows")
		}
		res, err = e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, parseErrs, crm.ImportOptions{})
		if err != nil || res.Imported != 2 || len(res.Errors) != 2 || res.Errors[1].Line != 3 || !strings.HasPrefix(res.Errors[1].Msg, "phones[0]") {
			t.Fatalf("partial: %+v %v", res, err)
		}
		if _, err := e.n.CRM.ImportCustomers(e.ctx, e.s1, rows[:1], nil, crm.ImportOptions{}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("import by sales: %v", err)
		}
	})
}

func TestPagination(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		var rows []crm.ImportRow
		for i := range 23 {
			rows = append(rows, crm.ImportRow{Line: i, Fields: crm.CustomerFields{Name: str(fmt.Sprintf("Customer %02d", i))}})
		}
		if _, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, nil, crm.ImportOptions{}); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		cursor, pages := "", 0
		for {
			page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Limit: 10, Cursor: cursor})
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, c := range page.Items {
				if seen[c.ID] {
					t.Fatalf("duplicate %s", c.ID)
				}
				seen[c.ID] = true
			}
			if page.Next == "" {
				break
			}
			cursor = page.Next
		}
		if len(seen) != 23 || pages != 3 {
			t.Fatalf("saw %d in %d pages", len(seen), pages)
		}
		for _, bad := range []crm.ListQuery{{Cursor: "!!"}, {Cursor: "YWJj"}, {Limit: 500}, {Limit: -1}, {Status: "Not A Code"}, {OwnerID: "x"}} {
			if _, err := e.n.CRM.ListCustomers(e.ctx, e.admin, bad); !errors.Is(err, crm.ErrInvalid) {
				t.Fatalf("%+v: err = %v", bad, err)
			}
		}
	})
}

// An export is on record before rows leave: a caller that stops after the
// first row (a client hanging up) still leaves events naming what it got.
func TestExportIsAuditedBeforeRowsLeave(t *testing.T) {
	e := newEnv(t, "sqlite", crm.Options{})
	for i := range 3 {
		e.create(e.admin, fmt.Sprintf("Export %d", i), nil)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	var got []string
	_, err := e.n.CRM.ExportCustomers(ctx, e.admin, crm.ListQuery{}, func(c crm.Customer) error {
		got = append(got, c.ID)
		cancel() // the client goes away after one row
		return ctx.Err()
	})
	if err == nil || len(got) != 1 {
		t.Fatalf("err %v, rows %d", err, len(got))
	}
	var pageIDs []string
	var final []store.AuditEvent
	_ = e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		evs, err := tx.AuditEvents(e.ctx, 0, 1000)
		for _, ev := range evs {
			switch ev.Action {
			case "customer.export.page":
				var d struct {
					IDs []string `json:"ids"`
				}
				_ = json.Unmarshal([]byte(ev.Details), &d)
				pageIDs = append(pageIDs, d.IDs...)
			case "customer.export":
				final = append(final, ev)
			}
		}
		return err
	})
	if !slices.Contains(pageIDs, got[0]) {
		t.Fatalf("the row that left (%s) is not named by any export event: %v", got[0], pageIDs)
	}
	if len(final) != 1 || final[0].Outcome != audit.Failed {
		t.Fatalf("final export event: %+v", final)
	}
}

// A row whose owner is disabled is reported with its line; the other rows are
// imported (no batch is lost).
func TestImportReportsDisabledOwnerByLine(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		if err := e.n.Auth.SetDisabled(e.ctx, audit.Event{Actor: "test"}, e.s2.UserID, true); err != nil {
			t.Fatal(err)
		}
		var rows []crm.ImportRow
		for i := range 450 {
			f := crm.CustomerFields{Name: str(fmt.Sprintf("Row %d", i)), OwnerID: &e.s1.UserID}
			if i == 299 {
				f.OwnerID = &e.s2.UserID
			}
			rows = append(rows, crm.ImportRow{Line: i + 2, Fields: f})
		}
		res, err := e.n.CRM.ImportCustomers(e.ctx, e.admin, rows, nil, crm.ImportOptions{})
		if err != nil || res.Imported != 449 || len(res.Errors) != 1 || res.Errors[0].Line != 301 || !strings.Contains(res.Errors[0].Msg, "owner_id") {
			t.Fatalf("import: %+v %v", res, err)
		}
		// Malformed ids are a validation error, not a database error (a NUL
		// is refused by PostgreSQL's text type).
		bad := "\x00"
		if _, err := e.n.CRM.CreateCustomer(e.ctx, e.admin, crm.CustomerFields{Name: str("X"), OwnerID: &bad}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("NUL owner: %v", err)
		}
		c := e.create(e.s1, "Has interactions", nil)
		if _, err := e.n.CRM.CreateInteraction(e.ctx, e.s1, c.ID, crm.InteractionFields{Kind: str("call"), Summary: str("x"), ContactID: &bad}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("NUL contact: %v", err)
		}
	})
}
