package main

import (
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/node"
)

func (a *app) exportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "export", Short: "Export records to files"}
	var out, as string
	var lq crm.ListQuery
	customers := &cobra.Command{
		Use:   "customers",
		Short: "Export customers to CSV (needs the export permission)",
		Long: `Export customers to CSV (UTF-8 with BOM, so Excel shows Chinese correctly; cells
that a spreadsheet would run as formulas are neutralized). The export is recorded
in the audit trail.

By default the export runs as the operator at this machine, who holds the
administrator's rights. --as EMAIL runs it with that user's permissions and
visibility instead: a user without the export permission is refused.`,
		Example: `  custos export customers --data ./data --out customers.csv
  custos export customers --status active --as manager@example.com > active.csv`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			p := operator()
			if as != "" {
				if p, err = principalOf(a, n, as); err != nil {
					return err
				}
			}
			var w io.Writer = a.stdout
			if out != "" {
				f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("create %s: %w (it must not exist yet)", out, err)
				}
				defer f.Close()
				w = f
			}
			users, err := n.Auth.ListUsers(a.ctx)
			if err != nil {
				return err
			}
			owners := map[string]string{}
			for _, u := range users {
				owners[u.ID] = u.Email
			}
			bar := a.newProgress(-1, "exporting")
			cw := csvio.NewWriter(w, true)
			if err := cw.Write(customercsv.Columns); err != nil {
				return err
			}
			count, err := n.CRM.ExportCustomers(a.ctx, p, lq, func(c crm.Customer) error {
				bar.add(1)
				return cw.Write(customercsv.Record(c, owners))
			})
			bar.done()
			if err != nil {
				if out != "" {
					_ = os.Remove(out)
				}
				return err
			}
			if err := cw.Flush(); err != nil {
				return err
			}
			if out != "" {
				fmt.Fprintf(a.stderr, "exported %d customers to %s\n", count, out)
			}
			return nil
		},
	}
	f := customers.Flags()
	f.StringVar(&out, "out", "", "write to this new file (mode 0600) instead of standard output")
	f.StringVar(&as, "as", "", "run with the permissions and visibility of this user (email)")
	f.StringVar(&lq.Q, "q", "", "only customers matching this search")
	f.StringVar(&lq.Status, "status", "", "only this status")
	f.StringVar(&lq.Level, "level", "", "only this level")
	f.StringVar(&lq.Kind, "kind", "", "only company or person")
	f.StringVar(&lq.Tag, "tag", "", "only customers with this tag")
	cmd.AddCommand(customers)
	return cmd
}

// principalOf acts as a user from the command line (their role and scope).
func principalOf(a *app, n *node.Node, email string) (access.Principal, error) {
	u, err := n.Auth.FindUserByEmail(a.ctx, email)
	if err != nil {
		return access.Principal{}, err
	}
	if u.Disabled {
		return access.Principal{}, fmt.Errorf("user %s is disabled", u.Email)
	}
	return n.CRM.Principal(a.ctx, access.Subject{UserID: u.ID, Actor: operator().Actor + " as user:" + u.ID, Role: u.Role})
}
