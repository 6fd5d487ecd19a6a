package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/passkey"
)

// passkeyCookie holds the token of a passkey ceremony between its begin and
// finish requests. It is HttpOnly and SameSite=Strict, so neither scripts nor
// other sites can send or read it, and it lives only as long as the ceremony.
const passkeyCookie = "custos_passkey"

// passkeyCookiePath covers the API, where every passkey route lives.
const passkeyCookiePath = "/api/v1/"

// SessionOpener opens a login session for userID once a passkey has proved
// who they are. It returns the session cookie value, the CSRF token and the
// user to show, as a password login does.
type SessionOpener func(ctx context.Context, userID string, r *http.Request) (cookieToken, csrf string, user any, err error)

// PasskeyHandlers serves passkey registration, listing and removal for a
// signed-in user and passwordless login. Register, list and remove have the
// signature of authenticated handlers; LoginBegin and LoginFinish are public.
type PasskeyHandlers struct {
	Svc    *passkey.Service
	Open   SessionOpener
	Log    *slog.Logger
	Secure bool // served over TLS: cookies get Secure
	// Outcome, when set, learns how each passwordless login ended (nil
	// error: a session was opened); it feeds the login metrics.
	Outcome func(err error)
}

func (h *PasskeyHandlers) setCeremony(w http.ResponseWriter, token string) {
	h.setCeremonyAt(w, passkeyCookiePath, token)
}

func (h *PasskeyHandlers) clearCeremony(w http.ResponseWriter) {
	h.clearCeremonyAt(w, passkeyCookiePath)
}

// setCeremonyAt sets the ceremony cookie for the routes under path (the
// pages' own passkey routes live outside the API).
func (h *PasskeyHandlers) setCeremonyAt(w http.ResponseWriter, path, token string) {
	http.SetCookie(w, &http.Cookie{Name: passkeyCookie, Value: token, Path: path, MaxAge: int(passkey.CeremonyTTL / time.Second),
		HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteStrictMode})
}

func (h *PasskeyHandlers) clearCeremonyAt(w http.ResponseWriter, path string) {
	http.SetCookie(w, &http.Cookie{Name: passkeyCookie, Value: "", Path: path, MaxAge: -1,
		HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteStrictMode})
}

// ceremony returns the token of the ceremony in progress, or answers 400.
func ceremony(w http.ResponseWriter, r *http.Request) (string, bool) {
	c, err := r.Cookie(passkeyCookie)
	if err != nil || c.Value == "" {
		writeProblem(w, r, http.StatusBadRequest, "no passkey ceremony in progress: begin again", nil)
		return "", false
	}
	return c.Value, true
}

// writeOptions sends options the service produced as JSON.
func writeOptions(w http.ResponseWriter, options []byte) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(options)
}

// onlyQuery answers 400 when the query has a parameter other than allowed.
func onlyQuery(w http.ResponseWriter, r *http.Request, allowed ...string) bool {
	for k := range r.URL.Query() {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", k), nil)
			return false
		}
	}
	return true
}

// interactive refuses API tokens: a passkey is a login credential, and a
// token must not be able to mint one (nor remove the user's).
func interactive(w http.ResponseWriter, r *http.Request, id auth.Identity) bool {
	if id.Via != "session" {
		writeProblem(w, r, http.StatusForbidden, "passkeys are managed from a signed-in browser session, not with an API token", nil)
		return false
	}
	return true
}

// writeError maps the errors of passkey handling to problem responses.
// rejected is the status of a failed ceremony: 400 when registering, 401
// when logging in. Unknown errors are "internal error", details in the log.
func (h *PasskeyHandlers) writeError(w http.ResponseWriter, r *http.Request, err error, rejected int) {
	var locked *auth.LockedError
	switch {
	case errors.Is(err, passkey.ErrRejected):
		detail := "the passkey could not be verified: begin again"
		if rejected == http.StatusUnauthorized {
			detail = "passkey not accepted"
		}
		writeProblem(w, r, rejected, detail, nil)
	case errors.Is(err, passkey.ErrInvalid):
		writeProblem(w, r, http.StatusUnprocessableEntity, err.Error(), nil)
	case errors.Is(err, passkey.ErrNotFound):
		writeProblem(w, r, http.StatusNotFound, "no such resource", nil)
	case errors.As(err, &locked):
		secs := int(math.Ceil(locked.RetryAfter.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		writeProblem(w, r, http.StatusTooManyRequests, locked.Error(), nil)
	case errors.Is(err, auth.ErrUnauthenticated), errors.Is(err, auth.ErrBadCredentials):
		writeProblem(w, r, http.StatusUnauthorized, "authentication required", nil)
	case errors.Is(err, access.ErrDenied):
		writeProblem(w, r, http.StatusForbidden, err.Error(), nil)
	default:
		log := h.Log
		if log == nil {
			log = slog.Default()
		}
		log.ErrorContext(r.Context(), "request failed", "request_id", requestID(r.Context()), "err", err)
		writeProblem(w, r, http.StatusInternalServerError, "internal error", nil)
	}
}

func passkeyEvent(p access.Principal) audit.Event {
	return audit.Event{Actor: p.Actor, IP: p.IP, UserAgent: p.UserAgent, RequestID: p.RequestID}
}

// RegisterBegin answers the options for navigator.credentials.create
// ({"publicKey": {...}}, binary fields base64url) and sets the ceremony cookie.
func (h *PasskeyHandlers) RegisterBegin(w http.ResponseWriter, r *http.Request, _ access.Principal, id auth.Identity) {
	if !interactive(w, r, id) || !onlyQuery(w, r) {
		return
	}
	options, token, err := h.Svc.BeginRegistration(r.Context(), id.User.ID, id.User.Email, id.User.Name)
	if err != nil {
		h.writeError(w, r, err, http.StatusBadRequest)
		return
	}
	h.setCeremony(w, token)
	writeOptions(w, options)
}

// RegisterFinish takes the PublicKeyCredential from navigator.credentials.create
// as JSON, with the label in ?name=, and answers 201 with the new passkey.
func (h *PasskeyHandlers) RegisterFinish(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if !interactive(w, r, id) || !onlyQuery(w, r, "name") {
		return
	}
	token, ok := ceremony(w, r)
	if !ok {
		return
	}
	var body json.RawMessage
	if !decodeJSON(w, r, &body) {
		return
	}
	h.clearCeremony(w)
	pk, err := h.Svc.FinishRegistration(r.Context(), passkeyEvent(p), id.User.ID, token, r.URL.Query().Get("name"), body)
	if err != nil {
		h.writeError(w, r, err, http.StatusBadRequest)
		return
	}
	writeJSON(w, http.StatusCreated, pk)
}

// List answers the signed-in user's passkeys.
func (h *PasskeyHandlers) List(w http.ResponseWriter, r *http.Request, _ access.Principal, id auth.Identity) {
	if !onlyQuery(w, r) {
		return
	}
	ps, err := h.Svc.List(r.Context(), id.User.ID)
	if err != nil {
		h.writeError(w, r, err, http.StatusBadRequest)
		return
	}
	if ps == nil {
		ps = []passkey.Passkey{}
	}
	writeJSON(w, http.StatusOK, crm.Page[passkey.Passkey]{Items: ps})
}

// Remove deletes the signed-in user's passkey {id} (base64url, as listed):
// 204, or 404 when the user has no such passkey.
func (h *PasskeyHandlers) Remove(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if !interactive(w, r, id) || !onlyQuery(w, r) {
		return
	}
	if err := h.Svc.Remove(r.Context(), passkeyEvent(p), id.User.ID, r.PathValue("id")); err != nil {
		h.writeError(w, r, err, http.StatusBadRequest)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// LoginBegin answers the options for navigator.credentials.get for a
// passwordless login and sets the ceremony cookie.
func (h *PasskeyHandlers) LoginBegin(w http.ResponseWriter, r *http.Request) {
	if !onlyQuery(w, r) {
		return
	}
	options, token, err := h.Svc.BeginLogin(r.Context())
	if err != nil {
		h.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	h.setCeremony(w, token)
	writeOptions(w, options)
}

// LoginFinish takes the PublicKeyCredential from navigator.credentials.get as
// JSON, opens a session for the passkey's user with Open, sets the session
// cookie and answers {"user": ..., "csrf_token": ...} as a password login
// does. Any failed check is a bare 401; the reason is in the audit trail.
func (h *PasskeyHandlers) LoginFinish(w http.ResponseWriter, r *http.Request) {
	if !onlyQuery(w, r) {
		return
	}
	token, ok := ceremony(w, r)
	if !ok {
		return
	}
	var body json.RawMessage
	if !decodeJSON(w, r, &body) {
		return
	}
	h.clearCeremony(w)
	ev := audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	var err error
	defer func() { h.outcome(err) }()
	userID, err := h.Svc.FinishLogin(r.Context(), ev, token, body)
	if err != nil {
		h.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	cookie, csrf, user, err := h.Open(r.Context(), userID, r)
	if err != nil {
		h.writeError(w, r, err, http.StatusUnauthorized)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: cookie, Path: "/", HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteLaxMode})
	// The pages' CSRF cookie (see ui.go setSession), so a passkey login leads
	// into the account pages.
	http.SetCookie(w, &http.Cookie{Name: csrfCookie, Value: csrf, Path: "/", HttpOnly: true, Secure: h.Secure, SameSite: http.SameSiteStrictMode})
	writeJSON(w, http.StatusOK, map[string]any{"user": user, "csrf_token": csrf})
}
