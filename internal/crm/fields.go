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
// (which must reach the record and may refuse), then the audit event, in one
// transaction.
func (s *Service) softDelete(ctx context.Context, p access.Principal, action, objType, id string,
	del func(tx *store.Tx, now time.Time) error) error {
	if err := access.Require(p, access.Delete); err != nil {
		return s.deny(ctx, p, action, objType, id, err)
	}
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := del(tx, now); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, now, event(p, action, objType, id))
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
