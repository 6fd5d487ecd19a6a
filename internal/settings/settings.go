// Package settings defines the runtime settings an administrator or security
// officer may change while Custos runs (`custos config set`, PUT
// /api/v1/settings/{key}). Each has a default, a validator and the
// permission needed to change it. Values are stored in the settings table;
// a missing row means the default. Environment variables CUSTOS_<KEY> (dots
// and dashes as underscores, upper case) override stored values.
package settings

import (
	"fmt"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// Def describes one setting.
type Def struct {
	Key        string
	Default    string
	Permission string // the access permission needed to change it
	Doc        string
	Validate   func(string) (string, error) // returns the canonical value
}

// Keys of the settings defined so far.
const (
	StrictSeparation = "strict_separation"
	TimeZone         = "time_zone"
	PoolReturnDays   = "pool.return_days"
	PoolWarnDays     = "pool.warn_days"
	// AuditRetentionDays: events older than this are archived and pruned.
	AuditRetentionDays = "audit.retention_days"
	// AuditCheckpointEvents and AuditCheckpointSeconds: a signed checkpoint
	// is written after this many events or this long after the last one.
	AuditCheckpointEvents  = "audit.checkpoint_events"
	AuditCheckpointSeconds = "audit.checkpoint_seconds"

	// Login throttling (internal/auth): failures per account or per source
	// address within the window lock further attempts for a while.
	LockoutFailures      = "auth.lockout_failures"
	LockoutIPFailures    = "auth.lockout_ip_failures"
	LockoutWindowMinutes = "auth.lockout_window_minutes"
	LockoutMinutes       = "auth.lockout_minutes"

	// Detectors (internal/monitor). 0 turns a detector off.
	ViewsAlertPerHour   = "monitor.views_alert_per_hour"
	ViewsSuspendPerHour = "monitor.views_suspend_per_hour"
	DenialsPerHour      = "monitor.denials_per_hour"
	RevealsPerHour      = "monitor.reveals_per_hour"
	ExportAlertRows     = "monitor.export_alert_rows"
	WorkHours           = "monitor.work_hours"
	NewIPAlert          = "monitor.new_ip"
	DormantDays         = "monitor.dormant_days"
	RoleChangeHours     = "monitor.role_change_hours"
	BackupMaxAgeHours   = "monitor.backup_max_age_hours"

	// Export approval (internal/crm): an export above this many rows, or
	// with revealed fields, waits for a second person's approval; the
	// approved file can be downloaded for this many hours.
	ExportApprovalRows  = "export.approval_rows"
	ExportDownloadHours = "export.download_hours"

	// Backups scheduled inside serve (internal/backup): where to, when
	// (cron, company time zone; "off" turns a job off), and what to keep.
	BackupDestinations        = "backup.destinations"
	BackupFullSchedule        = "backup.full_schedule"
	BackupIncrementalSchedule = "backup.incremental_schedule"
	BackupVerifySchedule      = "backup.verify_schedule"
	BackupKeepDaily           = "backup.keep_daily"
	BackupKeepWeekly          = "backup.keep_weekly"
	BackupKeepMonthly         = "backup.keep_monthly"

	// UIWatermark tiles the viewer's name and the date over every page of
	// the web interface that shows customer data.
	UIWatermark = "ui.watermark"
)

// cronSpec accepts a five-field cron expression (minute hour day month
// weekday, or a descriptor such as @daily) or "off".
func cronSpec(v string) (string, error) {
	v = strings.Join(strings.Fields(v), " ")
	if strings.EqualFold(v, "off") {
		return "off", nil
	}
	if _, err := ParseCron(v); err != nil {
		return "", fmt.Errorf("must be a cron expression such as \"0 2 * * *\" (minute hour day month weekday), or off: %v", err)
	}
	return v, nil
}

// ParseCron parses a five-field cron expression.
func ParseCron(v string) (cron.Schedule, error) {
	return cron.ParseStandard(v)
}

// urls accepts space-separated backup destination URLs (file:/// or s3://).
func urls(v string) (string, error) {
	fields := strings.Fields(v)
	for _, f := range fields {
		if !strings.HasPrefix(f, "file:///") && !strings.HasPrefix(f, "s3://") {
			return "", fmt.Errorf("each destination must be a file:///absolute/path or s3://bucket URL")
		}
		// Settings are shown to administrators and their changes are
		// audited with both values: a credential must not be in one.
		u, err := url.Parse(f)
		if err != nil {
			return "", fmt.Errorf("a destination is not a valid URL")
		}
		if u.User != nil {
			return "", fmt.Errorf("a destination must not carry credentials: give S3 keys in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
		}
		for k := range u.Query() {
			if k := strings.ToLower(k); strings.Contains(k, "secret") || strings.Contains(k, "password") || strings.Contains(k, "token") || strings.Contains(k, "key") {
				return "", fmt.Errorf("a destination must not carry credentials: give S3 keys in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)")
			}
		}
	}
	return strings.Join(fields, " "), nil
}

// MinAuditRetentionDays is the shortest retention accepted (China's
// Cybersecurity Law, art. 21: at least six months).
const MinAuditRetentionDays = 180

func between(lo, hi int, unit string) func(string) (string, error) {
	return func(v string) (string, error) {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < lo || n > hi {
			return "", fmt.Errorf("must be a number of %s from %d to %d", unit, lo, hi)
		}
		return strconv.Itoa(n), nil
	}
}

// hours accepts "HH:MM-HH:MM" (the end may be before the start: a night
// window) or "off".
func hours(v string) (string, error) {
	v = strings.TrimSpace(v)
	if strings.EqualFold(v, "off") {
		return "off", nil
	}
	if _, _, err := ParseHours(v); err != nil {
		return "", err
	}
	return v, nil
}

// ParseHours parses "HH:MM-HH:MM" into minutes after midnight.
func ParseHours(v string) (from, to int, err error) {
	bad := fmt.Errorf("must be a window HH:MM-HH:MM such as 07:00-22:00, or off")
	a, b, ok := strings.Cut(strings.TrimSpace(v), "-")
	if !ok {
		return 0, 0, bad
	}
	parse := func(s string) (int, bool) {
		t, err := time.Parse("15:04", strings.TrimSpace(s))
		if err != nil {
			return 0, false
		}
		return t.Hour()*60 + t.Minute(), true
	}
	from, ok1 := parse(a)
	to, ok2 := parse(b)
	if !ok1 || !ok2 || from == to {
		return 0, 0, bad
	}
	return from, to, nil
}

// PoolReturnDaysLevel is the per-level override key of PoolReturnDays.
func PoolReturnDaysLevel(level string) string { return PoolReturnDays + "." + level }

func boolean(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "1", "yes":
		return "on", nil
	case "off", "false", "0", "no":
		return "off", nil
	}
	return "", fmt.Errorf("must be on or off")
}

func days(v string) (string, error) {
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < 0 || n > 3650 {
		return "", fmt.Errorf("must be a number of days from 0 to 3650")
	}
	return strconv.Itoa(n), nil
}

func zone(v string) (string, error) {
	v = strings.TrimSpace(v)
	if _, err := time.LoadLocation(v); err != nil || v == "" || v == "Local" {
		return "", fmt.Errorf("must be an IANA time zone such as Asia/Shanghai")
	}
	return v, nil
}

// Defs lists the settings, by key.
var Defs = []Def{
	{Key: StrictSeparation, Default: "off", Permission: "manage_policies", Validate: boolean,
		Doc: "on: holders of administrator permissions manage users and configuration but cannot read customer data, policies or the audit trail"},
	// A policy: moving the day boundary would refill daily quotas.
	{Key: TimeZone, Default: "Asia/Shanghai", Permission: "manage_policies", Validate: zone,
		Doc: "the company's time zone: when a day starts for daily quotas (reveals, claims)"},
	{Key: UIWatermark, Default: "on", Permission: "manage_policies", Validate: boolean,
		Doc: "on: pages of the web interface that show customer data carry a faint tiled watermark with the viewer's name and the date"},
	{Key: PoolReturnDays, Default: "0", Permission: "manage_config", Validate: days,
		Doc: "an owned customer without an interaction for this many days returns to the public pool (0: never); pool.return_days.<level> overrides it per customer level"},
	{Key: PoolWarnDays, Default: "3", Permission: "manage_config", Validate: days,
		Doc: "the owner is warned this many days before a customer returns to the pool"},
	// The audit trail's settings are policies: shortening retention or
	// checkpointing less often weakens the evidence.
	{Key: AuditRetentionDays, Default: "365", Permission: "manage_policies", Validate: between(MinAuditRetentionDays, 36500, "days"),
		Doc: "audit events older than this many days are archived to a verifiable file in the data directory and pruned (at least 180)"},
	{Key: AuditCheckpointEvents, Default: "1000", Permission: "manage_policies", Validate: between(1, 1000000, "events"),
		Doc: "a signed audit checkpoint is written after this many events"},
	{Key: AuditCheckpointSeconds, Default: "60", Permission: "manage_policies", Validate: between(1, 86400, "seconds"),
		Doc: "a signed audit checkpoint is written this many seconds after the last one when events were added"},
	// Thresholds of login throttling and of the detectors are policies too:
	// raising one weakens a defence.
	{Key: LockoutFailures, Default: "5", Permission: "manage_policies", Validate: between(1, 1000, "failures"),
		Doc: "failed logins to one account within the lockout window that lock it (and raise an auth.brute_force alert)"},
	{Key: LockoutIPFailures, Default: "20", Permission: "manage_policies", Validate: between(1, 100000, "failures"),
		Doc: "failed logins from one source address within the lockout window that lock it (and raise an alert)"},
	{Key: LockoutWindowMinutes, Default: "15", Permission: "manage_policies", Validate: between(1, 1440, "minutes"),
		Doc: "the window in which failed logins are counted"},
	{Key: LockoutMinutes, Default: "15", Permission: "manage_policies", Validate: between(1, 10080, "minutes"),
		Doc: "how long a lock lasts"},
	{Key: ViewsAlertPerHour, Default: "200", Permission: "manage_policies", Validate: between(0, 1000000, "customers"),
		Doc: "distinct customers one user sees (detail, list, search pages) within an hour that raise a bulk-viewing alert (0: off)"},
	{Key: ViewsSuspendPerHour, Default: "400", Permission: "manage_policies", Validate: between(0, 1000000, "customers"),
		Doc: "distinct customers within an hour at which the user is suspended: sessions and tokens end, further reads are refused until an alert handler reinstates them (0: off)"},
	{Key: DenialsPerHour, Default: "20", Permission: "manage_policies", Validate: between(0, 1000000, "denials"),
		Doc: "refusals (permission, not found, quota) of one user within an hour that raise a permission-probing alert (0: off)"},
	{Key: RevealsPerHour, Default: "20", Permission: "manage_policies", Validate: between(0, 1000000, "reveals"),
		Doc: "reveals of masked fields by one user within an hour that raise an alert (0: off; the role's daily quota still applies)"},
	{Key: ExportAlertRows, Default: "1000", Permission: "manage_policies", Validate: between(0, 100000000, "rows"),
		Doc: "an export of at least this many rows raises an alert (0: off)"},
	{Key: WorkHours, Default: "07:00-22:00", Permission: "manage_policies", Validate: hours,
		Doc: "a login outside this window (company time zone) raises an alert (off: never)"},
	{Key: NewIPAlert, Default: "on", Permission: "manage_policies", Validate: boolean,
		Doc: "a login from an address the user has not used in 90 days raises an alert"},
	{Key: DormantDays, Default: "30", Permission: "manage_policies", Validate: between(0, 3650, "days"),
		Doc: "a login by a user who has not logged in for this many days raises an alert (0: off)"},
	{Key: RoleChangeHours, Default: "24", Permission: "manage_policies", Validate: between(0, 720, "hours"),
		Doc: "an export or reveal by a user within this many hours of a change of their role raises an alert (0: off)"},
	{Key: BackupMaxAgeHours, Default: "36", Permission: "manage_policies", Validate: between(0, 8760, "hours"),
		Doc: "no successful backup for this many hours raises an alert; a failed backup always does (0: off)"},
	{Key: ExportApprovalRows, Default: "200", Permission: "manage_policies", Validate: between(0, 100000000, "rows"),
		Doc: "an export of more rows than this, or with revealed fields, needs a second person's approval (0: every export)"},
	{Key: ExportDownloadHours, Default: "24", Permission: "manage_policies", Validate: between(1, 720, "hours"),
		Doc: "how long an approved export can be downloaded"},
	// Where backups go and how long they are kept are policies: an empty
	// destination list or a shorter retention weakens recovery.
	{Key: BackupDestinations, Default: "", Permission: "manage_policies", Validate: urls,
		Doc: "space-separated destinations that serve's scheduled backups go to, all at once (file:///dir, s3://bucket?region=...); empty: no scheduled backups"},
	{Key: BackupFullSchedule, Default: "0 3 * * 0", Permission: "manage_policies", Validate: cronSpec,
		Doc: "when serve takes a full backup (cron, company time zone; off: never); old backups are pruned after it"},
	{Key: BackupIncrementalSchedule, Default: "0 2 * * *", Permission: "manage_policies", Validate: cronSpec,
		Doc: "when serve takes an incremental backup (cron, company time zone; off: never)"},
	{Key: BackupVerifySchedule, Default: "30 4 * * 0", Permission: "manage_policies", Validate: cronSpec,
		Doc: "when serve verifies the newest backup by restoring it into a scratch database (cron; off: never)"},
	{Key: BackupKeepDaily, Default: "7", Permission: "manage_policies", Validate: between(1, 3650, "days"),
		Doc: "daily restore points kept when serve prunes backups"},
	{Key: BackupKeepWeekly, Default: "4", Permission: "manage_policies", Validate: between(0, 520, "weeks"),
		Doc: "weekly restore points kept"},
	{Key: BackupKeepMonthly, Default: "12", Permission: "manage_policies", Validate: between(0, 1200, "months"),
		Doc: "monthly restore points kept"},
}

// levelCode is a customer level as stored (normalize.Code: lower case).
var levelCode = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,31}$`)

// CanonicalKey lower-cases the level of a per-level key, as customer levels
// are stored lower case.
func CanonicalKey(key string) string {
	if rest, ok := strings.CutPrefix(key, PoolReturnDays+"."); ok {
		return PoolReturnDays + "." + strings.ToLower(rest)
	}
	return key
}

// Lookup finds the definition of key; per-level pool keys share one.
func Lookup(key string) (Def, bool) {
	key = CanonicalKey(key)
	if rest, ok := strings.CutPrefix(key, PoolReturnDays+"."); ok {
		if !levelCode.MatchString(rest) {
			return Def{}, false
		}
		d, _ := Lookup(PoolReturnDays)
		d.Key = key
		return d, true
	}
	i := slices.IndexFunc(Defs, func(d Def) bool { return d.Key == key })
	if i < 0 {
		return Def{}, false
	}
	return Defs[i], true
}

// Validate checks value for key and returns its canonical form; "" resets
// the setting to its default.
func Validate(key, value string) (string, error) {
	d, ok := Lookup(key)
	if !ok {
		return "", fmt.Errorf("unknown setting %q (known: %s)", key, strings.Join(Keys(), ", "))
	}
	if value == "" {
		return "", nil
	}
	v, err := d.Validate(value)
	if err != nil {
		return "", fmt.Errorf("%s: %w", key, err)
	}
	return v, nil
}

// Keys lists the setting keys.
func Keys() []string {
	out := make([]string, len(Defs))
	for i, d := range Defs {
		out[i] = d.Key
	}
	return out
}

// EnvName is the environment variable that overrides key.
func EnvName(key string) string {
	return "CUSTOS_" + strings.ToUpper(strings.NewReplacer(".", "_", "-", "_").Replace(key))
}

// Values are the effective settings: stored values over defaults, with
// environment overrides on top.
type Values struct {
	stored map[string]string
	env    func(string) (string, bool)
}

// New returns the effective settings for stored values; env looks up
// environment overrides (nil: os.LookupEnv).
func New(stored map[string]string, env func(string) (string, bool)) Values {
	if env == nil {
		env = os.LookupEnv
	}
	return Values{stored: stored, env: env}
}

// Get returns the effective value of key and where it came from
// ("environment", "stored" or "default").
func (v Values) Get(key string) (string, string) {
	if e, ok := v.env(EnvName(key)); ok && e != "" {
		if c, err := Validate(key, e); err == nil && c != "" {
			return c, "environment"
		}
	}
	if s, ok := v.stored[key]; ok && s != "" {
		return s, "stored"
	}
	d, _ := Lookup(key)
	return d.Default, "default"
}

// Str returns the effective value of key.
func (v Values) Str(key string) string { s, _ := v.Get(key); return s }

// Bool reads an on/off setting.
func (v Values) Bool(key string) bool { s, _ := v.Get(key); return s == "on" }

// Int reads a numeric setting.
func (v Values) Int(key string) int { s, _ := v.Get(key); n, _ := strconv.Atoi(s); return n }

// Location reads the time zone.
func (v Values) Location() *time.Location {
	s, _ := v.Get(TimeZone)
	loc, err := time.LoadLocation(s)
	if err != nil {
		return time.UTC
	}
	return loc
}

// MinPoolReturnDays is the shortest positive return period of any level
// (0 when customers never return).
func (v Values) MinPoolReturnDays() int {
	best := v.Int(PoolReturnDays)
	for k, s := range v.stored {
		if !strings.HasPrefix(k, PoolReturnDays+".") {
			continue
		}
		if n, err := strconv.Atoi(s); err == nil && n > 0 && (best <= 0 || n < best) {
			best = n
		}
	}
	return max(best, 0)
}

// PoolReturnDays is the return period for customers of level.
func (v Values) PoolReturnDays(level string) int {
	if level != "" {
		if s, ok := v.stored[PoolReturnDaysLevel(level)]; ok && s != "" {
			n, _ := strconv.Atoi(s)
			return n
		}
	}
	return v.Int(PoolReturnDays)
}
