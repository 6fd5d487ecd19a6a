package crm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
)

// The administration pages' reads: accounts with their state, the staff
// directory, the role editor's reads and the share list need their
// permission, and every read and refusal is on record.
func TestAdminPageReads(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		ctx := e.ctx
		// A locked account: as many failed sign-ins as the lockout takes.
		for range 5 {
			if _, err := e.n.Auth.Login(ctx, audit.Event{Actor: "anonymous"}, "s2@example.com", "wrong horse battery"); err == nil {
				t.Fatal("a wrong password signed in")
			}
		}
		if _, err := e.n.Auth.Login(ctx, audit.Event{Actor: "anonymous"}, "s2@example.com", "correct horse battery"); !errors.Is(err, auth.ErrLocked) {
			t.Fatalf("not locked: %v", err)
		}
		if err := e.n.Auth.SetDisabled(ctx, audit.Event{Actor: "test"}, e.support.UserID, true); err != nil {
			t.Fatal(err)
		}

		page, err := e.n.CRM.UserAccounts(ctx, e.admin, crm.UserQuery{})
		if err != nil {
			t.Fatal(err)
		}
		status := map[string]string{}
		for _, u := range page.Items {
			status[u.Email] = u.Status()
			if u.Email == "s2@example.com" && (u.LockedUntil == nil || !u.LockedUntil.After(time.Now())) {
				t.Errorf("locked until %v", u.LockedUntil)
			}
			if u.MFA {
				t.Errorf("%s has no second factor", u.Email)
			}
		}
		want := map[string]string{"admin@example.com": "active", "s1@example.com": "active", "s2@example.com": "locked", "support@example.com": "disabled"}
		for email, st := range want {
			if status[email] != st {
				t.Errorf("%s: %q, want %q", email, status[email], st)
			}
		}
		if e.auditCount("user.list", audit.OK) != 1 {
			t.Error("the list is not on record")
		}

		// Paging and the search.
		p1, err := e.n.CRM.UserAccounts(ctx, e.admin, crm.UserQuery{Limit: 2})
		if err != nil || len(p1.Items) != 2 || p1.Next == "" {
			t.Fatalf("first page %+v %v", p1, err)
		}
		p2, err := e.n.CRM.UserAccounts(ctx, e.admin, crm.UserQuery{Limit: 2, Cursor: p1.Next})
		if err != nil || len(p2.Items) != 2 || p2.Items[0].ID <= p1.Items[1].ID {
			t.Fatalf("second page %+v %v", p2, err)
		}
		found, err := e.n.CRM.UserAccounts(ctx, e.admin, crm.UserQuery{Q: "S2@EXAMPLE"})
		if err != nil || len(found.Items) != 1 || found.Items[0].Email != "s2@example.com" {
			t.Fatalf("search %+v %v", found, err)
		}
		if _, err := e.n.CRM.UserAccounts(ctx, e.admin, crm.UserQuery{Cursor: "x"}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("bad cursor: %v", err)
		}

		one, err := e.n.CRM.UserAccount(ctx, e.admin, e.s2.UserID)
		if err != nil || one.Status() != want["s2@example.com"] {
			t.Fatalf("one account %+v %v", one, err)
		}
		if _, err := e.n.CRM.UserAccount(ctx, e.admin, "01890000-0000-7000-8000-000000000000"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("unknown user: %v", err)
		}

		// Without manage_users: refused and on record.
		if _, err := e.n.CRM.UserAccounts(ctx, e.s1, crm.UserQuery{}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales listed users: %v", err)
		}
		if _, err := e.n.CRM.UserAccount(ctx, e.manager, e.s1.UserID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("manager viewed a user: %v", err)
		}
		if e.auditCount("user.list", audit.Denied) != 1 || e.auditCount("user.view", audit.Denied) != 2 {
			t.Error("refusals not on record")
		}

		// The directory: for whoever shares or administers.
		staff, err := e.n.CRM.Staff(ctx, e.s1)
		if err != nil || len(staff) != 5 {
			t.Fatalf("staff %v %v", staff, err)
		}
		for _, m := range staff {
			if m.Email == "support@example.com" && m.Active {
				t.Error("a disabled user is active in the directory")
			}
		}
		auditor := e.user("auditor@example.com", "auditor")
		if _, err := e.n.CRM.Staff(ctx, auditor); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("auditor read the directory: %v", err)
		}
		if e.auditCount("user.directory", audit.OK) != 1 || e.auditCount("user.directory", audit.Denied) != 1 {
			t.Error("directory reads not on record")
		}

		// The role editor's reads.
		if _, err := e.n.CRM.AdminRoles(ctx, e.s1); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales opened the role editor: %v", err)
		}
		r, roles, err := e.n.CRM.AdminRole(ctx, e.admin, "sales")
		if err != nil || r.Name != "sales" || len(roles) < 8 {
			t.Fatalf("role %+v %d %v", r, len(roles), err)
		}
		if _, _, err := e.n.CRM.AdminRole(ctx, e.admin, "nosuch"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("unknown role: %v", err)
		}
		if e.auditCount("role.list", audit.Denied) != 1 || e.auditCount("role.view", audit.Denied) != 1 {
			t.Error("role editor refusals not on record")
		}

		// Step-up for user actions in an interactive session.
		stale := e.admin
		stale.Interactive, stale.AuthAt = true, time.Now().Add(-time.Hour)
		if err := e.n.CRM.AuthorizeUserAction(ctx, stale, "user.disable", e.s1.UserID); !errors.Is(err, access.ErrStepUp) {
			t.Fatalf("stale session: %v", err)
		}
		if err := e.n.CRM.AuthorizeUserAction(ctx, e.s1, "user.disable", e.s2.UserID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales: %v", err)
		}
		if err := e.n.CRM.AuthorizeUserAction(ctx, e.admin, "user.disable", e.s1.UserID); err != nil {
			t.Fatal(err)
		}
		if e.auditCount("user.disable", audit.Denied) != 2 {
			t.Error("user action refusals not on record")
		}

		// The share list needs the share permission and full reach.
		c := e.create(e.s1, "Shared Customer", nil)
		if _, err := e.n.CRM.CustomerShares(ctx, e.s1, c.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.CustomerShares(ctx, e.s2, c.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("another rep: %v", err)
		}
		fin := e.user("finance@example.com", "finance") // reads every customer, may not share
		if _, err := e.n.CRM.CustomerShares(ctx, fin, c.ID); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("finance: %v", err)
		}
		if _, err := e.n.CRM.CustomerShares(ctx, e.s1, "nope"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("malformed id: %v", err)
		}
		if e.auditCount("share.list", audit.Denied) != 3 {
			t.Errorf("share list refusals: %d", e.auditCount("share.list", audit.Denied))
		}
	})
}
