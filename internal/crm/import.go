package crm

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// ImportRow is one customer to import, with the line it came from.
type ImportRow struct {
	Line         int
	Fields       CustomerFields
	Contacts     []ContactFields
	Interactions []InteractionFields
}

// RowError is an import row that was refused. Msg never holds a value.
type RowError struct {
	Line int    `json:"line"`
	Msg  string `json:"message"`
}

func (e RowError) Error() string { return fmt.Sprintf("line %d: %s", e.Line, e.Msg) }

// ImportResult summarizes an import.
type ImportResult struct {
	Rows     int        `json:"rows"`
	Imported int        `json:"imported"`
	Errors   []RowError `json:"errors"`
}

// ImportOptions control an import.
type ImportOptions struct {
	// Atomic imports every row or none: one invalid row stops the import.
	Atomic bool
	// Progress, if set, is called with the number of rows written so far.
	Progress func(done int)
}

const importBatch = 200

// ImportCustomers validates every row first, then writes the valid ones in
// batches (or, when atomic, all in one transaction only if all are valid).
// Extra row errors from the caller's parsing can be passed in parseErrs so
// they count against an atomic import.
func (s *Service) ImportCustomers(ctx context.Context, p access.Principal, rows []ImportRow, parseErrs []RowError, o ImportOptions) (ImportResult, error) {
	const action = "customer.import"
	res := ImportResult{Rows: len(rows) + len(parseErrs), Errors: append([]RowError{}, parseErrs...)}
	if err := access.Require(p, access.Import); err != nil {
		return res, s.deny(ctx, p, action, "customer", "", err)
	}
	if err := access.Require(p, access.Create); err != nil {
		return res, s.deny(ctx, p, action, "customer", "", err)
	}
	now := s.now().UTC()
	valid := s.validateImport(p, rows, &res, now)
	// Owners must be active users: checked here, so a row naming a disabled
	// one is reported with its line instead of failing a whole batch later.
	valid, err := s.checkImportOwners(ctx, p, valid, &res)
	if err != nil {
		return res, err
	}
	if o.Atomic && len(res.Errors) > 0 {
		return res, s.recordImport(ctx, p, res, "atomic import refused: invalid rows")
	}
	batch := importBatch
	if o.Atomic {
		batch = len(valid)
	}
	for start := 0; start < len(valid); start += batch {
		end := min(start+batch, len(valid))
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			for _, b := range valid[start:end] {
				if b.customer.OwnerID != p.UserID {
					if err := s.checkAssignee(ctx, tx, p, b.customer.OwnerID); err != nil {
						return err
					}
				}
				if err := s.insertBundle(ctx, tx, p, b, now); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			_ = s.recordImport(context.WithoutCancel(ctx), p, res, "import failed")
			return res, mapStoreErr(err)
		}
		res.Imported = end
		if o.Progress != nil {
			o.Progress(end)
		}
	}
	return res, s.recordImport(ctx, p, res, "")
}

// recordImport records the outcome; failure is "" for success, else why.
func (s *Service) recordImport(ctx context.Context, p access.Principal, res ImportResult, failure string) error {
	ev := event(p, "customer.import", "customer", "")
	ev.Details = map[string]any{"rows": res.Rows, "imported": res.Imported, "errors": len(res.Errors), "aborted": failure != ""}
	if failure != "" {
		ev.Outcome, ev.Reason = audit.Failed, failure
	}
	return audit.RecordAlone(ctx, s.db, s.now(), ev)
}

// checkImportOwners drops the rows whose owner is not an active user,
// reporting each with its line.
func (s *Service) checkImportOwners(ctx context.Context, p access.Principal, rows []bundle, res *ImportResult) ([]bundle, error) {
	bad := map[string]error{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		for _, b := range rows {
			id := b.customer.OwnerID
			if _, seen := bad[id]; seen || id == "" || id == p.UserID {
				continue
			}
			err := s.checkAssigneeIn(ctx, tx, p, id, false) // a read transaction: checked again when written
			var ve *ValidationError
			if err != nil && !errors.As(err, &ve) && !errors.Is(err, access.ErrDenied) {
				return err
			}
			bad[id] = err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, b := range rows {
		if e := bad[b.customer.OwnerID]; e != nil {
			res.Errors = append(res.Errors, RowError{Line: b.line, Msg: shortErr(e)})
			continue
		}
		out = append(out, b)
	}
	return out, nil
}

// shortErr renders a validation error for one line of a report.
func shortErr(err error) string {
	var ve *ValidationError
	if !errors.As(err, &ve) {
		return err.Error()
	}
	s := ""
	for i, f := range ve.Fields {
		if i > 0 {
			s += "; "
		}
		s += f.Field + ": " + f.Message
	}
	return s
}

// bundle is a customer with the contacts and interactions imported with it.
type bundle struct {
	line         int
	customer     Customer
	contacts     []Contact
	interactions []Interaction
}

func (s *Service) applyBundle(b *bundle, r ImportRow, p access.Principal, now time.Time) error {
	for i, in := range r.Contacts {
		var c Contact
		set, err := applyContact(&c, in, true)
		if err != nil {
			return fmt.Errorf("contact %d: %s", i+1, shortErr(err))
		}
		if err := checkEditable(p, access.RelFull, set, true); err != nil {
			return fmt.Errorf("contact %d: %v", i+1, err)
		}
		c.ID, c.CreatedAt, c.UpdatedAt, c.Version = newID(), now, now, 1
		b.contacts = append(b.contacts, c)
	}
	for i, in := range r.Interactions {
		var it Interaction
		if _, err := s.applyInteraction(&it, in, true); err != nil {
			return fmt.Errorf("interaction %d: %s", i+1, shortErr(err))
		}
		if err := checkEditable(p, access.RelFull, []string{"summary"}, true); err != nil {
			return fmt.Errorf("interaction %d: %v", i+1, err)
		}
		it.ID, it.CreatedBy, it.CreatedAt, it.UpdatedAt, it.Version = newID(), p.Actor, now, now, 1
		b.interactions = append(b.interactions, it)
	}
	return nil
}

func (s *Service) insertBundle(ctx context.Context, tx *store.Tx, p access.Principal, b bundle, now time.Time) error {
	c := b.customer
	if err := s.insertCustomer(ctx, tx, p, c, now); err != nil {
		return err
	}
	if len(b.contacts) == 0 && len(b.interactions) == 0 {
		return nil
	}
	row, err := tx.GetCustomer(ctx, store.Scope{All: true}, c.ID)
	if err != nil {
		return err
	}
	// The contacts and interactions imported with the customer: their ids
	// readable, their values sealed under the customer's key.
	contactIDs, interactionIDs := []string{}, []string{}
	var sealed []map[string]any
	var dk seal.Key
	for _, ct := range b.contacts {
		ct.CustomerID = c.ID
		if dk, err = s.writeContact(ctx, tx, row, ct, true, 1); err != nil {
			return err
		}
		contactIDs = append(contactIDs, ct.ID)
		sealed = append(sealed, recordValues("contact", ct.ID, contactFields(ct), contactValues(ct)))
	}
	for _, it := range b.interactions {
		it.CustomerID = c.ID
		if dk, err = s.writeInteraction(ctx, tx, row, it, true, 1); err != nil {
			return err
		}
		interactionIDs = append(interactionIDs, it.ID)
		sealed = append(sealed, recordValues("interaction", it.ID, interactionFields(it), interactionValues(it)))
	}
	ev := event(p, "customer.import_related", "customer", c.ID)
	ev.Details = map[string]any{"contacts": len(b.contacts), "interactions": len(b.interactions),
		"contact_ids": contactIDs, "interaction_ids": interactionIDs}
	box, err := audit.Seal(s.cipher, dk, c.ID, map[string]any{"records": sealed})
	if err != nil {
		return err
	}
	ev.Details["personal"] = box
	_, err = audit.Record(ctx, tx, now, ev)
	return err
}

// recordValues is one imported record's values for a sealed box.
func recordValues(kind, id string, fields []string, v values) map[string]any {
	m := map[string]any{"type": kind, "id": id}
	for _, f := range fields {
		m[f] = v(f)
	}
	return m
}
