package crm_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
)

// The dry run of an import refuses exactly the rows the import refuses,
// writes no customer, and is on record; without the permission it is
// refused and on record.
func TestCheckImportMatchesImport(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		gone := e.user("gone@example.com", "sales")
		if err := e.n.Auth.SetDisabled(e.ctx, audit.Event{Actor: "test"}, gone.UserID, true); err != nil {
			t.Fatal(err)
		}
		rows := []crm.ImportRow{
			{Line: 2, Fields: crm.CustomerFields{Name: str("甲公司"), Phones: strs("13812345678")}},
			{Line: 3, Fields: crm.CustomerFields{Name: str("乙公司"), Phones: strs("nope")}},
			{Line: 4, Fields: crm.CustomerFields{Name: str("")}},
			{Line: 5, Fields: crm.CustomerFields{Name: str("丙公司"), OwnerID: str(e.s1.UserID)}},
			{Line: 6, Fields: crm.CustomerFields{Name: str("丁公司"), OwnerID: str(gone.UserID)}},
			{Line: 7, Fields: crm.CustomerFields{Name: str("戊公司"), OwnerID: str("not-an-id")}},
			{Line: 8, Fields: crm.CustomerFields{Name: str("己公司"), Kind: str("robot")}},
			{Line: 9, Fields: crm.CustomerFields{Name: str("庚公司"), IDNumber: str("11010519491231002X")},
				Contacts: []crm.ContactFields{{Name: str("")}}},
		}
		parseErrs := []crm.RowError{{Line: 10, Msg: "record has 3 fields, header has 2"}}
		check, err := e.n.CRM.CheckImport(e.ctx, e.manager, rows, parseErrs)
		if err != nil {
			t.Fatal(err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{}); len(page.Items) != 0 {
			t.Fatalf("the dry run wrote %d customers", len(page.Items))
		}
		if n := e.auditCount("customer.import_check", audit.OK); n != 1 {
			t.Fatalf("%d check events", n)
		}
		res, err := e.n.CRM.ImportCustomers(e.ctx, e.manager, rows, parseErrs, crm.ImportOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if check.Rows != res.Rows || check.Valid != res.Imported || !slices.Equal(check.Errors, res.Errors) {
			t.Fatalf("check %+v\nimport %+v", check, res)
		}
		if res.Imported == 0 || len(res.Errors) < 5 {
			t.Fatalf("the scenario lost its point: %+v", res)
		}
		if _, err := e.n.CRM.CheckImport(e.ctx, e.s1, rows[:1], nil); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("check by sales: %v", err)
		}
		if n := e.auditCount("customer.import_check", audit.Denied); n != 1 {
			t.Fatalf("%d denied check events", n)
		}
	})
}
