package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/store"
)

func (a *app) backupCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "Encrypted backups: create, list, verify, prune; the recovery kit",
		Long: `Backups are consistent snapshots taken while Custos serves, in a logical format
that restores into SQLite or PostgreSQL. They are compressed (zstd), encrypted
in chunks (AES-256-GCM) with a backup key of their own, and described by a
manifest signed with that key. Customer fields stay the ciphertext they are in
the database: a backup never needs a data key.

Destinations: file:///absolute/dir and s3://bucket?region=R[&endpoint=URL&use_path_style=true&prefix=P/]
(credentials from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, never the URL).
Give --to several times to write to several destinations at once.

Kinds: --full; --incremental (the changes since the previous backup of any
kind); --differential (the changes since the last full backup). A restore
applies the chain in order: see 'custos restore'.`,
		Args: exactArgs(0),
	}
	cmd.AddCommand(a.backupCreateCmd(), a.backupListCmd(), a.backupVerifyCmd(), a.backupPruneCmd(), a.backupKitCmd(), a.backupHashCmd())
	return cmd
}

// openBackupSource opens the data directory's database and root key
// without starting a node (a backup reads ciphertext only and writes
// nothing but its own bookkeeping and audit events).
func (a *app) openBackupSource() (*store.DB, *keys.LocalFile, error) {
	return a.openBackupSourceWith(true)
}

// openBackupSourceWith opens the source, applying pending migrations only
// when migrate is set (`backup hash` reads and writes nothing).
func (a *app) openBackupSourceWith(migrate bool) (*store.DB, *keys.LocalFile, error) {
	if err := a.cfg.Validate(); err != nil {
		return nil, nil, usageError{err}
	}
	if _, err := os.Stat(a.cfg.DataDir); errors.Is(err, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("data directory %s does not exist", a.cfg.DataDir)
	}
	root, err := keys.OpenLocalFile(a.cfg.RootKeyPath())
	if err != nil {
		return nil, nil, err
	}
	db, err := store.Open(a.ctx, a.cfg.DatabaseDSN())
	if err != nil {
		return nil, nil, err
	}
	if migrate {
		if err := db.Migrate(a.ctx); err != nil {
			_ = db.Close()
			return nil, nil, err
		}
	}
	var n int
	if err := db.Read(a.ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.CountKeyring(a.ctx)
		return err
	}); err != nil || n == 0 {
		_ = db.Close()
		if err == nil {
			err = fmt.Errorf("the database at %s is not initialized: run `custos init`", db.Location)
		}
		return nil, nil, err
	}
	return db, root, nil
}

func (a *app) openDestinations(urls []string) ([]*backup.Destination, error) {
	if len(urls) == 0 {
		return nil, usageError{errors.New("give a destination with --to URL (file:///dir or s3://bucket?region=...)")}
	}
	var out []*backup.Destination
	seen := map[string]bool{}
	for _, u := range urls {
		if seen[u] {
			return nil, usageError{fmt.Errorf("destination given twice: %s", u)}
		}
		seen[u] = true
		d, err := backup.OpenDestination(a.ctx, u)
		if err != nil {
			closeAll(out)
			return nil, usageError{err}
		}
		out = append(out, d)
	}
	return out, nil
}

func closeAll(ds []*backup.Destination) {
	for _, d := range ds {
		_ = d.Close()
	}
}

func (a *app) backupCreateCmd() *cobra.Command {
	var full, incremental, differential, asJSON bool
	var to []string
	var chunkMB int
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Take a backup and print its id",
		Example: `  custos backup create --data ./data --full --to file:///srv/backups --to 's3://crm-backups?region=cn-north-1'
  custos backup create --data ./data --incremental --to file:///srv/backups`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var kinds []backup.Kind
			for k, on := range map[backup.Kind]bool{backup.Full: full, backup.Incremental: incremental, backup.Differential: differential} {
				if on {
					kinds = append(kinds, k)
				}
			}
			if len(kinds) != 1 {
				return usageError{errors.New("give exactly one of --full, --incremental, --differential")}
			}
			if chunkMB < 1 || chunkMB > 512 {
				return usageError{errors.New("--chunk-mb must be between 1 and 512")}
			}
			dests, err := a.openDestinations(to)
			if err != nil {
				return err
			}
			defer closeAll(dests)
			db, root, err := a.openBackupSource()
			if err != nil {
				return err
			}
			defer db.Close()
			bar := a.newByteProgress("backing up")
			res, err := backup.Create(a.ctx, backup.CreateOptions{DB: db, Root: root, Kind: kinds[0], Destinations: dests,
				Actor: operator().Actor, ChunkSize: chunkMB << 20, Progress: bar.set})
			bar.done()
			if err != nil {
				return err
			}
			m := res.Manifest
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]any{"id": m.ID, "kind": m.Kind, "base": m.Base, "full": m.Full,
					"stream_bytes": m.StreamBytes, "stored_bytes": m.StoredBytes, "chunks": len(m.Chunks), "seconds": res.Elapsed.Seconds(),
					"destinations": len(dests)})
			}
			fmt.Fprintln(a.stdout, m.ID)
			base := ""
			if m.Base != "" {
				base = " on " + m.Base
			}
			fmt.Fprintf(a.stderr, "%s backup %s%s: %s of data, %s stored in %d chunks to %d destination(s) in %s (%.1f MB/s)\n",
				m.Kind, m.ID, base, mb(m.StreamBytes), mb(m.StoredBytes), len(m.Chunks), len(dests), res.Elapsed.Round(time.Millisecond),
				float64(m.StreamBytes)/1e6/max(res.Elapsed.Seconds(), 1e-9))
			return nil
		},
	}
	cmd.Flags().BoolVar(&full, "full", false, "a full backup")
	cmd.Flags().BoolVar(&incremental, "incremental", false, "the changes since the previous backup")
	cmd.Flags().BoolVar(&differential, "differential", false, "the changes since the last full backup")
	cmd.Flags().StringArrayVar(&to, "to", nil, "destination URL (repeat for several)")
	cmd.Flags().IntVar(&chunkMB, "chunk-mb", backup.DefaultChunkSize>>20, "chunk size in MiB (compressed)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	return cmd
}

func mb(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

// keySource is how a command opens backup keys: the recovery kit when
// --kit is given, otherwise the root key (of --root-key, or the data
// directory's).
func (a *app) keySource(kitPath, rootPath string) (backup.KeySource, []byte, error) {
	if kitPath != "" {
		data, err := os.ReadFile(kitPath)
		if err != nil {
			return nil, nil, fmt.Errorf("recovery kit: %w", err)
		}
		pass := a.env.get("CUSTOS_KIT_PASSPHRASE")
		if pass == "" {
			if pass, err = a.readSecretOnce("recovery kit passphrase"); err != nil {
				return nil, nil, err
			}
		}
		kit, err := backup.DecryptKit(data, []byte(pass))
		if err != nil {
			return nil, nil, err
		}
		return backup.KitKeySource(kit), kit.RootKey, nil
	}
	if rootPath == "" {
		rootPath = a.cfg.RootKeyPath()
	}
	root, err := keys.OpenLocalFile(rootPath)
	if err != nil {
		return nil, nil, err
	}
	raw, err := os.ReadFile(rootPath)
	if err != nil {
		return nil, nil, err
	}
	return backup.RootKeySource(root), raw, nil
}

// openBackupFrom opens what verify and prune need: the destination, the
// live database (their outcome is audited there) and the key source.
func (a *app) openBackupFrom(from, kit string) (*backup.Destination, *store.DB, backup.KeySource, func(), error) {
	ds, err := a.openDestinations([]string{from})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	db, _, err := a.openBackupSource()
	if err != nil {
		closeAll(ds)
		return nil, nil, nil, nil, err
	}
	keyOf, _, err := a.keySource(kit, "")
	if err != nil {
		_ = db.Close()
		closeAll(ds)
		return nil, nil, nil, nil, err
	}
	return ds[0], db, keyOf, func() { _ = db.Close(); closeAll(ds) }, nil
}

func (a *app) backupListCmd() *cobra.Command {
	var from, kit string
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "list",
		Short:   "List the backups at a destination",
		Example: `  custos backup list --data ./data --from file:///srv/backups`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, err := a.openDestinations([]string{from})
			if err != nil {
				return err
			}
			defer closeAll(ds)
			keyOf, _, err := a.keySource(kit, "")
			if err != nil {
				return err
			}
			entries, err := backup.List(a.ctx, ds[0], keyOf)
			if err != nil {
				return err
			}
			if asJSON {
				if entries == nil {
					entries = []backup.Entry{}
				}
				return json.NewEncoder(a.stdout).Encode(entries)
			}
			if len(entries) == 0 {
				fmt.Fprintf(a.stdout, "no backups at %s\n", ds[0])
				return nil
			}
			fmt.Fprintf(a.stdout, "%-40s %-13s %-20s %10s  %s\n", "ID", "KIND", "CREATED", "STORED", "BASE")
			for _, e := range entries {
				switch {
				case e.Error != "":
					fmt.Fprintf(a.stdout, "%-40s %-13s %s\n", e.ID, "unreadable", oneLine(e.Error))
				case !e.Complete:
					fmt.Fprintf(a.stdout, "%-40s %-13s %s\n", e.ID, "incomplete", "(no manifest: being written or interrupted; never restored)")
				default:
					fmt.Fprintf(a.stdout, "%-40s %-13s %-20s %10s  %s\n", e.ID, e.Kind, e.CreatedAt.UTC().Format("2006-01-02 15:04:05Z"), mb(e.Bytes), e.Base)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "destination URL")
	cmd.Flags().StringVar(&kit, "kit", "", "recovery kit file (instead of the data directory's root key)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func (a *app) backupVerifyCmd() *cobra.Command {
	var from, id, kit string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Check a backup by restoring it into a scratch database",
		Long: `Download a backup and the backups it needs, check the manifests' signatures, the
chain's links and every chunk's hash, restore it into a scratch database and
compare each table's rows and content hash with the manifest. The outcome is
recorded in the audit trail (backup.verify). Exits 0 only when all of it holds.
Without --id, the newest backup is verified.`,
		Example: `  custos backup verify --data ./data --from file:///srv/backups --id 20261123T020000Z-incremental-3fa2c1`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ds, db, keyOf, done, err := a.openBackupFrom(from, kit)
			if err != nil {
				return err
			}
			defer done()
			v, err := backup.Verify(a.ctx, backup.VerifyOptions{From: ds, KeyOf: keyOf, ID: id, DB: db, Actor: operator().Actor})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]any{"id": v.ID, "chain": v.Chain, "ok": true, "seconds": v.Elapsed.Seconds()})
			}
			fmt.Fprintf(a.stdout, "backup %s verified: chain %s restored into a scratch database and matches its manifest (%s)\n",
				v.ID, strings.Join(v.Chain, " -> "), v.Elapsed.Round(time.Millisecond))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "destination URL")
	cmd.Flags().StringVar(&id, "id", "", "backup id (default: the newest)")
	cmd.Flags().StringVar(&kit, "kit", "", "recovery kit file (instead of the data directory's root key)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func (a *app) backupPruneCmd() *cobra.Command {
	var from, kit string
	var r backup.Retention
	var dryRun, asJSON bool
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Delete backups that the retention policy no longer keeps",
		Long: `Keep the newest backup of each of the last --keep-daily days, --keep-weekly ISO
weeks and --keep-monthly months (per database), the newest backup, and every
backup a kept one needs (an incremental is never orphaned); delete the rest,
manifest first. Backups left incomplete for more than a day are deleted too.`,
		Example: `  custos backup prune --data ./data --from file:///srv/backups --keep-daily 7 --keep-weekly 4 --keep-monthly 12 --dry-run`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := r.Validate(); err != nil {
				return usageError{err}
			}
			ds, db, keyOf, done, err := a.openBackupFrom(from, kit)
			if err != nil {
				return err
			}
			defer done()
			plan, err := backup.Prune(a.ctx, backup.PruneOptions{From: ds, KeyOf: keyOf, Retention: r, DryRun: dryRun, DB: db, Actor: operator().Actor})
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]any{"keep": ids(plan.Keep), "remove": ids(plan.Remove), "dry_run": dryRun})
			}
			verb := "removed"
			if dryRun {
				verb = "would remove"
			}
			for _, e := range plan.Remove {
				fmt.Fprintf(a.stdout, "%s %s\n", verb, e.ID)
			}
			fmt.Fprintf(a.stdout, "kept %d backup(s), %s %d\n", len(plan.Keep), verb, len(plan.Remove))
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "destination URL")
	cmd.Flags().StringVar(&kit, "kit", "", "recovery kit file (instead of the data directory's root key)")
	cmd.Flags().IntVar(&r.Daily, "keep-daily", backup.DefaultRetention.Daily, "daily restore points to keep")
	cmd.Flags().IntVar(&r.Weekly, "keep-weekly", backup.DefaultRetention.Weekly, "weekly restore points to keep")
	cmd.Flags().IntVar(&r.Monthly, "keep-monthly", backup.DefaultRetention.Monthly, "monthly restore points to keep")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "only show what would be removed")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}

func ids(es []backup.Entry) []string {
	out := []string{}
	for _, e := range es {
		out = append(out, e.ID)
	}
	return out
}

func (a *app) backupKitCmd() *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "kit",
		Short: "Export the recovery kit (once): what a restore needs on a new machine",
		Long: `Write the recovery kit: the backup key and the root key, encrypted with a
passphrase (scrypt, AES-256-GCM). With the kit and its passphrase, 'custos
restore --kit FILE' restores a backup on a new machine after the old one and
its root key are gone; without the kit or the root key a backup is useless.
Keep it offline, apart from the backups. The passphrase comes from
CUSTOS_KIT_PASSPHRASE or standard input (asked twice on a terminal), at least
12 characters. The kit can be exported once; the export is audited.`,
		Example: `  custos backup kit --data ./data --out /media/safe/custos-recovery.kit`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return usageError{errors.New("give the file to write with --out")}
			}
			db, root, err := a.openBackupSource()
			if err != nil {
				return err
			}
			defer db.Close()
			pass := a.env.get("CUSTOS_KIT_PASSPHRASE")
			if pass == "" {
				if pass, err = a.readSecret("recovery kit passphrase"); err != nil {
					return err
				}
			}
			raw, err := os.ReadFile(a.cfg.RootKeyPath())
			if err != nil {
				return err
			}
			id, err := backup.ExportKit(a.ctx, backup.KitOptions{DB: db, Root: root, RootKeyFile: raw, Passphrase: []byte(pass), Out: out, Actor: operator().Actor})
			if err != nil {
				return err
			}
			fmt.Fprintf(a.stdout, "recovery kit for backup key %s written to %s: store it offline, apart from the backups and the passphrase\n", id, out)
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "file to write (must not exist)")
	return cmd
}

func (a *app) backupHashCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "hash",
		Short: "Print the content hash of every backed-up table (to compare a restore with its source)",
		Long: `Print each backed-up table's row count and content hash, and a digest of them
all, computed from the ciphertext exactly as manifests are (so a SQLite and a
PostgreSQL copy of the same data agree). Reads only; writes nothing.`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			db, _, err := a.openBackupSourceWith(false)
			if err != nil {
				return err
			}
			defer db.Close()
			d, err := backup.ComputeDigest(a.ctx, db)
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(d)
			}
			for _, t := range d.Tables {
				fmt.Fprintf(a.stdout, "%-22s %9d  %s\n", t.Name, t.Rows, t.Hash)
			}
			fmt.Fprintf(a.stdout, "digest %s\n", d.Overall)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func (a *app) restoreCmd() *cobra.Command {
	var from, id, at, kit, rootKey string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Restore a backup into a new data directory",
		Long: `Restore a backup, and the backups it applies on top of, into a new data
directory (it must not exist or be empty) — or, with --db, into an empty
PostgreSQL database, the root key going into the data directory. A backup of
either engine restores into either engine.

Everything is checked before anything is written: every manifest's signature,
the chain's links, every chunk's presence and size; while loading, every
chunk's hash and authentication; afterwards, every table against the
manifest. Any failure leaves nothing behind.

The erasure ledgers found at the destination are applied afterwards: a
customer erased after the backup was taken does not come back.

Keys: the root key file of the old data directory (--root-key FILE, or
CUSTOS_ROOT_KEY_FILE), or the recovery kit (--kit FILE; passphrase from
CUSTOS_KIT_PASSPHRASE or standard input). Either is installed as the new data
directory's root key, so 'custos serve --data NEWDIR' starts on it.`,
		Example: `  custos restore --from file:///srv/backups --data ./restored --root-key /safe/root.key
  custos restore --from 's3://crm-backups?region=cn-north-1' --at 2026-11-20T12:00:00Z --data ./restored --kit /media/safe/custos-recovery.kit`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if id != "" && at != "" {
				return usageError{errors.New("give --id or --at, not both")}
			}
			var when time.Time
			if at != "" {
				var err error
				if when, err = parseWhen("at", at); err != nil {
					return err
				}
				if len(at) == len(time.DateOnly) {
					when = when.Add(24*time.Hour - time.Nanosecond) // the whole day
				}
			}
			if rootKey == "" {
				rootKey = a.env.get("CUSTOS_ROOT_KEY_FILE")
			}
			if kit != "" && rootKey != "" {
				return usageError{errors.New("give --kit or --root-key, not both")}
			}
			if kit == "" && rootKey == "" {
				return usageError{errors.New("give the old root key (--root-key FILE or CUSTOS_ROOT_KEY_FILE) or the recovery kit (--kit FILE)")}
			}
			ds, err := a.openDestinations([]string{from})
			if err != nil {
				return err
			}
			defer closeAll(ds)
			keyOf, rootFile, err := a.keySource(kit, rootKey)
			if err != nil {
				return err
			}
			if len(rootFile) == 0 {
				return errors.New("the recovery kit holds no root key: restore with --root-key")
			}
			bar := a.newByteProgress("restoring")
			r, err := backup.Restore(a.ctx, backup.RestoreOptions{From: ds[0], KeyOf: keyOf, ID: id, At: when, DataDir: a.cfg.DataDir, DSN: a.cfg.DB,
				RootKeyFile: rootFile, Actor: operator().Actor, Progress: func(done, total int64) { bar.setTotal(total); bar.set(done) }})
			bar.done()
			if err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(a.stdout).Encode(map[string]any{"id": r.ID, "chain": r.Chain, "digest": r.Digest.Overall, "erasures_applied": r.Erasures, "data": a.cfg.DataDir})
			}
			fmt.Fprintf(a.stdout, "restored backup %s (chain %s) into %s\ncontent digest %s (as at the backup; compare with `custos backup hash` of the source)\n",
				r.ID, strings.Join(r.Chain, " -> "), a.cfg.DataDir, r.Digest.Overall)
			if r.Erasures > 0 {
				fmt.Fprintf(a.stdout, "the erasure ledger erased %d customer(s) erased after the backup was taken\n", r.Erasures)
			}
			for _, w := range r.Warnings {
				fmt.Fprintf(a.stderr, "warning: %s\n", w)
			}
			fmt.Fprintf(a.stdout, "start it with: custos serve --data %s\n", a.cfg.DataDir)
			return nil
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "destination URL holding the backups")
	cmd.Flags().StringVar(&id, "id", "", "backup id (default: the newest)")
	cmd.Flags().StringVar(&at, "at", "", "restore the newest backup taken at or before this time (RFC 3339 or YYYY-MM-DD)")
	cmd.Flags().StringVar(&kit, "kit", "", "recovery kit file")
	cmd.Flags().StringVar(&rootKey, "root-key", "", "the old data directory's root key file (env CUSTOS_ROOT_KEY_FILE)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	_ = cmd.MarkFlagRequired("from")
	return cmd
}
