package monitor_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// The bulk-viewing guard on both engines: distinct customers per user per
// sliding hour, an alert when the first threshold is crossed, a suspension
// (sessions gone, user suspended) at the second, and refusals after it.
func TestViewGuard(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			s := newStream(t, engine)
			u, err := s.n.Auth.CreateUser(s.ctx, audit.Event{Actor: "test"}, newUser("viewer@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			vals := settings.New(map[string]string{settings.ViewsAlertPerHour: "10", settings.ViewsSuspendPerHour: "20"}, func(string) (string, bool) { return "", false })
			view := func(ids ...string) monitor.ViewVerdict {
				t.Helper()
				var v monitor.ViewVerdict
				if err := s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
					var err error
					if v, err = monitor.ObserveViews(s.ctx, tx, s.clock.now(), vals, u.ID, ids); err != nil {
						return err
					}
					seq, err := audit.Record(s.ctx, tx, s.clock.now(), audit.Event{Actor: "user:" + u.ID, Action: "customer.list", Outcome: audit.OK})
					if err != nil {
						return err
					}
					return monitor.Act(s.ctx, tx, s.clock.now(), v, seq)
				}); err != nil {
					t.Fatal(err)
				}
				return v
			}
			c := func(i int) string { return fmt.Sprintf("c%03d", i) }
			for i := 0; i < 9; i++ {
				if v := view(c(i), c(i)); v.Alert || v.Refused() {
					t.Fatalf("view %d: %+v", i, v)
				}
			}
			if v := view(c(0), c(1)); v.Distinct != 0 || v.Alert { // nothing new: not even counted
				t.Fatalf("re-reading: %+v", v)
			}
			// An hour later the first ones have left the window.
			s.clock.add(61 * time.Minute)
			if v := view(c(100)); v.Distinct != 1 || v.Alert {
				t.Fatalf("after the hour: %+v", v)
			}
			for i := 101; i < 109; i++ {
				view(c(i))
			}
			if v := view(c(109)); !v.Alert || v.Distinct != 10 {
				t.Fatalf("10th distinct customer: %+v", v)
			}
			s.want(monitor.RuleBulkView, 1)
			// A page of 15 new customers crosses the second threshold at once.
			page := make([]string, 15)
			for i := range page {
				page[i] = c(200 + i)
			}
			if v := view(page...); !v.Suspend || v.Distinct != 20 { // counted up to the larger threshold
				t.Fatalf("page past the second threshold: %+v", v)
			}
			s.want(monitor.RuleBulkViewSuspend, 1)
			if v := view(c(100)); !v.Suspended || !v.Refused() {
				t.Fatalf("after suspension: %+v", v)
			}
			got, err := s.n.Auth.GetUser(s.ctx, u.ID)
			if err != nil || !got.Suspended {
				t.Fatalf("user after suspension: %+v %v", got, err)
			}
			s.want(monitor.RuleBulkView, 1)
		})
	}
}

func newUser(email string) auth.NewUser {
	return auth.NewUser{Email: email, Name: "Viewer", Role: "sales", Password: "correct horse battery"}
}
