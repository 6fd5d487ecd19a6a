package crm

import (
	"context"
	"fmt"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/store"
)

// SeedCustomersForTest stores customers owned by p the quick way, for tests
// that need many rows: validated, sealed under their own data keys and owned
// like CreateCustomer's, without an audit event or search terms each (the
// first customer gets its terms, so tests can find it). Only tests can call
// it.
func (s *Service) SeedCustomersForTest(ctx context.Context, p access.Principal, in []CustomerFields) error {
	now := s.now().UTC()
	for start := 0; start < len(in); start += 500 {
		err := s.db.Write(ctx, func(tx *store.Tx) error {
			for i := start; i < min(start+500, len(in)); i++ {
				var c Customer
				if _, err := applyCustomer(&c, in[i], true); err != nil {
					return fmt.Errorf("seed %d: %w", i, err)
				}
				c.ID, c.OwnerID, c.CreatedBy, c.CreatedAt, c.UpdatedAt, c.Version, c.LastActivityAt = newID(), p.UserID, p.Actor, now, now, 1, now
				dk, err := s.keys.NewDataKey(ctx, tx, c.ID)
				if err != nil {
					return err
				}
				row, err := s.sealCustomer(dk, c)
				if err != nil {
					return err
				}
				if err := tx.InsertCustomer(ctx, row); err != nil {
					return err
				}
				if i == 0 {
					if err := tx.ReplaceTerms(ctx, c.ID, "customer", s.customerTerms(c)); err != nil {
						return err
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}
