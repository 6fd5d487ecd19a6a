// Package metrics exposes Custos's operation to Prometheus: HTTP requests
// by route pattern and status with latency histograms, login outcomes,
// alerts by rule and status, the audit chain's length and last
// verification, backup and key age, alert sink status, and the Go runtime
// and process collectors.
//
// It owns its own prometheus.Registry (never the global default), so
// nothing a library registers as a side effect is exposed. No label ever
// holds a personal value or a raw id: routes are the route table's
// patterns, methods and status codes come from fixed sets, and the
// database metrics are counts, sequence numbers and times read at scrape
// time in one short read transaction.
package metrics

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/custos/custos/internal/store"
)

// Metrics is the registry of one node and the instruments the web layer
// updates. A nil *Metrics is valid and records nothing.
type Metrics struct {
	reg     *prometheus.Registry
	http    *httpMetrics
	logins  *prometheus.CounterVec
	handler http.Handler
}

// Options configure New.
type Options struct {
	// DB is read at scrape time for alerts, the audit chain, backups and
	// keys; nil leaves those metrics out.
	DB *store.DB
	// Now is the clock of the age metrics (default time.Now).
	Now func() time.Time
	// Timeout bounds the scrape-time database reads (default 2s). When it
	// runs out the scrape still answers, with custos_scrape_database_ok 0.
	Timeout time.Duration
	// Sinks, when set, reports the alert sinks' delivery status at scrape
	// time, within the scrape's timeout (internal/monitor connects it).
	Sinks func(ctx context.Context) ([]SinkStatus, error)
	// ScanBudget is how many audit events one scrape reads at most in each
	// direction while looking for the last verification and backup
	// (default 50000); see auditScan.
	ScanBudget int64
	Logger     *slog.Logger
}

// SinkStatus is the delivery status of one alert sink, reported through
// Options.Sinks. Name and Kind become label values: they must be the
// configured sink name and its type, never a URL, address or recipient.
type SinkStatus struct {
	Name                string    // the sink's configured name, e.g. "ops-webhook"
	Kind                string    // webhook, wecom, dingtalk, slack, smtp, syslog
	Enabled             bool      // disabled sinks are reported too, as disabled
	ConsecutiveFailures int       // failed attempts since the last success (0: up)
	LastSuccess         time.Time // zero: never
	LastFailure         time.Time // zero: never
	// Deliveries counts the sink's deliveries by status ("pending",
	// "sent", "failed"); nil when unknown.
	Deliveries map[string]int
}

// New builds the registry with every Custos metric and the Go and process
// collectors.
func New(o Options) *Metrics {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 2 * time.Second
	}
	if o.ScanBudget <= 0 {
		o.ScanBudget = 50000
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	reg := prometheus.NewRegistry()
	m := &Metrics{reg: reg, http: newHTTPMetrics()}
	m.logins = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "custos_logins_total",
		Help: "Sign-in steps by method (password, mfa, passkey, sso) and result (ok, mfa_required, bad_credentials, locked, mfa_failed, expired, policy_denied, sso_refused, error).",
	}, []string{"method", "result"})
	// Every combination starts at 0, so rate() and absent() work from the
	// first scrape.
	for _, meth := range loginMethods {
		for _, res := range loginResults {
			m.logins.WithLabelValues(string(meth), string(res))
		}
	}
	reg.MustRegister(m.http.requests, m.http.duration, m.logins,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	if o.DB != nil || o.Sinks != nil {
		reg.MustRegister(newStateCollector(o))
	}
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		ErrorLog:            slogPrintln{o.Logger},
		Registry:            reg, // promhttp_metric_handler_errors_total
		MaxRequestsInFlight: 4,
		Timeout:             o.Timeout + 3*time.Second,
	})
	m.handler = promhttp.InstrumentMetricHandler(reg, h)
	return m
}

// Registry returns the registry (tests and extra collectors).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the exposition of the registry, unprotected: wrap it with
// Protect or serve it on a separate listener.
func (m *Metrics) Handler() http.Handler { return m.handler }

// LoginMethod is how a sign-in step authenticated.
type LoginMethod string

// Login methods.
const (
	LoginPassword LoginMethod = "password" // email and password
	LoginMFA      LoginMethod = "mfa"      // the second factor of a challenge (code, recovery code or passkey)
	LoginPasskey  LoginMethod = "passkey"  // passwordless passkey
	LoginSSO      LoginMethod = "sso"      // OpenID Connect single sign-on
)

var loginMethods = []LoginMethod{LoginPassword, LoginMFA, LoginPasskey, LoginSSO}

// LoginResult is the outcome of a sign-in step.
type LoginResult string

// Login results.
const (
	LoginOK             LoginResult = "ok"              // a session was opened
	LoginMFARequired    LoginResult = "mfa_required"    // first factor right; a second factor was asked for
	LoginBadCredentials LoginResult = "bad_credentials" // wrong or unknown credentials
	LoginLocked         LoginResult = "locked"          // refused: the account or address is locked out
	LoginMFAFailed      LoginResult = "mfa_failed"      // wrong second factor
	LoginExpired        LoginResult = "expired"         // the challenge expired or ran out of attempts
	LoginPolicyDenied   LoginResult = "policy_denied"   // address allowlist or login hours
	LoginSSORefused     LoginResult = "sso_refused"     // the identity provider or its answer was refused
	LoginError          LoginResult = "error"           // anything else
)

var loginResults = []LoginResult{LoginOK, LoginMFARequired, LoginBadCredentials, LoginLocked, LoginMFAFailed, LoginExpired,
	LoginPolicyDenied, LoginSSORefused, LoginError}

// Login counts one sign-in step. A result outside the constants above
// counts as "error" and a method outside them is not counted, so no caller
// can grow the label set.
func (m *Metrics) Login(method LoginMethod, result LoginResult) {
	if m == nil {
		return
	}
	if !known(loginMethods, method) {
		return // not one of the constants: never a new series
	}
	if !known(loginResults, result) {
		result = LoginError
	}
	m.logins.WithLabelValues(string(method), string(result)).Inc()
}

func known[T comparable](set []T, v T) bool {
	for _, s := range set {
		if s == v {
			return true
		}
	}
	return false
}

// slogPrintln adapts the logger to promhttp's error log.
type slogPrintln struct{ log *slog.Logger }

func (l slogPrintln) Println(v ...any) {
	l.log.Error("metrics exposition", "err", slogArgs(v))
}

func slogArgs(v []any) any {
	if len(v) == 1 {
		return v[0]
	}
	return v
}
