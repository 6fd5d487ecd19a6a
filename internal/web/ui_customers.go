package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
)

// The customer pages: the list (search, filters, order, paging), the public
// pool, the detail with contacts, the timeline and "add follow-up", the
// reveal of a masked field with a reason, the create and edit forms, and
// claim, release, hide and delete. Every customer shown comes from
// internal/crm, masked for the viewer, and every read is audited there.

// uiCustomerRoutes are the customer pages (see ui_app.go).
func (s *Server) uiCustomerRoutes() []UIRoute {
	return []UIRoute{
		{Method: "GET", Pattern: "/customers", Handler: s.uiCustomers},
		{Method: "GET", Pattern: "/pool", Handler: s.uiPool},
		{Method: "GET", Pattern: "/customers/new", Handler: s.uiNewCustomer},
		{Method: "POST", Pattern: "/customers", Handler: s.uiCreateCustomer},
		{Method: "GET", Pattern: "/customers/{id}", Handler: s.uiCustomer},
		{Method: "GET", Pattern: "/customers/{id}/edit", Handler: s.uiEditCustomer},
		{Method: "POST", Pattern: "/customers/{id}/edit", Handler: s.uiUpdateCustomer},
		{Method: "POST", Pattern: "/customers/{id}/reveal", Handler: s.uiReveal},
		{Method: "POST", Pattern: "/customers/{id}/interactions", Handler: s.uiAddInteraction},
		{Method: "POST", Pattern: "/customers/{id}/contacts", Handler: s.uiAddContact},
		{Method: "POST", Pattern: "/customers/{id}/claim", Handler: s.uiClaim},
		{Method: "POST", Pattern: "/customers/{id}/release", Handler: s.uiRelease},
		{Method: "POST", Pattern: "/customers/{id}/hide", Handler: s.uiHide},
		{Method: "POST", Pattern: "/customers/{id}/delete", Handler: s.uiDeleteCustomer},
	}
}

// The codes the forms and filters offer; a company may use others (the
// service accepts any code), which are shown as they are.
var (
	uiKinds    = []string{crm.KindCompany, crm.KindPerson}
	uiLevels   = []string{"a", "b", "c", "d"}
	uiStatuses = []string{"lead", "prospect", "active", "dormant", "lost"}
	uiSources  = []string{"referral", "website", "exhibition", "cold_call", "partner", "wechat", "advertising"}
	uiIndustry = []string{"manufacturing", "software", "retail", "finance", "education", "healthcare", "logistics", "real_estate", "energy", "agriculture"}
)

// --- the list and the pool ---------------------------------------------------

// customerList is the list page's data.
type customerList struct {
	Pool                      bool   // the public pool
	Action                    string // the form's path
	Q, Owner, Kind, Level     string
	Status, Tag, Hidden, Sort string
	Items                     []crm.Customer
	Owners                    map[string]string // user id → name
	OwnerOptions              []option
	Next, First               string // links ("" when there is none)
	Kinds, Levels, Statuses   []string
	Filtered                  bool
}

type option struct{ Value, Label string }

func (s *Server) uiCustomers(w http.ResponseWriter, r *http.Request) { s.customerList(w, r, false) }
func (s *Server) uiPool(w http.ResponseWriter, r *http.Request)      { s.customerList(w, r, true) }

func (s *Server) customerList(w http.ResponseWriter, r *http.Request, pool bool) {
	path, active := "/customers", "customers"
	if pool {
		path, active = "/pool", "pool"
	}
	pg, p, ok := s.appPage(w, r, path, appOpts{active: active, customerData: true})
	if !ok {
		return
	}
	q := r.URL.Query()
	d := &customerList{Pool: pool, Action: path, Q: strings.TrimSpace(q.Get("q")), Owner: q.Get("owner"), Kind: q.Get("kind"),
		Level: q.Get("level"), Status: q.Get("status"), Tag: strings.TrimSpace(q.Get("tag")), Hidden: q.Get("hidden"), Sort: q.Get("sort"),
		Kinds: uiKinds, Levels: uiLevels, Statuses: uiStatuses}
	lq := crm.ListQuery{Q: d.Q, Kind: d.Kind, Level: d.Level, Status: d.Status, Tag: d.Tag, Hidden: d.Hidden, Sort: d.Sort,
		Pool: pool, Cursor: q.Get("cursor"), Limit: crm.DefaultPageSize}
	switch d.Owner {
	case "":
	case "me":
		lq.OwnerID = p.UserID
	default:
		lq.OwnerID = d.Owner
	}
	if pool {
		lq.OwnerID, d.Owner = "", ""
	}
	if done := q.Get("done"); done != "" && pg.loc.has("crm.done."+done) {
		pg.Notice = pg.msg("crm.done." + done)
	}
	d.Filtered = d.Q != "" || d.Owner != "" || d.Kind != "" || d.Level != "" || d.Status != "" || d.Tag != "" || d.Hidden != ""
	owners, err := s.ownerNames(r.Context(), p)
	if err != nil {
		s.uiInternal(w, r, pg, err)
		return
	}
	d.Owners, d.OwnerOptions = owners, ownerOptions(p, owners)
	pg.Data = d
	res, err := s.crm.ListCustomers(r.Context(), p, lq)
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		// A bad search or filter: the form again, with what was wrong.
		pg.Errors = fieldErrors(pg, ve)
		pg.Error = pg.msg("error.invalid_fields", strings.Join(errorList(pg, ve), "; "))
		s.render(w, r, http.StatusBadRequest, "crm_list", pg)
		return
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d.Items = res.Items
	if res.Next != "" {
		d.Next = listLink(path, q, res.Next)
	}
	if q.Get("cursor") != "" {
		d.First = listLink(path, q, "")
	}
	s.render(w, r, http.StatusOK, "crm_list", pg)
}

// listLink is the list's URL with its filters and another cursor.
func listLink(path string, q url.Values, cursor string) string {
	v := url.Values{}
	for _, k := range []string{"q", "owner", "kind", "level", "status", "tag", "hidden", "sort"} {
		if x := q.Get(k); x != "" {
			v.Set(k, x)
		}
	}
	if cursor != "" {
		v.Set("cursor", cursor)
	}
	if len(v) == 0 {
		return path
	}
	return path + "?" + v.Encode()
}

// ownerNames maps the ids of the users to their names, for the owner
// column. Staff names are not customer data; the list is of the company's
// own users.
func (s *Server) ownerNames(ctx context.Context, p access.Principal) (map[string]string, error) {
	if !p.Can(access.Read) {
		return map[string]string{}, nil
	}
	users, err := s.auth.ListUsers(ctx)
	if err != nil {
		return nil, err
	}
	out := make(map[string]string, len(users))
	for _, u := range users {
		out[u.ID] = u.Name
	}
	return out, nil
}

// ownerOptions are the owner filter's choices: anyone, me, and for those
// who see more than their own customers, each user.
func ownerOptions(p access.Principal, owners map[string]string) []option {
	var out []option
	if p.SeeAll || len(p.Below) > 0 || p.Can(access.Assign) {
		for id, name := range owners {
			if id != p.UserID {
				out = append(out, option{Value: id, Label: name})
			}
		}
		slices.SortFunc(out, func(a, b option) int { return strings.Compare(a.Label, b.Label) })
	}
	return out
}

// --- the detail --------------------------------------------------------------

// customerDetail is the detail page's data.
type customerDetail struct {
	C        crm.Customer
	Owner    string
	Contacts []crm.Contact
	Timeline []crm.Interaction
	Names    map[string]string // contact id → name
	Kinds    []string          // interaction kinds

	// A reveal just made: the field and its values, and what is left today.
	Revealed      string
	RevealedVals  []string
	RevealsLeft   int
	RevealField   string // the field of a failed reveal, for its message
	RevealFailure string

	// The forms, with what was typed when one comes back with errors.
	FollowUp interactionForm
	Contact  contactForm
	Fix      string // "followup" or "contact": the form with errors

	CanEdit, CanReveal, CanClaim, CanRelease, CanShare, CanDelete, CanHide, CanAdd bool
}

type interactionForm struct {
	Kind, Summary, OccurredAt, NextFollowUp, ContactID string
}

type contactForm struct {
	Name, Title, Phone, Email, Notes string
}

// Masked reports whether the viewer sees field masked.
func (d *customerDetail) Masked(field string) bool { return slices.Contains(d.C.MaskedFields, field) }

// Shown reports whether the viewer sees field at all.
func (d *customerDetail) Shown(field string) bool { return !slices.Contains(d.C.HiddenFields, field) }

// customerPost starts a POST on one customer: the page (its language
// switch leads back to the customer) and the customer's {id}.
func (s *Server) customerPost(w http.ResponseWriter, r *http.Request) (*page, access.Principal, string, bool) {
	pg, p, ok := s.appPage(w, r, "", appOpts{active: "customers", customerData: true})
	if !ok {
		return nil, access.Principal{}, "", false
	}
	id, ok := s.customerID(w, r, pg)
	if !ok {
		return nil, access.Principal{}, "", false
	}
	pg.Path = "/customers/" + id
	return pg, p, id, true
}

// customerID returns the {id} of a customer page, or answers not found.
func (s *Server) customerID(w http.ResponseWriter, r *http.Request, pg *page) (string, bool) {
	id := r.PathValue("id")
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		s.uiErrorPage(w, r, pg, http.StatusNotFound, "error.not_found")
		return "", false
	}
	return id, true
}

func (s *Server) uiCustomer(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, r.URL.Path, appOpts{active: "customers", customerData: true})
	if !ok {
		return
	}
	id, ok := s.customerID(w, r, pg)
	if !ok {
		return
	}
	d := &customerDetail{FollowUp: interactionForm{Kind: "call"}}
	if done := r.URL.Query().Get("done"); done != "" && pg.loc.has("crm.done."+done) {
		pg.Notice = pg.msg("crm.done." + done)
	}
	s.renderDetail(w, r, pg, p, id, d, http.StatusOK)
}

// renderDetail loads the customer with its contacts and timeline and shows
// it with d's forms and reveal.
func (s *Server) renderDetail(w http.ResponseWriter, r *http.Request, pg *page, p access.Principal, id string, d *customerDetail, status int) {
	ctx := r.Context()
	c, err := s.crm.GetCustomer(ctx, p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	d.C = c
	if c.Access != access.RelPool.String() {
		// Contacts and history are the owner's work: the pool shows neither.
		if d.Contacts, err = s.crm.ListContacts(ctx, p, id); err != nil {
			s.uiFail(w, r, pg, err)
			return
		}
		if d.Timeline, err = s.crm.ListInteractions(ctx, p, id); err != nil {
			s.uiFail(w, r, pg, err)
			return
		}
	}
	d.Names = map[string]string{}
	for _, ct := range d.Contacts {
		d.Names[ct.ID] = ct.Name
	}
	owners, err := s.ownerNames(ctx, p)
	if err != nil {
		s.uiInternal(w, r, pg, err)
		return
	}
	d.Owner = owners[c.OwnerID]
	d.Kinds = crm.InteractionKinds
	editable := c.Access == access.RelFull.String() || c.Access == access.RelShareEdit.String()
	d.CanEdit = editable && p.Can(access.Update)
	d.CanAdd = editable && p.Can(access.Create)
	d.CanReveal = p.Can(access.Reveal) && len(c.MaskedFields) > 0
	d.CanClaim = c.Access == access.RelPool.String() && p.Can(access.Claim)
	d.CanRelease = c.OwnerID != "" && c.OwnerID == p.UserID && p.Can(access.Claim)
	d.CanShare = c.Access == access.RelFull.String() && p.Can(access.Share)
	d.CanDelete = c.Access == access.RelFull.String() && p.Can(access.Delete)
	d.CanHide = p.Can(access.Hide) && c.Access == access.RelFull.String()
	if d.FollowUp.OccurredAt == "" {
		d.FollowUp.OccurredAt = s.now().In(pg.location()).Format("2006-01-02T15:04")
	}
	pg.Data = d
	s.render(w, r, status, "crm_detail", pg)
}

// uiReveal unmasks one field with a reason and shows it on the detail page,
// once: the value is in this response only, never in a URL or a redirect.
func (s *Server) uiReveal(w http.ResponseWriter, r *http.Request) {
	pg, p, id, ok := s.customerPost(w, r)
	if !ok {
		return
	}
	field, reason := r.PostForm.Get("field"), strings.TrimSpace(r.PostForm.Get("reason"))
	d := &customerDetail{FollowUp: interactionForm{Kind: "call"}, RevealField: field}
	if reason == "" {
		d.RevealFailure = pg.msg("crm.reveal.reason_missing")
		s.renderDetail(w, r, pg, p, id, d, http.StatusBadRequest)
		return
	}
	rv, err := s.crm.RevealField(r.Context(), p, id, field, reason)
	var ve *crm.ValidationError
	switch {
	case errors.As(err, &ve):
		// Only a forged form names a field that is not masked: say it at
		// the top, where it shows whatever the field.
		pg.Error, d.RevealField = pg.msg("error.invalid_fields", strings.Join(errorList(pg, ve), "; ")), ""
		s.renderDetail(w, r, pg, p, id, d, http.StatusBadRequest)
		return
	case errors.Is(err, crm.ErrQuota):
		d.RevealFailure = pg.msg("error.quota")
		s.renderDetail(w, r, pg, p, id, d, http.StatusTooManyRequests)
		return
	case err != nil:
		s.uiFail(w, r, pg, err)
		return
	}
	d.Revealed, d.RevealedVals, d.RevealsLeft = rv.Field, rv.Values, rv.Remaining
	if len(d.RevealedVals) == 0 {
		d.RevealedVals = []string{rv.Value}
	}
	s.renderDetail(w, r, pg, p, id, d, http.StatusOK)
}

// uiAddInteraction adds an interaction (a follow-up) to the timeline.
func (s *Server) uiAddInteraction(w http.ResponseWriter, r *http.Request) {
	pg, p, id, ok := s.customerPost(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	form := interactionForm{Kind: f.Get("kind"), Summary: f.Get("summary"), OccurredAt: f.Get("occurred_at"),
		NextFollowUp: strings.TrimSpace(f.Get("next_follow_up")), ContactID: f.Get("contact_id")}
	in := crm.InteractionFields{Kind: &form.Kind, Summary: &form.Summary}
	if form.NextFollowUp != "" {
		in.NextFollowUp = &form.NextFollowUp
	}
	if form.ContactID != "" {
		in.ContactID = &form.ContactID
	}
	bad := map[string]string{}
	if form.OccurredAt != "" {
		t, err := time.ParseInLocation("2006-01-02T15:04", form.OccurredAt, pg.location())
		if err != nil {
			bad["occurred_at"] = pg.msg("valid.date")
		} else {
			in.OccurredAt = &t
		}
	}
	var err error
	if len(bad) == 0 {
		_, err = s.crm.CreateInteraction(r.Context(), p, id, in)
	}
	var ve *crm.ValidationError
	if len(bad) > 0 || errors.As(err, &ve) {
		if ve != nil {
			for k, v := range fieldErrors(pg, ve) {
				bad[k] = v
			}
		}
		pg.Errors, pg.Error = bad, pg.msg("crm.followup.fix")
		s.renderDetail(w, r, pg, p, id, &customerDetail{FollowUp: form, Fix: "followup"}, http.StatusBadRequest)
		return
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/customers/"+id+"?done=followup#timeline")
}

// uiAddContact adds a contact person.
func (s *Server) uiAddContact(w http.ResponseWriter, r *http.Request) {
	pg, p, id, ok := s.customerPost(w, r)
	if !ok {
		return
	}
	f := r.PostForm
	form := contactForm{Name: f.Get("name"), Title: f.Get("title"), Phone: f.Get("phone"), Email: f.Get("email"), Notes: f.Get("notes")}
	in := crm.ContactFields{Name: &form.Name, Title: &form.Title, Notes: &form.Notes, Phones: lines(form.Phone), Emails: lines(form.Email)}
	_, err := s.crm.CreateContact(r.Context(), p, id, in)
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		pg.Errors, pg.Error = fieldErrors(pg, ve), pg.msg("crm.contact.fix")
		s.renderDetail(w, r, pg, p, id, &customerDetail{FollowUp: interactionForm{Kind: "call"}, Contact: form, Fix: "contact"}, http.StatusBadRequest)
		return
	}
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	uiRedirect(w, r, "/customers/"+id+"?done=contact#contacts")
}

// lines splits a form value into its non-empty lines (also commas and
// Chinese commas), for list fields typed into one box.
func lines(v string) *[]string {
	out := []string{}
	for _, l := range strings.FieldsFunc(v, func(r rune) bool { return r == '\n' || r == '\r' || r == ',' || r == '，' || r == '、' || r == ';' }) {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return &out
}

// --- claim, release, hide, delete ---------------------------------------------

func (s *Server) uiClaim(w http.ResponseWriter, r *http.Request) {
	s.customerAction(w, r, "claimed", func(ctx context.Context, p access.Principal, id string) error {
		_, err := s.crm.ClaimCustomer(ctx, p, id)
		return err
	})
}

func (s *Server) uiRelease(w http.ResponseWriter, r *http.Request) {
	s.customerAction(w, r, "released", func(ctx context.Context, p access.Principal, id string) error {
		return s.crm.ReleaseCustomer(ctx, p, id)
	})
}

func (s *Server) uiHide(w http.ResponseWriter, r *http.Request) {
	hide := r.URL.Query().Get("hidden") != "off"
	done := "hidden"
	if !hide {
		done = "unhidden"
	}
	s.customerAction(w, r, done, func(ctx context.Context, p access.Principal, id string) error {
		_, err := s.crm.UpdateCustomer(ctx, p, id, crm.CustomerFields{Hidden: &hide}, 0)
		return err
	})
}

func (s *Server) uiDeleteCustomer(w http.ResponseWriter, r *http.Request) {
	s.customerAction(w, r, "deleted", func(ctx context.Context, p access.Principal, id string) error {
		return s.crm.DeleteCustomer(ctx, p, id)
	})
}

// customerAction runs a one-button action on a customer and goes back to
// it (or, after a delete or release, to the list).
func (s *Server) customerAction(w http.ResponseWriter, r *http.Request, done string, act func(context.Context, access.Principal, string) error) {
	pg, p, id, ok := s.customerPost(w, r)
	if !ok {
		return
	}
	if err := act(r.Context(), p, id); err != nil {
		pg.BackHref = "/customers/" + id
		s.uiFail(w, r, pg, err)
		return
	}
	switch done {
	case "deleted":
		uiRedirect(w, r, "/customers?done=deleted")
	case "released":
		uiRedirect(w, r, "/pool?done=released")
	default:
		uiRedirect(w, r, "/customers/"+id+"?done="+done)
	}
}

// --- create and edit ---------------------------------------------------------------

// customerForm is the create and edit form's data: what was typed, as text.
type customerForm struct {
	New                                 bool
	ID                                  string
	Version                             int64
	Kind, Name, Phones, Emails, Address string
	IDNumber, Industry, Level, Source   string
	Status, Tags, Notes                 string
	Pool                                bool
	// Editable are the fields the viewer may change (the others are not in
	// the form); Masked are shown masked and cannot be changed here.
	Editable                                     map[string]bool
	Kinds, Levels, Statuses, Sources, Industries []string
	CanPool                                      bool
}

func (s *Server) uiNewCustomer(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "/customers/new", appOpts{active: "customers"})
	if !ok {
		return
	}
	if !p.Can(access.Create) {
		s.uiErrorPage(w, r, pg, http.StatusForbidden, "error.denied")
		return
	}
	pg.Data = newCustomerForm(p, crm.Customer{Kind: crm.KindCompany}, true)
	s.render(w, r, http.StatusOK, "crm_form", pg)
}

// newCustomerForm fills the form from c, for p.
func newCustomerForm(p access.Principal, c crm.Customer, isNew bool) *customerForm {
	f := &customerForm{New: isNew, ID: c.ID, Version: c.Version, Kind: c.Kind, Name: c.Name, Phones: strings.Join(c.Phones, "\n"),
		Emails: strings.Join(c.Emails, "\n"), Address: c.Address, IDNumber: c.IDNumber, Industry: c.Industry, Level: c.Level,
		Source: c.Source, Status: c.Status, Tags: strings.Join(c.Tags, ", "), Notes: c.Notes,
		Kinds: uiKinds, Levels: uiLevels, Statuses: uiStatuses, Sources: uiSources, Industries: uiIndustry,
		Editable: map[string]bool{}, CanPool: isNew && p.Can(access.Assign)}
	rel := access.RelFull
	if c.Access == access.RelShareEdit.String() {
		rel = access.RelShareEdit
	}
	for _, field := range access.Fields {
		// As the service allows: a new customer's fields may be entered
		// by anyone who may create one and will see them, masked or not.
		l := p.FieldLevel(field, rel)
		if isNew && l >= access.Masked && p.Can(access.Create) || !isNew && l == access.Editable && !slices.Contains(c.MaskedFields, field) {
			f.Editable[field] = true
		}
	}
	return f
}

// formFields reads the posted form into the service's fields: the
// category codes always, a governed field only when p may edit it.
func formFields(form url.Values, f *customerForm) crm.CustomerFields {
	get := func(k string) string { return strings.TrimSpace(form.Get(k)) }
	f.Kind, f.Industry, f.Level, f.Source, f.Status = get("kind"), get("industry"), get("level"), get("source"), get("status")
	in := crm.CustomerFields{Kind: &f.Kind, Industry: &f.Industry, Level: &f.Level, Source: &f.Source, Status: &f.Status}
	if f.Editable[access.FieldName] {
		f.Name = get("name")
		in.Name = &f.Name
	}
	if f.Editable[access.FieldPhone] {
		f.Phones = form.Get("phones")
		in.Phones = lines(f.Phones)
	}
	if f.Editable[access.FieldEmail] {
		f.Emails = form.Get("emails")
		in.Emails = lines(f.Emails)
	}
	if f.Editable[access.FieldAddress] {
		f.Address = get("address")
		in.Address = &f.Address
	}
	if f.Editable[access.FieldIDNumber] {
		f.IDNumber = get("id_number")
		in.IDNumber = &f.IDNumber
	}
	if f.Editable[access.FieldTags] {
		f.Tags = form.Get("tags")
		in.Tags = lines(f.Tags)
	}
	if f.Editable[access.FieldNotes] {
		f.Notes = form.Get("notes")
		in.Notes = &f.Notes
	}
	return in
}

func (s *Server) uiCreateCustomer(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, "", appOpts{active: "customers"})
	if !ok {
		return
	}
	f := newCustomerForm(p, crm.Customer{}, true)
	in := formFields(r.PostForm, f)
	if f.CanPool && r.PostForm.Get("pool") == "on" {
		f.Pool = true
		none := ""
		in.OwnerID = &none
	}
	c, err := s.crm.CreateCustomer(r.Context(), p, in)
	if s.formFailed(w, r, pg, f, err) {
		return
	}
	uiRedirect(w, r, "/customers/"+c.ID+"?done=created")
}

func (s *Server) uiEditCustomer(w http.ResponseWriter, r *http.Request) {
	pg, p, ok := s.appPage(w, r, r.URL.Path, appOpts{active: "customers", customerData: true})
	if !ok {
		return
	}
	id, ok := s.customerID(w, r, pg)
	if !ok {
		return
	}
	c, err := s.crm.GetCustomer(r.Context(), p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	if !p.Can(access.Update) || (c.Access != access.RelFull.String() && c.Access != access.RelShareEdit.String()) {
		pg.BackHref = "/customers/" + id
		s.uiErrorPage(w, r, pg, http.StatusForbidden, "error.denied")
		return
	}
	pg.Data = newCustomerForm(p, c, false)
	s.render(w, r, http.StatusOK, "crm_form", pg)
}

func (s *Server) uiUpdateCustomer(w http.ResponseWriter, r *http.Request) {
	pg, p, id, ok := s.customerPost(w, r)
	if !ok {
		return
	}
	version, err := strconv.ParseInt(r.PostForm.Get("version"), 10, 64)
	if err != nil || version <= 0 {
		s.uiErrorPage(w, r, pg, http.StatusBadRequest, "error.bad_form")
		return
	}
	c, err := s.crm.GetCustomer(r.Context(), p, id)
	if err != nil {
		s.uiFail(w, r, pg, err)
		return
	}
	f := newCustomerForm(p, c, false)
	f.Version = version
	in := formFields(r.PostForm, f)
	_, err = s.crm.UpdateCustomer(r.Context(), p, id, in, version)
	if s.formFailed(w, r, pg, f, err) {
		return
	}
	uiRedirect(w, r, "/customers/"+id+"?done=saved")
}

// formFailed shows the form again with the service's validation messages,
// or the error page; it reports whether err was an error.
func (s *Server) formFailed(w http.ResponseWriter, r *http.Request, pg *page, f *customerForm, err error) bool {
	if err == nil {
		return false
	}
	var ve *crm.ValidationError
	if errors.As(err, &ve) {
		pg.Errors = fieldErrors(pg, ve)
		// The form names phones and emails in the plural.
		for one, many := range map[string]string{"phone": "phones", "email": "emails"} {
			if m, ok := pg.Errors[one]; ok {
				pg.Errors[many] = m
			}
		}
		pg.Error = pg.msg("crm.form.fix")
		pg.Data = f
		s.render(w, r, http.StatusBadRequest, "crm_form", pg)
		return true
	}
	if errors.Is(err, crm.ErrConflict) && !f.New {
		pg.Error = pg.msg("error.conflict")
		pg.Data = f
		s.render(w, r, http.StatusConflict, "crm_form", pg)
		return true
	}
	s.uiFail(w, r, pg, err)
	return true
}
