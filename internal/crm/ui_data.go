package crm

import (
	"context"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
)

// ImportCheck is the outcome of a dry run of an import: how many rows the
// file has and which would be refused, with the same row errors as
// ImportCustomers (never a value).
type ImportCheck struct {
	Rows   int        `json:"rows"`
	Valid  int        `json:"valid"`
	Errors []RowError `json:"errors"`
}

// CheckImport validates rows exactly as ImportCustomers does before it
// writes (the permissions, each row's fields and field policy, its contacts
// and interactions, the owner rule, owners that are active users) and
// writes nothing but its audit event (customer.import_check, counts only).
// The web pages show it as the preview of an upload. A row that passes can
// still be refused when written, if an owner is disabled meanwhile.
func (s *Service) CheckImport(ctx context.Context, p access.Principal, rows []ImportRow, parseErrs []RowError) (ImportCheck, error) {
	const action = "customer.import_check"
	res := ImportResult{Rows: len(rows) + len(parseErrs), Errors: append([]RowError{}, parseErrs...)}
	out := ImportCheck{Rows: res.Rows}
	if err := access.Require(p, access.Import); err != nil {
		return out, s.deny(ctx, p, action, "customer", "", err)
	}
	if err := access.Require(p, access.Create); err != nil {
		return out, s.deny(ctx, p, action, "customer", "", err)
	}
	valid := s.validateImport(p, rows, &res, s.now().UTC())
	valid, err := s.checkImportOwners(ctx, p, valid, &res)
	if err != nil {
		return out, err
	}
	out.Valid, out.Errors = len(valid), res.Errors
	ev := event(p, action, "customer", "")
	ev.Details = map[string]any{"rows": out.Rows, "valid": out.Valid, "errors": len(out.Errors)}
	return out, audit.RecordAlone(ctx, s.db, s.now(), ev)
}

// validateImport is the row loop of ImportCustomers (import.go): it
// returns the rows that pass, as bundles ready to insert (stamped now), and
// appends the others to res.Errors. ImportCustomers calls it too, so the
// preview and the import cannot disagree (TestCheckImportMatchesImport).
func (s *Service) validateImport(p access.Principal, rows []ImportRow, res *ImportResult, now time.Time) []bundle {
	var valid []bundle
	for _, r := range rows {
		b := bundle{line: r.Line}
		c := &b.customer
		set, err := applyCustomer(c, r.Fields, true)
		if err != nil {
			res.Errors = append(res.Errors, RowError{Line: r.Line, Msg: shortErr(err)})
			continue
		}
		if err := checkEditable(p, access.RelFull, set, true); err != nil {
			res.Errors = append(res.Errors, RowError{Line: r.Line, Msg: err.Error()})
			continue
		}
		if err := s.applyBundle(&b, r, p, now); err != nil {
			res.Errors = append(res.Errors, RowError{Line: r.Line, Msg: shortErr(err)})
			continue
		}
		owner, err := access.OwnerOnCreate(p, deref(r.Fields.OwnerID), r.Fields.OwnerID != nil)
		if err != nil {
			res.Errors = append(res.Errors, RowError{Line: r.Line, Msg: "owner: " + err.Error()})
			continue
		}
		c.ID, c.OwnerID, c.CreatedBy, c.CreatedAt, c.UpdatedAt, c.Version = newID(), owner, p.Actor, now, now, 1
		valid = append(valid, b)
	}
	return valid
}
