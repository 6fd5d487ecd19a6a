package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/metrics/metricstest"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
)

func TestRequestsByRoutePatternMethodAndCode(t *testing.T) {
	m := metrics.New(metrics.Options{})
	obs := []struct {
		pattern, method string
		code            int
	}{
		{"GET /api/v1/customers/{id}", "GET", 200},
		{"GET /api/v1/customers/{id}", "GET", 0}, // nothing written: net/http sends 200
		{"GET /api/v1/customers/{id}", "GET", 404},
		{"GET /api/v1/customers/{id}", "HEAD", 200}, // GET patterns match HEAD
		{"POST /api/v1/customers", "POST", 201},
		{"/api/", "GET", 404},
		{"", "BREW", 404}, // unknown method, no pattern matched
		{"", "PROPFIND", 405},
	}
	for _, o := range obs {
		m.ObserveRequest(o.pattern, o.method, o.code, 3*time.Millisecond)
	}
	fams, _ := metricstest.Scrape(t, m.Handler(), "")
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/api/v1/customers/{id}", "method", "GET", "code", "200"}, 2},
		{[]string{"route", "/api/v1/customers/{id}", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "/api/v1/customers/{id}", "method", "HEAD", "code", "200"}, 1},
		{[]string{"route", "/api/v1/customers", "method", "POST", "code", "201"}, 1},
		{[]string{"route", "/api/", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "unmatched", "method", "OTHER", "code", "404"}, 1},
		{[]string{"route", "unmatched", "method", "OTHER", "code", "405"}, 1},
	} {
		if got := fams.Value(t, "custos_http_requests_total", c.labels...); got != c.want {
			t.Errorf("requests %v = %v, want %v", c.labels, got, c.want)
		}
	}
	if n := len(fams.LabelSets("custos_http_requests_total")); n != 7 {
		t.Errorf("%d request series, want 7: %v", n, fams.LabelSets("custos_http_requests_total"))
	}
	// The histogram is by route and method, not by code.
	if got := fams.Value(t, "custos_http_request_duration_seconds", "route", "/api/v1/customers/{id}", "method", "GET"); got != 3 {
		t.Errorf("histogram count %v, want 3", got)
	}
	h := fams["custos_http_request_duration_seconds"].GetMetric()[0].GetHistogram()
	if h.GetSampleSum() <= 0 {
		t.Errorf("histogram sum %v", h.GetSampleSum())
	}
	for _, set := range fams.LabelSets("custos_http_request_duration_seconds") {
		if strings.Contains(set, "code=") {
			t.Errorf("histogram carries the status code: %s", set)
		}
	}
	// The Go and process collectors are there (the process collector
	// reads /proc on Linux).
	for _, name := range []string{"go_goroutines", "go_memstats_heap_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

// The request path is served without a lock or an allocation once its
// route, method and status have been seen.
func TestObserveRequestDoesNotAllocate(t *testing.T) {
	m := metrics.New(metrics.Options{})
	m.ObserveRequest("GET /api/v1/customers/{id}", "GET", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("GET /api/v1/customers/{id}", "GET", 200, time.Millisecond)
	}); n != 0 {
		t.Fatalf("ObserveRequest allocates %v times per request", n)
	}
	var nilM *metrics.Metrics
	nilM.ObserveRequest("GET /x", "GET", 200, time.Millisecond) // a nil *Metrics records nothing
	nilM.Login(metrics.LoginPassword, metrics.LoginOK)
}

func TestObserveRequestConcurrently(t *testing.T) {
	m := metrics.New(metrics.Options{})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				m.ObserveRequest(fmt.Sprintf("GET /r%d", i%7), "GET", 200+(i+g)%3, time.Microsecond)
			}
		})
	}
	wg.Wait()
	fams, _ := metricstest.Scrape(t, m.Handler(), "")
	var total float64
	for _, mm := range fams["custos_http_requests_total"].GetMetric() {
		total += mm.GetCounter().GetValue()
	}
	if total != 8*500 {
		t.Fatalf("counted %v requests, want %d", total, 8*500)
	}
	if n := len(fams.LabelSets("custos_http_requests_total")); n != 7*3 {
		t.Fatalf("%d series, want %d", n, 7*3)
	}
}

func TestLoginCounter(t *testing.T) {
	m := metrics.New(metrics.Options{})
	fams, _ := metricstest.Scrape(t, m.Handler(), "")
	// Every method and result is there from the start.
	if got := fams.Value(t, "custos_logins_total", "method", "password", "result", "bad_credentials"); got != 0 {
		t.Fatalf("fresh counter %v", got)
	}
	before := len(fams.LabelSets("custos_logins_total"))
	m.Login(metrics.LoginPassword, metrics.LoginOK)
	m.Login(metrics.LoginPassword, metrics.LoginBadCredentials)
	m.Login(metrics.LoginPassword, metrics.LoginBadCredentials)
	m.Login(metrics.LoginMFA, metrics.LoginMFAFailed)
	m.Login(metrics.LoginPasskey, "something new")                // counted as error
	m.Login("carrier pigeon", metrics.LoginOK)                    // not counted
	m.Login(metrics.LoginSSO, metrics.LoginResult("13800138000")) // never a label value
	fams, text := metricstest.Scrape(t, m.Handler(), "")
	for _, c := range []struct {
		method, result string
		want           float64
	}{
		{"password", "ok", 1}, {"password", "bad_credentials", 2}, {"mfa", "mfa_failed", 1},
		{"passkey", "error", 1}, {"sso", "error", 1}, {"sso", "ok", 0},
	} {
		if got := fams.Value(t, "custos_logins_total", "method", c.method, "result", c.result); got != c.want {
			t.Errorf("logins %s/%s = %v, want %v", c.method, c.result, got, c.want)
		}
	}
	if after := len(fams.LabelSets("custos_logins_total")); after != before {
		t.Errorf("login series grew from %d to %d", before, after)
	}
	for _, bad := range []string{"pigeon", "something new", "13800138000"} {
		if strings.Contains(text, bad) {
			t.Errorf("exposition contains %q", bad)
		}
	}
}

// openDB returns a migrated SQLite database.
func openDB(t *testing.T) *store.DB {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "custos.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	return db
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) { c.mu.Lock(); defer c.mu.Unlock(); c.t = c.t.Add(d) }
func record(t *testing.T, db *store.DB, at time.Time, action, outcome string) {
	t.Helper()
	if err := audit.RecordAlone(context.Background(), db, at, audit.Event{Actor: "system", Action: action, ObjectType: "audit", Outcome: outcome}); err != nil {
		t.Fatal(err)
	}
}

func head(t *testing.T, db *store.DB) store.AuditHead {
	t.Helper()
	var h store.AuditHead
	if err := db.Read(context.Background(), func(tx *store.Tx) error {
		var err error
		h, err = tx.AuditHead(context.Background())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return h
}

func TestStateFromTheDatabase(t *testing.T) {
	ctx := context.Background()
	db := openDB(t)
	clk := &clock{t: time.Date(2026, 3, 1, 8, 0, 0, 0, time.UTC)}
	t0 := clk.Now()
	// A backup and a verification long ago, buried under other events, and
	// a failed verification after them.
	record(t, db, t0, "backup.create", audit.OK)
	record(t, db, t0.Add(time.Minute), "audit.verify", audit.OK)
	record(t, db, t0.Add(2*time.Minute), "audit.verify", audit.Failed)
	for i := range 10 {
		record(t, db, t0.Add(time.Duration(3+i)*time.Minute), "customer.view", audit.OK)
	}
	if err := db.Write(ctx, func(tx *store.Tx) error {
		return tx.InsertKeyringEntry(ctx, store.KeyringEntry{Purpose: "master", Version: 1, Wrapped: []byte{1}, WrappedBy: "root", CreatedAt: t0})
	}); err != nil {
		t.Fatal(err)
	}
	clk.Add(time.Hour)
	// A budget of 4 events per scrape and direction: the history is found
	// over several scrapes, newest first.
	m := metrics.New(metrics.Options{DB: db, Now: clk.Now, ScanBudget: 4})

	fams, _ := metricstest.Scrape(t, m.Handler(), "")
	if got := fams.Value(t, "custos_scrape_database_ok"); got != 1 {
		t.Fatalf("database_ok %v", got)
	}
	if got, want := fams.Value(t, "custos_audit_chain_length"), float64(head(t, db).Seq); got != want || want != 13 {
		t.Errorf("chain length %v, head %v", got, want)
	}
	if got := fams.Value(t, "custos_audit_chain_pruned_through"); got != 0 {
		t.Errorf("pruned through %v", got)
	}
	if got := fams.Value(t, "custos_key_age_seconds", "purpose", "master"); got != 3600 {
		t.Errorf("key age %v, want 3600", got)
	}
	if _, ok := fams.Get("custos_backup_age_seconds"); ok {
		t.Error("backup age present before the scan reached the backup")
	}
	for range 3 {
		fams, _ = metricstest.Scrape(t, m.Handler(), "")
	}
	if got := fams.Value(t, "custos_audit_last_verify_timestamp_seconds"); got != float64(t0.Add(time.Minute).Unix()) {
		t.Errorf("last verify %v, want %v", got, t0.Add(time.Minute).Unix())
	}
	if got := fams.Value(t, "custos_audit_last_verify_age_seconds"); got != 59*60 {
		t.Errorf("last verify age %v", got)
	}
	if got := fams.Value(t, "custos_backup_last_success_timestamp_seconds"); got != float64(t0.Unix()) {
		t.Errorf("last backup %v", got)
	}
	if got := fams.Value(t, "custos_backup_age_seconds"); got != 3600 {
		t.Errorf("backup age %v", got)
	}

	// New events: a newer verification and an alert; the failed one is
	// never taken.
	clk.Add(time.Minute)
	record(t, db, clk.Now(), "audit.verify", audit.OK)
	record(t, db, clk.Now(), "audit.verify", audit.Failed)
	if err := db.Write(ctx, func(tx *store.Tx) error {
		for range 2 {
			if _, err := monitor.Raise(ctx, tx, clk.Now(), monitor.Alert{Rule: monitor.RuleRevealQuota, Severity: monitor.High,
				ActorID: "user-secret-id", Details: map[string]any{"name": "韩梅梅"}}); err != nil {
				return err
			}
		}
		_, err := monitor.Raise(ctx, tx, clk.Now(), monitor.Alert{Rule: monitor.RuleSelfGrant, Severity: monitor.Medium})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Second)
	fams, text := metricstest.Scrape(t, m.Handler(), "")
	if got := fams.Value(t, "custos_audit_last_verify_age_seconds"); got != 30 {
		t.Errorf("last verify age %v, want 30", got)
	}
	if got := fams.Value(t, "custos_alerts", "rule", monitor.RuleRevealQuota, "status", "open"); got != 2 {
		t.Errorf("reveal alerts %v", got)
	}
	if got := fams.Value(t, "custos_alerts", "rule", monitor.RuleSelfGrant, "status", "open"); got != 1 {
		t.Errorf("self-grant alerts %v", got)
	}
	if got, want := fams.Value(t, "custos_audit_chain_length"), float64(head(t, db).Seq); got != want {
		t.Errorf("chain length %v, head %v", got, want)
	}
	for _, bad := range []string{"user-secret-id", "韩梅梅"} {
		if strings.Contains(text, bad) {
			t.Errorf("exposition contains %q", bad)
		}
	}
}

func TestNoBackupEverIsAbsent(t *testing.T) {
	db := openDB(t)
	record(t, db, time.Now(), "customer.view", audit.OK)
	record(t, db, time.Now(), "backup.create", audit.Failed)
	m := metrics.New(metrics.Options{DB: db})
	fams, text := metricstest.Scrape(t, m.Handler(), "")
	for _, name := range []string{"custos_backup_age_seconds", "custos_backup_last_success_timestamp_seconds", "custos_audit_last_verify_timestamp_seconds"} {
		if _, ok := fams.Get(name); ok {
			t.Errorf("%s present without an event", name)
		}
	}
	if strings.Contains(text, "NaN") {
		t.Error("exposition has NaN")
	}
	// No keyring yet: no key age rather than a made-up one.
	if _, ok := fams.Get("custos_key_age_seconds"); ok {
		t.Error("key age without a keyring")
	}
}

func TestDatabaseDownStillAnswers(t *testing.T) {
	db := openDB(t)
	m := metrics.New(metrics.Options{DB: db, Logger: slog.New(slog.DiscardHandler)})
	_ = db.Close()
	fams, _ := metricstest.Scrape(t, m.Handler(), "")
	if got := fams.Value(t, "custos_scrape_database_ok"); got != 0 {
		t.Fatalf("database_ok %v, want 0", got)
	}
	if _, ok := fams.Get("custos_audit_chain_length"); ok {
		t.Error("chain length without a database")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("the rest of the scrape is missing")
	}
}

func TestSinkStatusHook(t *testing.T) {
	ok := time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)
	failed := ok.Add(time.Hour)
	var hookErr error
	m := metrics.New(metrics.Options{Sinks: func(ctx context.Context) ([]metrics.SinkStatus, error) {
		if _, has := ctx.Deadline(); !has {
			t.Error("the sink hook runs without a deadline")
		}
		return []metrics.SinkStatus{
			{Name: "ops-webhook", Kind: "webhook", Enabled: true, LastSuccess: ok, Deliveries: map[string]int{"sent": 7, "weird": 9}},
			{Name: "mail", Kind: "smtp", Enabled: true, ConsecutiveFailures: 5, LastSuccess: ok, LastFailure: failed,
				Deliveries: map[string]int{"pending": 3, "failed": 2}},
			{Name: "mail", Kind: "smtp"},              // named twice: left out
			{Name: "", Kind: "syslog", Enabled: true}, // no name: left out
			{Name: "old-syslog", Kind: "syslog"},      // disabled, never used
		}, hookErr
	}})
	fams, text := metricstest.Scrape(t, m.Handler(), "")
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"custos_scrape_sinks_ok", nil, 1},
		{"custos_alert_sink_up", []string{"sink", "ops-webhook", "kind", "webhook"}, 1},
		{"custos_alert_sink_up", []string{"sink", "mail", "kind", "smtp"}, 0},
		{"custos_alert_sink_up", []string{"sink", "old-syslog", "kind", "syslog"}, 1},
		{"custos_alert_sink_enabled", []string{"sink", "old-syslog"}, 0},
		{"custos_alert_sink_enabled", []string{"sink", "mail"}, 1},
		{"custos_alert_sink_consecutive_failures", []string{"sink", "mail"}, 5},
		{"custos_alert_sink_last_success_timestamp_seconds", []string{"sink", "ops-webhook"}, float64(ok.Unix())},
		{"custos_alert_sink_last_failure_timestamp_seconds", []string{"sink", "mail"}, float64(failed.Unix())},
		{"custos_alert_deliveries", []string{"sink", "mail", "status", "pending"}, 3},
		{"custos_alert_deliveries", []string{"sink", "mail", "status", "failed"}, 2},
		{"custos_alert_deliveries", []string{"sink", "mail", "status", "sent"}, 0},
		{"custos_alert_deliveries", []string{"sink", "ops-webhook", "status", "sent"}, 7},
	} {
		if got := fams.Value(t, c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	if got := fams.LabelValues("custos_alert_sink_up", "sink"); !slices.Equal(got, []string{"mail", "old-syslog", "ops-webhook"}) {
		t.Errorf("sinks %v", got)
	}
	if got := fams.LabelValues("custos_alert_deliveries", "status"); len(got) != 6 || strings.Contains(text, "weird") {
		t.Errorf("delivery statuses %v", got)
	}
	for _, name := range []string{"custos_alert_sink_last_success_timestamp_seconds", "custos_alert_sink_last_failure_timestamp_seconds"} {
		if _, has := fams.Get(name, "sink", "old-syslog"); has {
			t.Errorf("%s of a sink that never sent", name)
		}
	}
	if _, has := fams.Get("custos_alert_deliveries", "sink", "old-syslog"); has {
		t.Error("deliveries of a sink without counts")
	}

	hookErr = errors.New("database is locked")
	fams, _ = metricstest.Scrape(t, m.Handler(), "")
	if got := fams.Value(t, "custos_scrape_sinks_ok"); got != 0 {
		t.Errorf("sinks_ok %v after a failure", got)
	}
	if _, has := fams["custos_alert_sink_up"]; has {
		t.Error("sink metrics after a failure")
	}
}

func TestToken(t *testing.T) {
	const secret = "s3cret-metrics-token-0123456789"
	tok, err := metrics.NewToken(secret + "\n")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"", "short", "has a space in the middle!!", "tab\tinside-long-enough"} {
		if _, err := metrics.NewToken(bad); err == nil {
			t.Errorf("NewToken(%q) accepted", bad)
		}
	}
	h := metrics.Protect(tok, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) }))
	for _, c := range []struct {
		name, header string
		want         int
	}{
		{"no token", "", 401},
		{"wrong token", "Bearer " + secret + "x", 401},
		{"prefix of the token", "Bearer " + secret[:20], 401},
		{"basic auth", "Basic " + secret, 401},
		{"bare token", secret, 401},
		{"right token", "Bearer " + secret, 200},
		{"scheme in lower case", "bearer " + secret, 200},
	} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if c.header != "" {
			r.Header.Set("Authorization", c.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != c.want {
			t.Errorf("%s: %d, want %d", c.name, w.Code, c.want)
		}
		if c.want == 401 && (w.Header().Get("WWW-Authenticate") == "" || w.Body.String() == "metrics") {
			t.Errorf("%s: challenge %q body %q", c.name, w.Header().Get("WWW-Authenticate"), w.Body)
		}
	}
	// It never prints.
	for _, s := range []string{tok.String(), fmt.Sprintf("%v %+v %s %q %#v", tok, tok, tok, tok, tok)} {
		if strings.Contains(s, secret) || strings.Contains(s, "s3cret") {
			t.Errorf("token printed: %s", s)
		}
	}
	var logged strings.Builder
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "token", tok)
	if strings.Contains(logged.String(), "s3cret") {
		t.Errorf("token logged: %s", logged.String())
	}
	// Without a token, Protect adds nothing (the separate listener).
	w := httptest.NewRecorder()
	metrics.Protect(nil, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("metrics")) })).
		ServeHTTP(w, httptest.NewRequest("GET", "/metrics", nil))
	if w.Code != 200 || w.Body.String() != "metrics" {
		t.Errorf("Protect(nil): %d %q", w.Code, w.Body)
	}
}

func TestReadTokenFile(t *testing.T) {
	dir := t.TempDir()
	const secret = "0123456789abcdef0123456789abcdef"
	write := func(name string, mode os.FileMode, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), mode); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tok, err := metrics.ReadTokenFile(write("ok", 0o600, secret+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	r := httptest.NewRequest("GET", "/metrics", nil)
	r.Header.Set("Authorization", "Bearer "+secret)
	if !tok.Allows(r) {
		t.Fatal("token from the file refused")
	}
	if _, err := metrics.ReadTokenFile(write("group", 0o640, secret)); err != nil {
		t.Errorf("group-readable file refused: %v", err)
	}
	if _, err := metrics.ReadTokenFile(write("world", 0o644, secret)); err == nil || !strings.Contains(err.Error(), "chmod") {
		t.Errorf("world-readable file: %v", err)
	}
	if _, err := metrics.ReadTokenFile(write("empty", 0o600, "\n")); err == nil {
		t.Error("empty file accepted")
	}
	if _, err := metrics.ReadTokenFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := metrics.ReadTokenFile(dir); err == nil {
		t.Error("directory accepted")
	}
}

func TestListenerHandler(t *testing.T) {
	m := metrics.New(metrics.Options{})
	h := metrics.ListenerHandler(m.Handler())
	for _, c := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/metrics", 200}, {"HEAD", "/metrics", 200}, {"GET", "/", 404}, {"GET", "/api/v1/customers", 404},
		{"POST", "/metrics", 405}, {"GET", "/metrics/x", 404},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(c.method, c.path, nil))
		if w.Code != c.want {
			t.Errorf("%s %s: %d, want %d", c.method, c.path, w.Code, c.want)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := metrics.New(metrics.Options{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("GET /api/v1/customers/{id}", "GET", 200, 1500*time.Microsecond)
		}
	})
}
