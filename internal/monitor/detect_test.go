package monitor_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) set(t time.Time)     { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }
func (c *clock) add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }

// stream is a data directory whose audit trail the test writes directly:
// the detectors' input is the event stream, whatever wrote it.
type stream struct {
	t     *testing.T
	ctx   context.Context
	n     *node.Node
	clock *clock
	eng   *monitor.Engine
}

func newStream(t *testing.T, engine string) *stream {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	if engine == "postgres" {
		cfg.DB = pgtest.Shared(t).NewDatabase(t)
	}
	// 10:00 in Shanghai, inside the default working hours.
	c := &clock{t: time.Date(2026, 11, 23, 2, 0, 0, 0, time.UTC)}
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Close() })
	s := &stream{t: t, ctx: context.Background(), n: n, clock: c, eng: &monitor.Engine{DB: n.DB, Now: c.now}}
	s.step() // the cursor starts at the end of the trail
	return s
}

func (s *stream) record(ev audit.Event) {
	s.t.Helper()
	if ev.Outcome == "" {
		ev.Outcome = audit.OK
	}
	if err := audit.RecordAlone(s.ctx, s.n.DB, s.clock.now(), ev); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stream) step() int {
	s.t.Helper()
	n, err := s.eng.Step(s.ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	return n
}

func (s *stream) set(key, value string) {
	s.t.Helper()
	if err := s.n.DB.Write(s.ctx, func(tx *store.Tx) error {
		return tx.PutSetting(s.ctx, store.Setting{Key: key, Value: value, UpdatedAt: s.clock.now(), UpdatedBy: "test"})
	}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *stream) alerts(rule string) []store.Alert {
	s.t.Helper()
	var out []store.Alert
	if err := s.n.DB.Read(s.ctx, func(tx *store.Tx) error {
		var err error
		out, err = tx.Alerts(s.ctx, rule, 0)
		return err
	}); err != nil {
		s.t.Fatal(err)
	}
	return out
}

func (s *stream) want(rule string, n int) []store.Alert {
	s.t.Helper()
	got := s.alerts(rule)
	if len(got) != n {
		s.t.Fatalf("%s: %d alerts, want %d: %+v", rule, len(got), n, got)
	}
	return got
}

const user = "0193aaaa-0000-7000-8000-000000000001"

func login(ip string) audit.Event {
	return audit.Event{Actor: "user:" + user, IP: ip, Action: "auth.login", ObjectType: "user", ObjectID: user}
}

func TestDetectors(t *testing.T) {
	t.Run("permission probing", func(t *testing.T) {
		s := newStream(t, "sqlite")
		for i := 0; i < 19; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.view", ObjectType: "customer", Outcome: audit.Denied, Reason: "not found or not visible"})
			s.clock.add(time.Minute)
		}
		s.step()
		s.want(monitor.RuleProbing, 0)
		s.record(audit.Event{Actor: "user:" + user, Action: "alert.list", Outcome: audit.Denied, Reason: "permission"})
		s.step()
		a := s.want(monitor.RuleProbing, 1)[0]
		if a.ActorID != user {
			t.Fatalf("actor %q", a.ActorID)
		}
		// More denials within the hour: no second alert.
		for i := 0; i < 30; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.view", Outcome: audit.Denied})
		}
		s.step()
		s.want(monitor.RuleProbing, 1)
	})
	t.Run("probing threshold from config, windows across engines", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.set(settings.DenialsPerHour, "5")
		for i := 0; i < 3; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.update", Outcome: audit.Denied})
		}
		s.step()
		// A restarted node (a new engine) continues the same window.
		s.eng = &monitor.Engine{DB: s.n.DB, Now: s.clock.now}
		s.clock.add(30 * time.Minute)
		for i := 0; i < 2; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.update", Outcome: audit.Denied})
		}
		s.step()
		s.want(monitor.RuleProbing, 1)
	})
	t.Run("denials spread beyond the hour", func(t *testing.T) {
		s := newStream(t, "sqlite")
		for i := 0; i < 40; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.view", Outcome: audit.Denied})
			s.clock.add(5 * time.Minute) // 12 an hour
		}
		s.step()
		s.want(monitor.RuleProbing, 0)
	})
	t.Run("reveal burst", func(t *testing.T) {
		s := newStream(t, "sqlite")
		for i := 0; i < 20; i++ {
			s.record(audit.Event{Actor: "user:" + user, Action: "customer.reveal", ObjectType: "customer", ObjectID: fmt.Sprint(i)})
		}
		s.step()
		s.want(monitor.RuleRevealBurst, 1)
	})
	t.Run("large export", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.export", Details: map[string]any{"rows": 999}})
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.export", Details: map[string]any{"rows": 1000}})
		s.step()
		a := s.want(monitor.RuleLargeExport, 1)[0]
		if a.Severity != monitor.High {
			t.Fatalf("severity %s", a.Severity)
		}
	})
	t.Run("new address", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(login("10.0.0.1")) // the first address is not news
		s.record(login("10.0.0.1"))
		s.step()
		s.want(monitor.RuleNewIP, 0)
		s.record(login("203.0.113.9"))
		s.step()
		s.want(monitor.RuleNewIP, 1)
		s.record(login("203.0.113.9"))
		s.step()
		s.want(monitor.RuleNewIP, 1)
		// A login that waits for its second factor is not a login yet.
		ev := login("198.51.100.7")
		ev.Details = map[string]any{"second_factor": "pending"}
		s.record(ev)
		s.step()
		s.want(monitor.RuleNewIP, 1)
	})
	t.Run("odd hours", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(login("10.0.0.1")) // 10:00 Shanghai
		s.step()
		s.want(monitor.RuleOddHours, 0)
		s.clock.set(time.Date(2026, 11, 23, 19, 30, 0, 0, time.UTC)) // 03:30 Shanghai
		s.record(login("10.0.0.1"))
		s.record(login("10.0.0.1")) // once per user per day
		s.step()
		a := s.want(monitor.RuleOddHours, 1)[0]
		if a.Details != `{"local_time":"03:30","work_hours":"07:00-22:00"}` {
			t.Fatalf("details %s", a.Details)
		}
		s.set(settings.WorkHours, "off")
		s.clock.add(24 * time.Hour)
		s.record(login("10.0.0.1"))
		s.step()
		s.want(monitor.RuleOddHours, 1)
	})
	t.Run("dormant account", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(login("10.0.0.1"))
		s.clock.add(29 * 24 * time.Hour)
		s.record(login("10.0.0.1"))
		s.step()
		s.want(monitor.RuleDormant, 0)
		s.clock.add(31 * 24 * time.Hour)
		s.record(login("10.0.0.1"))
		s.step()
		s.want(monitor.RuleDormant, 1)
	})
	t.Run("access after a role change", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.reveal"})
		s.step()
		s.want(monitor.RuleAfterRoleChange, 0)
		s.record(audit.Event{Actor: "user:admin", Action: "user.role", ObjectType: "user", ObjectID: user, Details: map[string]any{"from": "manager", "to": "sales"}})
		s.clock.add(3 * time.Hour)
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.view"})
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.export", Details: map[string]any{"rows": 12}})
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.reveal"})
		s.step()
		a := s.want(monitor.RuleAfterRoleChange, 1)[0]
		if a.ActorID != user || a.Evidence == "[]" {
			t.Fatalf("alert %+v", a)
		}
		s.clock.add(30 * time.Hour)
		s.record(audit.Event{Actor: "user:admin", Action: "user.role", ObjectType: "user", ObjectID: "someone-else"})
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.export"})
		s.step()
		s.want(monitor.RuleAfterRoleChange, 1)
	})
	t.Run("backup failure and staleness", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.record(audit.Event{Actor: "system", Action: "backup.create", Outcome: audit.Failed, Reason: "destination unreachable"})
		s.step()
		s.want(monitor.RuleBackupFailed, 1)
		s.want(monitor.RuleBackupStale, 0)
		// No successful backup since the data directory was made: stale
		// after 36 hours, raised once.
		s.clock.add(37 * time.Hour)
		s.step()
		s.want(monitor.RuleBackupStale, 1)
		s.clock.add(2 * time.Hour)
		s.step()
		s.want(monitor.RuleBackupStale, 1)
		s.record(audit.Event{Actor: "system", Action: "backup.create"})
		s.clock.add(2 * time.Hour)
		s.step()
		s.want(monitor.RuleBackupStale, 1)
		s.clock.add(36 * time.Hour)
		s.step()
		s.want(monitor.RuleBackupStale, 2)
	})
	t.Run("alerts are not judged again", func(t *testing.T) {
		s := newStream(t, "sqlite")
		s.set(settings.DenialsPerHour, "1")
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.view", Outcome: audit.Denied})
		s.step()
		s.step()
		s.want(monitor.RuleProbing, 1)
	})
}

// Several nodes step the same PostgreSQL database at once: every event is
// judged exactly once (one alert per large export), the cursor row lock
// serializing them.
func TestDetectorsAcrossNodes(t *testing.T) {
	s := newStream(t, "postgres")
	const exports = 30
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := 0; w < 3; w++ {
		eng := &monitor.Engine{DB: s.n.DB, Now: s.clock.now, Batch: 4}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 20; i++ {
				if _, err := eng.Step(s.ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	for i := 0; i < exports; i++ {
		s.record(audit.Event{Actor: "user:" + user, Action: "customer.export", Details: map[string]any{"rows": 5000 + i}})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s.step()
	s.want(monitor.RuleLargeExport, exports)
}
