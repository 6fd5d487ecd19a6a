package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/node"
)

func (a *app) initCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Initialize a data directory: root key, database, first administrator",
		Long: `Initialize a data directory: create the root key file (mode 0600), the database
and its keys, and the first administrator.

The administrator's email and password come from CUSTOS_ADMIN_EMAIL and
CUSTOS_ADMIN_PASSWORD. Without them, the email is admin@custos.local and a
one-time password is generated and printed once.

Running init on an initialized directory changes nothing.`,
		Example: `  CUSTOS_ADMIN_EMAIL=it@example.com CUSTOS_ADMIN_PASSWORD='...' custos init --data /srv/custos`,
		Args:    exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := a.open(true)
			if err != nil {
				return err
			}
			defer n.Close()
			if !n.Created {
				fmt.Fprintf(a.stdout, "Custos data directory %s is already initialized (database: %s).\n", a.cfg.DataDir, n.DB.Location)
			} else {
				fmt.Fprintf(a.stdout, "Initialized Custos in %s (database: %s, root key: %s).\n", a.cfg.DataDir, n.DB.Location, a.cfg.RootKeyPath())
				fmt.Fprintln(a.stdout, "Back up the root key file apart from the database: without it the data cannot be read.")
			}
			fa, err := n.EnsureFirstAdmin(a.ctx, operator().Actor, a.env.get("CUSTOS_ADMIN_EMAIL"), a.env.get("CUSTOS_ADMIN_PASSWORD"))
			if err != nil {
				return err
			}
			printFirstAdmin(a.stdout, fa, "http://"+a.cfg.Addr, a.cfg.DataDir)
			return nil
		},
	}
}

func printFirstAdmin(w io.Writer, fa *node.FirstAdmin, url, dataDir string) {
	if fa == nil {
		return
	}
	fmt.Fprintf(w, "\nFirst administrator: %s\n", fa.Email)
	if fa.Generated {
		fmt.Fprintf(w, "One-time password:   %s\n", fa.Password)
		fmt.Fprintln(w, "(shown only now; store it safely and change it after the first login)")
	} else {
		fmt.Fprintln(w, "Password:            the one given in CUSTOS_ADMIN_PASSWORD")
	}
	fmt.Fprintf(w, "\nSign in at %s/login (administrators set up a second factor at their first sign-in),\n", url)
	fmt.Fprintf(w, "or get a session for the API:\n")
	fmt.Fprintf(w, "  curl -c cookies.txt -H 'Content-Type: application/json' -d '{\"email\":\"%s\",\"password\":\"...\"}' %s/api/v1/auth/login\n", fa.Email, url)
	fmt.Fprintf(w, "or an API token:\n  custos token create --data %s --user %s --name cli --ttl 24h\n\n", dataDir, fa.Email)
}
