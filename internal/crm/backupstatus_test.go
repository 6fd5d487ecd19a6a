package crm_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

func TestBackupStatus(t *testing.T) {
	clockEngines(t, func(t *testing.T, e *env, c *clock) {
		ctx := e.ctx

		// Refused without manage_config, and the refusal is on record.
		if _, err := e.n.CRM.BackupStatus(ctx, e.s1); !errors.Is(err, access.ErrDenied) {
			t.Fatalf("sales: %v", err)
		}
		if n := e.auditCount("backup.status", audit.Denied); n != 1 {
			t.Fatalf("%d denied backup.status events", n)
		}

		// Nothing configured, nothing run.
		st, err := e.n.CRM.BackupStatus(ctx, e.admin)
		if err != nil {
			t.Fatal(err)
		}
		if st.Configured() || len(st.Activity) != 0 || st.TotalRuns != 0 || st.LastBackup != nil || st.Stale || st.Tracking.On {
			t.Fatalf("empty status: %+v", st)
		}
		if len(st.Schedules) != 3 || st.Schedules[0].Job != "full" || st.Schedules[0].Spec != "0 3 * * 0" {
			t.Fatalf("schedules %+v", st.Schedules)
		}
		// 2026-03-02 01:00 UTC is Monday 09:00 in Shanghai: the next
		// incremental (02:00 daily) is Tuesday 02:00 there, the next full
		// (Sundays 03:00) is Sunday the 8th.
		if got, want := st.Schedules[1].Next, time.Date(2026, 3, 2, 18, 0, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("next incremental %v, want %v", got, want)
		}
		if got, want := st.Schedules[0].Next, time.Date(2026, 3, 7, 19, 0, 0, 0, time.UTC); !got.Equal(want) {
			t.Errorf("next full %v, want %v", got, want)
		}
		if st.Retention != (crm.BackupRetention{Daily: 7, Weekly: 4, Monthly: 12}) || st.MaxAgeHours != 36 {
			t.Errorf("retention %+v, max age %d", st.Retention, st.MaxAgeHours)
		}

		// Configure: one directory, one bucket; turn verification off.
		for k, v := range map[string]string{
			settings.BackupDestinations:   "file:///srv/backups s3://crm-backups/prefix?region=cn-north-1",
			settings.BackupVerifySchedule: "off",
		} {
			if _, err := e.n.CRM.SetSetting(ctx, e.admin, k, v); err != nil {
				t.Fatal(err)
			}
		}
		// A full backup and an incremental that completed, a failed
		// incremental and a failed verification, a passed one.
		t0 := c.now().UTC()
		runs := []store.BackupRun{
			{ID: "b-full-1", Kind: "full", Position: "seq:1", Destinations: []string{"file:///srv/backups"}, At: t0.Add(-30 * time.Hour), Bytes: 4096},
			{ID: "b-inc-1", Kind: "incremental", Base: "b-full-1", Position: "seq:2", Destinations: []string{"file:///srv/backups"}, At: t0.Add(-26 * time.Hour), Bytes: 512},
		}
		err = e.n.DB.Write(ctx, func(tx *store.Tx) error {
			for _, r := range runs {
				if err := tx.RecordBackupRun(ctx, r); err != nil {
					return err
				}
			}
			return tx.PutBackupState(ctx, "tracking", "on", t0.Add(-30*time.Hour))
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range []struct {
			at time.Time
			e  audit.Event
		}{
			{t0.Add(-30*time.Hour + time.Minute), audit.Event{Actor: "system", Action: "backup.create", ObjectType: "backup", ObjectID: "b-full-1", Outcome: audit.OK,
				Details: map[string]any{"kind": "full", "stored_bytes": 4096}}},
			{t0.Add(-26*time.Hour + 2*time.Minute), audit.Event{Actor: "cli:ops", Action: "backup.create", ObjectType: "backup", ObjectID: "b-inc-1", Outcome: audit.OK,
				Details: map[string]any{"kind": "incremental"}}},
			{t0.Add(-25 * time.Hour), audit.Event{Actor: "system", Action: "backup.verify", ObjectType: "backup", ObjectID: "b-inc-1", Outcome: audit.OK,
				Details: map[string]any{"from": "file:///srv/backups"}}},
			{t0.Add(-2 * time.Hour), audit.Event{Actor: "system", Action: "backup.create", ObjectType: "backup", Outcome: audit.Failed, Reason: "disk full",
				Details: map[string]any{"kind": "incremental", "destinations": []string{"s3://crm-backups?secret_access_key=REDACTED"}}}},
			{t0.Add(-1 * time.Hour), audit.Event{Actor: "system", Action: "backup.verify", ObjectType: "backup", Outcome: audit.Failed, Reason: "chunk hash mismatch",
				Details: map[string]any{"from": "s3://crm-backups"}}},
		} {
			if err := audit.RecordAlone(ctx, e.n.DB, ev.at, ev.e); err != nil {
				t.Fatal(err)
			}
		}

		st, err = e.n.CRM.BackupStatus(ctx, e.admin)
		if err != nil {
			t.Fatal(err)
		}
		want := []crm.BackupDestination{{Scheme: "file", Place: "/srv/backups"}, {Scheme: "s3", Place: "crm-backups"}}
		if len(st.Destinations) != 2 || st.Destinations[0] != want[0] || st.Destinations[1] != want[1] {
			t.Fatalf("destinations %+v", st.Destinations)
		}
		if !st.Schedules[2].Off || !st.Schedules[2].Next.IsZero() {
			t.Errorf("verify schedule %+v", st.Schedules[2])
		}
		if st.TotalRuns != 2 || st.LastFull == nil || st.LastFull.ID != "b-full-1" || st.LastIncremental == nil || st.LastIncremental.ID != "b-inc-1" ||
			st.LastBackup.ID != "b-inc-1" {
			t.Fatalf("last runs: %+v %+v %+v", st.LastFull, st.LastIncremental, st.LastBackup)
		}
		if st.LastIncremental.Actor != "cli:ops" || !st.LastIncremental.Finished.Equal(t0.Add(-26*time.Hour+2*time.Minute)) ||
			!st.LastIncremental.Started.Equal(t0.Add(-26*time.Hour)) {
			t.Errorf("incremental %+v", st.LastIncremental)
		}
		if st.LastVerify == nil || st.LastVerify.ID != "b-inc-1" || !st.LastVerify.OK {
			t.Errorf("last verify %+v", st.LastVerify)
		}
		var got []string
		for _, a := range st.Activity {
			got = append(got, a.Kind+"/"+a.ID+"/"+map[bool]string{true: "ok", false: "failed:" + a.Reason}[a.OK])
		}
		if strings.Join(got, " ") != "verify//failed:chunk hash mismatch incremental//failed:disk full verify/b-inc-1/ok incremental/b-inc-1/ok full/b-full-1/ok" {
			t.Fatalf("activity %q", got)
		}
		if d := st.Activity[1].Destinations; len(d) != 1 || d[0] != (crm.BackupDestination{Scheme: "s3", Place: "crm-backups"}) {
			t.Errorf("failed backup's destinations %+v", d)
		}
		// The newest completed backup is 26 hours old: not stale at 36.
		if st.Stale || !st.Tracking.On || st.Tracking.KitExported || st.Tracking.LedgerPublished != -1 || st.Tracking.LedgerBehind() {
			t.Errorf("stale %v, tracking %+v", st.Stale, st.Tracking)
		}
		c.add(11 * time.Hour)
		if st, err = e.n.CRM.BackupStatus(ctx, e.admin); err != nil || !st.Stale {
			t.Fatalf("37 hours later: stale %v, %v", st.Stale, err)
		}
		if n := e.auditCount("backup.status", audit.OK); n != 3 {
			t.Fatalf("%d backup.status events", n)
		}
	})
}

// A destination is shown without what a URL could carry as credentials.
func TestBackupStatusHidesCredentials(t *testing.T) {
	e := newEnv(t, "sqlite", crm.Options{})
	const secret = "TOPSECRET"
	// Setting such a value is refused now; one stored before that was (or
	// written by hand) must still not be shown.
	err := e.n.DB.Write(e.ctx, func(tx *store.Tx) error {
		return tx.PutSetting(e.ctx, store.Setting{Key: settings.BackupDestinations, UpdatedAt: time.Now(), UpdatedBy: "test",
			Value: "s3://AKID:" + secret + "@bucket-a?secret_access_key=" + secret + "&session_token=" + secret + "#" + secret + " file:///d/"})
	})
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.n.CRM.BackupStatus(e.ctx, e.admin)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range st.Destinations {
		if strings.Contains(d.Scheme+d.Place, secret) || strings.Contains(d.Place, "AKID") {
			t.Fatalf("destination shows a credential: %+v", d)
		}
	}
	if st.Destinations[0] != (crm.BackupDestination{Scheme: "s3", Place: "bucket-a"}) {
		t.Fatalf("destinations %+v", st.Destinations)
	}
}
