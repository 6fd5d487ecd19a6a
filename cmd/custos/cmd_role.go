package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/store"
)

// roleFlags are the flags shared by role create and role update; only the
// flags given change anything.
type roleFlags struct {
	label, parent, perms string
	seeAll               bool
	fields               []string
	revealQuota          int
	claimDaily           int
	maxOwned             int
	cooldown             int
}

func (f *roleFlags) register(c *cobra.Command) {
	c.Flags().StringVar(&f.label, "label", "", "display name")
	c.Flags().StringVar(&f.parent, "parent", "", `parent role in the hierarchy ("" for none): the parent sees what this role's holders own`)
	c.Flags().BoolVar(&f.seeAll, "see-all", false, "holders see every customer")
	c.Flags().StringVar(&f.perms, "perms", "", "permissions, space or comma separated, replacing the current set: "+access.FormatPermissions(access.AllPermissions))
	c.Flags().StringArrayVar(&f.fields, "field", nil, "field policy FIELD=LEVEL (repeatable); fields: "+strings.Join(access.Fields, ", ")+"; levels: hidden, masked, read, edit")
	c.Flags().IntVar(&f.revealQuota, "reveal-quota", 0, "reveals per holder and day")
	c.Flags().IntVar(&f.claimDaily, "claim-daily", 0, "pool claims per holder and day (0: no cap)")
	c.Flags().IntVar(&f.maxOwned, "max-owned", 0, "customers a holder may own before claiming more (0: no cap)")
	c.Flags().IntVar(&f.cooldown, "claim-cooldown-days", 0, "days before a previous owner may claim a customer back")
}

func (f *roleFlags) input(c *cobra.Command) (crm.RoleInput, error) {
	var in crm.RoleInput
	ch := c.Flags().Changed
	if ch("label") {
		in.Label = &f.label
	}
	if ch("parent") {
		in.Parent = &f.parent
	}
	if ch("see-all") {
		in.SeeAll = &f.seeAll
	}
	if ch("perms") {
		ps := strings.FieldsFunc(f.perms, func(r rune) bool { return r == ' ' || r == ',' })
		in.Permissions = &ps
	}
	if len(f.fields) > 0 {
		m := map[string]string{}
		for _, kv := range f.fields {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return in, usageError{fmt.Errorf("--field takes FIELD=LEVEL, got %q", kv)}
			}
			m[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		in.Fields = &m
	}
	for _, x := range []struct {
		flag string
		v    *int
		dst  **int
	}{{"reveal-quota", &f.revealQuota, &in.RevealQuota}, {"claim-daily", &f.claimDaily, &in.ClaimDaily},
		{"max-owned", &f.maxOwned, &in.MaxOwned}, {"claim-cooldown-days", &f.cooldown, &in.ClaimCooldownDays}} {
		if ch(x.flag) {
			*x.dst = x.v
		}
	}
	return in, nil
}

func (a *app) roleCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "role", Short: "Manage roles: hierarchy, permissions, field policies, pool limits, login policy",
		Long: `Roles are data. Each has a parent in the hierarchy (a role sees what is owned by
holders of the roles below it), object permissions, a field policy (hidden,
masked, read or edit per field), a daily reveal quota and pool limits.
Changes apply from each holder's next request and are audited.

Templates shipped: admin, security_officer, auditor, sales_director,
manager (sales manager), sales (sales rep), support, finance.`}
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List roles", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				roles, err := n.CRM.ListRoles(a.ctx, operator())
				if err != nil {
					return err
				}
				if asJSON {
					return json.NewEncoder(a.stdout).Encode(roles)
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tPARENT\tSEE ALL\tPERMISSIONS\tMASKED\tHIDDEN")
				for _, r := range roles {
					var masked, hidden []string
					for _, f := range access.Fields {
						switch r.Fields[f] {
						case access.Masked:
							masked = append(masked, f)
						case access.Hidden:
							hidden = append(hidden, f)
						}
					}
					fmt.Fprintf(tw, "%s\t%s\t%v\t%s\t%s\t%s\n", r.Name, dash(r.Parent), r.SeeAll, access.FormatPermissions(r.Permissions),
						dash(strings.Join(masked, ",")), dash(strings.Join(hidden, ",")))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	show := &cobra.Command{
		Use: "show NAME", Short: "Show one role as JSON", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				r, err := n.CRM.GetRole(a.ctx, operator(), args[0])
				if err != nil {
					return fmt.Errorf("role %q: %w", args[0], err)
				}
				enc := json.NewEncoder(a.stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(r)
			})
		},
	}
	var cf roleFlags
	var from string
	create := &cobra.Command{
		Use: "create NAME", Short: "Create a role (optionally copying another with --from)", Args: exactArgs(1),
		Example: `  custos role create --data ./data sales_east --from sales --parent manager_east --label "Sales rep (East)"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := cf.input(cmd)
			if err != nil {
				return err
			}
			return a.withNode(func(n *node.Node) error {
				r, err := n.CRM.CreateRole(a.ctx, operator(), args[0], from, in)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "created role %s (parent %s; %s)\n", r.Name, dash(r.Parent), access.FormatPermissions(r.Permissions))
				return nil
			})
		},
	}
	cf.register(create)
	create.Flags().StringVar(&from, "from", "", "copy this role first")
	var uf roleFlags
	update := &cobra.Command{
		Use: "update NAME", Short: "Change a role; only the flags given change", Args: exactArgs(1),
		Example: `  custos role update --data ./data support --field phone=masked --field email=read --reveal-quota 20`,
		RunE: func(cmd *cobra.Command, args []string) error {
			in, err := uf.input(cmd)
			if err != nil {
				return err
			}
			return a.withNode(func(n *node.Node) error {
				r, err := n.CRM.UpdateRole(a.ctx, operator(), args[0], in)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "updated role %s; holders get it from their next request\n", r.Name)
				return nil
			})
		},
	}
	uf.register(update)
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a role nobody holds and no role descends from", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				if err := n.CRM.DeleteRole(a.ctx, operator(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted role %s\n", args[0])
				return nil
			})
		},
	}
	var mfa, allow, hours string
	policy := &cobra.Command{
		Use: "policy NAME", Short: "Show or change a role's login policy (second factor, address allowlist, hours)", Args: exactArgs(1),
		Example: `  custos role policy --data ./data sales --mfa on --allow "10.0.0.0/8 192.168.1.0/24" --hours "08:00-20:00 Asia/Shanghai"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				pol, err := n.Auth.RolePolicy(a.ctx, args[0])
				if err != nil {
					return fmt.Errorf("role %q: %w", args[0], err)
				}
				ch := cmd.Flags().Changed
				if ch("mfa") || ch("allow") || ch("hours") {
					if ch("mfa") {
						switch mfa {
						case "on":
							pol.MFARequired = true
						case "off":
							pol.MFARequired = false
						default:
							return usageError{fmt.Errorf("--mfa takes on or off")}
						}
					}
					if ch("allow") {
						pol.IPAllowlist = allow
					}
					if ch("hours") {
						pol.LoginHours = hours
					}
					if err := n.Auth.SetRolePolicy(a.ctx, audit.Event{Actor: operator().Actor}, pol); err != nil {
						return err
					}
				}
				printPolicy(a, pol)
				return nil
			})
		},
	}
	policy.Flags().StringVar(&mfa, "mfa", "", "require a second factor: on or off")
	policy.Flags().StringVar(&allow, "allow", "", `client address allowlist, space-separated CIDRs ("" for any)`)
	policy.Flags().StringVar(&hours, "hours", "", `login hours, e.g. "08:00-20:00 Asia/Shanghai" ("" for any)`)
	cmd.AddCommand(list, show, create, update, del, policy)
	return cmd
}

func printPolicy(a *app, p store.RolePolicy) {
	mfa := "off"
	if p.MFARequired {
		mfa = "on"
	}
	fmt.Fprintf(a.stdout, "role %s: mfa %s; allowlist %s; hours %s\n", p.Role, mfa, dash(p.IPAllowlist), dash(p.LoginHours))
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
