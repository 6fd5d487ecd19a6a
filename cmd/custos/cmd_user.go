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
characters. Roles: admin, manager, sales, support.`,
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
	add.Flags().StringVar(&role, "role", "", "role: admin, manager, sales or support (required)")
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
	cmd.AddCommand(add, list,
		setState("disable", "Disable a user: ends their sessions and revokes their API tokens at once", true),
		setState("enable", "Enable a disabled user", false), unlock, reset)
	return cmd
}
