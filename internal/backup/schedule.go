package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Scheduler runs the backup jobs of `custos serve`: full and incremental
// backups and verification on cron schedules (settings backup.*), pruning
// after each full backup, and publishing the erasure ledger when it grows.
// Every node runs it; a job's time slot is claimed in the database, so
// each runs once across nodes. Failures are audit events (backup.create,
// backup.verify with outcome error), which the monitor turns into alerts,
// as it does when no backup succeeded for too long.
type Scheduler struct {
	DB   *store.DB
	Root keys.RootProvider
	Env  func(string) (string, bool) // settings overrides (nil: os.LookupEnv)
	Now  func() time.Time
	Log  *slog.Logger
	// Open opens a destination (default OpenDestination; tests may wrap it).
	Open func(ctx context.Context, url string) (*Destination, error)
}

type job struct {
	name    string
	setting string
}

var jobs = []job{
	{"full", settings.BackupFullSchedule},
	{"incremental", settings.BackupIncrementalSchedule},
	{"verify", settings.BackupVerifySchedule},
}

// Tick runs what is due. serve calls it every minute. A panic is
// reported as an error: the schedule must not take the server down.
func (s *Scheduler) Tick(ctx context.Context) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backup schedule: panic: %v", p)
		}
	}()
	return s.tick(ctx)
}

func (s *Scheduler) tick(ctx context.Context) error {
	now := s.now()
	vals, err := s.values(ctx)
	if err != nil {
		return err
	}
	urls := strings.Fields(vals.Str(settings.BackupDestinations))
	if len(urls) == 0 {
		return nil
	}
	loc := vals.Location()
	due := map[string]time.Time{}
	for _, j := range jobs {
		spec := vals.Str(j.setting)
		if spec == "off" {
			continue
		}
		slot, ok, err := s.claim(ctx, j.name, spec, now.In(loc))
		if err != nil {
			return err
		}
		if ok {
			due[j.name] = slot
		}
	}
	if len(due) == 0 {
		return s.publishLedger(ctx, urls, now)
	}
	dests, err := s.open(ctx, urls)
	if err != nil {
		// The slots are claimed: on record, so the monitor alerts.
		for _, j := range []string{"full", "incremental", "verify"} {
			if _, ok := due[j]; ok {
				action := "backup.create"
				if j == "verify" {
					action = "backup.verify"
				}
				_ = audit.RecordAlone(context.WithoutCancel(ctx), s.DB, now, audit.Event{Actor: "system", Action: action, ObjectType: "backup",
					Outcome: audit.Failed, Reason: oneLine(err.Error()), Details: map[string]any{"scheduled": j}})
			}
		}
		return err
	}
	defer closeAll(dests)
	var errs []error
	if _, ok := due["full"]; ok {
		if err := s.backup(ctx, Full, dests); err != nil {
			errs = append(errs, err)
		} else {
			errs = append(errs, s.prune(ctx, dests, vals))
		}
	} else if _, ok := due["incremental"]; ok {
		err := s.backup(ctx, Incremental, dests)
		if err != nil && strings.Contains(err.Error(), "--full") {
			// No base yet, or the schema changed: a full backup instead.
			err = s.backup(ctx, Full, dests)
		}
		errs = append(errs, err)
	}
	if _, ok := due["verify"]; ok {
		_, err := Verify(ctx, VerifyOptions{From: dests[0], KeyOf: RootKeySource(s.Root), DB: s.DB, Actor: "system", Now: s.Now})
		if err != nil {
			s.log().Error("scheduled backup verification failed", "err", err)
			errs = append(errs, err)
		} else {
			s.log().Info("scheduled backup verification passed")
		}
	}
	return errors.Join(errs...)
}

func (s *Scheduler) now() time.Time {
	if s.Now == nil {
		return time.Now()
	}
	return s.Now()
}

func (s *Scheduler) log() *slog.Logger {
	if s.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return s.Log
}

func (s *Scheduler) values(ctx context.Context) (settings.Values, error) {
	var m map[string]string
	err := s.DB.Read(ctx, func(tx *store.Tx) error {
		st, err := tx.Settings(ctx)
		m = make(map[string]string, len(st))
		for k, v := range st {
			m[k] = v.Value
		}
		return err
	})
	return settings.New(m, s.Env), err
}

func (s *Scheduler) open(ctx context.Context, urls []string) ([]*Destination, error) {
	open := s.Open
	if open == nil {
		open = OpenDestination
	}
	var out []*Destination
	for _, u := range urls {
		d, err := open(ctx, u)
		if err != nil {
			closeAll(out)
			return nil, fmt.Errorf("backup destination: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

func closeAll(ds []*Destination) {
	for _, d := range ds {
		_ = d.Close()
	}
}

// claim decides whether job is due: the last slot it ran for is kept in
// backup_state ("sched:<job>"); the latest slot at or before now that is
// after it is claimed with a compare-and-set, so one node runs it. A job
// seen for the first time starts counting from now (a new node does not
// run everything at once); missed slots collapse into one run.
func (s *Scheduler) claim(ctx context.Context, name, spec string, now time.Time) (time.Time, bool, error) {
	sched, err := settings.ParseCron(spec)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("backup schedule %s: %w", name, err)
	}
	key := "sched:" + name
	var slot time.Time
	claimed := false
	err = s.DB.Write(ctx, func(tx *store.Tx) error {
		last, _, err := tx.BackupState(ctx, key)
		if err != nil {
			return err
		}
		if last == "" {
			_, err := tx.SwapBackupState(ctx, key, "", strconv.FormatInt(now.Unix(), 10), now)
			return err
		}
		sec, err := strconv.ParseInt(last, 10, 64)
		if err != nil {
			sec = now.Unix()
		}
		next := sched.Next(time.Unix(sec, 0).In(now.Location()))
		if next.IsZero() || next.After(now) {
			return nil
		}
		for n := sched.Next(next); !n.IsZero() && !n.After(now); n = sched.Next(n) {
			next = n
		}
		slot = next
		claimed, err = tx.SwapBackupState(ctx, key, last, strconv.FormatInt(next.Unix(), 10), now)
		return err
	})
	return slot, claimed, err
}

func (s *Scheduler) backup(ctx context.Context, kind Kind, dests []*Destination) error {
	res, err := Create(ctx, CreateOptions{DB: s.DB, Root: s.Root, Kind: kind, Destinations: dests, Actor: "system", Now: s.Now})
	if err != nil {
		s.log().Error("scheduled backup failed", "kind", string(kind), "err", err)
		return err
	}
	s.log().Info("scheduled backup", "kind", string(kind), "id", res.Manifest.ID, "stored_bytes", res.Manifest.StoredBytes, "seconds", res.Elapsed.Seconds())
	return nil
}

func (s *Scheduler) prune(ctx context.Context, dests []*Destination, vals settings.Values) error {
	r := Retention{Daily: vals.Int(settings.BackupKeepDaily), Weekly: vals.Int(settings.BackupKeepWeekly), Monthly: vals.Int(settings.BackupKeepMonthly)}
	for _, d := range dests {
		plan, err := Prune(ctx, PruneOptions{From: d, KeyOf: RootKeySource(s.Root), Retention: r, DB: s.DB, Actor: "system", Now: s.Now})
		if err != nil {
			return fmt.Errorf("prune %s: %w", d, err)
		}
		if len(plan.Remove) > 0 {
			s.log().Info("pruned backups", "destination", d.String(), "removed", len(plan.Remove), "kept", len(plan.Keep))
		}
	}
	return nil
}

func (s *Scheduler) publishLedger(ctx context.Context, urls []string, now time.Time) error {
	// Cheap check first: open destinations only when the ledger grew.
	if grew, err := ledgerGrew(ctx, s.DB); err != nil || !grew {
		return err
	}
	raw, _, err := keys.BackupKey(ctx, s.DB, s.Root, now)
	if err != nil {
		return err
	}
	k, err := KeyFromBytes(raw)
	if err != nil {
		return err
	}
	dests, err := s.open(ctx, urls)
	if err != nil {
		return err
	}
	defer closeAll(dests)
	_, err = PublishLedger(ctx, PublishLedgerOptions{DB: s.DB, Key: k, Destinations: dests, Now: now, Force: true})
	return err
}

// PublishLedgerNow publishes the erasure ledger to the configured
// destinations (backup.destinations) if it changed since it was last
// published. `custos privacy erase` calls it right after an erasure.
func (s *Scheduler) PublishLedgerNow(ctx context.Context) (bool, error) {
	vals, err := s.values(ctx)
	if err != nil {
		return false, err
	}
	urls := strings.Fields(vals.Str(settings.BackupDestinations))
	if len(urls) == 0 {
		return false, nil
	}
	return true, s.publishLedger(ctx, urls, s.now())
}
