package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
)

// The security pages: the audit trail (search and paging), the alerts
// inbox with acknowledge, resolve and reinstate, and the state of the
// backups. Everything comes from internal/crm, which checks the viewer's
// permissions and puts every read, change and refusal on record.

// uiSecurityRoutes are the pages of this area (see ui_app.go).
func (s *Server) uiSecurityRoutes() []UIRoute {
	return []UIRoute{
		{Method: "GET", Pattern: "/audit", Handler: s.uiAudit},
		{Method: "GET", Pattern: "/alerts", Handler: s.uiAlerts},
		{Method: "GET", Pattern: "/alerts/{id}", Handler: s.uiAlert},
		{Method: "POST", Pattern: "/alerts/{id}/ack", Handler: s.uiAckAlert},
		{Method: "POST", Pattern: "/alerts/{id}/resolve", Handler: s.uiResolveAlert},
		{Method: "GET", Pattern: "/admin/backups", Handler: s.uiBackups},
	}
}

// Page sizes of the lists.
const (
	secAuditPage  = 50
	secAlertsPage = 50
)

// --- the audit trail ---------------------------------------------------------

// secAuditFilters are the audit search's form fields, as typed.
type secAuditFilters struct {
	Actor, ActorID, Action, Outcome  string
	ObjectType, ObjectID, CustomerID string
	From, Until                      string // YYYY-MM-DD in the company's zone, both days included
	cursor                           string
}

// query is the filters as URL parameters (without the cursor).
func (f secAuditFilters) query() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"actor": f.Actor, "actor_id": f.ActorID, "action": f.Action, "outcome": f.Outcome,
		"object_type": f.ObjectType, "object_id": f.ObjectID, "customer_id": f.CustomerID, "from": f.From, "until": f.Until} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// secAuditRow is one event with its details indented for reading.
type secAuditRow struct {
	audit.Entry
	OutcomeText string
	DetailsText string // "" when there are none
}

// secOption is a choice of a filter.
type secOption struct{ Value, Label string }

// The catalogue keys of the codes the pages translate; a code without one
// is shown as it is.
var (
	secOutcomeKeys = map[string]string{audit.OK: "sec.outcome.ok", audit.Denied: "sec.outcome.denied", audit.Failed: "sec.outcome.error"}
	secStatusKeys  = map[string]string{"open": "sec.status.open", "acknowledged": "sec.status.acknowledged",
		"resolved": "sec.status.resolved", "all": "sec.status.all"}
	secSeverityKeys = map[string]string{monitor.Critical: "sec.severity.critical", monitor.High: "sec.severity.high",
		monitor.Medium: "sec.severity.medium", monitor.Low: "sec.severity.low", monitor.Info: "sec.severity.info"}
	secKindKeys = map[string]string{"full": "sec.kind.full", "incremental": "sec.kind.incremental",
		"differential": "sec.kind.differential", "verify": "sec.kind.verify"}
)

// secText translates a code by keys.
func secText(pg *page, keys map[string]string, code string) string {
	if k, ok := keys[code]; ok {
		return pg.msg(k)
	}
	return code
}

func secOptions(pg *page, keys map[string]string, codes []string) []secOption {
	out := make([]secOption, len(codes))
	for i, c := range codes {
		out[i] = secOption{Value: c, Label: secText(pg, keys, c)}
	}
	return out
}

// OutcomeClass is the badge of the event's outcome.
func (r secAuditRow) OutcomeClass() string {
	switch r.Outcome {
	case audit.OK:
		return "badge-ok"
	case audit.Denied:
		return "badge-warn"
	}
	return "badge-error"
}

// CustomerLink: the object is a customer, shown by its page.
func (r secAuditRow) CustomerLink() bool { return r.ObjectType == "customer" && r.ObjectID != "" }

// secChain is the newest verification of the audit chain.
type secChain struct {
	OK      bool
	At      time.Time
	Events  int64
	Through int64
	Problem string // the kind of problem found
}

// secAuditData is the audit page.
type secAuditData struct {
	F           secAuditFilters
	Outcomes    []secOption
	Items       []secAuditRow
	Next, First string // links ("" when there is none)
	Filtered    bool
	Searched    bool // the query ran (no form error)
	All         bool // the viewer reads the whole trail
	ShowChain   bool
	Chain       *secChain // nil: never verified
}

// uiAudit searches the audit trail. Holders of read_audit read all of it;
// everyone else their own events and those of the users below them, as the
// service decides. The search itself is on record.
func (s *Server) uiAudit(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/audit", appOpts{active: "audit"})
	if !ok {
		return
	}
	v := r.URL.Query()
	f := secAuditFilters{Actor: strings.TrimSpace(v.Get("actor")), ActorID: strings.TrimSpace(v.Get("actor_id")),
		Action: strings.TrimSpace(v.Get("action")), Outcome: v.Get("outcome"), ObjectType: strings.TrimSpace(v.Get("object_type")),
		ObjectID: strings.TrimSpace(v.Get("object_id")), CustomerID: strings.TrimSpace(v.Get("customer_id")),
		From: strings.TrimSpace(v.Get("from")), Until: strings.TrimSpace(v.Get("until")), cursor: v.Get("cursor")}
	d := &secAuditData{F: f, Outcomes: secOptions(pg, secOutcomeKeys, []string{audit.OK, audit.Denied, audit.Failed}), All: p.Can(access.ReadAudit)}
	d.Filtered = len(f.query()) > 0
	pg.Data = d
	q := crm.AuditQuery{Actor: f.Actor, ActorID: f.ActorID, Action: f.Action, Outcome: f.Outcome, ObjectType: f.ObjectType,
		ObjectID: f.ObjectID, CustomerID: f.CustomerID, Cursor: f.cursor, Limit: secAuditPage}
	pg.Errors = map[string]string{}
	day := func(field, s string) time.Time {
		if s == "" {
			return time.Time{}
		}
		t, err := time.ParseInLocation(time.DateOnly, s, pg.location())
		if err != nil {
			pg.Errors[field] = pg.msg("valid.date")
			return time.Time{}
		}
		return t
	}
	q.Since = day("from", f.From)
	if u := day("until", f.Until); !u.IsZero() {
		q.Until = u.AddDate(0, 0, 1) // the whole last day
		if !q.Since.IsZero() && q.Until.Before(q.Since.AddDate(0, 0, 1)) {
			pg.Errors["until"] = pg.msg("sec.audit.until_before")
		}
	}
	if len(pg.Errors) > 0 {
		pg.Error = pg.msg("sec.audit.fix")
		s.render(w, r, http.StatusBadRequest, "sec_audit", pg)
		return
	}
	ctx := r.Context()
	res, err := s.crm.QueryAudit(ctx, p, q)
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		pg.Errors = fieldErrors(pg, ve)
		pg.Error = pg.msg("error.invalid_fields", strings.Join(errorList(pg, ve), "; "))
		s.render(w, r, http.StatusBadRequest, "sec_audit", pg)
		return
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d.Searched = true
	for _, e := range res.Items {
		d.Items = append(d.Items, secAuditRow{Entry: e, OutcomeText: secText(pg, secOutcomeKeys, e.Outcome), DetailsText: indentJSON(e.Details)})
	}
	base := f.query()
	if res.Next != "" {
		nv := f.query()
		nv.Set("cursor", res.Next)
		d.Next = "/audit?" + nv.Encode()
	}
	if f.cursor != "" {
		d.First = "/audit"
		if len(base) > 0 {
			d.First += "?" + base.Encode()
		}
	}
	// The chain's last verification (the daily job records it), on the
	// first page for those who read the whole trail.
	if d.All && f.cursor == "" {
		d.ShowChain = true
		vr, err := s.crm.QueryAudit(ctx, p, crm.AuditQuery{Action: "audit.verify", ObjectType: "audit", Limit: 1})
		if err != nil {
			s.uiFail(w, r, pg, err)
			return
		}
		if len(vr.Items) > 0 {
			d.Chain = chainOf(vr.Items[0])
		}
	}
	s.render(w, r, http.StatusOK, "sec_audit", pg)
}

// chainOf reads a verification event of the audit chain (internal/node).
func chainOf(e audit.Entry) *secChain {
	var det struct {
		Events  int64  `json:"events"`
		Through int64  `json:"through_seq"`
		Kind    string `json:"kind"`
	}
	_ = json.Unmarshal(e.Details, &det)
	c := &secChain{OK: e.Outcome == audit.OK, At: e.At, Events: det.Events, Through: det.Through, Problem: det.Kind}
	if c.Problem == "" {
		c.Problem = e.Reason
	}
	return c
}

// indentJSON indents an event's details for reading; empty details are
// "". The page escapes the text: the JSON keeps <, > and & as they are.
func indentJSON(raw json.RawMessage) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return strings.TrimSpace(string(raw))
	}
	return prettyJSON(v)
}

// prettyJSON writes v indented, without escaping HTML characters (the
// template does); empty values are "".
func prettyJSON(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case map[string]any:
		if len(x) == 0 {
			return ""
		}
	case []any:
		if len(x) == 0 {
			return ""
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return ""
	}
	return strings.TrimSpace(b.String())
}

// --- alerts ------------------------------------------------------------------

// Alert statuses and severities as the monitor sets them.
var (
	secAlertStatuses = []string{"open", "acknowledged", "resolved"}
	secSeverities    = []string{monitor.Critical, monitor.High, monitor.Medium, monitor.Low, monitor.Info}
)

// secAlertRow is an alert with its title in the page's language and the
// name of its user.
type secAlertRow struct {
	crm.Alert
	Title                    string
	ActorName                string
	SeverityText, StatusText string
}

// SeverityClass is the badge of the alert's severity.
func (a secAlertRow) SeverityClass() string { return severityClass(a.Severity) }

// StatusClass is the badge of the alert's status.
func (a secAlertRow) StatusClass() string { return alertStatusClass(a.Status) }

func severityClass(s string) string {
	switch s {
	case monitor.Critical, monitor.High:
		return "badge-error"
	case monitor.Medium:
		return "badge-warn"
	case monitor.Low:
		return "badge-info"
	}
	return "badge-muted"
}

func alertStatusClass(s string) string {
	switch s {
	case "open":
		return "badge-warn"
	case "acknowledged":
		return "badge-info"
	case "resolved":
		return "badge-ok"
	}
	return "badge-muted"
}

// secAlertsData is the inbox.
type secAlertsData struct {
	Status, Severity string      // the filters; Status "all" for every status
	Statuses         []secOption // with "all"
	Severities       []secOption
	Items            []secAlertRow
	Next, First      string
}

// uiAlerts is the inbox of alerts, open ones first by default.
func (s *Server) uiAlerts(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/alerts", appOpts{active: "alerts"})
	if !ok {
		return
	}
	v := r.URL.Query()
	d := &secAlertsData{Status: v.Get("status"), Severity: v.Get("severity"), Statuses: secOptions(pg, secStatusKeys, slices.Concat(secAlertStatuses, []string{"all"})),
		Severities: secOptions(pg, secSeverityKeys, secSeverities)}
	if d.Status == "" {
		d.Status = "open"
	}
	q := crm.AlertQuery{Status: d.Status, Severity: d.Severity, Cursor: v.Get("cursor"), Limit: secAlertsPage}
	if d.Status == "all" {
		q.Status = ""
	}
	pg.Data = d
	ctx := r.Context()
	res, err := s.crm.ListAlerts(ctx, p, q)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	names, err := s.userNames(r)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	for _, a := range res.Items {
		d.Items = append(d.Items, s.alertRow(pg, a, names))
	}
	filters := url.Values{"status": {d.Status}}
	if d.Severity != "" {
		filters.Set("severity", d.Severity)
	}
	if res.Next != "" {
		nv := url.Values{"status": {d.Status}, "cursor": {res.Next}}
		if d.Severity != "" {
			nv.Set("severity", d.Severity)
		}
		d.Next = "/alerts?" + nv.Encode()
	}
	if q.Cursor != "" {
		d.First = "/alerts?" + filters.Encode()
	}
	s.render(w, r, http.StatusOK, "sec_alerts", pg)
}

// userNames maps user ids to names, for showing whom an alert is about.
func (s *Server) userNames(r *http.Request) (map[string]string, error) {
	users, err := s.auth.ListUsers(r.Context())
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		out[u.ID] = u.Name
	}
	return out, nil
}

func (s *Server) alertRow(pg *page, a crm.Alert, names map[string]string) secAlertRow {
	t := monitor.TitleOf(a.Rule)
	row := secAlertRow{Alert: a, Title: t.En, ActorName: names[a.ActorID], SeverityText: secText(pg, secSeverityKeys, a.Severity),
		StatusText: secText(pg, secStatusKeys, a.Status)}
	if pg.Lang == langZH {
		row.Title = t.Zh
	}
	return row
}

// secAlertData is one alert's page.
type secAlertData struct {
	A          secAlertRow
	ActorEmail string
	Evidence   []secEvidence
	Details    string // the alert's details, indented
	Self       bool   // the alert is about the viewer: another officer handles it
	Note       string // the resolve form, as typed
	Reinstate  bool
}

// secEvidence is an audit event behind an alert, linked to the trail.
type secEvidence struct {
	Seq  int64
	Href string
}

// uiAlert shows one alert with what it links to, and its actions.
func (s *Server) uiAlert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, "/alerts/"+url.PathEscape(id), appOpts{active: "alerts"})
	if !ok {
		return
	}
	switch r.URL.Query().Get("done") {
	case "ack":
		pg.Notice = pg.msg("sec.alert.done.ack")
	case "resolved":
		pg.Notice = pg.msg("sec.alert.done.resolved")
	case "reinstated":
		pg.Notice = pg.msg("sec.alert.done.reinstated")
	}
	s.showAlert(w, r, pg, p, id, http.StatusOK, &secAlertData{})
}

// showAlert renders an alert's page with status; d carries the resolve
// form as typed.
func (s *Server) showAlert(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, id string, status int, d *secAlertData) {
	pg.BackHref = "/alerts"
	a, err := s.crm.GetAlert(r.Context(), p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	names, err := s.userNames(r)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d.A = s.alertRow(pg, a, names)
	if a.ActorID != "" {
		if u, err := s.auth.GetUser(r.Context(), a.ActorID); err == nil {
			d.ActorEmail = u.Email
		}
	}
	d.Self = a.ActorID != "" && a.ActorID == p.UserID
	for _, seq := range a.Evidence {
		// The trail's cursor lists the events before it: the event itself first.
		d.Evidence = append(d.Evidence, secEvidence{Seq: seq, Href: "/audit?cursor=" + strconv.FormatInt(seq+1, 10)})
	}
	d.Details = prettyJSON(map[string]any(a.Details))
	pg.Data = d
	s.render(w, r, status, "sec_alert", pg)
}

// uiAckAlert acknowledges an open alert.
func (s *Server) uiAckAlert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, "/alerts/"+url.PathEscape(id), appOpts{active: "alerts"})
	if !ok {
		return
	}
	pg.BackHref = "/alerts/" + url.PathEscape(id)
	if _, err := s.crm.AckAlert(r.Context(), p, id); err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/alerts/"+url.PathEscape(id)+"?done=ack")
}

// uiResolveAlert resolves an alert with a note; "reinstate" also lifts the
// suspension the alert imposed on its user (it needs a recent sign-in).
func (s *Server) uiResolveAlert(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	pg, p, ok := s.appPage(w, r, "/alerts/"+url.PathEscape(id), appOpts{active: "alerts"})
	if !ok {
		return
	}
	pg.BackHref = "/alerts/" + url.PathEscape(id)
	note, reinstate := r.PostForm.Get("note"), r.PostForm.Get("reinstate") == "on"
	_, err := s.crm.ResolveAlert(r.Context(), p, id, note, reinstate)
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		pg.Errors = fieldErrors(pg, ve)
		if _, ok := pg.Errors["note"]; ok && strings.TrimSpace(note) == "" {
			pg.Errors["note"] = pg.msg("sec.alert.note_required")
		}
		pg.Error = pg.msg("sec.alert.fix")
		s.showAlert(w, r, pg, p, id, http.StatusBadRequest, &secAlertData{Note: note, Reinstate: reinstate})
		return
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	done := "resolved"
	if reinstate {
		done = "reinstated"
	}
	uiRedirect(w, r, "/alerts/"+url.PathEscape(id)+"?done="+done)
}

// --- backups -----------------------------------------------------------------

// secBackupsData is the backup status page.
type secBackupsData struct {
	crm.BackupStatus
	Activity                              []secActivity
	LastFull, LastIncremental, LastVerify *secActivity
}

// secActivity is a backup or verification with its size for reading.
type secActivity struct {
	crm.BackupActivity
	KindText string
	Size     string // "" when there is none
}

// uiBackups shows the state of the backups (manage_config).
func (s *Server) uiBackups(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/admin/backups", appOpts{active: "backups"})
	if !ok {
		return
	}
	st, err := s.crm.BackupStatus(r.Context(), p)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d := &secBackupsData{BackupStatus: st}
	for _, a := range st.Activity {
		d.Activity = append(d.Activity, activityRow(pg, a))
	}
	one := func(a *crm.BackupActivity) *secActivity {
		if a == nil {
			return nil
		}
		row := activityRow(pg, *a)
		return &row
	}
	d.LastFull, d.LastIncremental, d.LastVerify = one(st.LastFull), one(st.LastIncremental), one(st.LastVerify)
	pg.Data = d
	s.render(w, r, http.StatusOK, "sec_backups", pg)
}

func activityRow(pg *page, a crm.BackupActivity) secActivity {
	row := secActivity{BackupActivity: a, KindText: secText(pg, secKindKeys, a.Kind)}
	if a.Bytes > 0 {
		row.Size = byteSize(pg, a.Bytes)
	}
	return row
}

// byteSize shows a size in the largest binary unit that keeps it above one.
func byteSize(pg *page, n int64) string {
	const k = 1024
	switch {
	case n < k:
		return pg.msg("sec.size.b", pg.Num(n))
	case n < k*k:
		return pg.msg("sec.size.kib", fmt.Sprintf("%.1f", float64(n)/k))
	case n < k*k*k:
		return pg.msg("sec.size.mib", fmt.Sprintf("%.1f", float64(n)/(k*k)))
	}
	return pg.msg("sec.size.gib", fmt.Sprintf("%.1f", float64(n)/(k*k*k)))
}
