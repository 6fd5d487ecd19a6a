package web

import (
	"errors"
	"fmt"
	"html"
	"html/template"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/settings"
)

// The CRM's pages share one frame: appPage resolves the session into the
// principal of the guarded path (exactly as the JSON API does), builds the
// navigation from the principal's permissions and reads the company's time
// zone and the watermark setting. Pages never read the store themselves:
// every customer they show comes from internal/crm, which checks visibility,
// masks fields and writes the audit events.
//
// Areas: ui_customers.go (customers, contacts, follow-ups, the pool),
// ui_admin.go (users, roles, field policies, shares, grants),
// ui_security.go (audit, alerts, backups) and ui_data.go (import, exports).
// Each has its templates (named <area>_*.html) and its catalogue files
// (i18n/<area>.<lang>.json).

// appTemplatePrefixes are the name prefixes of the CRM's templates.
var appTemplatePrefixes = []string{"home", "crm_", "admin_", "sec_", "data_"}

// appTemplate reports whether a template is one of the CRM's pages.
func appTemplate(name string) bool {
	for _, p := range appTemplatePrefixes {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// uiFuncs are the templates' functions. Messages and formats are methods
// of the page (T, Date, Num, ...), as they depend on its language.
var uiFuncs = template.FuncMap{
	"asset":    assetURL,
	"join":     strings.Join,
	"contains": slices.Contains[[]string],
	"add":      func(a, b int) int { return a + b },
	"fieldArgs": func(p *page, field, value string) fieldArg {
		return fieldArg{P: p, Field: field, Value: value}
	},
	"selectArgs": func(p *page, field, category, value string, options []string) selectArg {
		return selectArg{P: p, Field: field, Category: category, Value: value, Options: options}
	},
}

// fieldArg and selectArg hand a page and one field to a sub-template.
type fieldArg struct {
	P            *page
	Field, Value string
}

type selectArg struct {
	P                      *page
	Field, Category, Value string
	Options                []string
}

// navItem is one link of the main navigation.
type navItem struct {
	ID, Key, Href string
}

// navDefs is the main navigation; an item shows when the principal passes
// its test. The pages check permissions themselves (through internal/crm):
// the navigation only leaves out what would be refused.
var navDefs = []struct {
	navItem
	show func(p access.Principal) bool
}{
	{navItem{"home", "nav.home", "/"}, func(access.Principal) bool { return true }},
	{navItem{"customers", "nav.customers", "/customers"}, func(p access.Principal) bool { return p.Can(access.Read) }},
	{navItem{"pool", "nav.pool", "/pool"}, func(p access.Principal) bool { return p.Can(access.Claim) }},
	{navItem{"import", "nav.import", "/import"}, func(p access.Principal) bool { return p.Can(access.Import) }},
	{navItem{"exports", "nav.exports", "/exports"}, func(p access.Principal) bool { return p.Can(access.Export) || p.Can(access.ApproveExport) }},
	{navItem{"users", "nav.users", "/admin/users"}, func(p access.Principal) bool { return p.Can(access.ManageUsers) }},
	{navItem{"roles", "nav.roles", "/admin/roles"}, func(p access.Principal) bool { return p.Can(access.ManageRoles) }},
	{navItem{"grants", "nav.grants", "/admin/grants"}, func(p access.Principal) bool { return p.Can(access.ManageRoles) }},
	{navItem{"audit", "nav.audit", "/audit"}, func(p access.Principal) bool { return p.Can(access.ReadAudit) }},
	{navItem{"alerts", "nav.alerts", "/alerts"}, func(p access.Principal) bool { return p.Can(access.ManageAlerts) }},
	{navItem{"backups", "nav.backups", "/admin/backups"}, func(p access.Principal) bool { return p.Can(access.ManageConfig) }},
}

func navFor(p access.Principal) []navItem {
	var out []navItem
	for _, d := range navDefs {
		if d.show(p) {
			out = append(out, d.navItem)
		}
	}
	return out
}

// uiAppRoutes are the home page and the watermark.
func (s *Server) uiAppRoutes() []UIRoute {
	return []UIRoute{
		{Method: "GET", Pattern: "/{$}", Handler: s.uiHome},
		{Method: "GET", Pattern: "/watermark.svg", Handler: s.uiWatermark},
	}
}

// appOpts says what a page shows.
type appOpts struct {
	active       string // its navItem ID
	customerData bool   // it shows customer data: the watermark applies
}

// appPage starts a CRM page: the session (a POST must carry the CSRF
// token), the principal, the navigation, the time zone and the watermark.
// path is the page's own GET path for the language switch ("" hides it).
// It answers itself and returns ok=false when the request cannot go on.
func (s *Server) appPage(w http.ResponseWriter, r *http.Request, path string, o appOpts) (*page, access.Principal, bool) {
	pg := s.newPage(w, r, path)
	sess, ok := s.session(w, r, pg)
	if !ok {
		return nil, access.Principal{}, false
	}
	ctx := r.Context()
	id := sess.id
	if sess.principal == nil { // a restricted session: session() lets it reach no CRM page
		s.uiErrorPage(w, r, pg, http.StatusForbidden, "error.denied")
		return nil, access.Principal{}, false
	}
	p := *sess.principal
	p.IP, p.UserAgent, p.RequestID = clientIP(r), r.UserAgent(), requestID(ctx)
	p.Interactive, p.AuthAt = id.Via == "session", id.AuthenticatedAt
	vals, err := s.crm.EffectiveSettings(ctx)
	if err != nil {
		s.uiInternal(w, r, pg, err)
		return nil, access.Principal{}, false
	}
	pg.zone = vals.Location()
	pg.Today = s.now().In(pg.zone).Format(time.DateOnly)
	pg.Principal, pg.Nav, pg.Active, pg.Card = &p, navFor(p), o.active, false
	pg.Watermark = o.customerData && vals.Bool(settings.UIWatermark)
	return pg, p, true
}

// uiFail shows the page for an error of the guarded path: not found (also
// for what the viewer may not see: the two are indistinguishable by
// design), refused, over quota, changed meanwhile, or invalid; anything
// else is an internal error with the details in the log only.
func (s *Server) uiFail(w http.ResponseWriter, r *http.Request, pg *page, err error) {
	var ve *crm.ValidationError
	if pg.BackHref == "" {
		pg.BackHref = "/"
	}
	switch {
	case errors.Is(err, crm.ErrNotFound), errors.Is(err, auth.ErrNotFound):
		s.uiErrorPage(w, r, pg, http.StatusNotFound, "error.not_found")
	case errors.Is(err, access.ErrStepUp):
		s.uiErrorPage(w, r, pg, http.StatusForbidden, "error.step_up")
	case errors.Is(err, access.ErrDenied):
		s.uiErrorPage(w, r, pg, http.StatusForbidden, "error.denied")
	case errors.Is(err, crm.ErrQuota):
		s.uiErrorPage(w, r, pg, http.StatusTooManyRequests, "error.quota")
	case errors.Is(err, crm.ErrConflict):
		s.uiErrorPage(w, r, pg, http.StatusConflict, "error.conflict")
	case errors.As(err, &ve):
		pg.Errors = fieldErrors(pg, ve)
		s.uiErrorPage(w, r, pg, http.StatusBadRequest, "error.invalid_fields", strings.Join(errorList(pg, ve), "; "))
	case errors.Is(err, crm.ErrInvalid):
		s.uiErrorPage(w, r, pg, http.StatusBadRequest, "error.invalid")
	default:
		s.uiInternal(w, r, pg, err)
	}
}

// fieldErrors translates the messages of a validation error, by field. The
// service's messages are English and never contain the value; the common
// ones have a catalogue entry (valid.<kind>), the others keep the service's
// wording after the translated "invalid" lead.
func fieldErrors(pg *page, ve *crm.ValidationError) map[string]string {
	out := map[string]string{}
	for _, f := range ve.Fields {
		field := formField(f.Field)
		msg := validationMessage(pg, f.Message)
		if prev, ok := out[field]; ok && prev != msg {
			msg = prev + "; " + msg
		}
		out[field] = msg
	}
	return out
}

// formField is the form field of a service field: an item of a list
// ("phones[1]") belongs to the list's box.
func formField(field string) string {
	base, _, _ := strings.Cut(field, "[")
	return base
}

// errorList is the validation error as "label: message" lines.
func errorList(pg *page, ve *crm.ValidationError) []string {
	out := make([]string, len(ve.Fields))
	for i, f := range ve.Fields {
		label := f.Field
		if key := "field." + formField(f.Field); pg.loc.has(key) {
			label = pg.msg(key)
		}
		out[i] = label + pg.msg("valid.sep") + validationMessage(pg, f.Message)
	}
	return out
}

// validationPatterns map fragments of the service's messages to catalogue
// keys, the first match winning.
var validationPatterns = []struct{ fragment, key string }{
	{"search text too short", "valid.search_short"},
	{"required", "valid.required"},
	{"must not be empty", "valid.required"},
	{"is empty", "valid.required"},
	{"too long", "valid.too_long"},
	{"at most", "valid.too_long"},
	{"not a valid email", "valid.email"},
	{"email", "valid.email"},
	{"phone", "valid.phone"},
	{"date", "valid.date"},
	{"not a valid id", "valid.id"},
	{"unknown user", "valid.user"},
}

func validationMessage(pg *page, msg string) string {
	lower := strings.ToLower(msg)
	for _, vp := range validationPatterns {
		if strings.Contains(lower, vp.fragment) {
			if pg.Lang == langEN {
				return msg // the service's own English is the most precise
			}
			return pg.msg(vp.key)
		}
	}
	if pg.Lang == langEN {
		return msg
	}
	return pg.msg("valid.other", msg)
}

// --- formatting per locale -------------------------------------------------

// Date formats a time as a date in the company's time zone.
func (p *page) Date(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(p.location())
	if p.Lang == langZH {
		return fmt.Sprintf("%d年%d月%d日", t.Year(), t.Month(), t.Day())
	}
	return t.Format("2 Jan 2006")
}

// DateTime formats a time with its minute in the company's time zone.
func (p *page) DateTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return p.Date(t) + " " + t.In(p.location()).Format("15:04")
}

// Day formats a YYYY-MM-DD date (a follow-up date); a malformed one is
// shown as it is.
func (p *page) Day(d string) string {
	t, err := time.ParseInLocation(time.DateOnly, d, p.location())
	if err != nil {
		return d
	}
	return p.Date(t)
}

// Num formats an integer with the locale's digit grouping.
func (p *page) Num(n int64) string {
	return message.NewPrinter(language.MustParse(p.Lang)).Sprintf("%d", n)
}

// Int is Num for an int.
func (p *page) Int(n int) string { return p.Num(int64(n)) }

// Code shows a category code (kind, level, status, source, industry) by
// its catalogue name, code.<category>.<value>, or as it is when it has
// none: the codes are the company's own.
func (p *page) Code(category, value string) string {
	if value == "" {
		return ""
	}
	if key := "code." + category + "." + value; p.loc.has(key) {
		return p.msg(key)
	}
	return value
}

// Has reports whether the viewer holds a permission.
func (p *page) Has(perm string) bool {
	return p.Principal != nil && p.Principal.Can(access.Permission(perm))
}

func (p *page) location() *time.Location {
	if p.zone != nil {
		return p.zone
	}
	return chinaTime
}

// --- the watermark -----------------------------------------------------------

// uiWatermark draws the tile of the watermark: the viewer's name and email
// and today's date, rotated, very faint. The stylesheet repeats it over the
// pages that show customer data (body.wm); it is an image of this site, so
// the Content-Security-Policy needs nothing inline.
func (s *Server) uiWatermark(w http.ResponseWriter, r *http.Request) {
	pg, _, ok := s.appPage(w, r, "", appOpts{})
	if !ok {
		return
	}
	who := html.EscapeString(strings.TrimSpace(pg.User.Name + " " + pg.User.Email))
	day := html.EscapeString(pg.Today)
	h := w.Header()
	h.Set("Content-Type", "image/svg+xml")
	h.Set("Cache-Control", "private, no-store")
	h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
	_, _ = fmt.Fprintf(w, `<svg xmlns="http://www.w3.org/2000/svg" width="360" height="220" viewBox="0 0 360 220">`+
		`<g transform="rotate(-24 180 110)" fill="#777" fill-opacity="0.13" font-family="sans-serif" font-size="15" text-anchor="middle">`+
		`<text x="180" y="104">%s</text><text x="180" y="126">%s</text></g></svg>`, who, day)
}

// --- the home page -----------------------------------------------------------

// homeData is the home page: the viewer's follow-ups due today or overdue.
type homeData struct {
	Due      []crm.FollowUp
	More     bool
	Limit    int  // how many are shown at most
	Customer bool // the viewer may read customers
}

const homeFollowUps = 50

// uiHome shows the follow-ups due; strangers go to sign in.
func (s *Server) uiHome(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/", appOpts{active: "home", customerData: true})
	if !ok {
		return
	}
	d := &homeData{Customer: p.Can(access.Read), Limit: homeFollowUps}
	if d.Customer {
		due, err := s.crm.FollowUps(r.Context(), p, pg.Today, homeFollowUps+1)
		if err != nil {
			s.uiFail(w, r, pg, err)
			return
		}
		if len(due) > homeFollowUps {
			due, d.More = due[:homeFollowUps], true
		}
		d.Due = due
	}
	pg.Data = d
	s.render(w, r, http.StatusOK, "home", pg)
}
