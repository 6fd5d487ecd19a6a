package crm

import (
	"context"
	"fmt"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Principal resolves the principal of a user for one request: the role
// hierarchy, the user's grants in force and the strict-separation setting
// are read now, so a change of role, permission or setting takes effect on
// the next request.
func (s *Service) Principal(ctx context.Context, subj access.Subject) (access.Principal, error) {
	var p access.Principal
	now := s.now()
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		roles, err := tx.Roles(ctx)
		if err != nil {
			return err
		}
		var grants []access.Permission
		if subj.UserID != "" {
			gs, err := tx.ActiveGrants(ctx, subj.UserID, now)
			if err != nil {
				return err
			}
			for _, g := range gs {
				grants = append(grants, access.Permission(g.Permission))
			}
		}
		vals, err := s.values(ctx, tx)
		if err != nil {
			return err
		}
		p, err = access.Resolve(subj, roles, grants, vals.Bool(settings.StrictSeparation))
		return err
	})
	return p, err
}

// values reads the effective settings.
func (s *Service) values(ctx context.Context, tx *store.Tx) (settings.Values, error) {
	st, err := tx.Settings(ctx)
	if err != nil {
		return settings.Values{}, err
	}
	m := make(map[string]string, len(st))
	for k, v := range st {
		m[k] = v.Value
	}
	return settings.New(m, s.env), nil
}

// reach loads customer id as p may reach it at now, and how. A customer
// outside the principal's scope is store.ErrNotFound. lock takes the row
// lock of a write path.
func (s *Service) reach(ctx context.Context, tx *store.Tx, p access.Principal, id string, now time.Time, lock bool) (store.Customer, access.Relation, error) {
	scope := access.CustomerScope(p, now)
	var r store.Customer
	var err error
	if lock {
		r, err = tx.LockCustomer(ctx, scope, id)
	} else {
		r, err = tx.GetCustomer(ctx, scope, id)
	}
	if err != nil {
		return store.Customer{}, access.RelNone, err
	}
	rel := access.RelationTo(p, r.OwnerID, r.OwnerRole, "")
	if rel != access.RelFull {
		level, err := shareLevel(ctx, tx, p, id, now)
		if err != nil {
			return store.Customer{}, access.RelNone, err
		}
		rel = access.RelationTo(p, r.OwnerID, r.OwnerRole, level)
	}
	if rel == access.RelNone {
		// The SQL predicate and the relation disagree: refuse, loudly.
		s.log.ErrorContext(ctx, "visibility predicate and relation disagree", "customer", id, "role", p.Role)
		return store.Customer{}, access.RelNone, store.ErrNotFound
	}
	return r, rel, nil
}

// shareLevel is the best level of the shares in force reaching p.
func shareLevel(ctx context.Context, tx *store.Tx, p access.Principal, customerID string, now time.Time) (string, error) {
	if p.UserID == "" {
		return "", nil
	}
	shares, err := tx.SharesFor(ctx, []string{customerID}, p.UserID, p.Role, now)
	if err != nil {
		return "", err
	}
	level := ""
	for _, sh := range shares {
		if sh.Level == "edit" || level == "" {
			level = sh.Level
		}
	}
	return level, nil
}

// shareLevels is shareLevel for the customers of a list page that p does
// not reach fully anyway (one query per page, whatever the number of shares).
func shareLevels(ctx context.Context, tx *store.Tx, p access.Principal, rows []store.Customer, now time.Time) (map[string]string, error) {
	out := map[string]string{}
	if p.UserID == "" || p.SeeAll {
		return out, nil
	}
	var ids []string
	for _, r := range rows {
		if access.RelationTo(p, r.OwnerID, r.OwnerRole, "") != access.RelFull {
			ids = append(ids, r.ID)
		}
	}
	shares, err := tx.SharesFor(ctx, ids, p.UserID, p.Role, now)
	if err != nil {
		return nil, err
	}
	for _, sh := range shares {
		if sh.Level == "edit" || out[sh.CustomerID] == "" {
			out[sh.CustomerID] = sh.Level
		}
	}
	return out, nil
}

// needRelation refuses an action that needs at least min.
func needRelation(rel, min access.Relation, what string) error {
	if rel >= min {
		return nil
	}
	switch rel {
	case access.RelPool:
		return fmt.Errorf("%w: %s a customer in the public pool needs claiming it first", access.ErrDenied, what)
	case access.RelShareRead:
		return fmt.Errorf("%w: the customer is shared with you for reading only", access.ErrDenied)
	}
	return fmt.Errorf("%w: only the owner and the owner's superiors may do this", access.ErrDenied)
}

// viewCustomer applies p's field policy to c as reached by rel: hidden
// fields are emptied, masked fields masked, and the names of both listed.
func viewCustomer(p access.Principal, rel access.Relation, c Customer) Customer {
	c.Access = rel.String()
	c.MaskedFields, c.HiddenFields = []string{}, []string{}
	mark := func(field string, l access.Level) {
		switch l {
		case access.Hidden:
			c.HiddenFields = append(c.HiddenFields, field)
		case access.Masked:
			c.MaskedFields = append(c.MaskedFields, field)
		}
	}
	str := func(field string, v *string) {
		l := p.FieldLevel(field, rel)
		switch {
		case l == access.Hidden:
			*v = ""
		case l == access.Masked:
			*v = access.Mask(field, *v)
		}
		mark(field, l)
	}
	list := func(field string, v *[]string) {
		l := p.FieldLevel(field, rel)
		if field == access.FieldTags && l == access.Masked {
			l = access.Hidden // a masked tag tells nothing
		}
		switch l {
		case access.Hidden:
			*v = []string{}
		case access.Masked:
			m := make([]string, len(*v))
			for i, x := range *v {
				m[i] = access.Mask(field, x)
			}
			*v = m
		}
		mark(field, l)
	}
	str(access.FieldName, &c.Name)
	list(access.FieldPhone, &c.Phones)
	list(access.FieldEmail, &c.Emails)
	str(access.FieldAddress, &c.Address)
	str(access.FieldIDNumber, &c.IDNumber)
	str(access.FieldNotes, &c.Notes)
	list(access.FieldTags, &c.Tags)
	c.primaries()
	return c
}

// viewContact applies the same policy to a contact of a customer reached by rel.
func viewContact(p access.Principal, rel access.Relation, c Contact) Contact {
	cv := viewCustomer(p, rel, Customer{Name: c.Name, Phones: c.Phones, Emails: c.Emails, Notes: c.Notes})
	c.Name, c.Phones, c.Emails, c.Notes = cv.Name, cv.Phones, cv.Emails, cv.Notes
	if p.FieldLevel(access.FieldName, rel) < access.Readable {
		c.Title = "" // a job title beside a masked name would narrow it down
	}
	return c
}

// viewInteraction: a summary is free text, governed like notes.
func viewInteraction(p access.Principal, rel access.Relation, it Interaction) Interaction {
	switch p.FieldLevel(access.FieldNotes, rel) {
	case access.Hidden:
		it.Summary = ""
	case access.Masked:
		it.Summary = access.MaskText(it.Summary)
	}
	return it
}

// checkEditable refuses a change to a field p may not edit on a record it
// reaches by rel. On creation (rel full, nothing to read back) a masked
// field may be written: a rep types an ID number they then see masked.
func checkEditable(p access.Principal, rel access.Relation, fields []string, creating bool) error {
	for _, f := range fields {
		pf := policyField(f)
		if pf == "" {
			continue
		}
		l := p.FieldLevel(pf, rel)
		if l == access.Editable || (creating && l >= access.Masked && p.Can(access.Create)) {
			continue
		}
		return fmt.Errorf("%w: field %s is %s for you", access.ErrDenied, pf, l)
	}
	return nil
}

// policyField maps an input field to the field policy governing it.
func policyField(f string) string {
	switch f {
	case "name":
		return access.FieldName
	case "phones":
		return access.FieldPhone
	case "emails":
		return access.FieldEmail
	case "address":
		return access.FieldAddress
	case "id_number":
		return access.FieldIDNumber
	case "title":
		return access.FieldName
	case "notes", "summary":
		return access.FieldNotes
	case "tags":
		return access.FieldTags
	}
	return ""
}
