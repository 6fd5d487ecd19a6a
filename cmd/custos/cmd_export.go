package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/csvio"
	"github.com/custos/custos/internal/customercsv"
	"github.com/custos/custos/internal/node"
)

func (a *app) exportCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "export", Short: "Export records to files; request, approve and download large or revealing exports",
		Long: `Export customers. A small export (at most export.approval_rows rows, default 200)
is written at once by "custos export customers". A larger one, or one that
reveals masked fields, is an export request ("custos export request") that a
second person holding approve_export approves ("custos export approve"); the
file is then produced once, watermarked, encrypted with age, and downloaded by
the requester ("custos export download") until it expires.`}
	cmd.AddCommand(a.exportCustomersCmd(), a.exportRequestCmd(), a.exportListCmd(),
		a.exportDecideCmd("approve", "Approve someone else's export request and produce its file (needs approve_export)", (*crm.Service).ApproveExport),
		a.exportDecideCmd("reject", "Reject someone else's pending export request (needs approve_export)", (*crm.Service).RejectExport),
		a.exportDecideCmd("cancel", "Cancel your own pending export request", (*crm.Service).CancelExport),
		a.exportDownloadCmd())
	return cmd
}

// listFlags adds the customer filters of an export.
func listFlags(c *cobra.Command, lq *crm.ListQuery) {
	f := c.Flags()
	f.StringVar(&lq.Q, "q", "", "only customers matching this search")
	f.StringVar(&lq.Status, "status", "", "only this status")
	f.StringVar(&lq.Level, "level", "", "only this level")
	f.StringVar(&lq.Kind, "kind", "", "only company or person")
	f.StringVar(&lq.Tag, "tag", "", "only customers with this tag")
}

// actingAs is the operator, or with --as the user of that email.
func (a *app) actingAs(n *node.Node, as string) (access.Principal, error) {
	if as == "" {
		return operator(), nil
	}
	return principalOf(a, n, as)
}

func (a *app) exportCustomersCmd() *cobra.Command {
	var out, as string
	var lq crm.ListQuery
	customers := &cobra.Command{
		Use:   "customers",
		Short: "Export customers to CSV (needs the export permission)",
		Long: `Export customers to CSV (UTF-8 with BOM, so Excel shows Chinese correctly; cells
that a spreadsheet would run as formulas are neutralized). The export is recorded
in the audit trail.

An export of more rows than the export.approval_rows setting (default 200) is
refused before any row is read: file it with "custos export request" instead,
for a second person to approve.

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
			p, err := a.actingAs(n, as)
			if err != nil {
				return err
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
			// The header goes out with the first row: a refused export
			// writes nothing.
			started := false
			start := func() error {
				if started {
					return nil
				}
				started = true
				return cw.Write(customercsv.Columns)
			}
			count, err := n.CRM.ExportCustomers(a.ctx, p, lq, func(c crm.Customer) error {
				if err := start(); err != nil {
					return err
				}
				bar.add(1)
				return cw.Write(customercsv.Record(c, owners))
			})
			bar.done()
			if err != nil {
				if out != "" {
					_ = os.Remove(out)
				}
				var are *crm.ApprovalRequiredError
				if errors.As(err, &are) {
					return fmt.Errorf("this export has %d rows, more than the %d allowed without approval: run `custos export request` instead, for a second person to approve", are.Rows, are.Limit)
				}
				return err
			}
			if err := start(); err != nil {
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
	listFlags(customers, &lq)
	return customers
}

// exportRequestOpts are the options of custos export request.
type exportRequestOpts struct {
	as            string
	query         crm.ListQuery
	format        string
	reveal        []string
	passwordFile  string
	passwordStdin bool
	recipient     string
}

func (a *app) exportRequestCmd() *cobra.Command {
	var o exportRequestOpts
	c := &cobra.Command{
		Use:   "request",
		Short: "Request an export: encrypted, watermarked, approved by a second person when large or revealing",
		Long: `Request an export of the customers matching the filters, as a CSV or XLSX file
encrypted with age (https://age-encryption.org) to a password or to an age
X25519 recipient, and watermarked with the request id, the requester, the
approver and the time.

An export of more rows than export.approval_rows (default 200), or one that
reveals masked fields (--reveal, needs the reveal permission), waits for a
second person holding approve_export: "custos export approve ID --as EMAIL".
A smaller one is produced at once. Either way the requester downloads the file
with "custos export download ID --out FILE" until it expires
(export.download_hours, default 24).

The key, exactly one of:
  --password-file F     the first line of file F
  --password-stdin      standard input (asked twice on a terminal)
  CUSTOS_EXPORT_PASSWORD   environment variable
  --recipient age1...   an age X25519 recipient (public key)
The password is never stored: only the age key derived from it, sealed until
the file is produced. Passwords are never taken from the command line.

The request id is printed on standard output.`,
		Example: `  printf '%s\n' "$PW" | custos export request --data ./data --format xlsx --reveal id_number --password-stdin
  custos export request --status active --recipient age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p --as manager@example.com`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runExportRequest(o) },
	}
	f := c.Flags()
	listFlags(c, &o.query)
	f.StringVar(&o.as, "as", "", "request as this user (email); default: the operator at this machine")
	f.StringVar(&o.format, "format", "csv", "csv or xlsx")
	f.StringSliceVar(&o.reveal, "reveal", nil, "masked fields to export in clear: name, phone, email, address, id_number, notes (comma-separated)")
	f.StringVar(&o.passwordFile, "password-file", "", "read the file's password from the first line of this file")
	f.BoolVar(&o.passwordStdin, "password-stdin", false, "read the file's password from standard input")
	f.StringVar(&o.recipient, "recipient", "", "encrypt to this age X25519 recipient (age1...) instead of a password")
	return c
}

// exportPassword picks the one key source of o.
func (a *app) exportPassword(o exportRequestOpts) (string, error) {
	env, envSet := a.env("CUSTOS_EXPORT_PASSWORD")
	n := 0
	for _, set := range []bool{o.passwordFile != "", o.passwordStdin, envSet && env != "", o.recipient != ""} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return "", usageError{errors.New("give the file's key: --password-file F, --password-stdin, CUSTOS_EXPORT_PASSWORD or --recipient <age1 recipient>")}
	case n > 1:
		return "", usageError{errors.New("give one key only: --password-file, --password-stdin, CUSTOS_EXPORT_PASSWORD or --recipient")}
	case o.passwordFile != "":
		f, err := os.Open(o.passwordFile)
		if err != nil {
			return "", fmt.Errorf("password file: %w", err)
		}
		defer f.Close()
		line, err := bufio.NewReader(io.LimitReader(f, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("password file: %w", err)
		}
		if line = strings.TrimRight(line, "\r\n"); line == "" {
			return "", fmt.Errorf("password file %s: the first line is empty", o.passwordFile)
		}
		return line, nil
	case o.passwordStdin:
		return a.readSecret("export password")
	case o.recipient == "":
		return env, nil
	}
	return "", nil
}

func (a *app) runExportRequest(o exportRequestOpts) error {
	pw, err := a.exportPassword(o)
	if err != nil {
		return err
	}
	return a.withNode(func(n *node.Node) error {
		p, err := a.actingAs(n, o.as)
		if err != nil {
			return err
		}
		req, err := n.CRM.RequestExport(a.ctx, p, crm.ExportInput{Query: o.query, Format: o.format, Reveal: o.reveal,
			Password: crm.Secret(pw), Recipient: o.recipient})
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, req.ID)
		switch req.Status {
		case crm.ExportPending:
			fmt.Fprintf(a.stderr, "export request %s: pending (%d rows%s); a second person approves it with: custos export approve %s --as EMAIL\n",
				req.ID, req.Rows, revealNote(req.Reveal), req.ID)
		default:
			fmt.Fprintf(a.stderr, "export request %s: %s without approval (%d rows); download it with: custos export download %s --out FILE\n",
				req.ID, req.Status, req.FileRows, req.ID)
		}
		return nil
	})
}

func revealNote(reveal []string) string {
	if len(reveal) == 0 {
		return ""
	}
	return ", revealing " + strings.Join(reveal, ", ")
}

func (a *app) exportListCmd() *cobra.Command {
	var as, status string
	c := &cobra.Command{
		Use:   "list",
		Short: "List your export requests, and the pending ones of others if you approve exports",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				p, err := a.actingAs(n, as)
				if err != nil {
					return err
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "ID\tSTATUS\tROWS\tFORMAT\tREVEAL\tFILTERS\tREQUESTER\tCREATED\tEXPIRES")
				q := crm.ExportListQuery{Status: status, Limit: crm.MaxPageSize}
				for {
					page, err := n.CRM.ListExportRequests(a.ctx, p, q)
					if err != nil {
						return err
					}
					for _, r := range page.Items {
						expires := "-"
						if r.ExpiresAt != nil {
							expires = r.ExpiresAt.Local().Format(time.DateTime)
						}
						filters := strings.Join(r.FilterNames, ",")
						if r.Search {
							filters = strings.TrimPrefix(filters+",search", ",")
						}
						fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Status, r.Rows, r.Format, dash(strings.Join(r.Reveal, ",")),
							dash(filters), who(r.Requester), r.CreatedAt.Local().Format(time.DateTime), expires)
					}
					if page.Next == "" {
						break
					}
					q.Cursor = page.Next
				}
				return tw.Flush()
			})
		},
	}
	c.Flags().StringVar(&as, "as", "", "list as this user (email); default: the operator at this machine")
	c.Flags().StringVar(&status, "status", "", "only this status: pending, approved, rejected, cancelled, expired")
	return c
}

func who(pp crm.Person) string {
	if pp.Email != "" {
		return pp.Email
	}
	return pp.Actor
}

func (a *app) exportDecideCmd(verb, short string, fn func(*crm.Service, context.Context, access.Principal, string) (crm.ExportRequest, error)) *cobra.Command {
	var as string
	c := &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Long: short + `.

--as EMAIL acts as that user; without it the operator at this machine acts
(with the administrator's rights, as "cli:<os user>"). Nobody approves their
own request: the approver must be another person than the requester.`,
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				p, err := a.actingAs(n, as)
				if err != nil {
					return err
				}
				r, err := fn(n.CRM, a.ctx, p, args[0])
				if err != nil {
					return err
				}
				switch r.Status {
				case crm.ExportApproved:
					fmt.Fprintf(a.stdout, "approved %s: %d rows for %s, downloadable until %s with: custos export download %s --out FILE\n",
						r.ID, r.FileRows, who(r.Requester), r.ExpiresAt.Local().Format(time.DateTime), r.ID)
				default:
					fmt.Fprintf(a.stdout, "%s %s\n", r.Status, r.ID)
				}
				return nil
			})
		},
	}
	c.Flags().StringVar(&as, "as", "", "act as this user (email)")
	return c
}

func (a *app) exportDownloadCmd() *cobra.Command {
	var as, out string
	c := &cobra.Command{
		Use:   "download ID --out FILE",
		Short: "Download the encrypted file of your approved export request",
		Long: `Write the file of an approved export request, still encrypted with age, to a new
file (mode 0600; "-" writes to standard output). Only the requester may
download it, until it expires; every download is audited.

Decrypt it with age (https://age-encryption.org):
  age -d -o customers.csv custos-export-ID.csv.age           (asks for the password)
  age -d -i key.txt -o customers.xlsx custos-export-ID.xlsx.age   (an X25519 identity)`,
		Example: `  custos export download 0190d5c4-... --out customers.csv.age --as manager@example.com`,
		Args:    exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return usageError{errors.New("--out FILE is required (\"-\" for standard output)")}
			}
			return a.withNode(func(n *node.Node) error {
				p, err := a.actingAs(n, as)
				if err != nil {
					return err
				}
				f, err := n.CRM.DownloadExport(a.ctx, p, args[0])
				if err != nil {
					return err
				}
				if out == "-" {
					_, err := a.stdout.Write(f.Data)
					return err
				}
				file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
				if err != nil {
					return fmt.Errorf("create %s: %w (it must not exist yet)", out, err)
				}
				if _, err := file.Write(f.Data); err != nil {
					_ = file.Close()
					_ = os.Remove(out)
					return err
				}
				if err := file.Close(); err != nil {
					return err
				}
				fmt.Fprintf(a.stderr, "wrote %s (%d bytes, encrypted; %s)\n", out, len(f.Data), strings.TrimSuffix(f.Filename, ".age"))
				return nil
			})
		},
	}
	c.Flags().StringVar(&as, "as", "", "download as this user (email): the requester")
	c.Flags().StringVar(&out, "out", "", "write to this new file (\"-\": standard output)")
	return c
}

// exportSweeper deletes expired export files every interval, starting a
// minute after start-up.
func exportSweeper(ctx context.Context, c *crm.Service, log *slog.Logger, every time.Duration) {
	periodically(ctx, every, func(ctx context.Context) {
		n, err := c.SweepExports(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("export sweep failed", "err", err)
		case n > 0:
			log.Info("export sweep", "expired", n)
		}
	})
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
	if u.Suspended {
		return access.Principal{}, fmt.Errorf("user %s is suspended: an alert handler must reinstate them (custos alerts resolve --reinstate)", u.Email)
	}
	return n.CRM.Principal(a.ctx, access.Subject{UserID: u.ID, Actor: operator().Actor + " as user:" + u.ID, Role: u.Role})
}
