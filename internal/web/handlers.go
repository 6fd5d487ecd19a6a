package web

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/metrics"
	"github.com/custos/custos/internal/store"
)

func eventOf(p access.Principal) audit.Event {
	return audit.Event{Actor: p.Actor, IP: p.IP, UserAgent: p.UserAgent, RequestID: p.RequestID}
}

// pathID returns the {id} path value if it is a well-formed id; otherwise it
// answers 404 (a malformed id names nothing) and returns "".
func pathID(w http.ResponseWriter, r *http.Request) string {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		writeProblem(w, r, http.StatusNotFound, "no such resource", nil)
		return ""
	}
	return id
}

// ifMatch parses an If-Match header holding a version ("3" or W/"3").
func ifMatch(w http.ResponseWriter, r *http.Request) (int64, bool) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" {
		return 0, true
	}
	h = strings.Trim(strings.TrimPrefix(h, "W/"), `"`)
	v, err := strconv.ParseInt(h, 10, 64)
	if err != nil || v <= 0 {
		writeProblem(w, r, http.StatusBadRequest, "If-Match must be a version from an ETag", nil)
		return 0, false
	}
	return v, true
}

// update serves a PATCH: the {id}, an optional If-Match version, a strict
// JSON body converted to the service's fields, the call, and the new ETag.
func update[In, F, Out any](s *Server, w http.ResponseWriter, r *http.Request, conv func(In) (F, error),
	call func(ctx context.Context, id string, f F, version int64) (Out, error), version func(Out) int64) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	ifVersion, ok := ifMatch(w, r)
	if !ok {
		return
	}
	var in In
	if !decodeJSON(w, r, &in) {
		return
	}
	f, err := conv(in)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	out, err := call(r.Context(), id, f, ifVersion)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setETag(w, version(out))
	writeJSON(w, http.StatusOK, out)
}

// remove serves a DELETE of the {id}.
func (s *Server) remove(w http.ResponseWriter, r *http.Request, call func(ctx context.Context, id string) error) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	if err := call(r.Context(), id); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func setETag(w http.ResponseWriter, version int64) {
	w.Header().Set("ETag", `"`+strconv.FormatInt(version, 10)+`"`)
}

// --- session ---------------------------------------------------------------

type loginIn struct {
	Email    string `json:"email"`
	Password string `json:"password"`
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var in loginIn
	if !decodeJSON(w, r, &in) {
		return
	}
	ev := audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	res, err := s.auth.Login(r.Context(), ev, in.Email, in.Password)
	s.countFirstFactor(metrics.LoginPassword, res, err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if res.Challenge != "" {
		writeJSON(w, http.StatusOK, map[string]any{"mfa_required": true, "challenge": res.Challenge, "methods": res.Methods})
		return
	}
	s.startSession(w, res.Token, res.CSRF, res.Identity)
}

// startSession sets the session cookie and answers with the user, the CSRF
// token and whether the session is restricted to MFA enrollment.
func (s *Server) startSession(w http.ResponseWriter, token, csrf string, id auth.Identity) {
	s.setSession(w, token, csrf) // the pages' CSRF cookie too, so an API login leads into them
	writeJSON(w, http.StatusOK, map[string]any{"user": id.User, "csrf_token": csrf, "mfa": id.MFA, "mfa_enrollment_required": id.Restricted})
}

type mfaIn struct {
	Challenge string `json:"challenge"`
	Code      string `json:"code"`
}

func (s *Server) completeMFA(w http.ResponseWriter, r *http.Request) {
	var in mfaIn
	if !decodeJSON(w, r, &in) {
		return
	}
	ev := audit.Event{Actor: "anonymous", IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context())}
	res, err := s.auth.CompleteMFA(r.Context(), ev, in.Challenge, in.Code)
	s.countLogin(metrics.LoginMFA, err)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.startSession(w, res.Token, res.CSRF, res.Identity)
}

// sessionToken returns the session cookie of a session principal, or answers
// 400 for API tokens (these actions belong to interactive sessions).
func sessionToken(w http.ResponseWriter, r *http.Request, id auth.Identity) (string, bool) {
	c, err := r.Cookie(sessionCookie)
	if id.Via != "session" || err != nil {
		writeProblem(w, r, http.StatusBadRequest, "this action needs a browser session, not an API token", nil)
		return "", false
	}
	return c.Value, true
}

func (s *Server) totpEnroll(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if _, ok := sessionToken(w, r, id); !ok {
		return
	}
	en, err := s.auth.StartTOTP(r.Context(), eventOf(p), id.User.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"secret": en.Secret, "otpauth_url": en.URL, "qr_png": en.QRPNG})
}

type codeIn struct {
	Code string `json:"code"`
}

func (s *Server) totpConfirm(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	tok, ok := sessionToken(w, r, id)
	if !ok {
		return
	}
	var in codeIn
	if !decodeJSON(w, r, &in) {
		return
	}
	codes, nid, token, csrf, err := s.auth.ConfirmTOTP(r.Context(), eventOf(p), tok, in.Code)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.setSession(w, token, csrf)
	writeJSON(w, http.StatusOK, map[string]any{"user": nid.User, "csrf_token": csrf, "recovery_codes": codes})
}

type reauthIn struct {
	Password string `json:"password"`
	Code     string `json:"code"`
}

func (s *Server) reauth(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	tok, ok := sessionToken(w, r, id)
	if !ok {
		return
	}
	var in reauthIn
	if !decodeJSON(w, r, &in) {
		return
	}
	if err := s.auth.Reauthenticate(r.Context(), eventOf(p), tok, in.Password, in.Code); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	c, err := r.Cookie(sessionCookie)
	if err != nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	id, csrfHash, err := s.auth.Session(r.Context(), c.Value)
	if err != nil {
		http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
		w.WriteHeader(http.StatusNoContent)
		return
	}
	if !auth.CheckCSRF(r.Header.Get("X-CSRF-Token"), csrfHash) {
		writeProblem(w, r, http.StatusForbidden, "missing or wrong X-CSRF-Token header", nil)
		return
	}
	ev := audit.Event{Actor: id.Actor(), IP: clientIP(r), UserAgent: r.UserAgent(), RequestID: requestID(r.Context()), ObjectType: "user", ObjectID: id.User.ID}
	if err := s.auth.Logout(r.Context(), ev, c.Value); err != nil {
		s.writeError(w, r, err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: sessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: s.secure, SameSite: http.SameSiteLaxMode})
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	writeJSON(w, http.StatusOK, map[string]any{"user": id.User, "permissions": p.Perms, "via": id.Via})
}

// --- customers -------------------------------------------------------------

type customerIn struct {
	Kind     *string   `json:"kind"`
	Name     *string   `json:"name"`
	Phone    *string   `json:"phone"`
	Phones   *[]string `json:"phones"`
	Email    *string   `json:"email"`
	Emails   *[]string `json:"emails"`
	Address  *string   `json:"address"`
	IDNumber *string   `json:"id_number"`
	Industry *string   `json:"industry"`
	Level    *string   `json:"level"`
	Source   *string   `json:"source"`
	Status   *string   `json:"status"`
	Tags     *[]string `json:"tags"`
	Notes    *string   `json:"notes"`
	OwnerID  *string   `json:"owner_id"`
	Hidden   *bool     `json:"hidden"`
}

// single folds the singular convenience field into the list field.
func single(field string, one *string, many *[]string) (*[]string, *crm.FieldError) {
	if one == nil {
		return many, nil
	}
	if many != nil {
		return nil, &crm.FieldError{Field: field, Message: fmt.Sprintf("give %s or %ss, not both", field, field)}
	}
	l := []string{}
	if strings.TrimSpace(*one) != "" {
		l = append(l, *one)
	}
	return &l, nil
}

func (in customerIn) fields() (crm.CustomerFields, error) {
	phones, e1 := single("phone", in.Phone, in.Phones)
	emails, e2 := single("email", in.Email, in.Emails)
	var fe []crm.FieldError
	for _, e := range []*crm.FieldError{e1, e2} {
		if e != nil {
			fe = append(fe, *e)
		}
	}
	if fe != nil {
		return crm.CustomerFields{}, &crm.ValidationError{Fields: fe}
	}
	return crm.CustomerFields{Kind: in.Kind, Name: in.Name, Phones: phones, Emails: emails, Address: in.Address, IDNumber: in.IDNumber,
		Industry: in.Industry, Level: in.Level, Source: in.Source, Status: in.Status, Tags: in.Tags, Notes: in.Notes, OwnerID: in.OwnerID, Hidden: in.Hidden}, nil
}

func (s *Server) listQuery(w http.ResponseWriter, r *http.Request) (crm.ListQuery, bool) {
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "q", "owner_id", "kind", "level", "status", "tag", "cursor", "limit", "hidden", "pool":
		default:
			writeProblem(w, r, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q", k), nil)
			return crm.ListQuery{}, false
		}
	}
	lq := crm.ListQuery{Q: q.Get("q"), OwnerID: q.Get("owner_id"), Kind: q.Get("kind"), Level: q.Get("level"),
		Status: q.Get("status"), Tag: q.Get("tag"), Cursor: q.Get("cursor"), Hidden: q.Get("hidden")}
	switch q.Get("pool") {
	case "":
	case "true", "1":
		lq.Pool = true
	default:
		writeProblem(w, r, http.StatusBadRequest, "pool must be true", nil)
		return crm.ListQuery{}, false
	}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil {
			writeProblem(w, r, http.StatusBadRequest, "limit must be a number", nil)
			return crm.ListQuery{}, false
		}
		lq.Limit = n
		if n == 0 {
			lq.Limit = -1 // explicit 0 is out of range
		}
	}
	return lq, true
}

func (s *Server) listCustomers(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	lq, ok := s.listQuery(w, r)
	if !ok {
		return
	}
	page, err := s.crm.ListCustomers(r.Context(), p, lq)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, page)
}

func (s *Server) createCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	var in customerIn
	if !decodeJSON(w, r, &in) {
		return
	}
	f, err := in.fields()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.crm.CreateCustomer(r.Context(), p, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/customers/"+c.ID)
	setETag(w, c.Version)
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) getCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	c, err := s.crm.GetCustomer(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setETag(w, c.Version)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) updateCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	update(s, w, r, customerIn.fields, func(ctx context.Context, id string, f crm.CustomerFields, v int64) (crm.Customer, error) {
		return s.crm.UpdateCustomer(ctx, p, id, f, v)
	}, func(c crm.Customer) int64 { return c.Version })
}

func (s *Server) deleteCustomer(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.DeleteCustomer(ctx, p, id) })
}

func (s *Server) ownerEmails(r *http.Request) (map[string]string, error) {
	users, err := s.auth.ListUsers(r.Context())
	if err != nil {
		return nil, err
	}
	m := make(map[string]string, len(users))
	for _, u := range users {
		m[u.ID] = u.Email
	}
	return m, nil
}

func (s *Server) exportCustomers(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	lq, ok := s.listQuery(w, r)
	if !ok {
		return
	}
	if lq.Cursor != "" || lq.Limit != 0 {
		writeProblem(w, r, http.StatusBadRequest, "export takes no cursor or limit", nil)
		return
	}
	var cw *csvio.Writer
	var owners map[string]string
	start := func() error {
		if cw != nil {
			return nil
		}
		var err error
		if owners, err = s.ownerEmails(r); err != nil {
			return err
		}
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="customers-%s.csv"`, s.now().UTC().Format("20060102-150405")))
		w.WriteHeader(http.StatusOK)
		cw = csvio.NewWriter(w, true)
		return cw.Write(customercsv.Columns)
	}
	_, err := s.crm.ExportCustomers(r.Context(), p, lq, func(c crm.Customer) error {
		if err := start(); err != nil {
			return err
		}
		return cw.Write(customercsv.Record(c, owners))
	})
	if err != nil && cw == nil {
		if needsApproval(err) {
			// Nothing was streamed: say how to get the export instead.
			writeProblem(w, r, http.StatusConflict, err.Error(), nil)
			return
		}
		s.writeError(w, r, err)
		return
	}
	if err == nil {
		err = start()
	}
	if err != nil {
		// Headers are gone: cut the stream so the client sees a broken
		// download rather than a silently short file.
		s.log.ErrorContext(r.Context(), "export interrupted", "request_id", requestID(r.Context()), "err", err)
		panic(http.ErrAbortHandler)
	}
	if err := cw.Flush(); err != nil {
		s.log.WarnContext(r.Context(), "export flush", "err", err)
	}
}

// --- contacts --------------------------------------------------------------

type contactIn struct {
	Name   *string   `json:"name"`
	Title  *string   `json:"title"`
	Phone  *string   `json:"phone"`
	Phones *[]string `json:"phones"`
	Email  *string   `json:"email"`
	Emails *[]string `json:"emails"`
	Notes  *string   `json:"notes"`
}

func (in contactIn) fields() (crm.ContactFields, error) {
	phones, e1 := single("phone", in.Phone, in.Phones)
	emails, e2 := single("email", in.Email, in.Emails)
	var fe []crm.FieldError
	for _, e := range []*crm.FieldError{e1, e2} {
		if e != nil {
			fe = append(fe, *e)
		}
	}
	if fe != nil {
		return crm.ContactFields{}, &crm.ValidationError{Fields: fe}
	}
	return crm.ContactFields{Name: in.Name, Title: in.Title, Phones: phones, Emails: emails, Notes: in.Notes}, nil
}

func (s *Server) listContacts(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	cs, err := s.crm.ListContacts(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Contact]{Items: cs})
}

func (s *Server) createContact(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	var in contactIn
	if !decodeJSON(w, r, &in) {
		return
	}
	f, err := in.fields()
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	c, err := s.crm.CreateContact(r.Context(), p, id, f)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/contacts/"+c.ID)
	setETag(w, c.Version)
	writeJSON(w, http.StatusCreated, c)
}

func (s *Server) getContact(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	c, err := s.crm.GetContact(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setETag(w, c.Version)
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) updateContact(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	update(s, w, r, contactIn.fields, func(ctx context.Context, id string, f crm.ContactFields, v int64) (crm.Contact, error) {
		return s.crm.UpdateContact(ctx, p, id, f, v)
	}, func(c crm.Contact) int64 { return c.Version })
}

func (s *Server) deleteContact(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.DeleteContact(ctx, p, id) })
}

// --- interactions ----------------------------------------------------------

type interactionIn struct {
	ContactID    *string    `json:"contact_id"`
	Kind         *string    `json:"kind"`
	OccurredAt   *time.Time `json:"occurred_at"`
	Summary      *string    `json:"summary"`
	NextFollowUp *string    `json:"next_follow_up"`
}

func (in interactionIn) fields() crm.InteractionFields {
	return crm.InteractionFields{ContactID: in.ContactID, Kind: in.Kind, OccurredAt: in.OccurredAt, Summary: in.Summary, NextFollowUp: in.NextFollowUp}
}

func (s *Server) listInteractions(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	items, err := s.crm.ListInteractions(r.Context(), p, id)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[crm.Interaction]{Items: items})
}

func (s *Server) createInteraction(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	id := pathID(w, r)
	if id == "" {
		return
	}
	var in interactionIn
	if !decodeJSON(w, r, &in) {
		return
	}
	it, err := s.crm.CreateInteraction(r.Context(), p, id, in.fields())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	setETag(w, it.Version)
	writeJSON(w, http.StatusCreated, it)
}

func (s *Server) updateInteraction(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	conv := func(in interactionIn) (crm.InteractionFields, error) { return in.fields(), nil }
	update(s, w, r, conv, func(ctx context.Context, id string, f crm.InteractionFields, v int64) (crm.Interaction, error) {
		return s.crm.UpdateInteraction(ctx, p, id, f, v)
	}, func(it crm.Interaction) int64 { return it.Version })
}

func (s *Server) deleteInteraction(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	s.remove(w, r, func(ctx context.Context, id string) error { return s.crm.DeleteInteraction(ctx, p, id) })
}

// --- users and tokens --------------------------------------------------------

// requireUsers checks the manage_users permission and audits a refusal.
func (s *Server) requireUsers(w http.ResponseWriter, r *http.Request, p access.Principal, action, objID string) bool {
	err := access.Require(p, access.ManageUsers)
	if err == nil {
		return true
	}
	ev := eventOf(p)
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome, ev.Reason = action, "user", objID, audit.Denied, "permission"
	if aerr := audit.RecordAlone(r.Context(), s.db, s.now(), ev); aerr != nil {
		s.writeError(w, r, aerr)
		return false
	}
	s.writeError(w, r, err)
	return false
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	if !s.requireUsers(w, r, p, "user.list", "") {
		return
	}
	us, err := s.auth.ListUsers(r.Context())
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if us == nil {
		us = []auth.User{}
	}
	writeJSON(w, http.StatusOK, crm.Page[auth.User]{Items: us})
}

type userIn struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Password string `json:"password"`
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	if !s.requireUsers(w, r, p, "user.create", "") || !s.stepUp(w, r, p, "user.create", "user", "") {
		return
	}
	var in userIn
	if !decodeJSON(w, r, &in) {
		return
	}
	u, err := s.auth.CreateUser(r.Context(), eventOf(p), auth.NewUser{Email: in.Email, Name: in.Name, Role: in.Role, Password: in.Password})
	if err == nil {
		err = s.crm.WatchAccountAction(r.Context(), p, u.ID, "user created")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	writeJSON(w, http.StatusCreated, u)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	uid := pathID(w, r)
	if uid == "" {
		return
	}
	if !access.CanManageUser(p, uid) && !s.requireUsers(w, r, p, "user.view", uid) {
		return
	}
	u, err := s.auth.GetUser(r.Context(), uid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) setDisabled(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity, disabled bool) {
	uid := pathID(w, r)
	if uid == "" {
		return
	}
	action := map[bool]string{true: "user.disable", false: "user.enable"}[disabled]
	if !s.requireUsers(w, r, p, action, uid) || !s.stepUp(w, r, p, action, "user", uid) {
		return
	}
	if disabled && uid == id.User.ID {
		writeProblem(w, r, http.StatusConflict, "you cannot disable yourself", nil)
		return
	}
	if err := s.auth.SetDisabled(r.Context(), eventOf(p), uid, disabled); err != nil {
		s.writeError(w, r, err)
		return
	}
	u, err := s.auth.GetUser(r.Context(), uid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, u)
}

func (s *Server) disableUser(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	s.setDisabled(w, r, p, id, true)
}

func (s *Server) enableUser(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	s.setDisabled(w, r, p, id, false)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request, _ access.Principal, id auth.Identity) {
	ts, err := s.auth.ListTokens(r.Context(), id.User.ID)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if ts == nil {
		ts = []auth.Token{}
	}
	writeJSON(w, http.StatusOK, crm.Page[auth.Token]{Items: ts})
}

type tokenIn struct {
	Name string `json:"name"`
	TTL  string `json:"ttl"` // Go duration, e.g. "24h"; empty: the maximum
}

func (s *Server) createToken(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	// A token is lasting access: it is made in a browser session that has
	// proved itself recently, never by another token.
	if _, ok := sessionToken(w, r, id); !ok || !s.stepUp(w, r, p, "token.create", "user", id.User.ID) {
		return
	}
	var in tokenIn
	if !decodeJSON(w, r, &in) {
		return
	}
	var ttl time.Duration
	if in.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(in.TTL); err != nil || ttl <= 0 {
			writeProblem(w, r, http.StatusUnprocessableEntity, "ttl must be a positive duration such as 24h", []crm.FieldError{{Field: "ttl", Message: "not a positive duration"}})
			return
		}
	}
	secret, t, err := s.auth.CreateToken(r.Context(), eventOf(p), id.User.ID, in.Name, ttl)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]any{"token": secret, "info": t})
}

func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	tid := pathID(w, r)
	if tid == "" {
		return
	}
	t, err := s.auth.GetToken(r.Context(), tid)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if !access.CanManageUser(p, t.UserID) {
		// Someone else's token is none of this user's business: 404, and
		// the attempt is on record.
		ev := eventOf(p)
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome, ev.Reason = "token.revoke", "token", tid, audit.Denied, "not found or not visible"
		if aerr := audit.RecordAlone(r.Context(), s.db, s.now(), ev); aerr != nil {
			s.writeError(w, r, aerr)
			return
		}
		s.writeError(w, r, auth.ErrNotFound)
		return
	}
	if err := s.auth.RevokeToken(r.Context(), eventOf(p), tid); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type passwordIn struct {
	Current string `json:"current_password"`
	New     string `json:"new_password"`
}

func (s *Server) changePassword(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	tok, ok := sessionToken(w, r, id)
	if !ok {
		return
	}
	var in passwordIn
	if !decodeJSON(w, r, &in) {
		return
	}
	token, csrf, err := s.auth.ChangePassword(r.Context(), eventOf(p), tok, in.Current, in.New)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	nid, _, err := s.auth.Session(r.Context(), token)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	s.startSession(w, token, csrf, nid)
}

type resetIn struct {
	Password string `json:"password"`
}

func (s *Server) resetPassword(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	uid := pathID(w, r)
	if uid == "" || !s.requireUsers(w, r, p, "user.password.reset", uid) || !s.stepUp(w, r, p, "user.password.reset", "user", uid) {
		return
	}
	var in resetIn
	if !decodeJSON(w, r, &in) {
		return
	}
	err := s.auth.ResetPassword(r.Context(), eventOf(p), uid, in.Password)
	if err == nil {
		err = s.crm.WatchAccountAction(r.Context(), p, uid, "password reset")
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) unlockUser(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	uid := pathID(w, r)
	if uid == "" || !s.requireUsers(w, r, p, "user.unlock", uid) || !s.stepUp(w, r, p, "user.unlock", "user", uid) {
		return
	}
	if err := s.auth.Unlock(r.Context(), eventOf(p), uid); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

type rolePolicy struct {
	MFARequired bool     `json:"mfa_required"`
	IPAllowlist []string `json:"ip_allowlist"`
	LoginHours  string   `json:"login_hours"`
}

func policyOut(p store.RolePolicy) rolePolicy {
	return rolePolicy{MFARequired: p.MFARequired, IPAllowlist: append([]string{}, strings.Fields(p.IPAllowlist)...), LoginHours: p.LoginHours}
}

func (s *Server) getRolePolicy(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	name := r.PathValue("name")
	if !s.requireUsers(w, r, p, "role.policy.view", name) {
		return
	}
	pol, err := s.auth.RolePolicy(r.Context(), name)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyOut(pol))
}

func (s *Server) setRolePolicy(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	name := r.PathValue("name")
	if !s.requirePerm(w, r, p, access.ManagePolicies, "role.policy.update", "role", name) || !s.stepUp(w, r, p, "role.policy.update", "role", name) {
		return
	}
	var in rolePolicy
	if !decodeJSON(w, r, &in) {
		return
	}
	pol := store.RolePolicy{Role: name, MFARequired: in.MFARequired, IPAllowlist: strings.Join(in.IPAllowlist, " "), LoginHours: in.LoginHours}
	if err := s.auth.SetRolePolicy(r.Context(), eventOf(p), pol); err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, policyOut(pol))
}

func currentSession(r *http.Request, id auth.Identity) string {
	if c, err := r.Cookie(sessionCookie); err == nil && id.Via == "session" {
		return c.Value
	}
	return ""
}

func (s *Server) listSessions(w http.ResponseWriter, r *http.Request, _ access.Principal, id auth.Identity) {
	ss, err := s.auth.Sessions(r.Context(), id.User.ID, currentSession(r, id))
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, crm.Page[auth.SessionInfo]{Items: ss})
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, p access.Principal, id auth.Identity) {
	if err := s.auth.RevokeSession(r.Context(), eventOf(p), id.User.ID, r.PathValue("sid")); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) revokeUserSessions(w http.ResponseWriter, r *http.Request, p access.Principal, _ auth.Identity) {
	uid := pathID(w, r)
	if uid == "" || !s.requireUsers(w, r, p, "session.revoke_all", uid) || !s.stepUp(w, r, p, "session.revoke_all", "user", uid) {
		return
	}
	if err := s.auth.RevokeAllSessions(r.Context(), eventOf(p), uid); err != nil {
		s.writeError(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// stepUp enforces a recent authentication for actions that create lasting
// access (tokens, users, factors) or act on other users, in browser sessions.
// A refusal is audited as a denial of action on the object.
func (s *Server) stepUp(w http.ResponseWriter, r *http.Request, p access.Principal, action, objType, objID string) bool {
	err := access.RequireRecentAuth(p, s.now())
	if err == nil {
		return true
	}
	ev := eventOf(p)
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome, ev.Reason = action, objType, objID, audit.Denied, "step-up required"
	if aerr := audit.RecordAlone(r.Context(), s.db, s.now(), ev); aerr != nil {
		s.writeError(w, r, aerr)
		return false
	}
	s.writeError(w, r, err)
	return false
}
