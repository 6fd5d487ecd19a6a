package customercsv

import (
	"strings"

	"github.com/custos/custos/internal/crm"
)

// Columns are the CSV columns of an export: the import's canonical column
// names, so an export imports back.
var Columns = []string{"name", "kind", "phone", "email", "address", "id_number", "industry", "level", "source", "status", "tags", "owner", "notes"}

// Record renders one customer as a CSV record; owners maps owner ids to
// emails. Cells still go through csvio's formula-injection guard when written.
func Record(c crm.Customer, owners map[string]string) []string {
	return []string{c.Name, c.Kind, strings.Join(c.Phones, "; "), strings.Join(c.Emails, "; "), c.Address, c.IDNumber,
		c.Industry, c.Level, c.Source, c.Status, strings.Join(c.Tags, "; "), owners[c.OwnerID], c.Notes}
}
