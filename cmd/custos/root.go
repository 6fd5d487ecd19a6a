package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os/user"
	"strings"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/config"
	"github.com/custos/custos/internal/node"
)

// env is how the CLI reads CUSTOS_* variables (os.LookupEnv in main).
type env func(string) (string, bool)

func (e env) get(k string) string { v, _ := e(k); return v }

// app carries what every subcommand shares.
type app struct {
	ctx    context.Context
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	env    env
	cfg    config.Config
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, lookup func(string) (string, bool)) error {
	a := &app{ctx: ctx, stdin: stdin, stdout: stdout, stderr: stderr, env: lookup, cfg: config.Default()}
	a.cfg.FromEnv(lookup)
	root := &cobra.Command{
		Use:   "custos",
		Short: "Custos: a self-hosted CRM that keeps customer information from leaking, being tampered with or being lost",
		Long: `Custos keeps customers, contacts and interactions encrypted with a key per customer,
enforces who may see what on every path, and records who did what.

Secrets are never taken from the command line: passwords come from standard
input or CUSTOS_* environment variables.`,
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.PersistentFlags().StringVar(&a.cfg.DataDir, "data", a.cfg.DataDir, "data directory (env CUSTOS_DATA)")
	root.PersistentFlags().StringVar(&a.cfg.DB, "db", a.cfg.DB, "PostgreSQL URL postgres://...; empty: embedded SQLite in the data directory (env CUSTOS_DB)")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(a.initCmd(), a.serveCmd(), a.userCmd(), a.tokenCmd(), a.importCmd(), a.exportCmd(), a.demoCmd(), a.versionCmd(), a.roleCmd(), a.configCmd(), a.doctorCmd(), a.grantCmd(), a.auditCmd(), a.alertsCmd(), a.backupCmd(), a.restoreCmd())
	root.AddCommand(a.privacyCmd())
	cmd, err := root.ExecuteContextC(ctx)
	if err != nil && cmd != nil && isUsage(err) {
		return usageError{fmt.Errorf("%v (see %s --help)", err, cmd.CommandPath())}
	}
	return err
}

func isUsage(err error) bool {
	s := err.Error()
	return strings.HasPrefix(s, "unknown command") || strings.HasPrefix(s, "accepts ") || strings.HasPrefix(s, "requires ") ||
		strings.Contains(s, "unknown flag") || strings.Contains(s, "required flag")
}

// logger returns the server log: JSON on stderr.
func (a *app) logger() *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(a.cfg.LogLevel))
	return slog.New(slog.NewJSONHandler(a.stderr, &slog.HandlerOptions{Level: level}))
}

// open opens the data directory (creating it when create is set).
func (a *app) open(create bool) (*node.Node, error) {
	return node.Open(a.ctx, a.cfg, node.Options{Create: create, Actor: operator().Actor})
}

// operator is the principal of the person at the command line.
func operator() access.Principal {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	return access.Operator(name)
}

// exactArgs is cobra.ExactArgs with a usage error.
// withNode opens the data directory, runs fn and closes it again.
func (a *app) withNode(fn func(n *node.Node) error) error {
	n, err := a.open(false)
	if err != nil {
		return err
	}
	defer n.Close()
	return fn(n)
}

func exactArgs(n int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError{fmt.Errorf("%s takes %d argument(s), got %d (see --help)", cmd.CommandPath(), n, len(args))}
		}
		return nil
	}
}
