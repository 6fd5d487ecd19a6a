package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
)

func (a *app) alertsCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "alerts", Short: "List, acknowledge and resolve alerts; manage where they are sent",
		Long: `Alerts are raised by the detectors (brute force, bulk viewing, permission
probing, exports, reveals, new addresses, odd hours, dormant accounts, access
after a role change, backups, audit verification) and by rules on the request
path. Each is open until someone acknowledges it and resolved with a note.
Every list, view, acknowledgement and resolution is an audit event.

Thresholds are settings: see ` + "`custos config list`" + `.`}
	var q crm.AlertQuery
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List alerts, newest first", Args: exactArgs(0),
		Example: `  custos alerts list --data ./data --status open
  custos alerts list --rule monitor.bulk_view --json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				page, err := n.CRM.ListAlerts(a.ctx, operator(), q)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSONTo(a.stdout, page)
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tAT\tSEVERITY\tRULE\tACTOR\tSTATUS")
				for _, al := range page.Items {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", al.ID, al.At.Format(time.RFC3339), al.Severity, al.Rule, dash(al.ActorID), al.Status)
				}
				if page.Next != "" {
					fmt.Fprintf(tw, "(more: --cursor %s)\n", page.Next)
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&q.Status, "status", "", "open, acknowledged or resolved")
	list.Flags().StringVar(&q.Rule, "rule", "", "only this rule")
	list.Flags().StringVar(&q.Severity, "severity", "", "info, low, medium, high or critical")
	list.Flags().StringVar(&q.ActorID, "actor", "", "only alerts about this user id")
	list.Flags().StringVar(&q.Cursor, "cursor", "", "the next page (printed at the end of a full page)")
	list.Flags().IntVar(&q.Limit, "limit", 0, "at most this many (default 100, at most 1000)")
	list.Flags().BoolVar(&asJSON, "json", false, `print {"items": [...], "next": "..."} as the API does`)

	show := &cobra.Command{
		Use: "show ID", Short: "Show one alert with its evidence and note", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				al, err := n.CRM.GetAlert(a.ctx, operator(), args[0])
				if err != nil {
					return err
				}
				return writeJSONTo(a.stdout, al)
			})
		},
	}
	ack := &cobra.Command{
		Use: "ack ID", Short: "Acknowledge an open alert", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				al, err := n.CRM.AckAlert(a.ctx, operator(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "alert %s acknowledged\n", al.ID)
				return nil
			})
		},
	}
	var note, noteFile string
	var reinstate bool
	resolve := &cobra.Command{
		Use: "resolve ID", Short: "Resolve an alert with a note (and optionally reinstate a suspended user)", Args: exactArgs(1),
		Example: `  custos alerts resolve --data ./data 0193… --note "checked with the manager: quarterly review"
  custos alerts resolve --data ./data 0193… --note-file - --reinstate < note.txt`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if noteFile != "" {
				if note != "" {
					return usageError{fmt.Errorf("give --note or --note-file, not both")}
				}
				var r io.Reader = a.stdin
				if noteFile != "-" {
					f, err := os.Open(noteFile)
					if err != nil {
						return err
					}
					defer f.Close()
					r = f
				}
				b, err := io.ReadAll(io.LimitReader(r, 64<<10))
				if err != nil {
					return err
				}
				note = strings.TrimSpace(string(b))
			}
			return a.withNode(func(n *node.Node) error {
				al, err := n.CRM.ResolveAlert(a.ctx, operator(), args[0], note, reinstate)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "alert %s resolved\n", al.ID)
				if reinstate && al.ActorID != "" {
					fmt.Fprintf(a.stdout, "user %s reinstated\n", al.ActorID)
				}
				return nil
			})
		},
	}
	resolve.Flags().StringVar(&note, "note", "", "what was found and done (required; kept sealed)")
	resolve.Flags().StringVar(&noteFile, "note-file", "", "read the note from this file (- for standard input)")
	resolve.Flags().BoolVar(&reinstate, "reinstate", false, "also lift the suspension of the alert's user")

	scan := &cobra.Command{
		Use: "scan", Short: "Run the detectors over the audit events recorded since the last scan (serve does this every few seconds)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				judged, err := n.Monitor.Step(a.ctx)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "%d events judged\n", judged)
				return nil
			})
		},
	}
	cmd.AddCommand(list, show, ack, resolve, scan)
	cmd.AddCommand(a.alertSinksCmd())
	return cmd
}

func writeJSONTo(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
