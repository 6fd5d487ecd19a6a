// Package web serves Custos over HTTP: the JSON API under /api/v1 (with its
// OpenAPI document), health endpoints, and the middleware every request
// passes (request ids, security headers, authentication, CSRF, logging,
// panic recovery). It holds no business rule: handlers translate HTTP to
// calls of the guarded path in internal/crm and back.
package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/passkey"
	"github.com/custos/custos/internal/store"
)

// Server is the HTTP application.
type Server struct {
	db     *store.DB
	auth   *auth.Service
	crm    *crm.Service
	log    *slog.Logger
	now    func() time.Time
	secure bool // served over TLS: cookies get Secure
	mux    *http.ServeMux
	// passkeys serves WebAuthn ceremonies; nil when not configured.
	passkeys *PasskeyHandlers
	sso      *auth.SSO
	// metrics counts requests and logins (nil: off); metricsToken, when
	// set, serves them at /metrics on this address (see metrics.go).
	metrics      *metrics.Metrics
	metricsToken *metrics.Token
}

// Options configure the server.
type Options struct {
	Logger   *slog.Logger
	Now      func() time.Time
	TLS      bool
	Passkeys *passkey.Service // nil: passkey routes answer 503
	SSO      *auth.SSO        // nil: single sign-on routes answer 503
	// Metrics instruments requests and logins; nil: no instrumentation.
	Metrics *metrics.Metrics
	// MetricsToken serves Metrics at /metrics to scrapers presenting it as
	// a bearer token; nil: /metrics answers 404 here (deny by default).
	MetricsToken *metrics.Token
}

// Route is one API route; the OpenAPI document must describe every one.
type Route struct {
	Method  string
	Pattern string
	Auth    bool // requires an authenticated principal
	// Enroll marks the routes a session restricted to MFA enrollment may use.
	Enroll  bool
	handler func(*Server, http.ResponseWriter, *http.Request)
	authed  func(*Server, http.ResponseWriter, *http.Request, access.Principal, auth.Identity)
}

type authedHandler func(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity)

// Routes lists every route served (used by the OpenAPI test).
func Routes() []Route { return routes }

var routes = []Route{
	{Method: "GET", Pattern: "/healthz", handler: (*Server).healthz},
	{Method: "GET", Pattern: "/readyz", handler: (*Server).readyz},
	{Method: "GET", Pattern: "/api/v1/openapi.json", handler: (*Server).openapi},
	{Method: "POST", Pattern: "/api/v1/auth/login", handler: (*Server).login},
	{Method: "POST", Pattern: "/api/v1/auth/logout", handler: (*Server).logout},
	{Method: "POST", Pattern: "/api/v1/login", handler: (*Server).login},   // earlier name, kept
	{Method: "POST", Pattern: "/api/v1/logout", handler: (*Server).logout}, // earlier name, kept
	{Method: "POST", Pattern: "/api/v1/auth/mfa", handler: (*Server).completeMFA},
	{Method: "GET", Pattern: "/api/v1/auth/oidc/login", handler: (*Server).ssoLogin},
	{Method: "GET", Pattern: "/api/v1/auth/oidc/callback", handler: (*Server).ssoCallback},
	{Method: "POST", Pattern: "/api/v1/auth/totp/enroll", Auth: true, Enroll: true, authed: (*Server).totpEnroll},
	{Method: "POST", Pattern: "/api/v1/auth/totp/confirm", Auth: true, Enroll: true, authed: (*Server).totpConfirm},
	{Method: "POST", Pattern: "/api/v1/auth/reauth", Auth: true, authed: (*Server).reauth},
	{Method: "POST", Pattern: "/api/v1/auth/password", Auth: true, Enroll: true, authed: (*Server).changePassword},
	{Method: "GET", Pattern: "/api/v1/auth/sessions", Auth: true, authed: (*Server).listSessions},
	{Method: "DELETE", Pattern: "/api/v1/auth/sessions/{sid}", Auth: true, authed: (*Server).revokeSession},
	{Method: "DELETE", Pattern: "/api/v1/users/{id}/sessions", Auth: true, authed: (*Server).revokeUserSessions},
	{Method: "GET", Pattern: "/api/v1/me", Auth: true, Enroll: true, authed: (*Server).me},
	{Method: "POST", Pattern: "/api/v1/auth/passkey/begin", handler: (*Server).passkeyLoginBegin},
	{Method: "POST", Pattern: "/api/v1/auth/passkey/finish", handler: (*Server).passkeyLoginFinish},
	{Method: "POST", Pattern: "/api/v1/auth/mfa/passkey/begin", handler: (*Server).passkeyMFABegin},
	{Method: "POST", Pattern: "/api/v1/auth/mfa/passkey/finish", handler: (*Server).passkeyMFAFinish},
	{Method: "POST", Pattern: "/api/v1/passkeys/register/begin", Auth: true, Enroll: true, authed: (*Server).passkeyRegisterBegin},
	{Method: "POST", Pattern: "/api/v1/passkeys/register/finish", Auth: true, Enroll: true, authed: (*Server).passkeyRegisterFinish},
	{Method: "GET", Pattern: "/api/v1/passkeys", Auth: true, authed: (*Server).passkeyList},
	{Method: "DELETE", Pattern: "/api/v1/passkeys/{id}", Auth: true, authed: (*Server).passkeyRemove},
	{Method: "GET", Pattern: "/api/v1/customers", Auth: true, authed: (*Server).listCustomers},
	{Method: "POST", Pattern: "/api/v1/customers", Auth: true, authed: (*Server).createCustomer},
	{Method: "GET", Pattern: "/api/v1/customers/export", Auth: true, authed: (*Server).exportCustomers},
	{Method: "POST", Pattern: "/api/v1/exports", Auth: true, authed: (*Server).createExport},
	{Method: "GET", Pattern: "/api/v1/exports", Auth: true, authed: (*Server).listExports},
	{Method: "GET", Pattern: "/api/v1/exports/{id}", Auth: true, authed: (*Server).getExport},
	{Method: "POST", Pattern: "/api/v1/exports/{id}/approve", Auth: true, authed: (*Server).approveExport},
	{Method: "POST", Pattern: "/api/v1/exports/{id}/reject", Auth: true, authed: (*Server).rejectExport},
	{Method: "POST", Pattern: "/api/v1/exports/{id}/cancel", Auth: true, authed: (*Server).cancelExport},
	{Method: "GET", Pattern: "/api/v1/exports/{id}/download", Auth: true, authed: (*Server).downloadExport},
	{Method: "GET", Pattern: "/api/v1/customers/{id}", Auth: true, authed: (*Server).getCustomer},
	{Method: "PATCH", Pattern: "/api/v1/customers/{id}", Auth: true, authed: (*Server).updateCustomer},
	{Method: "DELETE", Pattern: "/api/v1/customers/{id}", Auth: true, authed: (*Server).deleteCustomer},
	{Method: "GET", Pattern: "/api/v1/customers/{id}/contacts", Auth: true, authed: (*Server).listContacts},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/contacts", Auth: true, authed: (*Server).createContact},
	{Method: "GET", Pattern: "/api/v1/contacts/{id}", Auth: true, authed: (*Server).getContact},
	{Method: "PATCH", Pattern: "/api/v1/contacts/{id}", Auth: true, authed: (*Server).updateContact},
	{Method: "DELETE", Pattern: "/api/v1/contacts/{id}", Auth: true, authed: (*Server).deleteContact},
	{Method: "GET", Pattern: "/api/v1/customers/{id}/interactions", Auth: true, authed: (*Server).listInteractions},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/interactions", Auth: true, authed: (*Server).createInteraction},
	{Method: "PATCH", Pattern: "/api/v1/interactions/{id}", Auth: true, authed: (*Server).updateInteraction},
	{Method: "DELETE", Pattern: "/api/v1/interactions/{id}", Auth: true, authed: (*Server).deleteInteraction},
	{Method: "GET", Pattern: "/api/v1/users", Auth: true, authed: (*Server).listUsers},
	{Method: "POST", Pattern: "/api/v1/users", Auth: true, authed: (*Server).createUser},
	{Method: "GET", Pattern: "/api/v1/users/{id}", Auth: true, authed: (*Server).getUser},
	{Method: "POST", Pattern: "/api/v1/users/{id}/disable", Auth: true, authed: (*Server).disableUser},
	{Method: "POST", Pattern: "/api/v1/users/{id}/enable", Auth: true, authed: (*Server).enableUser},
	{Method: "POST", Pattern: "/api/v1/users/{id}/unlock", Auth: true, authed: (*Server).unlockUser},
	{Method: "POST", Pattern: "/api/v1/users/{id}/reset-password", Auth: true, authed: (*Server).resetPassword},
	{Method: "GET", Pattern: "/api/v1/roles/{name}/policy", Auth: true, authed: (*Server).getRolePolicy},
	{Method: "PUT", Pattern: "/api/v1/roles/{name}/policy", Auth: true, authed: (*Server).setRolePolicy},
	{Method: "GET", Pattern: "/api/v1/customers/count", Auth: true, authed: (*Server).countCustomers},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/reveal", Auth: true, authed: (*Server).revealField},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/erase", Auth: true, authed: (*Server).eraseCustomer},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/claim", Auth: true, authed: (*Server).claimCustomer},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/release", Auth: true, authed: (*Server).releaseCustomer},
	{Method: "GET", Pattern: "/api/v1/customers/{id}/shares", Auth: true, authed: (*Server).listShares},
	{Method: "POST", Pattern: "/api/v1/customers/{id}/shares", Auth: true, authed: (*Server).createShare},
	{Method: "DELETE", Pattern: "/api/v1/shares/{id}", Auth: true, authed: (*Server).revokeShare},
	{Method: "GET", Pattern: "/api/v1/roles", Auth: true, authed: (*Server).listRoles},
	{Method: "POST", Pattern: "/api/v1/roles", Auth: true, authed: (*Server).createRole},
	{Method: "GET", Pattern: "/api/v1/roles/{name}", Auth: true, authed: (*Server).getRole},
	{Method: "PATCH", Pattern: "/api/v1/roles/{name}", Auth: true, authed: (*Server).updateRole},
	{Method: "DELETE", Pattern: "/api/v1/roles/{name}", Auth: true, authed: (*Server).deleteRole},
	{Method: "PATCH", Pattern: "/api/v1/users/{id}", Auth: true, authed: (*Server).updateUser},
	{Method: "POST", Pattern: "/api/v1/users/{id}/offboard", Auth: true, authed: (*Server).offboardUser},
	{Method: "GET", Pattern: "/api/v1/grants", Auth: true, authed: (*Server).listGrants},
	{Method: "POST", Pattern: "/api/v1/grants", Auth: true, authed: (*Server).createGrant},
	{Method: "DELETE", Pattern: "/api/v1/grants/{id}", Auth: true, authed: (*Server).revokeGrant},
	{Method: "GET", Pattern: "/api/v1/settings", Auth: true, authed: (*Server).listSettings},
	{Method: "PUT", Pattern: "/api/v1/settings/{key}", Auth: true, authed: (*Server).putSetting},
	{Method: "GET", Pattern: "/api/v1/alerts", Auth: true, authed: (*Server).listAlerts},
	{Method: "GET", Pattern: "/api/v1/alerts/{id}", Auth: true, authed: (*Server).getAlert},
	{Method: "POST", Pattern: "/api/v1/alerts/{id}/ack", Auth: true, authed: (*Server).ackAlert},
	{Method: "POST", Pattern: "/api/v1/alerts/{id}/resolve", Auth: true, authed: (*Server).resolveAlert},
	{Method: "GET", Pattern: "/api/v1/alert-sinks", Auth: true, authed: (*Server).listAlertSinks},
	{Method: "POST", Pattern: "/api/v1/alert-sinks", Auth: true, authed: (*Server).createAlertSink},
	{Method: "PUT", Pattern: "/api/v1/alert-sinks/{name}", Auth: true, authed: (*Server).updateAlertSink},
	{Method: "DELETE", Pattern: "/api/v1/alert-sinks/{name}", Auth: true, authed: (*Server).deleteAlertSink},
	{Method: "POST", Pattern: "/api/v1/alert-sinks/{name}/test", Auth: true, authed: (*Server).testAlertSink},
	{Method: "GET", Pattern: "/api/v1/posture", Auth: true, authed: (*Server).posture},
	{Method: "GET", Pattern: "/api/v1/audit", Auth: true, authed: (*Server).queryAudit},
	{Method: "GET", Pattern: "/api/v1/tokens", Auth: true, authed: (*Server).listTokens},
	{Method: "POST", Pattern: "/api/v1/tokens", Auth: true, authed: (*Server).createToken},
	{Method: "DELETE", Pattern: "/api/v1/tokens/{id}", Auth: true, authed: (*Server).revokeToken},
}

// New builds the server.
func New(db *store.DB, as *auth.Service, cs *crm.Service, o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{db: db, auth: as, crm: cs, log: o.Logger, now: o.Now, secure: o.TLS, mux: http.NewServeMux(), sso: o.SSO,
		metrics: o.Metrics, metricsToken: o.MetricsToken}
	if o.Passkeys != nil {
		s.passkeys = &PasskeyHandlers{Svc: o.Passkeys, Log: o.Logger, Secure: o.TLS, Open: s.openPasskeySession,
			Outcome: func(err error) { s.countLogin(metrics.LoginPasskey, err) }}
	}
	for _, rt := range routes {
		var h http.HandlerFunc
		if rt.Auth {
			authed, enroll := rt.authed, rt.Enroll
			h = s.authenticate(func(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
				// A session whose role requires MFA but that has no second
				// factor yet may only enroll one.
				if id.Restricted && !enroll {
					msg := "your role requires a second factor: enroll one first (POST /api/v1/auth/totp/enroll, then /api/v1/auth/totp/confirm)"
					if id.MustChangePassword {
						msg = "your password was reset: choose a new one first (POST /api/v1/auth/password)"
					}
					writeProblem(w, r, http.StatusForbidden, msg, nil)
					return
				}
				authed(s, w, r, p, id)
			})
		} else {
			handler := rt.handler
			h = func(w http.ResponseWriter, r *http.Request) { handler(s, w, r) }
		}
		s.mux.Handle(rt.Method+" "+rt.Pattern, h)
	}
	s.mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, r, http.StatusNotFound, "no such API endpoint", nil)
	})
	s.mux.HandleFunc("/metrics", s.serveMetrics)
	s.mux.Handle("GET /static/", StaticHandler())
	for _, rt := range s.allUIRoutes() {
		s.mux.HandleFunc(rt.Method+" "+rt.Pattern, rt.Handler)
	}
	return s
}

// Handler returns the root handler with all middleware.
func (s *Server) Handler() http.Handler { return s.middleware(s.mux) }

type ctxKey int

const requestIDKey ctxKey = 1

func requestID(ctx context.Context) string {
	v, _ := ctx.Value(requestIDKey).(string)
	return v
}

type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int
}

func (s *statusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.bytes += n
	return n, err
}

func (s *statusRecorder) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// middleware: request id, security headers, panic recovery, access log. The
// access log records the route pattern, never the URL: query strings can
// carry personal data (a searched phone number).
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		var b [8]byte
		_, _ = rand.Read(b[:])
		rid := hex.EncodeToString(b[:])
		ctx := context.WithValue(r.Context(), requestIDKey, rid)
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", rid)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		h.Set("Cache-Control", "no-store")
		if s.secure {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					panic(p)
				}
				s.log.ErrorContext(ctx, "panic", "request_id", rid, "panic", p, "stack", string(debug.Stack()))
				if rec.status == 0 {
					writeProblem(rec, r, http.StatusInternalServerError, "internal error", nil)
				}
			}
			d := time.Since(start)
			s.metrics.ObserveRequest(r.Pattern, r.Method, rec.status, d)
			s.log.InfoContext(ctx, "request", "request_id", rid, "method", r.Method, "route", routeOf(r),
				"status", rec.status, "bytes", rec.bytes, "duration_ms", d.Milliseconds())
		}()
		next.ServeHTTP(rec, r)
	})
}

func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

const sessionCookie = "custos_session"

func clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authenticate resolves a bearer token or session cookie into a principal.
// Cookie-authenticated requests that change state must carry the CSRF token
// in X-CSRF-Token.
func (s *Server) authenticate(next authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		var id auth.Identity
		var err error
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") {
				w.Header().Set("WWW-Authenticate", `Bearer realm="custos"`)
				writeProblem(w, r, http.StatusUnauthorized, "use Authorization: Bearer <token>", nil)
				return
			}
			id, err = s.auth.ResolveToken(ctx, strings.TrimSpace(tok))
		} else if c, cerr := r.Cookie(sessionCookie); cerr == nil {
			var csrfHash []byte
			id, csrfHash, err = s.auth.Session(ctx, c.Value)
			if err == nil && !safeMethod(r.Method) && !auth.CheckCSRF(r.Header.Get("X-CSRF-Token"), csrfHash) {
				writeProblem(w, r, http.StatusForbidden, "missing or wrong X-CSRF-Token header", nil)
				return
			}
		} else {
			err = auth.ErrUnauthenticated
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="custos"`)
			s.writeError(w, r, err)
			return
		}
		p, err := s.crm.Principal(ctx, access.Subject{UserID: id.User.ID, Actor: id.Actor(), Role: id.User.Role})
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if err := s.requestPolicy(r, id); err != nil {
			s.writeError(w, r, err)
			return
		}
		p.IP, p.UserAgent, p.RequestID = clientIP(r), r.UserAgent(), requestID(ctx)
		p.Interactive, p.AuthAt = id.Via == "session", id.AuthenticatedAt
		next(w, r, p, id)
	}
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.db.Ping(ctx); err != nil {
		s.log.WarnContext(ctx, "readiness: database", "err", err)
		writeProblem(w, r, http.StatusServiceUnavailable, "database unavailable", nil)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// requestPolicy applies the role's address allowlist and login hours to a
// request of an authenticated identity (API and pages alike) and audits a
// refusal. The error wraps access.ErrNetworkPolicy when the policy refuses.
func (s *Server) requestPolicy(r *http.Request, id auth.Identity) error {
	lp, err := access.ParseLoginPolicy(id.Policy.IPAllowlist, id.Policy.LoginHours)
	if err == nil {
		err = lp.Check(clientIP(r), s.now())
	}
	if err == nil {
		return nil
	}
	ev := audit.Event{Actor: id.Actor(), IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context()),
		Action: "auth.request", ObjectType: "user", ObjectID: id.User.ID, Outcome: audit.Denied, Reason: "login policy"}
	if aerr := audit.RecordAlone(r.Context(), s.db, s.now(), ev); aerr != nil {
		return aerr
	}
	return err
}
