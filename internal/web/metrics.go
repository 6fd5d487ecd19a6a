package web

import (
	"errors"
	"net/http"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/oidc"
	"github.com/custos/custos/internal/passkey"
)

// Prometheus metrics on the main address. Requests are counted by the
// middleware (server.go) from the pattern the router matched; sign-ins by
// the handlers that see their outcome, through countLogin.

// serveMetrics serves /metrics to a scraper presenting the configured
// token. Without a token (or without metrics) the endpoint does not exist
// here: deny by default, and a separate listener (custos serve
// --metrics-addr) is the other way to expose it.
func (s *Server) serveMetrics(w http.ResponseWriter, r *http.Request) {
	if s.metrics == nil || s.metricsToken == nil {
		http.NotFound(w, r) // for every method: not even a 405 tells it exists
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if !s.metricsToken.Allows(r) {
		metrics.Unauthorized(w)
		return
	}
	s.metrics.Handler().ServeHTTP(w, r)
}

// countLogin counts a sign-in step that opens a session when err is nil.
func (s *Server) countLogin(method metrics.LoginMethod, err error) {
	s.metrics.Login(method, loginResult(method, err))
}

// countFirstFactor counts a sign-in step that may ask for a second factor
// instead of opening a session.
func (s *Server) countFirstFactor(method metrics.LoginMethod, res auth.LoginResult, err error) {
	if err == nil && res.Challenge != "" {
		s.metrics.Login(method, metrics.LoginMFARequired)
		return
	}
	s.countLogin(method, err)
}

// loginResult maps a sign-in error to its low-cardinality result.
func loginResult(method metrics.LoginMethod, err error) metrics.LoginResult {
	switch {
	case err == nil:
		return metrics.LoginOK
	case errors.Is(err, auth.ErrLocked):
		return metrics.LoginLocked
	case errors.Is(err, auth.ErrBadCredentials):
		return metrics.LoginBadCredentials
	case errors.Is(err, auth.ErrBadCode):
		return metrics.LoginMFAFailed
	case errors.Is(err, auth.ErrUnauthenticated):
		return metrics.LoginExpired // the challenge expired or ran out of attempts
	case errors.Is(err, access.ErrNetworkPolicy):
		return metrics.LoginPolicyDenied
	case errors.Is(err, auth.ErrSSO) || errors.Is(err, oidc.ErrState) || errors.Is(err, oidc.ErrExpired) ||
		errors.Is(err, oidc.ErrExchange) || errors.Is(err, oidc.ErrIDToken):
		return metrics.LoginSSORefused
	case errors.Is(err, passkey.ErrRejected) || errors.Is(err, passkey.ErrInvalid) || errors.Is(err, passkey.ErrNotFound):
		if method == metrics.LoginMFA {
			return metrics.LoginMFAFailed
		}
		return metrics.LoginBadCredentials
	}
	return metrics.LoginError
}

// outcome reports a passwordless login's end to h.Outcome.
func (h *PasskeyHandlers) outcome(err error) {
	if h.Outcome != nil {
		h.Outcome(err)
	}
}
