package crm

import (
	"context"
	"encoding/json"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// BackupStatus is the state of the scheduled backups for the people who
// look after the installation (manage_config): what ran lately and how it
// went, what is configured, when the jobs run next and whether the
// bookkeeping the backups rely on is in order. Destinations are shown by
// scheme and place only: a URL's user, password and query (where S3
// credentials could be) never leave this package.
type BackupStatus struct {
	Destinations []BackupDestination
	Schedules    []BackupSchedule // full, incremental, verify
	Retention    BackupRetention
	// MaxAgeHours is the age after which the monitor raises backup.stale
	// (0: never).
	MaxAgeHours int
	// Activity is the recent backups and verifications, newest first:
	// completed backups (the database's record of them) and failed
	// backups and every verification (the audit trail).
	Activity  []BackupActivity
	TotalRuns int // completed backups on record
	// The newest completed backup (any kind: full, incremental or
	// differential), the newest full and incremental ones, and the newest
	// successful verification.
	LastBackup, LastFull, LastIncremental, LastVerify *BackupActivity
	// Stale: no backup completed within MaxAgeHours.
	Stale    bool
	Tracking BackupTracking
	Now      time.Time // when the status was read
}

// Configured reports whether the scheduled backups run at all: they need a
// destination.
func (b BackupStatus) Configured() bool { return len(b.Destinations) > 0 }

// BackupDestination is a destination without its credentials: the scheme
// (file, s3) and the bucket or directory.
type BackupDestination struct {
	Scheme string `json:"scheme"`
	Place  string `json:"place"`
}

// BackupSchedule is one scheduled job.
type BackupSchedule struct {
	Job     string    // full, incremental, verify
	Spec    string    // the cron expression (company time zone), or "off"
	Off     bool      // the job is turned off
	Invalid bool      // the expression does not parse: the job cannot run
	Next    time.Time // the next slot, in the company's zone (zero when off or invalid)
}

// BackupRetention is what pruning after a full backup keeps.
type BackupRetention struct {
	Daily, Weekly, Monthly int
}

// BackupActivity is one backup or verification.
type BackupActivity struct {
	Kind         string    // full, incremental, verify ("" when unknown)
	ID           string    // the backup's id ("" when it failed before having one)
	Started      time.Time // zero when unknown
	Finished     time.Time // zero when unknown
	Bytes        int64     // stored size (backups)
	Destinations []BackupDestination
	OK           bool
	Reason       string // why it failed
	Actor        string // "system" for the schedule, else who ran it
}

// At is when the activity happened: its end, else its start.
func (a BackupActivity) At() time.Time {
	if !a.Finished.IsZero() {
		return a.Finished
	}
	return a.Started
}

// BackupTracking is the bookkeeping the backups rely on.
type BackupTracking struct {
	// On: the change log records changes for incremental backups (the
	// first backup turns it on).
	On    bool
	Since time.Time
	// Erasures is the number of erased customers; LedgerPublished the
	// number in the erasure ledger last published to the destinations
	// (-1: never published), at LedgerAt. A restore re-applies the
	// published ledger, so fewer published than erased is a gap.
	Erasures        int
	LedgerPublished int
	LedgerAt        time.Time
	// KitExported: the recovery kit was exported (once), at KitAt.
	KitExported bool
	KitAt       time.Time
}

// LedgerBehind reports whether erasures are missing from the published
// erasure ledger.
func (t BackupTracking) LedgerBehind() bool { return t.Erasures > 0 && t.LedgerPublished < t.Erasures }

// backupJobs are the scheduled jobs and their settings, as the scheduler
// (internal/backup) runs them.
var backupJobs = []struct{ job, setting string }{
	{"full", settings.BackupFullSchedule},
	{"incremental", settings.BackupIncrementalSchedule},
	{"verify", settings.BackupVerifySchedule},
}

const (
	backupActivityRows = 20  // rows of BackupStatus.Activity
	backupEventsRead   = 100 // backup.create events read to match runs and find failures
)

// BackupStatus returns the state of the backups. It needs manage_config;
// reading it is an audit event (backup.status).
func (s *Service) BackupStatus(ctx context.Context, p access.Principal) (BackupStatus, error) {
	const action = "backup.status"
	if err := access.Require(p, access.ManageConfig); err != nil {
		return BackupStatus{}, s.deny(ctx, p, action, "backup", "", err)
	}
	now := s.now()
	out := BackupStatus{Now: now}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		out.settings(vals, now)
		runs, err := tx.BackupRuns(ctx)
		if err != nil {
			return err
		}
		all := store.AuditScope{All: true}
		creates, err := tx.QueryAudit(ctx, store.AuditQuery{Scope: all, Action: "backup.create", Limit: backupEventsRead})
		if err != nil {
			return err
		}
		verifies, err := tx.QueryAudit(ctx, store.AuditQuery{Scope: all, Action: "backup.verify", Limit: backupActivityRows})
		if err != nil {
			return err
		}
		lastOK, err := tx.QueryAudit(ctx, store.AuditQuery{Scope: all, Action: "backup.verify", Outcome: audit.OK, Limit: 1})
		if err != nil {
			return err
		}
		out.activity(runs, creates, verifies, lastOK)
		return out.tracking(ctx, tx)
	})
	if err != nil {
		return BackupStatus{}, mapStoreErr(err)
	}
	ev := event(p, action, "backup", "")
	ev.Details = map[string]any{"runs": out.TotalRuns, "destinations": len(out.Destinations), "stale": out.Stale}
	if err := audit.RecordAlone(ctx, s.db, s.now(), ev); err != nil {
		return BackupStatus{}, err
	}
	return out, nil
}

// settings fills in what is configured, with the next slot of each job.
func (b *BackupStatus) settings(vals settings.Values, now time.Time) {
	for _, u := range strings.Fields(vals.Str(settings.BackupDestinations)) {
		b.Destinations = append(b.Destinations, destinationOf(u))
	}
	loc := vals.Location()
	for _, j := range backupJobs {
		sc := BackupSchedule{Job: j.job, Spec: strings.TrimSpace(vals.Str(j.setting))}
		switch sched, err := settings.ParseCron(sc.Spec); {
		case sc.Spec == "off":
			sc.Off = true
		case err != nil:
			sc.Invalid = true
		default:
			sc.Next = sched.Next(now.In(loc))
		}
		b.Schedules = append(b.Schedules, sc)
	}
	b.Retention = BackupRetention{Daily: vals.Int(settings.BackupKeepDaily), Weekly: vals.Int(settings.BackupKeepWeekly),
		Monthly: vals.Int(settings.BackupKeepMonthly)}
	b.MaxAgeHours = vals.Int(settings.BackupMaxAgeHours)
}

// backupDetails are the fields of the backup events' details that the
// status uses (internal/backup writes them).
type backupDetails struct {
	Kind         string   `json:"kind"`
	Scheduled    string   `json:"scheduled"` // a scheduled job whose destinations did not open
	Destinations []string `json:"destinations"`
	From         string   `json:"from"` // verifications
	StoredBytes  int64    `json:"stored_bytes"`
}

func detailsOf(e store.AuditEvent) backupDetails {
	var d backupDetails
	_ = json.Unmarshal([]byte(e.Details), &d)
	if d.Kind == "" {
		d.Kind = d.Scheduled
	}
	return d
}

// activity merges the completed backups with the events of failed
// backups and of verifications.
func (b *BackupStatus) activity(runs []store.BackupRun, creates, verifies, lastOK []store.AuditEvent) {
	b.TotalRuns = len(runs)
	ended := map[string]store.AuditEvent{} // completed backups' events, by backup id
	var list []BackupActivity
	for _, e := range creates {
		if e.Outcome == audit.OK {
			ended[e.ObjectID] = e
			continue
		}
		d := detailsOf(e)
		list = append(list, BackupActivity{Kind: d.Kind, ID: e.ObjectID, Finished: e.At, Destinations: destinationsOf(d.Destinations),
			Reason: e.Reason, Actor: e.Actor})
	}
	for _, e := range verifies {
		list = append(list, verification(e))
	}
	for i := len(runs) - 1; i >= 0; i-- {
		r := runs[i]
		a := BackupActivity{Kind: r.Kind, ID: r.ID, Started: r.At, Bytes: r.Bytes, Destinations: destinationsOf(r.Destinations), OK: true, Actor: "system"}
		if e, ok := ended[r.ID]; ok {
			a.Finished, a.Actor = e.At, e.Actor
		}
		if b.LastBackup == nil {
			b.LastBackup = &a
		}
		switch {
		case r.Kind == "full" && b.LastFull == nil:
			b.LastFull = &a
		case r.Kind == "incremental" && b.LastIncremental == nil:
			b.LastIncremental = &a
		}
		if len(runs)-i <= backupActivityRows {
			list = append(list, a)
		}
	}
	if len(lastOK) > 0 {
		v := verification(lastOK[0])
		b.LastVerify = &v
	}
	slices.SortStableFunc(list, func(x, y BackupActivity) int { return y.At().Compare(x.At()) })
	if len(list) > backupActivityRows {
		list = list[:backupActivityRows]
	}
	b.Activity = list
	if b.MaxAgeHours > 0 && len(b.Destinations) > 0 {
		b.Stale = b.LastBackup == nil || b.Now.Sub(b.LastBackup.At()) > time.Duration(b.MaxAgeHours)*time.Hour
	}
}

func verification(e store.AuditEvent) BackupActivity {
	d := detailsOf(e)
	a := BackupActivity{Kind: "verify", ID: e.ObjectID, Finished: e.At, OK: e.Outcome == audit.OK, Actor: e.Actor}
	if d.From != "" {
		a.Destinations = destinationsOf([]string{d.From})
	}
	if !a.OK {
		a.Reason = e.Reason
	}
	return a
}

// tracking reads the backups' bookkeeping (backup_state).
func (b *BackupStatus) tracking(ctx context.Context, tx *store.Tx) error {
	v, at, err := tx.BackupState(ctx, "tracking")
	if err != nil {
		return err
	}
	b.Tracking.On, b.Tracking.Since = v == "on", at
	ledger, at, err := tx.BackupState(ctx, "ledger")
	if err != nil {
		return err
	}
	b.Tracking.LedgerPublished, b.Tracking.LedgerAt = -1, at
	if n, err := strconv.Atoi(ledger); err == nil {
		b.Tracking.LedgerPublished = n
	}
	erased, err := tx.ErasureLedger(ctx)
	if err != nil {
		return err
	}
	b.Tracking.Erasures = len(erased)
	kit, at, err := tx.BackupState(ctx, "kit")
	if err != nil {
		return err
	}
	b.Tracking.KitExported, b.Tracking.KitAt = kit != "", at
	return nil
}

func destinationsOf(urls []string) []BackupDestination {
	out := make([]BackupDestination, 0, len(urls))
	for _, u := range urls {
		out = append(out, destinationOf(u))
	}
	return out
}

// destinationOf names a destination URL by its scheme and its bucket (s3)
// or directory (file), dropping the user, password, query and fragment.
func destinationOf(raw string) BackupDestination {
	u, err := url.Parse(raw)
	if err != nil {
		scheme, _, _ := strings.Cut(raw, ":")
		if !validScheme(scheme) {
			scheme = ""
		}
		return BackupDestination{Scheme: scheme}
	}
	d := BackupDestination{Scheme: u.Scheme, Place: u.Host}
	if u.Scheme == "file" {
		d.Place = u.Path
	}
	return d
}

func validScheme(s string) bool {
	if s == "" || len(s) > 16 {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}
