package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/demo"
)

// demoUsers are created by `custos demo` so the data has owners.
var demoUsers = []struct{ email, name, role string }{
	{"manager@demo.custos.local", "王经理", "manager"},
	{"sales1@demo.custos.local", "李雷", "sales"},
	{"sales2@demo.custos.local", "Emily Carter", "sales"},
	{"support@demo.custos.local", "韩梅梅", "support"},
}

func (a *app) demoCmd() *cobra.Command {
	var count int
	var seed uint64
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Fill a data directory with a realistic demo dataset",
		Long: `Fill a data directory (initializing it when needed) with demo users and a
realistic mixed Chinese/English dataset of customers, contacts and interactions,
for trying Custos and for benchmarks. Everything goes through the same encrypted,
audited path as real data.

Demo users (manager, sales1, sales2, support @demo.custos.local) get the password
in CUSTOS_DEMO_PASSWORD, or a generated one printed once.`,
		Example: `  custos demo --data ./demo --customers 1000`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if count < 1 || count > 1_000_000 {
				return usageError{errors.New("--customers must be between 1 and 1000000")}
			}
			n, err := a.open(true)
			if err != nil {
				return err
			}
			defer n.Close()
			fa, err := n.EnsureFirstAdmin(a.ctx, operator().Actor, a.env.get("CUSTOS_ADMIN_EMAIL"), a.env.get("CUSTOS_ADMIN_PASSWORD"))
			if err != nil {
				return err
			}
			printFirstAdmin(a.stdout, fa, "http://"+a.cfg.Addr, a.cfg.DataDir)
			pw := a.env.get("CUSTOS_DEMO_PASSWORD")
			generated := false
			var owners []string
			for _, du := range demoUsers {
				u, err := n.Auth.FindUserByEmail(a.ctx, du.email)
				if errors.Is(err, auth.ErrNotFound) {
					if pw == "" {
						if pw, err = auth.GeneratePassword(); err != nil {
							return err
						}
						generated = true
					}
					u, err = n.Auth.CreateUser(a.ctx, audit.Event{Actor: operator().Actor}, auth.NewUser{Email: du.email, Name: du.name, Role: du.role, Password: pw})
				}
				if err != nil {
					return err
				}
				if du.role == "sales" {
					owners = append(owners, u.ID)
				}
			}
			if generated {
				fmt.Fprintf(a.stdout, "Demo users %s, %s, %s, %s have the password: %s (shown only now)\n",
					demoUsers[0].email, demoUsers[1].email, demoUsers[2].email, demoUsers[3].email, pw)
			}
			g := demo.New(seed, time.Now())
			bar := a.newProgress(count, "generating")
			start := time.Now()
			const batch = 500
			done := 0
			for done < count {
				k := min(batch, count-done)
				rows := make([]crm.ImportRow, k)
				for i := range rows {
					rows[i] = demoRow(g.Customer(), done+i+1, owners)
				}
				res, err := n.CRM.ImportCustomers(a.ctx, operator(), rows, nil, crm.ImportOptions{})
				if err != nil {
					return err
				}
				if len(res.Errors) > 0 {
					return fmt.Errorf("demo data rejected: %s", res.Errors[0].Error())
				}
				done += k
				bar.set(done)
			}
			bar.done()
			el := time.Since(start)
			fmt.Fprintf(a.stdout, "created %d demo customers in %s (%.0f/s)\n", count, el.Round(time.Millisecond), float64(count)/el.Seconds())
			return nil
		},
	}
	cmd.Flags().IntVar(&count, "customers", 100, "how many customers to create")
	cmd.Flags().Uint64Var(&seed, "seed", 1, "random seed (the same seed gives the same data)")
	return cmd
}

// demoRow turns a generated customer into an import row; every 10th customer
// goes to the public pool, the rest to the sales users in turn.
func demoRow(c demo.Customer, i int, owners []string) crm.ImportRow {
	s := func(v string) *string { return &v }
	l := func(v []string) *[]string { return &v }
	owner := ""
	if i%10 != 0 && len(owners) > 0 {
		owner = owners[i%len(owners)]
	}
	row := crm.ImportRow{Line: i, Fields: crm.CustomerFields{
		Kind: s(c.Kind), Name: s(c.Name), Phones: l(c.Phones), Emails: l(c.Emails), Address: s(c.Address), IDNumber: s(c.IDNumber),
		Industry: s(c.Industry), Level: s(c.Level), Source: s(c.Source), Status: s(c.Status), Tags: l(c.Tags), Notes: s(c.Notes), OwnerID: s(owner),
	}}
	for _, ct := range c.Contacts {
		row.Contacts = append(row.Contacts, crm.ContactFields{Name: s(ct.Name), Title: s(ct.Title), Phones: l(ct.Phones), Emails: l(ct.Emails), Notes: s(ct.Notes)})
	}
	for _, it := range c.Interactions {
		at := it.At
		f := crm.InteractionFields{Kind: s(it.Kind), OccurredAt: &at, Summary: s(it.Summary)}
		if !it.NextFollowUp.IsZero() {
			f.NextFollowUp = s(it.NextFollowUp.Format(time.DateOnly))
		}
		row.Interactions = append(row.Interactions, f)
	}
	return row
}
