package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, query, export and prune the tamper-evident audit trail",
		Long: `Every login, view, change, permission change and export is an event in one
hash chain (table audit_events). Signed checkpoints of the chain are kept in
<data>/audit/checkpoints.jsonl, signed by <data>/audit/signing.key, outside the
database. "custos audit verify" recomputes the chain, checks every checkpoint
and names the first event that was modified, deleted, inserted, reordered or
cut off the end.`}
	cmd.AddCommand(a.auditVerifyCmd(), a.auditExportCmd(), a.auditQueryCmd(), a.auditPruneCmd(), a.auditPubkeyCmd())
	return cmd
}

func (a *app) auditVerifyCmd() *cobra.Command {
	var from int64
	var pubkeys []string
	var archive string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Recompute the chain and check every signed checkpoint; exit 1 naming the first tampered event",
		Long: `Verify reads the trail without changing it and needs neither the root key nor
a running server. It checks the chain from the start (or --from SEQ) and the
signature of every checkpoint, and reports the first problem as
"seq N: KIND: detail", KIND being modified, deleted, inserted, reordered,
truncated or bad_checkpoint. The checkpoint key is the data directory's
signing key; --pubkey adds public keys (PEM) to trust, for example one given
to an auditor by "custos audit pubkey". --archive checks a pruned segment.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			trusted, err := a.trustedKeys(pubkeys)
			if err != nil {
				return err
			}
			var rep audit.Report
			if archive != "" {
				if rep, err = audit.VerifyArchive(archive, trusted); err != nil {
					return err
				}
			} else {
				db, err := a.openStoreReadOnly()
				if err != nil {
					return err
				}
				defer db.Close()
				cps, err := audit.LoadCheckpoints(a.ctx, db, audit.CheckpointLog{Path: a.cfg.AuditCheckpointPath()})
				if err != nil {
					return err
				}
				prog := a.newProgress(-1, "verifying audit events")
				log := audit.CheckpointLog{Path: a.cfg.AuditCheckpointPath()}
				rep, err = audit.Verify(a.ctx, db, audit.VerifyOptions{From: from, Checkpoints: cps, Trusted: trusted,
					Reload:   func(ctx context.Context) ([]audit.Checkpoint, error) { return audit.LoadCheckpoints(ctx, db, log) },
					Progress: func(seq int64) { prog.set(int(seq)) }})
				prog.done()
				if err != nil {
					return err
				}
			}
			if asJSON {
				b, _ := json.MarshalIndent(rep, "", "  ")
				fmt.Fprintln(a.stdout, string(b))
			} else {
				for _, w := range rep.Warnings {
					fmt.Fprintln(a.stderr, "warning:", w)
				}
				if rep.OK() {
					fmt.Fprintf(a.stdout, "audit trail intact: %d events (seq %d to %d), %d checkpoints matched, last hash %s\n",
						rep.Events, rep.First, rep.Last, rep.Checkpoints, short(rep.LastHash))
				}
			}
			if !rep.OK() {
				return fmt.Errorf("audit trail TAMPERED at %s", rep.Problem)
			}
			return nil
		},
	}
	cmd.Flags().Int64Var(&from, "from", 0, "start at this sequence number, trusting the event before it")
	cmd.Flags().StringArrayVar(&pubkeys, "pubkey", nil, "also trust this public key file (PEM); repeatable")
	cmd.Flags().StringVar(&archive, "archive", "", "verify this archive file (audit/archive/*.jsonl.gz) instead of the database")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func short(h string) string {
	if len(h) > 16 {
		return h[:16] + "…"
	}
	return h
}

// trustedKeys are the data directory's signing key (when present) and any
// public keys given.
func (a *app) trustedKeys(files []string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	if pub, err := audit.LoadPublicKey(a.cfg.AuditKeyPath()); err == nil {
		out = append(out, pub)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	others, err := audit.LoadTrustedDir(a.cfg.AuditTrustedDir())
	if err != nil {
		return nil, err
	}
	out = append(out, others...)
	for _, f := range files {
		pub, err := audit.LoadPublicKey(f)
		if err != nil {
			return nil, err
		}
		out = append(out, pub)
	}
	return out, nil
}

// openStoreReadOnly opens the database without migrating or initializing
// anything: verification must not change what it checks.
func (a *app) openStoreReadOnly() (*store.DB, error) {
	if err := a.cfg.Validate(); err != nil {
		return nil, err
	}
	if a.cfg.DB == "" {
		if _, err := os.Stat(a.cfg.DataDir); err != nil {
			return nil, fmt.Errorf("data directory %s: %w", a.cfg.DataDir, err)
		}
	}
	return store.Open(a.ctx, a.cfg.DatabaseDSN())
}

// auditFilterFlags are the filters shared by query and export.
type auditFilterFlags struct {
	actorID, actor, customerID, action, outcome, objectType, objectID, since, until string
}

func (f *auditFilterFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.actorID, "actor-id", "", "events of this user (sessions and API tokens)")
	cmd.Flags().StringVar(&f.actor, "actor", "", `events of this exact actor ("system", "cli:alice", "token:ID")`)
	cmd.Flags().StringVar(&f.customerID, "customer-id", "", "events concerning this customer (viewed, listed, changed, exported)")
	cmd.Flags().StringVar(&f.action, "action", "", `this action, or a prefix ending in "." ("customer.")`)
	cmd.Flags().StringVar(&f.outcome, "outcome", "", "ok, denied or error")
	cmd.Flags().StringVar(&f.objectType, "object-type", "", "customer, contact, user, role, …")
	cmd.Flags().StringVar(&f.objectID, "object-id", "", "this object's id")
	cmd.Flags().StringVar(&f.since, "since", "", "from this time (RFC 3339, or YYYY-MM-DD in UTC)")
	cmd.Flags().StringVar(&f.until, "until", "", "before this time (RFC 3339, or YYYY-MM-DD in UTC)")
}

func (f *auditFilterFlags) query() (crm.AuditQuery, error) {
	q := crm.AuditQuery{ActorID: f.actorID, Actor: f.actor, CustomerID: f.customerID, Action: f.action, Outcome: f.outcome,
		ObjectType: f.objectType, ObjectID: f.objectID}
	var err error
	if q.Since, err = parseWhen("since", f.since); err != nil {
		return q, err
	}
	if q.Until, err = parseWhen("until", f.until); err != nil {
		return q, err
	}
	if !q.Since.IsZero() && !q.Until.IsZero() && !q.Until.After(q.Since) {
		return q, usageError{errors.New("--until must be after --since")}
	}
	return q, nil
}

// parseWhen reads an RFC 3339 time or a date (midnight UTC).
func parseWhen(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse("2006-01-02", v); err == nil {
		return t, nil
	}
	return time.Time{}, usageError{fmt.Errorf("--%s %q: want RFC 3339 (2026-01-02T15:04:05Z) or a date (2026-01-02)", name, v)}
}

func (a *app) auditExportCmd() *cobra.Command {
	var f auditFilterFlags
	var format, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Export events for a SIEM (Splunk, ELK, ArcSight) as JSON lines, CEF or RFC 5424 syslog",
		Long: `Export writes the events matching the filters, oldest first, one per line:
jsonl (every column, with the chain hashes), cef (ArcSight Common Event
Format) or syslog (RFC 5424, facility log audit). Personal values appear only
sealed, as in the database. The export itself is an audit event.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			w := a.stdout
			var file *os.File
			if out != "" && out != "-" {
				if file, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
					return err
				}
				defer file.Close()
				w = file
			}
			bw := bufio.NewWriterSize(w, 1<<16)
			host, _ := os.Hostname()
			enc, err := audit.NewEncoder(bw, format, host, version)
			if err != nil {
				return usageError{err}
			}
			return a.withNode(func(n *node.Node) error {
				rows, err := n.CRM.ExportAudit(a.ctx, operator(), q, enc.Encode)
				if err != nil {
					return err
				}
				if err := bw.Flush(); err != nil {
					return err
				}
				if file != nil {
					if err := file.Sync(); err != nil {
						return err
					}
					fmt.Fprintf(a.stderr, "exported %d events to %s\n", rows, out)
				}
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().StringVar(&format, "format", audit.FormatJSONL, "jsonl, cef or syslog")
	cmd.Flags().StringVar(&out, "out", "", "write to this file (mode 0600) instead of standard output")
	return cmd
}

func (a *app) auditQueryCmd() *cobra.Command {
	var f auditFilterFlags
	var limit int
	cmd := &cobra.Command{
		Use:   "query",
		Short: `Find events, newest first ("who viewed customer X": --customer-id X --action customer.view)`,
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			q, err := f.query()
			if err != nil {
				return err
			}
			q.Limit = limit
			return a.withNode(func(n *node.Node) error {
				page, err := n.CRM.QueryAudit(a.ctx, operator(), q)
				if err != nil {
					return err
				}
				enc := json.NewEncoder(a.stdout)
				for _, e := range page.Items {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	f.add(cmd)
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many events (1-1000)")
	return cmd
}

func (a *app) auditPruneCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Archive and delete events older than audit.retention_days (the server does this daily)",
		Long: `Prune first verifies the whole trail (it never prunes a tampered one), then
writes the events older than the retention period, with the checkpoints that
cover them, to <data>/audit/archive/audit-FROM-THROUGH.jsonl.gz (verifiable
with "custos audit verify --archive"), then deletes them and records the prune
as an audit event in the same transaction.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				vals, err := n.CRM.EffectiveSettings(a.ctx)
				if err != nil {
					return err
				}
				rep, err := audit.Prune(a.ctx, n.DB, audit.PruneOptions{Now: time.Now(), RetentionDays: vals.Int(settings.AuditRetentionDays),
					ArchiveDir: n.Config.AuditArchiveDir(), Checkpointer: n.Audit, Actor: operator().Actor})
				if err != nil {
					return err
				}
				if rep.Events == 0 {
					fmt.Fprintf(a.stdout, "nothing older than %d days to prune\n", vals.Int(settings.AuditRetentionDays))
					return nil
				}
				fmt.Fprintf(a.stdout, "archived and pruned %d events (seq %d to %d) into %s (sha256 %s)\n", rep.Events, rep.From, rep.Through, rep.Archive, rep.SHA256)
				return nil
			})
		},
	}
	return cmd
}

func (a *app) auditPubkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "pubkey",
		Short: "Print the checkpoint signing key's public half (PEM), for auditors who verify elsewhere",
		Args:  exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			pub, err := audit.LoadPublicKey(a.cfg.AuditKeyPath())
			if err != nil {
				return err
			}
			b, err := audit.PublicKeyPEM(pub)
			if err != nil {
				return err
			}
			_, err = io.Copy(a.stdout, strings.NewReader(string(b)))
			return err
		},
	}
}
