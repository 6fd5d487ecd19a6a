package main

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/doctor"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/settings"
)

func (a *app) configCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "config", Short: "Show and change runtime settings (stored in the database, audited)",
		Long: `Runtime settings live in the database, so every node sees the same value, and
every change is audited. A CUSTOS_<KEY> environment variable (dots as
underscores, upper case) overrides a stored value on the node that has it.

Settings:
` + settingsHelp()}
	list := &cobra.Command{
		Use: "list", Short: "List settings with their values and where each comes from", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				st, err := n.CRM.Settings(a.ctx, operator())
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "KEY\tVALUE\tSOURCE\tDEFAULT")
				for _, s := range st {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Key, s.Value, s.Source, s.Default)
				}
				return tw.Flush()
			})
		},
	}
	get := &cobra.Command{
		Use: "get KEY", Short: "Print one setting's effective value", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, ok := settings.Lookup(args[0]); !ok {
				_, err := settings.Validate(args[0], "")
				return usageError{err}
			}
			return a.withNode(func(n *node.Node) error {
				st, err := n.CRM.Settings(a.ctx, operator())
				if err != nil {
					return err
				}
				for _, s := range st {
					if s.Key == settings.CanonicalKey(args[0]) {
						fmt.Fprintln(a.stdout, s.Value)
						return nil
					}
				}
				d, _ := settings.Lookup(args[0])
				fmt.Fprintln(a.stdout, d.Default)
				return nil
			})
		},
	}
	set := &cobra.Command{
		Use: "set KEY VALUE", Short: `Change a setting ("" resets it to the default); it applies from the next request`, Args: exactArgs(2),
		Example: `  custos config set --data ./data strict_separation on
  custos config set --data ./data pool.return_days 30
  custos config set --data ./data pool.return_days.A 90`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, err := settings.Validate(args[0], args[1]); err != nil {
				return usageError{err}
			}
			return a.withNode(func(n *node.Node) error {
				s, err := n.CRM.SetSetting(a.ctx, operator(), args[0], args[1])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%s = %s (%s)\n", s.Key, s.Value, s.Source)
				return nil
			})
		},
	}
	cmd.AddCommand(list, get, set)
	return cmd
}

func settingsHelp() string {
	out := ""
	for _, d := range settings.Defs {
		out += fmt.Sprintf("  %-20s default %-14s %s\n", d.Key, d.Default, d.Doc)
	}
	return out
}

func (a *app) doctorCmd() *cobra.Command {
	return &cobra.Command{
		Use: "doctor", Short: "Check the security posture (strict separation, second factors, administrators)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				findings, err := doctor.Check(a.ctx, n.DB)
				if err != nil {
					return err
				}
				for _, f := range findings {
					fmt.Fprintf(a.stdout, "[%s] %-18s %-6s %s\n", f.Status, f.ID, f.Severity, f.Summary)
					if f.Fix != "" {
						fmt.Fprintf(a.stdout, "       fix: %s\n", f.Fix)
					}
				}
				return nil
			})
		},
	}
}
