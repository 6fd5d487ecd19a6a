package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
)

func newUser(email, name, role, pw string) auth.NewUser {
	return auth.NewUser{Email: email, Name: name, Role: role, Password: pw}
}

func (a *app) tokenCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "token", Short: "Manage API tokens"}
	var userEmail, name string
	var ttl time.Duration
	create := &cobra.Command{
		Use:   "create",
		Short: "Create an API token for a user; prints only the token",
		Long: `Create an API token for a user and print only the token on standard output, so
scripts can capture it. The token is shown once; Custos keeps only its hash.
Use it as: Authorization: Bearer <token>.`,
		Example: `  TOKEN=$(custos token create --data ./data --user li.lei@example.com --name crm-sync --ttl 24h)`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if ttl < 0 {
				return usageError{fmt.Errorf("--ttl must be positive")}
			}
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			u, err := n.Auth.FindUserByEmail(a.ctx, userEmail)
			if err != nil {
				return err
			}
			secret, _, err := n.Auth.CreateToken(a.ctx, audit.Event{Actor: operator().Actor}, u.ID, name, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(a.stdout, secret)
			return nil
		},
	}
	create.Flags().StringVar(&userEmail, "user", "", "email of the user the token acts as (required)")
	create.Flags().StringVar(&name, "name", "", "a name to recognize the token by (required)")
	create.Flags().DurationVar(&ttl, "ttl", 0, "lifetime, e.g. 24h or 720h (default and maximum: 365 days)")
	_ = create.MarkFlagRequired("user")
	_ = create.MarkFlagRequired("name")

	var listUser string
	list := &cobra.Command{
		Use:   "list",
		Short: "List a user's API tokens (never the secrets)",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			u, err := n.Auth.FindUserByEmail(a.ctx, listUser)
			if err != nil {
				return err
			}
			ts, err := n.Auth.ListTokens(a.ctx, u.ID)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tCREATED\tEXPIRES\tSTATE")
			for _, t := range ts {
				state := "active"
				switch {
				case t.RevokedAt != nil:
					state = "revoked"
				case t.ExpiresAt != nil && time.Now().After(*t.ExpiresAt):
					state = "expired"
				}
				exp := "-"
				if t.ExpiresAt != nil {
					exp = t.ExpiresAt.Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, t.CreatedAt.Format(time.RFC3339), exp, state)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&listUser, "user", "", "email of the user (required)")
	_ = list.MarkFlagRequired("user")

	revoke := &cobra.Command{
		Use:   "revoke TOKEN-ID",
		Short: "Revoke an API token by its id (see token list)",
		Args:  exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			if err := n.Auth.RevokeToken(a.ctx, audit.Event{Actor: operator().Actor}, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "revoked token %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}
