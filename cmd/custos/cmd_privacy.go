package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/node"
)

func (a *app) privacyCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "privacy", Short: "Erase customers for good (crypto-shredding) and list the erasure ledger",
		Long: `Erasing a customer deletes its record, contacts, interactions, shares and search
terms and destroys every version of its data key, so that what the audit trail
and the backups keep of it (ciphertext under that key) never opens again. The
erasure is entered in the erasure ledger (customer ids and times only), which
restores apply: an erased customer never comes back from an older backup.

See docs/privacy.md.`}
	cmd.AddCommand(a.privacyEraseCmd(), a.privacyLedgerCmd())
	return cmd
}

// eraseOpts are the options of custos privacy erase.
type eraseOpts struct {
	customer string
	as       string
	yes      bool
}

func (a *app) privacyEraseCmd() *cobra.Command {
	var o eraseOpts
	c := &cobra.Command{
		Use:   "erase --customer ID",
		Short: "Erase one customer for good (needs the erase permission); this cannot be undone",
		Long: `Erase one customer for good: its record (live or deleted), contacts,
interactions, shares and search terms are deleted and its data key is
destroyed. The audit trail keeps its events; the values they hold were sealed
under the destroyed key and no longer open. Approved export files holding the
customer are expired. The erasure is an audit event and a ledger entry.

It cannot be undone: give --yes, or confirm on a terminal by typing the id
again. By default the operator at this machine erases (with the
administrator's rights, as "cli:<os user>"); --as EMAIL erases as that user,
who needs the erase permission and full access to the customer.`,
		Example: `  custos privacy erase --data ./data --customer 0190d5c4-7a1e-7c3b-9d2f-5e8a1b2c3d4e --yes`,
		Args:    exactArgs(0),
		RunE:    func(cmd *cobra.Command, _ []string) error { return a.runPrivacyErase(o) },
	}
	f := c.Flags()
	f.StringVar(&o.customer, "customer", "", "the id of the customer to erase")
	f.BoolVar(&o.yes, "yes", false, "erase without asking (it cannot be undone)")
	f.StringVar(&o.as, "as", "", "erase as this user (email); default: the operator at this machine")
	return c
}

func (a *app) runPrivacyErase(o eraseOpts) error {
	id := strings.TrimSpace(o.customer)
	switch {
	case id == "":
		return usageError{errors.New("--customer ID is required: the id of the customer to erase")}
	case !isCustomerID(id):
		return usageError{errors.New("--customer must be a customer id (a UUID such as 0190d5c4-7a1e-7c3b-9d2f-5e8a1b2c3d4e), not a name or a number")}
	}
	if !o.yes {
		if err := a.confirmErase(id); err != nil {
			return err
		}
	}
	return a.withNode(func(n *node.Node) error {
		p, err := a.actingAs(n, o.as)
		if err != nil {
			return err
		}
		switch err := n.CRM.EraseCustomer(a.ctx, p, id); {
		case errors.Is(err, crm.ErrErased):
			return fmt.Errorf("customer %s was already erased: nothing changed", id)
		case errors.Is(err, crm.ErrNotFound):
			return fmt.Errorf("no customer %s (or not one you may see): nothing erased", id)
		case err != nil:
			return err
		}
		fmt.Fprintf(a.stdout, "erased %s\n", id)
		// The ledger goes to the backup destinations at once, so that no
		// restore of an older backup brings the customer back.
		root, err := keys.OpenLocalFile(a.cfg.RootKeyPath())
		if err == nil {
			sched := &backup.Scheduler{DB: n.DB, Root: root, Env: a.env}
			var published bool
			if published, err = sched.PublishLedgerNow(a.ctx); err == nil && published {
				fmt.Fprintln(a.stdout, "the erasure ledger was published to the backup destinations")
			}
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "warning: the erasure ledger was not published to the backup destinations (serve retries every minute): %s\n", oneLine(err.Error()))
		}
		return nil
	})
}

func isCustomerID(s string) bool {
	_, err := uuid.Parse(s)
	return err == nil && len(s) == 36
}

// confirmErase asks on a terminal for the id again; anywhere else --yes is
// required, so a script never erases by accident.
func (a *app) confirmErase(id string) error {
	f, ok := a.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return usageError{errors.New("erasing cannot be undone: add --yes, or run on a terminal to confirm")}
	}
	fmt.Fprintf(a.stderr, "Erase customer %s for good? Its records and data key are destroyed; this cannot be undone.\nType the id again to confirm: ", id)
	line, err := bufio.NewReader(io.LimitReader(f, 256)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(line) != id {
		return errors.New("not confirmed: nothing was erased")
	}
	return nil
}

func (a *app) privacyLedgerCmd() *cobra.Command {
	var asJSON bool
	c := &cobra.Command{
		Use:   "ledger",
		Short: "List the erasure ledger: erased customer ids and when, oldest first",
		Long: `List the erasure ledger: the ids of the erased customers and when they were
erased, oldest first. It holds no personal data. Restores apply it, so that an
erased customer never comes back from an older backup (see docs/backup.md).`,
		Example: `  custos privacy ledger --data ./data
  custos privacy ledger --data ./data --json`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runPrivacyLedger(asJSON) },
	}
	c.Flags().BoolVar(&asJSON, "json", false, `print {"items": [{"customer_id": ..., "erased_at": ...}]}`)
	return c
}

func (a *app) runPrivacyLedger(asJSON bool) error {
	return a.withNode(func(n *node.Node) error {
		l, err := n.CRM.ErasureLedger(a.ctx, operator())
		if err != nil {
			return err
		}
		if asJSON {
			return writeJSONTo(a.stdout, crm.Page[crm.Erasure]{Items: l})
		}
		tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "CUSTOMER\tERASED AT")
		for _, e := range l {
			fmt.Fprintf(tw, "%s\t%s\n", e.CustomerID, e.ErasedAt.Format(time.RFC3339))
		}
		return tw.Flush()
	})
}
