package monitor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Engine runs the stream detectors: it reads the audit trail after a cursor
// kept in the database and feeds each event to the detectors, whose windows
// live in the database too. Each batch — windows, alerts, cursor — commits
// in one transaction that locks the cursor row, so across restarts and
// nodes every event is judged exactly once.
//
// Blocking rules (the bulk-viewing guard, login lockout, export approval,
// reveal quota) run synchronously on the request path; the detectors here
// only alert, so they never slow a request.
type Engine struct {
	DB  *store.DB
	Now func() time.Time
	// Env looks up CUSTOS_* overrides of the thresholds (nil: the process
	// environment).
	Env   func(string) (string, bool)
	Log   *slog.Logger
	Batch int // events per transaction (default 500)
}

// State keys: the stream cursor, when monitoring started, the last
// successful backup.
const (
	cursorKey     = "cursor"
	startedKey    = "started"
	lastBackupKey = "last_backup"
)

// Windows of the stream detectors.
const (
	hour         = time.Hour
	knownIPDays  = 90
	pruneEvery   = time.Hour
	countsKeep   = 48 * time.Hour
	viewSeenKeep = 2 * ViewWindow
	stateKeep    = 7 * 24 * time.Hour
)

// Step judges the events recorded since the last step and checks backup
// staleness. It returns how many events it judged. On a database without a
// cursor it starts at the current end of the trail: history is not
// re-judged.
func (e *Engine) Step(ctx context.Context) (int, error) {
	total := 0
	for {
		n, more, err := e.batch(ctx)
		total += n
		if err != nil || !more {
			if err == nil {
				err = e.periodic(ctx)
			}
			return total, err
		}
	}
}

func (e *Engine) now() time.Time {
	if e.Now == nil {
		return time.Now().UTC()
	}
	return e.Now().UTC()
}

func (e *Engine) batch(ctx context.Context) (n int, more bool, err error) {
	limit := e.Batch
	if limit <= 0 {
		limit = 500
	}
	now := e.now()
	err = e.DB.Write(ctx, func(tx *store.Tx) error {
		n, more = 0, false
		head, err := tx.MaxAuditSeq(ctx)
		if err != nil {
			return err
		}
		if err := tx.EnsureMonitorState(ctx, cursorKey, strconv.FormatInt(head, 10), now); err != nil {
			return err
		}
		if err := tx.EnsureMonitorState(ctx, startedKey, "", now); err != nil {
			return err
		}
		v, _, _, err := tx.MonitorState(ctx, cursorKey, true)
		if err != nil {
			return err
		}
		cursor, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("monitor: cursor %q: %w", v, err)
		}
		evs, err := tx.AuditEvents(ctx, cursor, limit)
		if err != nil || len(evs) == 0 {
			return err
		}
		vals, err := e.values(ctx, tx)
		if err != nil {
			return err
		}
		d := detectors{tx: tx, now: now, vals: vals}
		for _, ev := range evs {
			if err := d.judge(ctx, ev); err != nil {
				return fmt.Errorf("monitor: event %d: %w", ev.Seq, err)
			}
		}
		n, more = len(evs), len(evs) == limit
		return tx.PutMonitorState(ctx, cursorKey, strconv.FormatInt(evs[len(evs)-1].Seq, 10), now)
	})
	return n, more, err
}

func (e *Engine) values(ctx context.Context, tx *store.Tx) (settings.Values, error) {
	st, err := tx.Settings(ctx)
	if err != nil {
		return settings.Values{}, err
	}
	m := make(map[string]string, len(st))
	for k, v := range st {
		m[k] = v.Value
	}
	return settings.New(m, e.Env), nil
}

// Run steps every interval until ctx ends; errors are logged
// and retried at the next step.
func (e *Engine) Run(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 2 * time.Second
	}
	log := e.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := e.Step(ctx); err != nil && ctx.Err() == nil {
			log.ErrorContext(ctx, "monitor: detectors", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// periodic runs the checks that depend on time rather than on events
// (backup staleness) and prunes old windows, at most once a minute.
func (e *Engine) periodic(ctx context.Context) error {
	now := e.now()
	return e.DB.Write(ctx, func(tx *store.Tx) error {
		if err := tx.EnsureMonitorState(ctx, "periodic", "", time.Time{}); err != nil {
			return err
		}
		_, last, _, err := tx.MonitorState(ctx, "periodic", true)
		if err != nil || now.Sub(last) < time.Minute {
			return err
		}
		vals, err := e.values(ctx, tx)
		if err != nil {
			return err
		}
		if err := backupStale(ctx, tx, now, vals); err != nil {
			return err
		}
		if _, pruned, _, err := tx.MonitorState(ctx, "pruned", false); err != nil {
			return err
		} else if now.Sub(pruned) >= pruneEvery {
			if err := tx.PruneMonitor(ctx, now.Add(-countsKeep), "view:", now.Add(-viewSeenKeep)); err != nil {
				return err
			}
			if err := tx.PruneMonitor(ctx, now.Add(-countsKeep), "ip:", now.Add(-knownIPDays*24*time.Hour)); err != nil {
				return err
			}
			// Evidence lists and dedupe marks of the past week and older
			// (a backup still stale a week on is raised again).
			for _, prefix := range []string{"fails:", "once:"} {
				if err := tx.PruneMonitorState(ctx, prefix, now.Add(-stateKeep)); err != nil {
					return err
				}
			}
			// Role changes are watched for at most 720 hours (the setting's maximum).
			if err := tx.PruneMonitorState(ctx, "role_changed:", now.Add(-31*24*time.Hour)); err != nil {
				return err
			}
			if err := tx.PutMonitorState(ctx, "pruned", "", now); err != nil {
				return err
			}
		}
		return tx.PutMonitorState(ctx, "periodic", "", now)
	})
}

// backupStale raises backup.stale once per stale period: no successful
// backup for longer than the setting, measured from the last one the
// detectors saw (the "backups" detector notes it) or, when there never was
// one, from when monitoring started on this database.
func backupStale(ctx context.Context, tx *store.Tx, now time.Time, vals settings.Values) error {
	maxAge := time.Duration(vals.Int(settings.BackupMaxAgeHours)) * time.Hour
	if maxAge <= 0 {
		return nil
	}
	seq, since, ok, err := tx.MonitorState(ctx, lastBackupKey, false)
	if err != nil {
		return err
	}
	never := !ok
	if never {
		if _, since, ok, err = tx.MonitorState(ctx, cursorKey, false); err != nil || !ok {
			return err
		}
		if _, started, ok, err := tx.MonitorState(ctx, startedKey, false); err != nil {
			return err
		} else if ok {
			since = started
		}
		seq = "never"
	}
	if now.Sub(since) < maxAge {
		return nil
	}
	var evidence []int64
	details := map[string]any{"max_age_hours": int(maxAge.Hours()), "never": never}
	if !never {
		n, _ := strconv.ParseInt(seq, 10, 64)
		evidence = []int64{n}
		details["last_backup_at"] = since.Format(time.RFC3339)
	}
	// Once per stale period: the key names the last good backup.
	_, err = raiseOnce(ctx, tx, now, "backup.stale:"+seq, 0, Alert{Rule: RuleBackupStale, Severity: High, Evidence: evidence, Details: details})
	return err
}

// raiseOnce raises a unless an alert under key was raised within `within`
// (0: ever) before now.
func raiseOnce(ctx context.Context, tx *store.Tx, now time.Time, key string, within time.Duration, a Alert) (bool, error) {
	key = "once:" + key
	_, at, ok, err := tx.MonitorState(ctx, key, false)
	if err != nil {
		return false, err
	}
	if ok && (within == 0 || now.Sub(at) < within) {
		return false, nil
	}
	id, err := Raise(ctx, tx, now, a)
	if err != nil {
		return false, err
	}
	return true, tx.PutMonitorState(ctx, key, id, now)
}

// detectors judge one batch of events.
type detectors struct {
	tx   *store.Tx
	now  time.Time
	vals settings.Values
}

// event is the part of an audit event the detectors read.
type event struct {
	store.AuditEvent
	details map[string]any
}

func (ev event) str(k string) string { s, _ := ev.details[k].(string); return s }

func (ev event) num(k string) int {
	switch v := ev.details[k].(type) {
	case float64:
		return int(v)
	case json.Number:
		n, _ := v.Int64()
		return int(n)
	}
	return 0
}

func (ev event) list(k string) []string {
	raw, _ := ev.details[k].([]any)
	out := make([]string, 0, len(raw))
	for _, r := range raw {
		if s, ok := r.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// userID is the user behind the event: the actor of a session, or the
// account a login concerns.
func (ev event) userID() string {
	if id, ok := strings.CutPrefix(ev.Actor, "user:"); ok {
		return id
	}
	// The operator acting with a user's rights (`custos ... --as EMAIL`).
	if _, id, ok := strings.Cut(ev.Actor, " as user:"); ok {
		return id
	}
	if ev.ObjectType == "user" && strings.HasPrefix(ev.Action, "auth.") {
		return ev.ObjectID
	}
	return ""
}

func (d *detectors) judge(ctx context.Context, se store.AuditEvent) error {
	// Alerts and the detectors' own actions are not judged again.
	if se.Action == "alert.raise" || se.Action == "user.suspend" {
		return nil
	}
	if !watched(se) {
		return nil // most events are successful reads: nothing to judge
	}
	ev := event{AuditEvent: se}
	if se.Details != "" && se.Details != "{}" {
		if err := json.Unmarshal([]byte(se.Details), &ev.details); err != nil {
			return nil // not ours to judge; verify reports malformed events
		}
	}
	for _, f := range []func(context.Context, event) error{d.bruteForce, d.denials, d.reveals, d.exports, d.logins, d.roleChange, d.backups} {
		if err := f(ctx, ev); err != nil {
			return err
		}
	}
	return nil
}

// watched reports whether any detector looks at se.
func watched(se store.AuditEvent) bool {
	switch {
	case se.Outcome != "ok", strings.HasPrefix(se.Action, "auth."), strings.HasPrefix(se.Action, "backup."):
		return true
	case se.Action == "user.role", se.Action == "customer.reveal", se.Action == "customer.export":
		return true
	}
	return slices.Contains(sensitive, se.Action)
}

func isLoginAttempt(action string) bool {
	switch action {
	case "auth.login", "auth.mfa", "auth.passkey", "auth.sso", "auth.reauthenticate":
		return true
	}
	return false
}

// bruteForce alerts when failed logins lock an account or a source address
// (auth sets the lock on the request path and says so in the failure's
// details), or when attempts keep arriving at a lock.
func (d *detectors) bruteForce(ctx context.Context, ev event) error {
	if !isLoginAttempt(ev.Action) || ev.Outcome != "denied" {
		return nil
	}
	window := time.Duration(d.vals.Int(settings.LockoutWindowMinutes)) * time.Minute
	acct := ev.str("email_hash")
	if acct == "" {
		acct = ev.ObjectID
	}
	// The failures of the window are the evidence of a lock.
	evidence := map[string][]int64{}
	for scope, key := range map[string]string{"account": acct, "ip": ev.IP} {
		if key == "" {
			continue
		}
		seqs, err := d.remember(ctx, "fails:"+scope+":"+key, ev.Seq, ev.At, window)
		if err != nil {
			return err
		}
		evidence[scope] = seqs
	}
	locks := ev.list("locked")
	if ev.Reason == "locked" {
		// An attempt refused by a lock: the lock's alert if it was missed
		// (a lock set by step-up or password change attempts).
		locks = []string{"account"}
	}
	for _, scope := range locks {
		key, details := "", map[string]any{"scope": scope, "threshold": d.vals.Int(settings.LockoutFailures)}
		switch scope {
		case "account":
			key = "bf:acct:" + acct
			details["email_hash"] = acct
		case "ip":
			key = "bf:ip:" + ev.IP
			details["ip"], details["threshold"] = ev.IP, d.vals.Int(settings.LockoutIPFailures)
		default:
			continue
		}
		seqs := evidence[scope]
		if len(seqs) == 0 {
			seqs = []int64{ev.Seq}
		}
		details["failures"] = len(seqs)
		if _, err := raiseOnce(ctx, d.tx, d.now, key, window, Alert{Rule: RuleBruteForce, Severity: High, ActorID: ev.userID(),
			Evidence: seqs, Details: details}); err != nil {
			return err
		}
	}
	return nil
}

// maxRemembered bounds the evidence kept per key.
const maxRemembered = 50

// remember appends seq to the list kept under key, dropping the list when
// its first entry is older than window, and returns the list.
func (d *detectors) remember(ctx context.Context, key string, seq int64, at time.Time, window time.Duration) ([]int64, error) {
	v, start, ok, err := d.tx.MonitorState(ctx, key, false)
	if err != nil {
		return nil, err
	}
	var seqs []int64
	if ok && at.Sub(start) <= window {
		for _, f := range strings.Split(v, ",") {
			if n, err := strconv.ParseInt(f, 10, 64); err == nil {
				seqs = append(seqs, n)
			}
		}
	} else {
		start = at
	}
	seqs = append(seqs, seq)
	if len(seqs) > maxRemembered {
		seqs = seqs[len(seqs)-maxRemembered:]
	}
	parts := make([]string, len(seqs))
	for i, n := range seqs {
		parts[i] = strconv.FormatInt(n, 10)
	}
	return seqs, d.tx.PutMonitorState(ctx, key, strings.Join(parts, ","), start)
}

// windowed counts ev under key and raises a (once per window) when the
// count within the last hour reaches threshold.
func (d *detectors) windowed(ctx context.Context, ev event, key string, threshold int, a Alert) error {
	if threshold <= 0 {
		return nil
	}
	if err := d.tx.AddCount(ctx, key, ev.At, 1); err != nil {
		return err
	}
	n, err := d.tx.SumCount(ctx, key, ev.At.Add(-hour))
	if err != nil || n < threshold {
		return err
	}
	a.Evidence = []int64{ev.Seq}
	a.Details["count"], a.Details["threshold"], a.Details["window"] = n, threshold, "1h"
	_, err = raiseOnce(ctx, d.tx, d.now, key, hour, a)
	return err
}

// denials: a user refused again and again is probing for what they may not
// see (permission denials, invisible records, quotas).
func (d *detectors) denials(ctx context.Context, ev event) error {
	user := ev.userID()
	// An export refused because it needs approval is the normal way to
	// file a request, not probing.
	if ev.Outcome != "denied" || user == "" || strings.HasPrefix(ev.Action, "auth.") || ev.Reason == "approval required" {
		return nil
	}
	return d.windowed(ctx, ev, "deny:"+user, d.vals.Int(settings.DenialsPerHour),
		Alert{Rule: RuleProbing, Severity: Medium, ActorID: user, Details: map[string]any{"last_action": ev.Action}})
}

func (d *detectors) reveals(ctx context.Context, ev event) error {
	user := ev.userID()
	if ev.Action != "customer.reveal" || ev.Outcome != "ok" || user == "" {
		return nil
	}
	return d.windowed(ctx, ev, "reveal:"+user, d.vals.Int(settings.RevealsPerHour),
		Alert{Rule: RuleRevealBurst, Severity: Medium, ActorID: user, Details: map[string]any{}})
}

func (d *detectors) exports(ctx context.Context, ev event) error {
	if ev.Action != "customer.export" {
		return nil
	}
	limit, rows := d.vals.Int(settings.ExportAlertRows), ev.num("rows")
	if limit <= 0 || rows < limit {
		return nil
	}
	_, err := Raise(ctx, d.tx, d.now, Alert{Rule: RuleLargeExport, Severity: High, ActorID: ev.userID(), Evidence: []int64{ev.Seq},
		Details: map[string]any{"rows": rows, "threshold": limit, "outcome": ev.Outcome}})
	return err
}

// logins judges each login that opened a session: a new source address,
// a time outside working hours, a dormant account waking up.
func (d *detectors) logins(ctx context.Context, ev event) error {
	user := ev.userID()
	if !isLoginAttempt(ev.Action) || ev.Action == "auth.reauthenticate" || ev.Outcome != "ok" || user == "" || ev.str("second_factor") == "pending" {
		return nil
	}
	if d.vals.Bool(settings.NewIPAlert) && ev.IP != "" {
		scope := "ip:" + user
		since := ev.At.Add(-knownIPDays * 24 * time.Hour)
		known, err := d.tx.CountSeen(ctx, scope, since, 1)
		if err != nil {
			return err
		}
		fresh, err := d.tx.MarkSeen(ctx, scope, []string{ev.IP}, ev.At, since, 0)
		if err != nil {
			return err
		}
		if known > 0 && fresh > 0 {
			if _, err := Raise(ctx, d.tx, d.now, Alert{Rule: RuleNewIP, Severity: Low, ActorID: user, Evidence: []int64{ev.Seq},
				Details: map[string]any{"ip": ev.IP, "known_addresses": known}}); err != nil {
				return err
			}
		}
	}
	if w, _ := d.vals.Get(settings.WorkHours); w != "off" {
		if from, to, err := settings.ParseHours(w); err == nil {
			t := ev.At.In(d.vals.Location())
			m := t.Hour()*60 + t.Minute()
			inside := m >= from && m < to
			if from > to { // a window across midnight
				inside = m >= from || m < to
			}
			if !inside {
				day := t.Format("2006-01-02")
				if _, err := raiseOnce(ctx, d.tx, d.now, "odd:"+user+":"+day, 0, Alert{Rule: RuleOddHours, Severity: Low, ActorID: user,
					Evidence: []int64{ev.Seq}, Details: map[string]any{"local_time": t.Format("15:04"), "work_hours": w}}); err != nil {
					return err
				}
			}
		}
	}
	last, ok, err := d.tx.LastSeen(ctx, "login", user)
	if err != nil {
		return err
	}
	if days := d.vals.Int(settings.DormantDays); ok && days > 0 && ev.At.Sub(last) >= time.Duration(days)*24*time.Hour {
		if _, err := Raise(ctx, d.tx, d.now, Alert{Rule: RuleDormant, Severity: Medium, ActorID: user, Evidence: []int64{ev.Seq},
			Details: map[string]any{"days_inactive": int(ev.At.Sub(last).Hours() / 24), "threshold_days": days}}); err != nil {
			return err
		}
	}
	_, err = d.tx.MarkSeen(ctx, "login", []string{user}, ev.At, ev.At, 0)
	return err
}

// sensitive are the actions watched right after a change of role.
var sensitive = []string{"customer.export", "customer.reveal", "export.request"}

// roleChange remembers role changes and alerts when the user exports or
// reveals shortly after one (once per change).
func (d *detectors) roleChange(ctx context.Context, ev event) error {
	if ev.Action == "user.role" && ev.Outcome == "ok" && ev.ObjectID != "" {
		return d.tx.PutMonitorState(ctx, "role_changed:"+ev.ObjectID, strconv.FormatInt(ev.Seq, 10), ev.At)
	}
	hours := d.vals.Int(settings.RoleChangeHours)
	user := ev.userID()
	if hours <= 0 || user == "" || !slices.Contains(sensitive, ev.Action) || ev.Outcome != "ok" {
		return nil
	}
	seq, at, ok, err := d.tx.MonitorState(ctx, "role_changed:"+user, false)
	if err != nil || !ok || ev.At.Sub(at) > time.Duration(hours)*time.Hour || ev.At.Before(at) {
		return err
	}
	change, _ := strconv.ParseInt(seq, 10, 64)
	_, err = raiseOnce(ctx, d.tx, d.now, "role_changed:"+user+":"+seq, 0, Alert{Rule: RuleAfterRoleChange, Severity: Medium, ActorID: user,
		Evidence: []int64{change, ev.Seq}, Details: map[string]any{"action": ev.Action, "hours_after_change": int(ev.At.Sub(at).Hours())}})
	return err
}

// backups notes the last successful backup (for staleness) and alerts on a
// failed backup or backup verification.
func (d *detectors) backups(ctx context.Context, ev event) error {
	if ev.Action == "backup.create" && ev.Outcome == "ok" {
		return d.tx.PutMonitorState(ctx, lastBackupKey, strconv.FormatInt(ev.Seq, 10), ev.At)
	}
	if !strings.HasPrefix(ev.Action, "backup.") || ev.Outcome != "error" {
		return nil
	}
	_, err := Raise(ctx, d.tx, d.now, Alert{Rule: RuleBackupFailed, Severity: High, Evidence: []int64{ev.Seq},
		Details: map[string]any{"action": ev.Action, "reason": ev.Reason}})
	return err
}
