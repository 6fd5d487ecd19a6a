package crm_test

import (
	"errors"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
)

// The follow-ups due are the viewer's own customers whose latest
// interaction asks for one on or before the day, the most overdue first;
// a later interaction without a date clears it; the read is audited.
func TestFollowUps(t *testing.T) {
	engines(t, func(t *testing.T, e *env) {
		str := func(v string) *string { return &v }
		at := func(d int) *time.Time { v := time.Now().Add(time.Duration(d) * time.Hour); return &v }
		cust := func(p access.Principal, name string) string {
			c, err := e.n.CRM.CreateCustomer(e.ctx, p, crm.CustomerFields{Name: str(name)})
			if err != nil {
				t.Fatal(err)
			}
			return c.ID
		}
		note := func(p access.Principal, id, next string, when *time.Time) {
			in := crm.InteractionFields{Kind: str("call"), Summary: str("s"), OccurredAt: when}
			if next != "" {
				in.NextFollowUp = str(next)
			}
			if _, err := e.n.CRM.CreateInteraction(e.ctx, p, id, in); err != nil {
				t.Fatal(err)
			}
		}
		overdue, today, later, cleared := cust(e.s1, "Overdue Co"), cust(e.s1, "Today Co"), cust(e.s1, "Later Co"), cust(e.s1, "Cleared Co")
		other := cust(e.s2, "Other Rep Co")
		note(e.s1, overdue, "2026-03-01", at(-48))
		note(e.s1, today, "2026-03-05", at(-24))
		note(e.s1, later, "2026-03-09", at(-24))
		note(e.s1, cleared, "2026-03-02", at(-48))
		note(e.s1, cleared, "", at(-1)) // the latest says nothing more is due
		note(e.s2, other, "2026-03-01", at(-24))

		due, err := e.n.CRM.FollowUps(e.ctx, e.s1, "2026-03-05", 10)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, f := range due {
			names = append(names, f.Customer.Name)
			if f.Overdue != (f.Due < "2026-03-05") || f.Last.Summary != "s" {
				t.Errorf("%+v", f)
			}
		}
		if len(names) != 2 || names[0] != "Overdue Co" || names[1] != "Today Co" {
			t.Fatalf("due: %q", names)
		}
		if due, err := e.n.CRM.FollowUps(e.ctx, e.s1, "2026-03-05", 1); err != nil || len(due) != 1 {
			t.Fatalf("limit 1: %d %v", len(due), err)
		}
		if _, err := e.n.CRM.FollowUps(e.ctx, e.s1, "5 March", 10); !errors.Is(err, crm.ErrInvalid) {
			t.Fatalf("a bad day: %v", err)
		}
		if n := e.auditCount("customer.follow_ups", audit.OK); n != 2 {
			t.Fatalf("%d follow-up reads on record", n)
		}
	})
}
