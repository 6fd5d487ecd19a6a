package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/node"
)

func (a *app) grantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "grant", Short: "Temporary permissions: give one user one permission until it expires"}
	var user, perm, reason string
	var ttl time.Duration
	add := &cobra.Command{
		Use: "add --user EMAIL --perm PERMISSION --reason TEXT --ttl DURATION", Short: "Grant a permission until it expires (approved by you, audited)",
		Example: `  custos grant add --data ./data --user li.lei@example.com --perm export --reason "Q3 audit, ticket 4711" --ttl 72h`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if strings.TrimSpace(reason) == "" {
				return usageError{fmt.Errorf("--reason is required")}
			}
			return a.withNode(func(n *node.Node) error {
				u, err := n.Auth.FindUserByEmail(a.ctx, user)
				if err != nil {
					return err
				}
				g, err := n.CRM.CreateGrant(a.ctx, operator(), u.ID, perm, reason, time.Now().Add(ttl))
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "granted %s to %s until %s (grant %s)\n", g.Permission, u.Email, g.ExpiresAt.Format(time.RFC3339), g.ID)
				return nil
			})
		},
	}
	add.Flags().StringVar(&user, "user", "", "the user's email (required)")
	add.Flags().StringVar(&perm, "perm", "", "the permission (required)")
	add.Flags().StringVar(&reason, "reason", "", "why: kept sealed, shown in the audit trail to auditors (required)")
	add.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "how long it lasts (at most 90 days)")
	for _, f := range []string{"user", "perm", "reason"} {
		_ = add.MarkFlagRequired(f)
	}
	list := &cobra.Command{
		Use: "list", Short: "List grants", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				gs, err := n.CRM.ListGrants(a.ctx, operator(), "")
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tUSER\tPERMISSION\tEXPIRES\tACTIVE")
				for _, g := range gs {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\n", g.ID, g.UserID, g.Permission, g.ExpiresAt.Format(time.RFC3339), g.Active)
				}
				return tw.Flush()
			})
		},
	}
	revoke := &cobra.Command{
		Use: "revoke ID", Short: "End a grant now", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				if err := n.CRM.RevokeGrant(a.ctx, operator(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "revoked grant %s\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, revoke)
	return cmd
}
