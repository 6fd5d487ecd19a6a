package web_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
	"github.com/custos/custos/internal/web"
)

// sinkServer is a real Custos server (node, router, TCP listener) with its
// alert notifier running, as `custos serve` runs them.
type sinkServer struct {
	t       *testing.T
	n       *node.Node
	url     string
	client  *http.Client
	token   string
	adminID string
	log     *syncBuf
}

func newSinkServer(t *testing.T, notify monitor.NotifierOptions) *sinkServer {
	t.Helper()
	auth.UseCheapHashingForTests(t)
	cfg := config.Default()
	cfg.DataDir = t.TempDir()
	logBuf := &syncBuf{}
	logger := slog.New(slog.NewJSONHandler(logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n, err := node.Open(context.Background(), cfg, node.Options{Create: true, Logger: logger, Notify: notify, Auth: auth.Settings{DelayBase: time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(web.New(n.DB, n.Auth, n.CRM, web.Options{Logger: logger}).Handler())
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); n.Notifier.Run(ctx) }()
	client := &http.Client{Transport: &http.Transport{}, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		cancel()
		<-stopped
		srv.Close()
		client.CloseIdleConnections()
		_ = n.Close()
	})
	u, err := n.Auth.CreateUser(context.Background(), audit.Event{Actor: "test"}, auth.NewUser{Email: "admin@example.com", Name: "Admin", Role: "admin", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.Auth.CreateToken(context.Background(), audit.Event{Actor: "test"}, u.ID, "test", 0)
	if err != nil {
		t.Fatal(err)
	}
	return &sinkServer{t: t, n: n, url: srv.URL, client: client, token: tok, adminID: u.ID, log: logBuf}
}

// call sends one API request as the administrator and returns the status
// and body.
func (s *sinkServer) call(method, path, body string) (int, []byte) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	r, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+s.token)
	if body != "" {
		r.Header.Set("Content-Type", "application/json")
	}
	resp, err := s.client.Do(r)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (s *sinkServer) mustCall(method, path, body string, want int) []byte {
	s.t.Helper()
	code, b := s.call(method, path, body)
	if code != want {
		s.t.Fatalf("%s %s: %d, want %d: %s", method, path, code, want, b)
	}
	return b
}

// raiseByRequest issues one request that raises an alert synchronously on
// the request path: an administrator granting themselves data access
// (access.self_grant, high). It returns how long the request took.
func (s *sinkServer) raiseByRequest() time.Duration {
	s.t.Helper()
	body := fmt.Sprintf(`{"user_id":%q,"permission":"export","reason":"month-end report","expires_at":%q}`,
		s.adminID, time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	start := time.Now()
	code, b := s.call("POST", "/api/v1/grants", body)
	d := time.Since(start)
	if code != http.StatusCreated {
		s.t.Fatalf("self-grant: %d %s", code, b)
	}
	return d
}

// alertIDs lists the ids of the alerts raised by rule.
func (s *sinkServer) alertIDs(rule string) []string {
	s.t.Helper()
	var ids []string
	err := s.n.DB.Read(context.Background(), func(tx *store.Tx) error {
		as, err := tx.QueryAlerts(context.Background(), store.AlertQuery{Rule: rule})
		for _, a := range as {
			ids = append(ids, a.ID)
		}
		return err
	})
	if err != nil {
		s.t.Fatal(err)
	}
	slices.Sort(ids)
	return ids
}

func (s *sinkServer) sinkStatus(name string) map[string]any {
	s.t.Helper()
	var page struct{ Items []map[string]any }
	if err := json.Unmarshal(s.mustCall("GET", "/api/v1/alert-sinks", "", 200), &page); err != nil {
		s.t.Fatal(err)
	}
	for _, k := range page.Items {
		if k["name"] == name {
			return k
		}
	}
	s.t.Fatalf("no sink %s", name)
	return nil
}

// hookReceiver is a webhook receiver on a fixed address that can be up
// (verifying every signature itself, with nothing of Custos's code), down
// (nothing listens: connection refused) or hanging (accepts, never answers).
type hookReceiver struct {
	t      *testing.T
	secret []byte
	addr   string

	mu       sync.Mutex
	srv      *http.Server
	hanging  bool
	release  chan struct{}
	accepted map[string]int // alert id -> accepted deliveries
	bad      int            // requests with a wrong or missing signature
	hung     int
}

func newHookReceiver(t *testing.T, secret string) *hookReceiver {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &hookReceiver{t: t, secret: []byte(secret), addr: ln.Addr().String(), accepted: map[string]int{}, release: make(chan struct{})}
	r.serve(ln)
	t.Cleanup(func() { r.setHanging(false); r.down() })
	return r
}

func (r *hookReceiver) serve(ln net.Listener) {
	srv := &http.Server{Handler: r}
	r.mu.Lock()
	r.srv = srv
	r.mu.Unlock()
	go func() { _ = srv.Serve(ln) }()
}

func (r *hookReceiver) down() {
	r.mu.Lock()
	srv := r.srv
	r.srv = nil
	r.mu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (r *hookReceiver) up() {
	r.mu.Lock()
	running := r.srv != nil
	r.mu.Unlock()
	if running {
		return
	}
	var ln net.Listener
	var err error
	for range 50 { // the same port again
		if ln, err = net.Listen("tcp", r.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		r.t.Fatalf("cannot listen on %s again: %v", r.addr, err)
	}
	r.serve(ln)
}

func (r *hookReceiver) setHanging(h bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hanging && !h {
		close(r.release) // the hung requests get a 503
		r.release = make(chan struct{})
	}
	r.hanging = h
}

func (r *hookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	if r.hanging {
		r.hung++
		release := r.release
		r.mu.Unlock()
		select {
		case <-release:
		case <-req.Context().Done():
		}
		http.Error(w, "was hanging", http.StatusServiceUnavailable)
		return
	}
	defer r.mu.Unlock()
	// The receiver's own check: HMAC-SHA256(secret, timestamp + "." + body).
	ts, sig := req.Header.Get("X-Custos-Timestamp"), req.Header.Get("X-Custos-Signature")
	mac := hmac.New(sha256.New, r.secret)
	mac.Write([]byte(ts + "." + string(body)))
	want := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	var p struct {
		ID   string `json:"id"`
		Rule string `json:"rule"`
	}
	if ts == "" || !hmac.Equal([]byte(sig), []byte(want)) || json.Unmarshal(body, &p) != nil || p.ID != req.Header.Get("X-Custos-Alert-Id") {
		r.bad++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.accepted[p.ID]++
}

func (r *hookReceiver) snapshot() (map[string]int, int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.accepted))
	for k, v := range r.accepted {
		out[k] = v
	}
	return out, r.bad, r.hung
}

// sinkWaitFor polls cond every 20ms for at most d.
func sinkWaitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type latencyStats struct {
	name   string
	median time.Duration
	p95    time.Duration
	max    time.Duration
}

func measureLatency(name string, ds []time.Duration) latencyStats {
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(q float64) time.Duration { return s[int(math.Ceil(q*float64(len(s))))-1] }
	return latencyStats{name: name, median: rank(0.5), p95: rank(0.95), max: s[len(s)-1]}
}

func (l latencyStats) String() string {
	return fmt.Sprintf("%-28s median %7.2fms  p95 %7.2fms  max %7.2fms", l.name,
		float64(l.median.Microseconds())/1000, float64(l.p95.Microseconds())/1000, float64(l.max.Microseconds())/1000)
}

// TestWebhookE2EReceiverDownDoesNotSlowRequests is the must-show of alert
// delivery over HTTP: a real server raises alerts on the request path
// while its webhook receiver is healthy, down (connection refused) and
// hanging (accepts, never answers); the requests' latencyStats are measured
// in the same run and must not suffer; once the receiver is back every
// alert is delivered exactly once, with a valid signature.
func TestWebhookE2EReceiverDownDoesNotSlowRequests(t *testing.T) {
	const secret = "e2e-webhook-secret-93c0d1"
	const urlToken = "e2e-url-token-1a2b3c"
	s := newSinkServer(t, monitor.NotifierOptions{Interval: 50 * time.Millisecond, RetryBase: 100 * time.Millisecond, RetryMax: 400 * time.Millisecond})
	recv := newHookReceiver(t, secret)
	s.mustCall("POST", "/api/v1/alert-sinks", fmt.Sprintf(`{"name":"siem","kind":"webhook","min_severity":"medium","url":"http://%s/hooks/custos?token=%s","secret":%q}`,
		recv.addr, urlToken, secret), http.StatusCreated)

	const perPhase = 60
	delivered := func(n int) func() bool {
		return func() bool { acc, _, _ := recv.snapshot(); return len(acc) >= n }
	}
	// Warm up (connections, caches), then the healthy baseline.
	for range 10 {
		s.raiseByRequest()
	}
	sinkWaitFor(t, 10*time.Second, "the warm-up alerts to arrive", delivered(10))
	run := func(name string) latencyStats {
		ds := make([]time.Duration, perPhase)
		for i := range ds {
			ds[i] = s.raiseByRequest()
		}
		return measureLatency(name, ds)
	}
	healthy := run("receiver healthy")
	sinkWaitFor(t, 10*time.Second, "the healthy phase's alerts to arrive", delivered(10+perPhase))

	recv.down()
	down := run("receiver down (refused)")
	sinkWaitFor(t, 10*time.Second, "the failing sink to show in its status", func() bool {
		k := s.sinkStatus("siem")
		return k["consecutive_failures"].(float64) > 0 && strings.Contains(k["last_error"].(string), "connection refused")
	})
	status := s.sinkStatus("siem")
	t.Logf("sink status while the receiver is down: consecutive_failures=%v pending=%v last_error=%q target=%q",
		status["consecutive_failures"], status["pending"], status["last_error"], status["target"])

	recv.setHanging(true)
	recv.up()
	hang := run("receiver hanging (no answer)")
	sinkWaitFor(t, 10*time.Second, "the notifier to reach the hanging receiver", func() bool { _, _, hung := recv.snapshot(); return hung > 0 })

	for _, l := range []latencyStats{healthy, down, hang} {
		t.Logf("%d requests each raising an alert, %s", perPhase, l)
	}
	// Not meaningfully slower: the median within twice the healthy one
	// plus 5ms, the 95th percentile within three times plus 25ms, and no
	// request anywhere near the sink's 10s timeout.
	for _, l := range []latencyStats{down, hang} {
		if l.median > 2*healthy.median+5*time.Millisecond {
			t.Errorf("%s: median %s against %s with a healthy receiver", l.name, l.median, healthy.median)
		}
		if l.p95 > 3*healthy.p95+25*time.Millisecond {
			t.Errorf("%s: p95 %s against %s with a healthy receiver", l.name, l.p95, healthy.p95)
		}
		if l.max > 2*time.Second {
			t.Errorf("%s: a request took %s", l.name, l.max)
		}
	}

	// The receiver comes back: everything is delivered, once, signed.
	start := time.Now()
	recv.setHanging(false)
	ids := s.alertIDs(monitor.RuleSelfGrant)
	if len(ids) != 10+3*perPhase {
		t.Fatalf("%d self-grant alerts raised, want %d", len(ids), 10+3*perPhase)
	}
	sinkWaitFor(t, 20*time.Second, "every alert to be delivered", delivered(len(ids)))
	t.Logf("all %d alerts delivered %s after the receiver came back", len(ids), time.Since(start).Round(time.Millisecond))
	sinkWaitFor(t, 5*time.Second, "the sink's status to recover", func() bool {
		k := s.sinkStatus("siem")
		return k["consecutive_failures"].(float64) == 0 && k["pending"].(float64) == 0
	})
	acc, bad, hung := recv.snapshot()
	for _, id := range ids {
		if acc[id] != 1 {
			t.Errorf("alert %s was accepted %d times, want exactly once", id, acc[id])
		}
	}
	if len(acc) != len(ids) || bad != 0 {
		t.Errorf("receiver accepted %d distinct alerts (want %d), %d with a bad signature", len(acc), len(ids), bad)
	}
	t.Logf("receiver: %d alerts accepted once each, %d bad signatures, %d requests held while hanging", len(acc), bad, hung)
	for _, leak := range []string{urlToken, secret} {
		if strings.Contains(s.log.String(), leak) {
			t.Errorf("the server log holds %q", leak)
		}
		if b, _ := json.Marshal(status); bytes.Contains(b, []byte(leak)) {
			t.Errorf("the sink status holds %q", leak)
		}
	}
	if !strings.Contains(s.log.String(), "alert delivery failed; will retry") {
		t.Error("the failing sink was never logged")
	}
}
