package web_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/metrics/metricstest"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/store"
	"github.com/custos/custos/internal/web"
)

const scrapeToken = "test-scrape-token-5f0c1d2e3a4b"

// withMetrics serves h's node again with metrics on and, when tok is set,
// /metrics on the main address for that token.
func withMetrics(t *testing.T, h *harness, tok *metrics.Token) *metrics.Metrics {
	t.Helper()
	m := metrics.New(metrics.Options{DB: h.n.DB})
	logger := slog.New(slog.NewJSONHandler(h.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h.h = web.New(h.n.DB, h.n.Auth, h.n.CRM, web.Options{Logger: logger, Metrics: m, MetricsToken: tok}).Handler()
	return m
}

func newToken(t *testing.T) *metrics.Token {
	t.Helper()
	tok, err := metrics.NewToken(scrapeToken)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Requests, sign-ins, alerts, the audit chain and keys, scraped through the
// real server with the token and read with Prometheus's own parser.
func TestMetricsThroughTheServer(t *testing.T) {
	h := newHarness(t)
	withMetrics(t, h, newToken(t))
	ctx := context.Background()

	// Requests: two customers read by id (the ids must not become labels),
	// one read of somebody else's (404), a list, unknown paths.
	c1 := h.createCustomer("s1", `{"name":"李雷贸易有限公司","phone":"13811112222","email":"lilei@leimao.cn"}`)["id"].(string)
	c2 := h.createCustomer("s1", `{"name":"韩梅梅咨询","phone":"13933334444"}`)["id"].(string)
	for _, rq := range []struct {
		method, path, as string
		want             int
	}{
		{"GET", "/api/v1/customers/" + c1, "s1", 200},
		{"GET", "/api/v1/customers/" + c2, "s1", 200},
		{"GET", "/api/v1/customers/" + c1, "s2", 404},
		{"GET", "/api/v1/customers?q=13811112222", "s1", 200},
		{"GET", "/api/v1/no-such-thing/" + c1, "s1", 404},
		{"GET", "/not-here/13811112222", "", 404},
	} {
		if w := h.do(req{method: rq.method, path: rq.path, as: rq.as}); w.Code != rq.want {
			t.Fatalf("%s %s: %d, want %d: %s", rq.method, rq.path, w.Code, rq.want, w.Body)
		}
	}

	// Sign-ins: one right, two wrong, wrong ones on another account until
	// it locks, an expired second-factor challenge.
	login := func(email, pw string) int {
		return h.do(req{method: "POST", path: "/api/v1/auth/login", body: `{"email":"` + email + `","password":"` + pw + `"}`}).Code
	}
	if c := login("s1@example.com", "correct horse battery"); c != 200 {
		t.Fatalf("login: %d", c)
	}
	for range 2 {
		if c := login("s1@example.com", "wrong horse battery"); c != 401 {
			t.Fatalf("wrong password: %d", c)
		}
	}
	wrong := 2
	locked := false
	for range 30 {
		c := login("s2@example.com", "wrong horse battery")
		if c == http.StatusTooManyRequests {
			locked = true
			break
		}
		if c != 401 {
			t.Fatalf("wrong password: %d", c)
		}
		wrong++
	}
	if !locked {
		t.Fatal("s2 never locked")
	}
	if w := h.do(req{method: "POST", path: "/api/v1/auth/mfa", body: `{"challenge":"no-such-challenge","code":"123456"}`}); w.Code != 401 {
		t.Fatalf("mfa: %d %s", w.Code, w.Body)
	}

	// An alert, and a successful verification of the audit trail.
	if err := h.n.DB.Write(ctx, func(tx *store.Tx) error {
		_, err := monitor.Raise(ctx, tx, time.Now(), monitor.Alert{Rule: monitor.RuleRevealQuota, Severity: monitor.High, ActorID: h.ids["s1"],
			Details: map[string]any{"customer": c1}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	verifiedAt := time.Now().UTC().Truncate(time.Second)
	if err := audit.RecordAlone(ctx, h.n.DB, verifiedAt, audit.Event{Actor: "system", Action: "audit.verify", ObjectType: "audit", Outcome: audit.OK}); err != nil {
		t.Fatal(err)
	}

	fams, text := metricstest.Scrape(t, h.h, "Bearer "+scrapeToken)
	var head store.AuditHead
	if err := h.n.DB.Read(ctx, func(tx *store.Tx) error {
		var err error
		head, err = tx.AuditHead(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	const reqs = "custos_http_requests_total"
	for _, c := range []struct {
		labels []string
		want   float64
	}{
		{[]string{"route", "/api/v1/customers/{id}", "method", "GET", "code", "200"}, 2},
		{[]string{"route", "/api/v1/customers/{id}", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "/api/v1/customers", "method", "POST", "code", "201"}, 2},
		{[]string{"route", "/api/v1/customers", "method", "GET", "code", "200"}, 1},
		{[]string{"route", "/api/", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "unmatched", "method", "GET", "code", "404"}, 1},
		{[]string{"route", "/api/v1/auth/login", "method", "POST", "code", "200"}, 1},
		{[]string{"route", "/api/v1/auth/login", "method", "POST", "code", "429"}, 1},
	} {
		if got := fams.Value(t, reqs, c.labels...); got != c.want {
			t.Errorf("%s%v = %v, want %v", reqs, c.labels, got, c.want)
		}
	}
	if got := fams.Value(t, "custos_http_request_duration_seconds", "route", "/api/v1/customers/{id}", "method", "GET"); got != 3 {
		t.Errorf("latency observations of /api/v1/customers/{id}: %v, want 3", got)
	}
	for _, c := range []struct {
		method, result string
		want           float64
	}{
		{"password", "ok", 1},
		{"password", "bad_credentials", float64(wrong)},
		{"password", "locked", 1},
		{"mfa", "expired", 1},
		{"mfa", "ok", 0},
	} {
		if got := fams.Value(t, "custos_logins_total", "method", c.method, "result", c.result); got != c.want {
			t.Errorf("logins %s/%s = %v, want %v", c.method, c.result, got, c.want)
		}
	}
	if got := fams.Value(t, "custos_alerts", "rule", monitor.RuleRevealQuota, "status", "open"); got != 1 {
		t.Errorf("alerts: %v", got)
	}
	if got := fams.Value(t, "custos_audit_chain_length"); got != float64(head.Seq) || got < 10 {
		t.Errorf("chain length %v, head %d", got, head.Seq)
	}
	if got := fams.Value(t, "custos_audit_last_verify_timestamp_seconds"); got != float64(verifiedAt.Unix()) {
		t.Errorf("last verify %v, want %d", got, verifiedAt.Unix())
	}
	if got := fams.Value(t, "custos_key_age_seconds", "purpose", "master"); got <= 0 || got > 600 {
		t.Errorf("master key age %v", got)
	}
	if _, ok := fams.Get("custos_backup_age_seconds"); ok {
		t.Error("backup age without a backup")
	}
	// No id, personal value, email or query text anywhere in the exposition.
	for _, secret := range []string{c1, c2, h.ids["s1"], h.ids["s2"], "李雷", "韩梅梅", "13811112222", "lilei", "s1@example.com", "no-such-thing", "not-here"} {
		if strings.Contains(text, secret) {
			t.Errorf("exposition contains %q", secret)
		}
	}
	// Routes are the route table's patterns (and the unmatched bucket).
	for _, route := range fams.LabelValues(reqs, "route") {
		if route != "unmatched" && !strings.HasPrefix(route, "/") || strings.ContainsAny(route, "?=") {
			t.Errorf("route label %q", route)
		}
	}
}

func TestMetricsEndpointIsProtected(t *testing.T) {
	h := newHarness(t)
	withMetrics(t, h, newToken(t))
	for _, c := range []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"no token", nil, 401},
		{"wrong token", map[string]string{"Authorization": "Bearer " + scrapeToken + "0"}, 401},
		{"basic auth with the token", map[string]string{"Authorization": "Basic " + scrapeToken}, 401},
		{"an administrator's API token", map[string]string{"Authorization": "Bearer " + h.tokens["admin"]}, 401},
		{"the scrape token in a query", nil, 401},
		{"right token", map[string]string{"Authorization": "Bearer " + scrapeToken}, 200},
		{"right token, wrong method", map[string]string{"Authorization": "Bearer " + scrapeToken}, 405},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := "/metrics"
			if strings.Contains(c.name, "query") {
				path += "?token=" + scrapeToken
			}
			method := "GET"
			if strings.Contains(c.name, "method") {
				method = "POST"
			}
			w := h.do(req{method: method, path: path, header: c.header})
			if w.Code != c.want {
				t.Fatalf("%d, want %d: %s", w.Code, c.want, w.Body)
			}
			if c.want == 401 {
				if w.Header().Get("WWW-Authenticate") == "" || strings.Contains(w.Body.String(), "custos_") {
					t.Fatalf("refusal: %q %s", w.Header().Get("WWW-Authenticate"), w.Body)
				}
				return
			}
			if c.want == 405 {
				return
			}
			if !strings.Contains(w.Body.String(), "custos_http_requests_total") {
				t.Fatalf("no metrics: %s", w.Body)
			}
		})
	}
}

// Deny by default: without a token (metrics on a separate listener, or
// off) there is no /metrics on the main address, whatever is presented.
func TestMetricsEndpointUnconfiguredIs404(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct {
		name string
		set  func()
	}{
		{"metrics off", func() {}},
		{"metrics on, no token (separate listener)", func() { withMetrics(t, h, nil) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.set()
			for _, hdr := range []map[string]string{nil, {"Authorization": "Bearer " + scrapeToken}, {"Authorization": "Bearer " + h.tokens["admin"]}} {
				for _, method := range []string{"GET", "HEAD", "POST", "DELETE"} {
					if w := h.do(req{method: method, path: "/metrics", header: hdr}); w.Code != 404 || strings.Contains(w.Body.String(), "custos_") {
						t.Fatalf("%s %v: %d %s", method, hdr, w.Code, w.Body)
					}
				}
			}
		})
	}
	// A token without metrics is no endpoint either.
	h.h = web.New(h.n.DB, h.n.Auth, h.n.CRM, web.Options{MetricsToken: newToken(t)}).Handler()
	if w := h.do(req{method: "GET", path: "/metrics", header: map[string]string{"Authorization": "Bearer " + scrapeToken}}); w.Code != 404 {
		t.Fatalf("token without metrics: %d", w.Code)
	}
}

// The instrumentation adds no allocation to a request.
func TestMetricsMiddlewareAddsNoAllocation(t *testing.T) {
	h := newHarness(t)
	plain := web.New(h.n.DB, h.n.Auth, h.n.CRM, web.Options{}).Handler()
	instrumented := web.New(h.n.DB, h.n.Auth, h.n.CRM, web.Options{Metrics: metrics.New(metrics.Options{})}).Handler()
	r := httptest.NewRequest("GET", "/healthz", nil)
	allocs := func(hd http.Handler) float64 {
		hd.ServeHTTP(httptest.NewRecorder(), r) // warm up: the series exist
		return testing.AllocsPerRun(200, func() { hd.ServeHTTP(httptest.NewRecorder(), r) })
	}
	p, i := allocs(plain), allocs(instrumented)
	if i > p {
		t.Fatalf("instrumented request allocates %v times, uninstrumented %v", i, p)
	}
	t.Logf("allocations per /healthz request: %v uninstrumented, %v instrumented", p, i)
}
