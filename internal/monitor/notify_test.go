package monitor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/pgtest"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// fakeClock is an injected clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); c.t = t; c.mu.Unlock() }

// lockedBuf is a log destination safe for concurrent writes.
type lockedBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}
func (l *lockedBuf) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// sinkEnv is a migrated database with keys, where sinks are added and
// alerts raised the way crm does it.
type sinkEnv struct {
	t   *testing.T
	db  *store.DB
	kr  *keys.Keyring
	log *lockedBuf
}

func newSinkEnv(t *testing.T) *sinkEnv { return newSinkEnvOn(t, "sqlite") }

// newSinkEnvOn opens a database of engine ("sqlite" or "postgres").
func newSinkEnvOn(t *testing.T, engine string) *sinkEnv {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dsn := filepath.Join(dir, "custos.db")
	if engine == "postgres" {
		dsn = pgtest.Shared(t).NewDatabase(t)
	}
	db, err := store.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	root, err := keys.CreateLocalFile(filepath.Join(dir, "root.key"))
	if err != nil {
		t.Fatal(err)
	}
	kr, err := keys.Initialize(ctx, db, root, keys.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return &sinkEnv{t: t, db: db, kr: kr, log: &lockedBuf{}}
}

func (e *sinkEnv) notifier(o monitor.NotifierOptions) *monitor.Notifier {
	o.Logger = slog.New(slog.NewJSONHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return monitor.NewNotifier(e.db, e.kr, o)
}

func (e *sinkEnv) addSink(name, kind, minSeverity string, cfg monitor.SinkConfig) {
	e.t.Helper()
	cfg.Normalize(kind)
	if err := cfg.Validate(kind); err != nil {
		e.t.Fatal(err)
	}
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		subject := monitor.KeySubject(uuid.NewString())
		key, err := e.kr.NewDataKey(context.Background(), tx, subject)
		if err != nil {
			return err
		}
		ct, err := monitor.SealConfig(seal.GCM{}, key, name, cfg)
		if err != nil {
			return err
		}
		return tx.InsertAlertSink(context.Background(), store.AlertSink{Name: name, Kind: kind, MinSeverity: minSeverity, Enabled: true,
			Target: cfg.Target(kind), Config: ct, KeySubject: subject, KeyVersion: key.Version, CreatedAt: sendT0, UpdatedAt: sendT0})
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

func (e *sinkEnv) raise(at time.Time, severity string) string {
	e.t.Helper()
	var id string
	err := e.db.Write(context.Background(), func(tx *store.Tx) (err error) {
		id, err = monitor.Raise(context.Background(), tx, at, monitor.Alert{Rule: monitor.RuleRevealQuota, Severity: severity,
			ActorID: "0195a0c0-0000-7000-8000-0000000000aa", Evidence: []int64{7}, Details: map[string]any{"quota": 5}})
		return err
	})
	if err != nil {
		e.t.Fatal(err)
	}
	return id
}

func (e *sinkEnv) deliveries(alertID, sink string) []store.AlertDelivery {
	e.t.Helper()
	var ds []store.AlertDelivery
	if err := e.db.Read(context.Background(), func(tx *store.Tx) (err error) {
		ds, err = tx.AlertDeliveries(context.Background(), alertID, sink, 0)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	return ds
}

func (e *sinkEnv) sink(name string) store.AlertSink {
	e.t.Helper()
	var k store.AlertSink
	if err := e.db.Read(context.Background(), func(tx *store.Tx) (err error) { k, err = tx.GetAlertSink(context.Background(), name); return }); err != nil {
		e.t.Fatal(err)
	}
	return k
}

func runOnce(t *testing.T, n *monitor.Notifier) int {
	t.Helper()
	k, err := n.RunOnce(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// switchable answers 500 until ok is set, and counts requests by alert id.
type switchable struct {
	ok    atomic.Bool
	mu    sync.Mutex
	count map[string]int
}

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	s.mu.Lock()
	if s.count == nil {
		s.count = map[string]int{}
	}
	s.count[r.Header.Get("X-Custos-Alert-Id")]++
	s.mu.Unlock()
	if !s.ok.Load() {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}
}

func (s *switchable) got(id string) int { s.mu.Lock(); defer s.mu.Unlock(); return s.count[id] }

func TestRaiseQueuesBySeverity(t *testing.T) {
	e := newSinkEnv(t)
	e.addSink("all", monitor.KindWebhook, monitor.Info, monitor.SinkConfig{URL: "https://hooks.example.com/a", Secret: "0123456789abcdef"})
	e.addSink("urgent", monitor.KindWebhook, monitor.High, monitor.SinkConfig{URL: "https://hooks.example.com/b", Secret: "0123456789abcdef"})
	e.addSink("off", monitor.KindWebhook, monitor.Info, monitor.SinkConfig{URL: "https://hooks.example.com/c", Secret: "0123456789abcdef"})
	k := e.sink("off")
	k.Enabled = false
	if err := e.db.Write(context.Background(), func(tx *store.Tx) error { return tx.UpdateAlertSink(context.Background(), k) }); err != nil {
		t.Fatal(err)
	}
	sinks := func(ds []store.AlertDelivery) []string {
		var out []string
		for _, d := range ds {
			if d.Status != store.DeliveryPending || d.Attempts != 0 {
				t.Fatalf("new delivery %+v", d)
			}
			out = append(out, d.Sink)
		}
		return out
	}
	for sev, want := range map[string]string{monitor.Info: "all", monitor.Medium: "all", monitor.High: "all urgent", monitor.Critical: "all urgent"} {
		id := e.raise(sendT0, sev)
		if got := strings.Join(sinks(e.deliveries(id, "")), " "); got != want {
			t.Errorf("a %s alert is queued for %q, want %q", sev, got, want)
		}
	}
	// A failing enqueue fails the raise: the alert and its deliveries
	// commit together or not at all.
	var alertsBefore int
	_ = e.db.Read(context.Background(), func(tx *store.Tx) error {
		as, err := tx.Alerts(context.Background(), "", 0)
		alertsBefore = len(as)
		return err
	})
	err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		id, err := monitor.Raise(context.Background(), tx, sendT0, monitor.Alert{Rule: "x.y", Severity: monitor.High})
		if err != nil {
			return err
		}
		_, err = tx.EnqueueAlertDeliveries(context.Background(), id, []string{monitor.Info}, sendT0) // again: conflict
		return err
	})
	if err == nil {
		t.Fatal("a second enqueue of the same alert and sink succeeded")
	}
	_ = e.db.Read(context.Background(), func(tx *store.Tx) error {
		as, err := tx.Alerts(context.Background(), "", 0)
		if len(as) != alertsBefore {
			t.Errorf("the rolled-back alert stayed: %d alerts, want %d", len(as), alertsBefore)
		}
		return err
	})
}

// TestRetryBackoff: with an injected clock, a failing receiver is retried
// after 5s, 10s, 20s ... at most 15 minutes apart; the sink's status counts
// the failures; once the receiver is back the alert is delivered once.
func TestRetryBackoff(t *testing.T) {
	e := newSinkEnv(t)
	recv := &switchable{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	e.addSink("ops", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: srv.URL + "/hook", Secret: "0123456789abcdef"})
	clock := &fakeClock{t: sendT0}
	n := e.notifier(monitor.NotifierOptions{Now: clock.Now, Timeout: 2 * time.Second})
	id := e.raise(sendT0, monitor.High)

	want := []time.Duration{5 * time.Second, 10 * time.Second, 20 * time.Second, 40 * time.Second, 80 * time.Second, 160 * time.Second,
		320 * time.Second, 640 * time.Second, 15 * time.Minute, 15 * time.Minute}
	now := sendT0
	for i, delay := range want {
		clock.Set(now)
		if got := runOnce(t, n); got != 1 {
			t.Fatalf("attempt %d: claimed %d deliveries, want 1", i+1, got)
		}
		d := e.deliveries(id, "ops")[0]
		if d.Status != store.DeliveryPending || d.Attempts != i+1 || !d.NextAt.Equal(now.Add(delay)) || d.LastError != "post to "+strings.TrimPrefix(srv.URL, "http://")+": HTTP 503" {
			t.Fatalf("after attempt %d: %+v, want a retry after %s", i+1, d, delay)
		}
		// Not before it is due.
		clock.Set(now.Add(delay - time.Millisecond))
		if got := runOnce(t, n); got != 0 {
			t.Fatalf("claimed %d deliveries before the retry was due", got)
		}
		now = now.Add(delay)
	}
	if k := e.sink("ops"); k.ConsecutiveFailures != len(want) || k.LastErrorAt == nil || k.LastOKAt != nil || !strings.Contains(k.LastError, "HTTP 503") {
		t.Fatalf("sink status after %d failures: %+v", len(want), k)
	}
	recv.ok.Store(true)
	clock.Set(now)
	runOnce(t, n)
	d := e.deliveries(id, "ops")[0]
	if d.Status != store.DeliverySent || d.SentAt == nil || !d.SentAt.Equal(now) {
		t.Fatalf("after the receiver came back: %+v", d)
	}
	if k := e.sink("ops"); k.ConsecutiveFailures != 0 || k.LastOKAt == nil || !k.LastOKAt.Equal(now) {
		t.Fatalf("sink status after a success: %+v", k)
	}
	if got := recv.got(id); got != len(want)+1 {
		t.Fatalf("receiver got %d requests, want %d", got, len(want)+1)
	}
	clock.Set(now.Add(time.Hour))
	if got := runOnce(t, n); got != 0 {
		t.Fatalf("a sent delivery was claimed again (%d)", got)
	}
}

func TestGiveUpAfter24Hours(t *testing.T) {
	e := newSinkEnv(t)
	recv := &switchable{}
	srv := httptest.NewServer(recv)
	defer srv.Close()
	e.addSink("ops", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: srv.URL, Secret: "0123456789abcdef"})
	clock := &fakeClock{t: sendT0}
	n := e.notifier(monitor.NotifierOptions{Now: clock.Now})
	id := e.raise(sendT0, monitor.High)
	runOnce(t, n)
	clock.Set(sendT0.Add(24*time.Hour - time.Second))
	runOnce(t, n)
	if d := e.deliveries(id, "")[0]; d.Status != store.DeliveryPending {
		t.Fatalf("gave up before 24 hours: %+v", d)
	}
	clock.Set(sendT0.Add(25 * time.Hour))
	runOnce(t, n)
	d := e.deliveries(id, "")[0]
	if d.Status != store.DeliveryFailed || d.Attempts != 3 || !strings.Contains(d.LastError, "HTTP 503") {
		t.Fatalf("after 25 hours: %+v, want failed after 3 attempts", d)
	}
	recv.ok.Store(true)
	clock.Set(sendT0.Add(48 * time.Hour))
	if got := runOnce(t, n); got != 0 {
		t.Fatal("a delivery that was given up was tried again")
	}
	if !strings.Contains(e.log.String(), "alert delivery failed for good") {
		t.Fatalf("giving up is not logged:\n%s", e.log.String())
	}
}

// TestLeasePreventsDoubleSend: two notifiers on one database (two nodes)
// never send the same delivery, neither while one is sending nor when both
// poll at once; on SQLite and on PostgreSQL (several nodes).
func TestLeasePreventsDoubleSend(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) { testLeasePreventsDoubleSend(t, newSinkEnvOn(t, engine)) })
	}
}

func testLeasePreventsDoubleSend(t *testing.T, e *sinkEnv) {
	var mu sync.Mutex
	count := map[string]int{}
	inFlight, maxInFlight := 0, 0
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Custos-Alert-Id")
		mu.Lock()
		count[id]++
		inFlight++
		maxInFlight = max(maxInFlight, inFlight)
		mu.Unlock()
		entered <- struct{}{}
		<-release
		mu.Lock()
		inFlight--
		mu.Unlock()
	}))
	defer srv.Close()
	e.addSink("ops", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: srv.URL, Secret: "0123456789abcdef"})
	a := e.notifier(monitor.NotifierOptions{Timeout: 5 * time.Second})
	b := e.notifier(monitor.NotifierOptions{Timeout: 5 * time.Second})
	id := e.raise(time.Now(), monitor.High)

	done := make(chan int)
	go func() { k, _ := a.RunOnce(context.Background()); done <- k }()
	<-entered // a is sending, its receiver holds the request
	if got := runOnce(t, b); got != 0 {
		t.Fatalf("the second notifier claimed %d deliveries while the first was sending", got)
	}
	close(release)
	if k := <-done; k != 1 {
		t.Fatalf("first notifier claimed %d", k)
	}
	if got := runOnce(t, b); got != 0 {
		t.Fatalf("the second notifier claimed a sent delivery (%d)", got)
	}

	// Many alerts, both notifiers running at once.
	var ids []string
	for range 20 {
		ids = append(ids, e.raise(time.Now(), monitor.Medium))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, n := range []*monitor.Notifier{a, b} {
		wg.Add(1)
		go func() { defer wg.Done(); n.Run(ctx) }()
	}
	go func() {
		for range entered {
		}
	}()
	deadline := time.Now().Add(15 * time.Second)
	for {
		sent := 0
		for _, d := range e.deliveries("", "ops") {
			if d.Status == store.DeliverySent {
				sent++
			}
		}
		if sent == len(ids)+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d deliveries sent", sent, len(ids)+1)
		}
		a.Wake()
		b.Wake()
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	wg.Wait()
	close(entered)
	mu.Lock()
	defer mu.Unlock()
	for _, x := range append(ids, id) {
		if count[x] != 1 {
			t.Errorf("alert %s was sent %d times", x, count[x])
		}
	}
	t.Logf("at most %d requests were in flight at once (two nodes may send different alerts to one sink together)", maxInFlight)
}

// TestHangingSinkDelaysOnlyItself: one sink never answers; another sink's
// alerts still go out at once.
func TestHangingSinkDelaysOnlyItself(t *testing.T) {
	e := newSinkEnv(t)
	hang := make(chan struct{})
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer stuck.Close()
	defer close(hang)
	got := make(chan string, 10)
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got <- r.Header.Get("X-Custos-Alert-Id") }))
	defer ok.Close()
	e.addSink("a-stuck", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: stuck.URL, Secret: "0123456789abcdef"})
	e.addSink("b-ok", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: ok.URL, Secret: "0123456789abcdef"})
	n := e.notifier(monitor.NotifierOptions{Interval: 20 * time.Millisecond, Timeout: 10 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { n.Run(ctx); close(stopped) }()
	for i := range 3 {
		start := time.Now()
		id := e.raise(time.Now(), monitor.High)
		n.Wake()
		select {
		case g := <-got:
			if g != id {
				t.Fatalf("got %s, want %s", g, id)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("alert %d did not reach the healthy sink while the other hangs", i)
		}
		t.Logf("alert %d reached the healthy sink in %s", i, time.Since(start).Round(time.Millisecond))
	}
	// Stopping does not wait for the hanging send's 10s timeout, and hands
	// the delivery back without counting an attempt.
	start := time.Now()
	cancel()
	<-stopped
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Run took %s to stop", d)
	}
	for _, d := range e.deliveries("", "a-stuck") {
		if d.Status != store.DeliveryPending || d.ClaimedUntil != nil || d.Attempts != 0 {
			t.Fatalf("after stopping, the stuck delivery is %+v, want pending, unclaimed, no attempt", d)
		}
	}
}

// TestNotifierNeverStoresOrLogsSecrets: robots whose URLs carry keys, down
// or refusing with the key echoed back, leave no key in the database's
// error texts or in the log.
func TestNotifierNeverStoresOrLogsSecrets(t *testing.T) {
	e := newSinkEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	const key = "9b1f0c3e-robot-key-5d2a"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{"errcode": 300005, "errmsg": "token is not exist: " + r.URL.RawQuery})
	}))
	defer echo.Close()
	e.addSink("wecom-down", monitor.KindWeCom, monitor.Low, monitor.SinkConfig{URL: "http://" + closed + "/cgi-bin/webhook/send?key=" + key})
	e.addSink("ding-echo", monitor.KindDingTalk, monitor.Low, monitor.SinkConfig{URL: echo.URL + "/robot/send?access_token=" + key, Secret: "SEC" + key})
	n := e.notifier(monitor.NotifierOptions{Timeout: 2 * time.Second})
	id := e.raise(time.Now(), monitor.Critical)
	if got := runOnce(t, n); got != 2 {
		t.Fatalf("claimed %d, want 2", got)
	}
	for _, d := range e.deliveries(id, "") {
		if d.Status != store.DeliveryPending || d.LastError == "" || strings.Contains(d.LastError, key) {
			t.Fatalf("delivery %+v", d)
		}
		k := e.sink(d.Sink)
		if k.LastError == "" || strings.Contains(k.LastError, key) || k.ConsecutiveFailures != 1 {
			t.Fatalf("sink %s status: error %q, failures %d", d.Sink, k.LastError, k.ConsecutiveFailures)
		}
		if strings.Contains(k.Target, key) || strings.Contains(k.Target, "/") && d.Sink == "wecom-down" {
			t.Fatalf("target %q shows more than the host", k.Target)
		}
		t.Logf("%s: %s (target %s)", d.Sink, k.LastError, k.Target)
	}
	if log := e.log.String(); strings.Contains(log, key) || !strings.Contains(log, "will retry") {
		t.Fatalf("log:\n%s", log)
	}
}

// TestUnopenableConfigIsAFailure: a sink whose configuration cannot be opened
// fails its deliveries without a send, and says why.
func TestUnopenableConfigIsAFailure(t *testing.T) {
	e := newSinkEnv(t)
	e.addSink("ops", monitor.KindWebhook, monitor.Low, monitor.SinkConfig{URL: "http://127.0.0.1:9/x", Secret: "0123456789abcdef"})
	k := e.sink("ops")
	if err := e.db.Write(context.Background(), func(tx *store.Tx) error {
		return tx.DestroyDataKeys(context.Background(), k.KeySubject, time.Now())
	}); err != nil {
		t.Fatal(err)
	}
	e.kr.Forget(k.KeySubject, k.KeyVersion)
	id := e.raise(time.Now(), monitor.High)
	runOnce(t, e.notifier(monitor.NotifierOptions{}))
	if d := e.deliveries(id, "")[0]; d.Status != store.DeliveryPending || !strings.Contains(d.LastError, "cannot open the sink's configuration") {
		t.Fatalf("delivery %+v", d)
	}
}
