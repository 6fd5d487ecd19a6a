package crm_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// clockEngines runs f on SQLite and PostgreSQL with a settable clock that
// starts at 2026-03-02 09:00 Asia/Shanghai.
func clockEngines(t *testing.T, f func(t *testing.T, e *env, c *clock)) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			c := &clock{t: time.Date(2026, 3, 2, 1, 0, 0, 0, time.UTC)}
			f(t, newEnv(t, engine, crm.Options{Now: c.now}), c)
		})
	}
}

// principal re-resolves p as it would be on its next request.
func (e *env) again(p access.Principal) access.Principal {
	e.t.Helper()
	q, err := e.n.CRM.Principal(e.ctx, access.Subject{UserID: p.UserID, Actor: p.Actor, Role: e.roleOf(p.UserID)})
	if err != nil {
		e.t.Fatal(err)
	}
	return q
}

func (e *env) roleOf(userID string) string {
	e.t.Helper()
	var role string
	if err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(e.ctx, userID)
		role = u.Role
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return role
}

func (e *env) alerts(rule string) []store.Alert {
	e.t.Helper()
	var out []store.Alert
	if err := e.n.DB.Read(e.ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Alerts(e.ctx, rule, 0)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return out
}

func (e *env) mk(p access.Principal, name, phone string, owner *string) crm.Customer {
	e.t.Helper()
	c, err := e.n.CRM.CreateCustomer(e.ctx, p, crm.CustomerFields{Name: str(name), Phones: strs(phone), Emails: strs("li@example.com"), OwnerID: owner})
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

var op = access.Operator("test")

func TestRevealQuota(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		cust := e.mk(e.admin, "王五金属", "13912345678", str(e.s1.UserID))
		// Support sees the phone masked, and nothing else leaks.
		got, err := e.n.CRM.GetCustomer(e.ctx, e.support, cust.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Phone != "139****5678" || !slices.Contains(got.MaskedFields, "phone") || strings.Contains(got.Email, "li@") {
			t.Fatalf("support view: phone %q email %q masked %v", got.Phone, got.Email, got.MaskedFields)
		}
		for i := 1; i <= 50; i++ {
			r, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "phone", "customer called back about ticket 17")
			if err != nil {
				t.Fatalf("reveal %d: %v", i, err)
			}
			if r.Value != "+8613912345678" || r.Remaining != 50-i {
				t.Fatalf("reveal %d = %+v", i, r)
			}
			c.add(time.Minute)
		}
		// The 51st reveal of the day is refused and raises one alert.
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "phone", "one more"); !errors.Is(err, crm.ErrQuota) {
			t.Fatalf("51st reveal: %v, want ErrQuota", err)
		}
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "email", "and another"); !errors.Is(err, crm.ErrQuota) {
			t.Fatalf("52nd reveal: %v, want ErrQuota", err)
		}
		alerts := e.alerts(monitor.RuleRevealQuota)
		if len(alerts) != 1 || alerts[0].ActorID != e.support.UserID || alerts[0].Severity != monitor.High || alerts[0].Evidence == "[]" {
			t.Fatalf("alerts = %+v, want one for the support user with evidence", alerts)
		}
		denied := e.countAudit("customer.reveal", "denied")
		ok := e.countAudit("customer.reveal", "ok")
		if denied != 2 || ok != 50 {
			t.Fatalf("audit: %d ok, %d denied reveals", ok, denied)
		}
		// Neither the value nor the reason is in the audit trail in plaintext.
		e.noPlaintextInAudit("13912345678", "ticket 17", "li@example.com")
		// The next day (Asia/Shanghai midnight) the quota starts again.
		c.add(24 * time.Hour)
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "phone", "next day"); err != nil {
			t.Fatalf("reveal the next day: %v", err)
		}
		// Reveal is for masked fields: a readable field and a hidden one are refused.
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "name", "x"); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("reveal of a readable field: %v", err)
		}
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "id_number", "x"); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("reveal of a hidden field: %v", err)
		}
		if _, err := e.n.CRM.RevealField(e.ctx, e.support, cust.ID, "phone", "  "); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("reveal without a reason: %v", err)
		}
		// A sales rep who cannot see the customer gets not-found, not a reveal.
		if _, err := e.n.CRM.RevealField(e.ctx, e.s2, cust.ID, "phone", "curious"); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("reveal by an outsider: %v", err)
		}
	})
}

func (e *env) countAudit(action, outcome string) int {
	e.t.Helper()
	var n int
	if err := e.rawDB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE action = `+e.ph(1)+` AND outcome = `+e.ph(2), action, outcome).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *env) ph(i int) string {
	if e.n.DB.Dialect() == store.Postgres {
		return "$" + string(rune('0'+i))
	}
	return "?"
}

func (e *env) noPlaintextInAudit(values ...string) {
	e.t.Helper()
	rows, err := e.rawDB().Query(`SELECT details || reason FROM audit_events`)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var d string
		if err := rows.Scan(&d); err != nil {
			e.t.Fatal(err)
		}
		for _, v := range values {
			if strings.Contains(d, v) {
				e.t.Fatalf("audit details hold %q: %s", v, d)
			}
		}
	}
}

func TestSharesAndGrantsExpireAtOnce(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		cust := e.mk(e.s1, "共享测试公司", "13912340001", nil)
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s2, cust.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("peer before the share: %v", err)
		}
		exp := c.now().Add(time.Hour)
		if _, err := e.n.CRM.ShareCustomer(e.ctx, e.s2, cust.ID, crm.ShareInput{Role: "sales"}); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("sharing someone else's customer: %v", err)
		}
		sh, err := e.n.CRM.ShareCustomer(e.ctx, e.s1, cust.ID, crm.ShareInput{UserID: e.s2.UserID, Level: "read", ExpiresAt: &exp})
		if err != nil {
			t.Fatal(err)
		}
		got, err := e.n.CRM.GetCustomer(e.ctx, e.s2, cust.ID)
		if err != nil || got.Access != "shared-read" || got.Phone != "+8613912340001" {
			t.Fatalf("shared view: %+v %v", got, err)
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s2, cust.ID, crm.CustomerFields{Notes: str("mine now")}, 0); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("update through a read share: %v", err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.s2, crm.ListQuery{}); len(page.Items) != 1 {
			t.Fatalf("peer list with the share: %d", len(page.Items))
		}
		// An hour and a second later the share is over, with no job run.
		c.add(time.Hour + time.Second)
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s2, cust.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("after expiry: %v", err)
		}
		if page, _ := e.n.CRM.ListCustomers(e.ctx, e.s2, crm.ListQuery{}); len(page.Items) != 0 {
			t.Fatalf("peer list after expiry: %d", len(page.Items))
		}
		if n, _ := e.n.CRM.CountCustomers(e.ctx, e.s2, crm.ListQuery{Q: "共享"}); n != 0 {
			t.Fatalf("peer count after expiry: %d", n)
		}
		// A share to a role; revoked, it ends.
		sh2, err := e.n.CRM.ShareCustomer(e.ctx, e.s1, cust.ID, crm.ShareInput{Role: "support", Level: "edit"})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.RevokeShare(e.ctx, e.s2, sh2.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("revoke by an outsider: %v", err)
		}
		if err := e.n.CRM.RevokeShare(e.ctx, e.s1, sh.ID); err != nil && !errors.Is(err, crm.ErrNotFound) {
			t.Fatal(err)
		}
		// A temporary grant of export ends by itself.
		if _, err := e.n.CRM.ExportCustomers(e.ctx, e.s1, crm.ListQuery{}, func(crm.Customer) error { return nil }); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales export: %v", err)
		}
		if _, err := e.n.CRM.CreateGrant(e.ctx, e.s1, e.s1.UserID, "export", "self", c.now().Add(time.Hour)); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("a rep granting themselves: %v", err)
		}
		if _, err := e.n.CRM.CreateGrant(e.ctx, e.admin, e.s1.UserID, "export", "quarterly report", c.now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		n, err := e.n.CRM.ExportCustomers(e.ctx, e.again(e.s1), crm.ListQuery{}, func(crm.Customer) error { return nil })
		if err != nil || n != 1 {
			t.Fatalf("export with the grant: %d %v", n, err)
		}
		c.add(time.Hour + time.Second)
		if _, err := e.n.CRM.ExportCustomers(e.ctx, e.again(e.s1), crm.ListQuery{}, func(crm.Customer) error { return nil }); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("export after the grant expired: %v", err)
		}
		e.noPlaintextInAudit("quarterly report")
	})
}

func TestHiddenCustomersVanishEverywhere(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		cust := e.mk(e.s1, "隐藏客户公司", "13912340002", nil)
		other := e.mk(e.s1, "普通客户公司", "13912340003", nil)
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, cust.ID, crm.CustomerFields{Hidden: ptr(true)}, 0); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales hiding: %v", err)
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.admin, cust.ID, crm.CustomerFields{Hidden: ptr(true)}, 0); err != nil {
			t.Fatal(err)
		}
		// The owner: 404 by id, absent from list, search, count, export.
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s1, cust.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("owner get hidden: %v", err)
		}
		for _, q := range []crm.ListQuery{{}, {Q: "隐藏"}, {Q: "13912340002"}} {
			page, err := e.n.CRM.ListCustomers(e.ctx, e.s1, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, c := range page.Items {
				if c.ID == cust.ID {
					t.Fatalf("hidden customer listed for %+v", q)
				}
			}
			if n, _ := e.n.CRM.CountCustomers(e.ctx, e.s1, q); n != len(page.Items) {
				t.Fatalf("count %d, list %d for %+v", n, len(page.Items), q)
			}
		}
		var exported []string
		withExport := e.s1
		withExport.Perms = append(slices.Clone(withExport.Perms), access.Export)
		if _, err := e.n.CRM.ExportCustomers(e.ctx, withExport, crm.ListQuery{}, func(c crm.Customer) error { exported = append(exported, c.ID); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(exported, []string{other.ID}) {
			t.Fatalf("export = %v", exported)
		}
		if _, err := e.n.CRM.ListCustomers(e.ctx, e.s1, crm.ListQuery{Hidden: "only"}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("hidden filter without view_hidden: %v", err)
		}
		// Permitted principals find it through the filter, not by default.
		page, _ := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{})
		if slices.ContainsFunc(page.Items, func(c crm.Customer) bool { return c.ID == cust.ID }) {
			t.Fatal("hidden customer in the admin's default list")
		}
		page, _ = e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{Hidden: "only"})
		if len(page.Items) != 1 || page.Items[0].ID != cust.ID || !page.Items[0].Hidden {
			t.Fatalf("hidden=only: %+v", page.Items)
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.admin, cust.ID, crm.CustomerFields{Hidden: ptr(false)}, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s1, cust.ID); err != nil {
			t.Fatalf("owner after unhide: %v", err)
		}
	})
}

func ptr[T any](v T) *T { return &v }

func TestPoolClaimLimitsAndReturn(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		if _, err := e.n.CRM.UpdateRole(e.ctx, op, "sales", crm.RoleInput{ClaimDaily: ptr(2), MaxOwned: ptr(3), ClaimCooldownDays: ptr(7)}); err != nil {
			t.Fatal(err)
		}
		s1 := e.again(e.s1)
		var pool []crm.Customer
		for i := range 4 {
			pool = append(pool, e.mk(e.admin, "公海客户"+string(rune('甲'+i)), "1391234001"+string(rune('0'+i)), str("")))
		}
		// Pool customers: listed for reps, contact fields masked until claimed.
		page, err := e.n.CRM.ListCustomers(e.ctx, s1, crm.ListQuery{Pool: true})
		if err != nil || len(page.Items) != 4 {
			t.Fatalf("pool list: %d %v", len(page.Items), err)
		}
		for _, pc := range page.Items {
			if pc.Access != "pool" || !strings.Contains(pc.Phone, "****") || pc.Notes != "" {
				t.Fatalf("pool view: %+v", pc)
			}
		}
		if _, err := e.n.CRM.ListCustomers(e.ctx, s1, crm.ListQuery{Pool: true, Q: "13912340010"}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("phone search in the pool: %v", err)
		}
		if _, err := e.n.CRM.RevealField(e.ctx, s1, pool[0].ID, "phone", "x"); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("reveal in the pool: %v", err)
		}
		for i := range 2 {
			got, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[i].ID)
			if err != nil || got.OwnerID != s1.UserID || got.Phone == "" || strings.Contains(got.Phone, "*") {
				t.Fatalf("claim %d: %+v %v", i, got, err)
			}
		}
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[2].ID); !errors.Is(err, crm.ErrQuota) {
			t.Fatalf("third claim of the day: %v", err)
		}
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[0].ID); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("claiming an owned customer: %v", err)
		}
		// Released, the customer cannot be claimed back for the cooldown.
		if err := e.n.CRM.ReleaseCustomer(e.ctx, s1, pool[0].ID); err != nil {
			t.Fatal(err)
		}
		c.add(24 * time.Hour)
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[0].ID); !errors.Is(err, crm.ErrQuota) {
			t.Fatalf("claim within the cooldown: %v", err)
		}
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, e.again(e.s2), pool[0].ID); err != nil {
			t.Fatalf("a peer claims it: %v", err)
		}
		// Owned cap: s1 owns 1; claims two more, the fourth is refused.
		c.add(24 * time.Hour)
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[2].ID); err != nil {
			t.Fatal(err)
		}
		e.mk(e.admin, "另一个公司", "13912340020", str(s1.UserID))
		if _, err := e.n.CRM.ClaimCustomer(e.ctx, s1, pool[3].ID); !errors.Is(err, crm.ErrQuota) {
			t.Fatalf("claim over the owned cap: %v", err)
		}
		// Automatic return: 30 days without activity, warned 3 days before.
		if _, err := e.n.CRM.SetSetting(e.ctx, op, "pool.return_days", "30"); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.SetSetting(e.ctx, op, "pool.return_days.A", "90"); err != nil {
			t.Fatal(err)
		}
		vip := e.mk(e.admin, "重要客户", "13912340021", str(e.s2.UserID))
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.admin, vip.ID, crm.CustomerFields{Level: str("A")}, 0); err != nil {
			t.Fatal(err)
		}
		c.add(27*24*time.Hour + time.Minute)
		rep, err := e.n.CRM.SweepPool(e.ctx)
		if err != nil || rep.Warned == 0 || rep.Returned != 0 {
			t.Fatalf("sweep at day 27: %+v %v", rep, err)
		}
		if len(e.alerts(monitor.RulePoolReturnScheduled)) != rep.Warned {
			t.Fatalf("warnings without alerts")
		}
		// A follow-up restarts one customer's clock.
		if _, err := e.n.CRM.CreateInteraction(e.ctx, s1, pool[2].ID, crm.InteractionFields{Kind: str("call"), Summary: str("回访")}); err != nil {
			t.Fatal(err)
		}
		c.add(4 * 24 * time.Hour)
		rep, err = e.n.CRM.SweepPool(e.ctx)
		if err != nil || rep.Returned == 0 {
			t.Fatalf("sweep at day 31: %+v %v", rep, err)
		}
		owner := func(id string) string {
			got, err := e.n.CRM.GetCustomer(e.ctx, e.admin, id)
			if err != nil {
				t.Fatal(err)
			}
			return got.OwnerID
		}
		if owner(pool[1].ID) != "" || owner(pool[2].ID) != s1.UserID || owner(vip.ID) != e.s2.UserID {
			t.Fatalf("after the sweep: dormant %q, followed-up %q, level A %q", owner(pool[1].ID), owner(pool[2].ID), owner(vip.ID))
		}
	})
}

func TestStrictSeparationAndSelfGrants(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		e.mk(e.s1, "分离测试公司", "13912340030", nil)
		if page, err := e.n.CRM.ListCustomers(e.ctx, e.admin, crm.ListQuery{}); err != nil || len(page.Items) != 1 {
			t.Fatalf("admin without strict separation: %v", err)
		}
		if _, err := e.n.CRM.SetSetting(e.ctx, e.manager, "strict_separation", "on"); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("a manager setting strict separation: %v", err)
		}
		if _, err := e.n.CRM.SetSetting(e.ctx, op, "strict_separation", "on"); err != nil {
			t.Fatal(err)
		}
		admin := e.again(e.admin)
		if _, err := e.n.CRM.ListCustomers(e.ctx, admin, crm.ListQuery{}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("admin under strict separation lists: %v", err)
		}
		if _, err := e.n.CRM.SetSetting(e.ctx, admin, "strict_separation", "off"); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("admin turning separation off: %v", err)
		}
		// The admin still manages users and roles; giving themselves data
		// access is possible, useless under separation, and alerted.
		if _, err := e.n.CRM.CreateGrant(e.ctx, admin, admin.UserID, "read", "look at one customer", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.ListCustomers(e.ctx, e.again(e.admin), crm.ListQuery{}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("admin with a self-grant under separation: %v", err)
		}
		if len(e.alerts(monitor.RuleSelfGrant)) != 1 {
			t.Fatalf("self-grant alerts: %d", len(e.alerts(monitor.RuleSelfGrant)))
		}
		if err := e.n.CRM.SetUserRole(e.ctx, admin, admin.UserID, "sales_director"); err != nil {
			t.Fatal(err)
		}
		if len(e.alerts(monitor.RuleSelfGrant)) != 2 {
			t.Fatal("no alert for an administrator moving to a data role")
		}
		// A security officer turns separation off: alerted.
		so := e.user("so@example.com", "security_officer")
		if _, err := e.n.CRM.SetSetting(e.ctx, so, "strict_separation", "off"); err != nil {
			t.Fatal(err)
		}
		if len(e.alerts(monitor.RuleSeparationDisabled)) != 1 {
			t.Fatal("no alert for disabling strict separation")
		}
		// Role changes apply from the next request: s2 becomes support.
		if err := e.n.CRM.SetUserRole(e.ctx, op, e.s2.UserID, "support"); err != nil {
			t.Fatal(err)
		}
		page, err := e.n.CRM.ListCustomers(e.ctx, e.again(e.s2), crm.ListQuery{})
		if err != nil || len(page.Items) != 1 || !strings.Contains(page.Items[0].Phone, "****") {
			t.Fatalf("s2 as support: %+v %v", page.Items, err)
		}
		// Editing the support role's field policy applies at once too.
		if _, err := e.n.CRM.UpdateRole(e.ctx, op, "support", crm.RoleInput{Fields: &map[string]string{"phone": "read"}}); err != nil {
			t.Fatal(err)
		}
		page, _ = e.n.CRM.ListCustomers(e.ctx, e.again(e.s2), crm.ListQuery{})
		if page.Items[0].Phone != "+8613912340030" {
			t.Fatalf("after the policy change: %q", page.Items[0].Phone)
		}
	})
}

func TestRolesAreData(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for _, bad := range []struct {
			name string
			in   crm.RoleInput
		}{
			{"Bad Name", crm.RoleInput{}},
			{"east", crm.RoleInput{Parent: str("nowhere")}},
			{"east", crm.RoleInput{Permissions: strs("read", "fly")}},
			{"east", crm.RoleInput{Fields: &map[string]string{"salary": "read"}}},
			{"east", crm.RoleInput{RevealQuota: ptr(-1)}},
		} {
			if _, err := e.n.CRM.CreateRole(e.ctx, op, bad.name, "", bad.in); !errors.Is(err, crm.ErrInvalid) {
				t.Errorf("CreateRole(%s, %+v): %v", bad.name, bad.in, err)
			}
		}
		if _, err := e.n.CRM.CreateRole(e.ctx, e.manager, "east", "sales", crm.RoleInput{}); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("manager creating a role: %v", err)
		}
		east, err := e.n.CRM.CreateRole(e.ctx, op, "manager_east", "manager", crm.RoleInput{Label: str("East manager")})
		if err != nil || east.Parent != "sales_director" || east.Template {
			t.Fatalf("create: %+v %v", east, err)
		}
		if _, err := e.n.CRM.CreateRole(e.ctx, op, "sales_east", "sales", crm.RoleInput{Parent: str("manager_east")}); err != nil {
			t.Fatal(err)
		}
		// A cycle is refused and changes nothing.
		if _, err := e.n.CRM.UpdateRole(e.ctx, op, "manager_east", crm.RoleInput{Parent: str("sales_east")}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("cycle: %v", err)
		}
		if r, _ := e.n.CRM.GetRole(e.ctx, op, "manager_east"); r.Parent != "sales_director" || !slices.Equal(r.Below, []string{"sales_east"}) {
			t.Fatalf("after the refused cycle: %+v", r)
		}
		// The east manager sees the east rep's customers, not the other reps'.
		me := e.user("me@example.com", "manager_east")
		re := e.user("re@example.com", "sales_east")
		mine := e.mk(re, "东区客户", "13912340040", nil)
		theirs := e.mk(e.s1, "西区客户", "13912340041", nil)
		if _, err := e.n.CRM.GetCustomer(e.ctx, me, mine.ID); err != nil {
			t.Fatalf("east manager, east rep's customer: %v", err)
		}
		if _, err := e.n.CRM.GetCustomer(e.ctx, me, theirs.ID); !errors.Is(err, crm.ErrNotFound) {
			t.Fatalf("east manager, west rep's customer: %v", err)
		}
		// The manager assigns within the team, not outside it.
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, me, mine.ID, crm.CustomerFields{OwnerID: str(e.s1.UserID)}, 0); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("assigning outside the team: %v", err)
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, me, mine.ID, crm.CustomerFields{OwnerID: str(me.UserID)}, 0); err != nil {
			t.Fatalf("assigning to oneself: %v", err)
		}
		if err := e.n.CRM.DeleteRole(e.ctx, op, "manager_east"); !errors.Is(err, crm.ErrConflict) {
			t.Fatalf("deleting a held role: %v", err)
		}
	})
}

func TestOffboardHandsOverEverything(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		for i := range 5 {
			e.mk(e.s1, "离职交接客户"+string(rune('甲'+i)), "1391234005"+string(rune('0'+i)), nil)
		}
		other := e.mk(e.s2, "同事客户", "13912340060", nil)
		if _, err := e.n.CRM.ShareCustomer(e.ctx, e.s2, other.ID, crm.ShareInput{UserID: e.s1.UserID}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.CreateGrant(e.ctx, op, e.s1.UserID, "export", "report", time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.n.Auth.CreateToken(e.ctx, audit.Event{Actor: "test"}, e.s1.UserID, "laptop", 0); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.Offboard(e.ctx, e.manager, e.s1.UserID, e.s2.UserID, false); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("offboard by a manager: %v", err)
		}
		if _, err := e.n.CRM.Offboard(e.ctx, op, e.s1.UserID, e.s2.UserID, true); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("both successor and pool: %v", err)
		}
		rep, err := e.n.CRM.Offboard(e.ctx, op, e.s1.UserID, e.s2.UserID, false)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Customers != 5 || rep.SharesRevoked != 1 || rep.GrantsRevoked != 1 || rep.TokensRevoked != 1 {
			t.Fatalf("report %+v", rep)
		}
		n, err := e.n.CRM.CountCustomers(e.ctx, e.again(e.s2), crm.ListQuery{})
		if err != nil || n != 6 {
			t.Fatalf("successor owns %d: %v", n, err)
		}
		if u, _ := e.n.Auth.GetUser(e.ctx, e.s1.UserID); !u.Disabled {
			t.Fatal("offboarded user still enabled")
		}
		if e.countAudit("customer.handover", "ok") != 5 {
			t.Fatal("handover not audited per customer")
		}
	})
}

// Findings of the review, each a way around a rule: no-op writes that
// confirm masked values, shares that outlive ownership, administrators
// widening their own reach, template upgrades, pool sweeps that skip.
func TestNoWayAround(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		cust := e.mk(e.admin, "旁路测试公司", "13912340070", str(e.s1.UserID))
		// A patch naming a masked field is refused whether or not the
		// value is right: the answer must not confirm a guess.
		for _, guess := range []string{"13912340070", "13912340071"} {
			_, err := e.n.CRM.UpdateCustomer(e.ctx, e.support, cust.ID, crm.CustomerFields{Phones: strs(guess)}, 0)
			if !errors.Is(err, access.ErrDenied) {
				t.Fatalf("support patching the masked phone with %s: %v", guess, err)
			}
		}
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.s1, cust.ID, crm.CustomerFields{IDNumber: str("")}, 0); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales patching the masked ID number: %v", err)
		}
		// Shares end when the owner changes, and nobody shares with themselves.
		if _, err := e.n.CRM.ShareCustomer(e.ctx, e.s1, cust.ID, crm.ShareInput{UserID: e.s1.UserID, Level: "edit"}); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("share with oneself: %v", err)
		}
		if _, err := e.n.CRM.ShareCustomer(e.ctx, e.s1, cust.ID, crm.ShareInput{Role: "sales", Level: "edit"}); err != nil {
			t.Fatal(err)
		}
		if _, err := e.n.CRM.GetCustomer(e.ctx, e.s2, cust.ID); err != nil {
			t.Fatalf("shared with the sales role: %v", err)
		}
		if err := e.n.CRM.ReleaseCustomer(e.ctx, e.s1, cust.ID); err != nil {
			t.Fatal(err)
		}
		got, err := e.n.CRM.GetCustomer(e.ctx, e.s2, cust.ID)
		if err != nil || got.Access != "pool" || !strings.Contains(got.Phone, "****") {
			t.Fatalf("after release the role share must be gone: %+v %v", got, err)
		}
		// Under strict separation an administrator editing their own role
		// is alerted, whatever the edit.
		if _, err := e.n.CRM.SetSetting(e.ctx, op, "strict_separation", "on"); err != nil {
			t.Fatal(err)
		}
		admin := e.again(e.admin)
		if _, err := e.n.CRM.UpdateRole(e.ctx, admin, "admin", crm.RoleInput{Permissions: strs("read", "export", "manage_roles")}); err != nil {
			t.Fatal(err)
		}
		if len(e.alerts(monitor.RuleSelfGrant)) != 1 {
			t.Fatal("no alert for an administrator narrowing their own role out of separation")
		}
		// A template upgrade that widens a role is audited and alerted.
		if err := e.n.DB.Write(e.ctx, func(tx *store.Tx) error {
			r, err := tx.GetRole(e.ctx, "finance")
			if err != nil {
				return err
			}
			r.SeeAll, r.TemplateVersion = false, 1
			return tx.UpdateRole(e.ctx, r)
		}); err != nil {
			t.Fatal(err)
		}
		if err := e.n.CRM.SeedRoles(e.ctx, access.Templates, access.MFARoles); err != nil {
			t.Fatal(err)
		}
		if len(e.alerts(monitor.RuleTemplateWidened)) != 1 || e.countAudit("role.template_upgrade", "ok") != 1 {
			t.Fatal("template upgrade not alerted")
		}
		// The sweep finds a level's due customer behind many that never return.
		if _, err := e.n.CRM.SetSetting(e.ctx, op, "pool.return_days.c", "30"); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			e.mk(e.admin, "不回收客户"+string(rune('甲'+i)), "1391234008"+string(rune('0'+i)), str(e.s2.UserID))
		}
		due := e.mk(e.admin, "到期客户", "13912340090", str(e.s2.UserID))
		if _, err := e.n.CRM.UpdateCustomer(e.ctx, e.admin, due.ID, crm.CustomerFields{Level: str("C")}, 0); err != nil {
			t.Fatal(err)
		}
		c.add(31 * 24 * time.Hour)
		rep, err := e.n.CRM.SweepPool(e.ctx)
		if err != nil || rep.Returned != 1 {
			t.Fatalf("sweep: %+v %v", rep, err)
		}
	})
}
