package crm

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// patch applies input fields to a record: each value is validated, errors
// are collected per field, and the names of the fields that changed are kept
// for the audit event.
type patch struct {
	fieldErrs
	changed []string
}

// name sets a required display name.
func (p *patch) name(dst, src *string, creating bool) {
	if src == nil {
		if creating {
			p.addf("name", "is required")
		}
		return
	}
	n, err := normalize.Name(*src)
	if err != nil {
		p.add("name", err)
		return
	}
	p.set("name", dst, n)
}

// str sets an optional value: "" clears it, anything else must pass fn.
func (p *patch) str(field string, dst, src *string, fn func(string) (string, error)) {
	if src == nil {
		return
	}
	v := strings.TrimSpace(*src)
	if v != "" {
		var err error
		if v, err = fn(v); err != nil {
			p.add(field, err)
			return
		}
	}
	p.set(field, dst, v)
}

func (p *patch) set(field string, dst *string, v string) {
	if v != *dst {
		*dst = v
		p.changed = append(p.changed, field)
	}
}

// list sets a list of at most max values, each passing fn, without duplicates.
func (p *patch) list(field string, dst, src *[]string, max int, fn func(string) (string, error)) {
	if src == nil {
		return
	}
	if len(*src) > max {
		p.addf(field, "at most %d values", max)
		return
	}
	out := make([]string, 0, len(*src))
	for i, v := range *src {
		n, err := fn(v)
		if err != nil {
			p.addf(fmt.Sprintf("%s[%d]", field, i), "%v", err)
			continue
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	if !slices.Equal(out, *dst) {
		*dst = out
		p.changed = append(p.changed, field)
	}
}

func text(max int) func(string) (string, error) {
	return func(v string) (string, error) { return normalize.Text(v, max) }
}

func nonNil(l *[]string) {
	if *l == nil {
		*l = []string{}
	}
}

// softDelete is the guarded path of every delete: permission, then del
// (which must reach the record and may refuse, and adds what it knows of the
// record to the event), then the audit event, in one transaction.
func (s *Service) softDelete(ctx context.Context, p access.Principal, action, objType, id string,
	del func(tx *store.Tx, now time.Time, ev *audit.Event) error) error {
	if err := access.Require(p, access.Delete); err != nil {
		return s.deny(ctx, p, action, objType, id, err)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		ev := event(p, action, objType, id)
		if err := del(tx, now, &ev); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound):
		return s.deny(ctx, p, action, objType, id, ErrNotFound)
	case errors.Is(err, access.ErrDenied):
		return s.deny(ctx, p, action, objType, id, err)
	}
	return mapStoreErr(err)
}

// --- personal values in audit events ---------------------------------------

// change is the old and new value of one field as an event keeps it, sealed:
// Old is absent on creation, New on deletion.
type change struct {
	Old any `json:"old,omitempty"`
	New any `json:"new,omitempty"`
}

// values reads a record's fields by name, for the audit trail.
type values func(field string) any

// sealChanges records fields in ev: their names readable in details
// ("fields"), their old and new values (before and after; nil when the record
// did not exist before or does not after) sealed under the data key dk of
// customer customerID in details "personal". Erasing the customer (its key)
// erases them from the trail too.
func (s *Service) sealChanges(ev *audit.Event, dk seal.Key, customerID string, fields []string, before, after values) error {
	if ev.Details == nil {
		ev.Details = map[string]any{}
	}
	if fields == nil {
		fields = []string{}
	}
	ev.Details["fields"] = fields
	if len(fields) == 0 {
		return nil
	}
	box := make(map[string]any, len(fields))
	for _, f := range fields {
		var ch change
		if before != nil {
			ch.Old = before(f)
		}
		if after != nil {
			ch.New = after(f)
		}
		box[f] = ch
	}
	sealed, err := audit.Seal(s.cipher, dk, customerID, box)
	if err != nil {
		return err
	}
	ev.Details["personal"] = sealed
	return nil
}

// customerValues reads the fields applyCustomer changes.
func customerValues(c Customer) values {
	return func(f string) any {
		switch f {
		case "name":
			return c.Name
		case "kind":
			return c.Kind
		case "phones":
			return c.Phones
		case "emails":
			return c.Emails
		case "tags":
			return c.Tags
		case "address":
			return c.Address
		case "id_number":
			return c.IDNumber
		case "industry":
			return c.Industry
		case "level":
			return c.Level
		case "source":
			return c.Source
		case "status":
			return c.Status
		case "notes":
			return c.Notes
		}
		return nil
	}
}

// contactValues reads the fields applyContact changes.
func contactValues(c Contact) values {
	return func(f string) any {
		switch f {
		case "name":
			return c.Name
		case "title":
			return c.Title
		case "phones":
			return c.Phones
		case "emails":
			return c.Emails
		case "notes":
			return c.Notes
		}
		return nil
	}
}

// contactFields names the fields of a contact that hold a value.
func contactFields(c Contact) []string {
	var f []string
	for _, x := range []struct {
		name string
		set  bool
	}{{"name", c.Name != ""}, {"title", c.Title != ""}, {"phones", len(c.Phones) > 0}, {"emails", len(c.Emails) > 0}, {"notes", c.Notes != ""}} {
		if x.set {
			f = append(f, x.name)
		}
	}
	return f
}

// interactionValues reads the fields applyInteraction changes.
func interactionValues(it Interaction) values {
	return func(f string) any {
		switch f {
		case "kind":
			return it.Kind
		case "summary":
			return it.Summary
		case "occurred_at":
			return it.OccurredAt
		case "next_follow_up":
			return it.NextFollowUp
		case "contact_id":
			return it.ContactID
		}
		return nil
	}
}

// interactionFields names the fields of an interaction that hold a value.
func interactionFields(it Interaction) []string {
	f := []string{"kind", "summary", "occurred_at"}
	if it.NextFollowUp != "" {
		f = append(f, "next_follow_up")
	}
	if it.ContactID != "" {
		f = append(f, "contact_id")
	}
	return f
}
