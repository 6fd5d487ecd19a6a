package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/auth"
	"github.com/custos/custos/internal/node"
)

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage users (employees who log in)"}
	var email, role, name string
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a user; the password is read from standard input",
		Long: `Add a user. The password is read from standard input (asked twice without echo
on a terminal; otherwise the first line of the input). It must have at least 12
characters. Roles: see custos role list (templates: admin, security_officer,
auditor, sales_director, manager, sales, support, finance).`,
		Example: `  printf '%s\n' "$PASSWORD" | custos user add --data ./data --email li.lei@example.com --role sales --name "李雷"`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pw, err := a.readSecret("password")
			if err != nil {
				return err
			}
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			u, err := n.Auth.CreateUser(a.ctx, audit.Event{Actor: operator().Actor}, newUser(email, name, role, pw))
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "added user %s (%s, role %s)\n", u.Email, u.ID, u.Role)
			return nil
		},
	}
	add.Flags().StringVar(&email, "email", "", "email address, used to log in (required)")
	add.Flags().StringVar(&role, "role", "", "role, e.g. sales, manager, support (see custos role list) (required)")
	add.Flags().StringVar(&name, "name", "", "display name (required)")
	for _, f := range []string{"email", "role", "name"} {
		_ = add.MarkFlagRequired(f)
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			users, err := n.Auth.ListUsers(a.ctx)
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEMAIL\tNAME\tROLE\tSTATE")
			for _, u := range users {
				state := "active"
				if u.Disabled {
					state = "disabled"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Name, u.Role, state)
			}
			return tw.Flush()
		},
	}
	// byEmail builds a command acting on one user, named by --email (or, as
	// first documented, a positional EMAIL). It works while the server runs.
	byEmail := func(use, short string, act func(n *node.Node, u auth.User) error) *cobra.Command {
		var email string
		c := &cobra.Command{
			Use:   use + " --email EMAIL",
			Short: short,
			Args: func(cmd *cobra.Command, args []string) error {
				switch {
				case len(args) == 1 && email == "":
					email = args[0]
				case len(args) > 0:
					return usageError{fmt.Errorf("%s takes the user as --email EMAIL", cmd.CommandPath())}
				case email == "":
					return usageError{fmt.Errorf("%s needs --email EMAIL", cmd.CommandPath())}
				}
				return nil
			},
			RunE: func(cmd *cobra.Command, args []string) error {
				n, err := a.open(false)
				if err != nil {
					return err
				}
				defer n.Close()
				u, err := n.Auth.FindUserByEmail(a.ctx, email)
				if err != nil {
					return err
				}
				return act(n, u)
			},
		}
		c.Flags().StringVar(&email, "email", "", "the user's email")
		return c
	}
	setState := func(use, short string, disabled bool) *cobra.Command {
		return byEmail(use, short, func(n *node.Node, u auth.User) error {
			if err := n.Auth.SetDisabled(a.ctx, audit.Event{Actor: operator().Actor}, u.ID, disabled); err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "%sd user %s\n", use, u.Email)
			return nil
		})
	}
	reset := byEmail("reset-password", "Set a new password (read from stdin) that the user must change at the next login", func(n *node.Node, u auth.User) error {
		pw, err := a.readSecret("new password")
		if err != nil {
			return err
		}
		if err := n.Auth.ResetPassword(a.ctx, audit.Event{Actor: operator().Actor}, u.ID, pw); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "reset the password of %s: it must be changed at the next login; their sessions ended\n", u.Email)
		return nil
	})
	unlock := byEmail("unlock", "Clear a user's failed-login lock", func(n *node.Node, u auth.User) error {
		if err := n.Auth.Unlock(a.ctx, audit.Event{Actor: operator().Actor}, u.ID); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "unlocked user %s\n", u.Email)
		return nil
	})
	var to string
	var toPool bool
	offboard := &cobra.Command{
		Use:   "offboard EMAIL (--to EMAIL | --to-pool)",
		Short: "Hand over a departing user's customers and lock them out, in one transaction",
		Long: `Offboard a departing user in one transaction: disable the account, end every
session, revoke every API token, move every customer they own to the successor
(--to) or the public pool (--to-pool), and revoke the shares and grants given
to them. A crash at any point leaves all of it done or none of it.`,
		Example: `  custos user offboard --data ./data li.lei@example.com --to han.meimei@example.com`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (to == "") == !toPool {
				return usageError{fmt.Errorf("give exactly one of --to EMAIL and --to-pool")}
			}
			n, err := a.open(false)
			if err != nil {
				return err
			}
			defer n.Close()
			u, err := n.Auth.FindUserByEmail(a.ctx, args[0])
			if err != nil {
				return err
			}
			successor := ""
			if to != "" {
				su, err := n.Auth.FindUserByEmail(a.ctx, to)
				if err != nil {
					return fmt.Errorf("successor %s: %w", to, err)
				}
				successor = su.ID
			}
			rep, err := n.CRM.Offboard(a.ctx, operator(), u.ID, successor, toPool)
			if err != nil {
				return err
			}
			dest := to
			if toPool {
				dest = "the public pool"
			}
			fmt.Fprintf(a.stdout, "offboarded %s: %d customers to %s; %d sessions ended, %d tokens revoked, %d shares and %d grants revoked\n",
				u.Email, rep.Customers, dest, rep.SessionsEnded, rep.TokensRevoked, rep.SharesRevoked, rep.GrantsRevoked)
			return nil
		},
	}
	offboard.Flags().StringVar(&to, "to", "", "the successor's email")
	offboard.Flags().BoolVar(&toPool, "to-pool", false, "put the customers into the public pool")
	var newRole string
	setRole := byEmail("set-role", "Move a user to another role (a change of post); it applies from their next request", func(n *node.Node, u auth.User) error {
		if newRole == "" {
			return usageError{fmt.Errorf("set-role needs --role ROLE")}
		}
		if err := n.CRM.SetUserRole(a.ctx, operator(), u.ID, newRole); err != nil {
			return err
		}
		fmt.Fprintf(a.stdout, "user %s now has role %s\n", u.Email, newRole)
		return nil
	})
	setRole.Flags().StringVar(&newRole, "role", "", "the new role")
	cmd.AddCommand(offboard, setRole)
	cmd.AddCommand(add, list,
		setState("disable", "Disable a user: ends their sessions and revokes their API tokens at once", true),
		setState("enable", "Enable a disabled user", false), unlock, reset)
	return cmd
}
