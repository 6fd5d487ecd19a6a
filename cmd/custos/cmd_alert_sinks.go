package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/monitor"
	"github.com/custos/custos/internal/node"
)

// Environment variables the sink secrets may come from.
const (
	envSinkURL    = "CUSTOS_SINK_URL"
	envSinkSecret = "CUSTOS_SINK_SECRET"
)

// sinkFlags are the settings of `alerts sinks add` and `update` that are
// not secret. Secrets (a robot's URL, the webhook or signing secret, the
// SMTP password) never come from argv.
type sinkFlags struct {
	name, kind, minSeverity   string
	disabled, enable, disable bool
	url, urlFile, secretFile  string
	host                      string
	port                      int
	tls, username, from       string
	to                        []string
	network, facility         string
}

func (f *sinkFlags) register(cmd *cobra.Command, add bool) {
	fl := cmd.Flags()
	if add {
		fl.StringVar(&f.name, "name", "", "the sink's name: a-z, 0-9, '_', '.', '-' (required)")
		fl.StringVar(&f.kind, "kind", "", "webhook, wecom, dingtalk, slack, smtp or syslog (required)")
		fl.StringVar(&f.minSeverity, "min-severity", "medium", "the least severe alert sent: info, low, medium, high or critical")
		fl.BoolVar(&f.disabled, "disabled", false, "add it disabled")
	} else {
		fl.StringVar(&f.minSeverity, "min-severity", "", "the least severe alert sent: info, low, medium, high or critical")
		fl.BoolVar(&f.enable, "enable", false, "enable the sink")
		fl.BoolVar(&f.disable, "disable", false, "disable the sink (its queued alerts wait)")
	}
	fl.StringVar(&f.url, "url", "", "webhook only: the receiver's URL, if it carries no credentials (no query, no user info)")
	fl.StringVar(&f.urlFile, "url-file", "", "read the URL from this file (- for standard input); robot URLs carry their key, so they come from here, "+envSinkURL+" or standard input")
	fl.StringVar(&f.secretFile, "secret-file", "", "read the secret from this file (- for standard input): the webhook's HMAC secret, DingTalk's signing secret or the SMTP password; else "+envSinkSecret+" or standard input")
	fl.StringVar(&f.host, "host", "", "smtp, syslog: the server")
	fl.IntVar(&f.port, "port", 0, "smtp, syslog: the port (smtp: 587 starttls, 465 tls, 25 none; syslog: 514, 6514 over tls)")
	fl.StringVar(&f.tls, "tls", "", "smtp: starttls (default), tls, or none (loopback servers only)")
	fl.StringVar(&f.username, "username", "", "smtp: the user name (the password is read as the secret)")
	fl.StringVar(&f.from, "from", "", "smtp: the sender address")
	fl.StringSliceVar(&f.to, "to", nil, "smtp: recipient addresses (repeat or separate with commas)")
	fl.StringVar(&f.network, "network", "", "syslog: udp, tcp (default) or tls")
	fl.StringVar(&f.facility, "facility", "", "syslog: the facility (default "+monitor.DefaultFacility+")")
}

// secretSource names a secret and where else it may come from.
type secretSource struct{ what, fileFlag, env string }

var (
	urlSource        = secretSource{"URL", "--url-file", envSinkURL}
	sinkSecretSource = secretSource{"secret", "--secret-file", envSinkSecret}
)

// secretReader reads the secrets of one command: from files, the
// environment or standard input, one line per secret, in the order asked.
type secretReader struct {
	a     *app
	lines *bufio.Reader
}

func (a *app) newSecretReader() *secretReader {
	return &secretReader{a: a, lines: bufio.NewReader(io.LimitReader(a.stdin, 64<<10))}
}

// fromFile reads a one-line secret from path ("-": standard input).
func (s *secretReader) fromFile(src secretSource, path string) (string, error) {
	if path == "-" {
		return s.fromStdin(src, false)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", usageError{fmt.Errorf("read the %s: %w", src.what, err)}
	}
	v := strings.TrimSpace(string(b))
	if v == "" || strings.ContainsAny(v, "\r\n") {
		return "", usageError{fmt.Errorf("the %s file %s must hold one non-empty line", src.what, path)}
	}
	return v, nil
}

// fromStdin reads the next line of standard input, or asks without echo
// on a terminal. optional allows an empty answer.
func (s *secretReader) fromStdin(src secretSource, optional bool) (string, error) {
	var v string
	if f, ok := s.a.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		prompt := src.what
		if optional {
			prompt += " (empty for none)"
		}
		fmt.Fprintf(s.a.stderr, "%s: ", prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(s.a.stderr)
		if err != nil {
			return "", err
		}
		v = strings.TrimSpace(string(b))
	} else {
		line, err := s.lines.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the %s from standard input: %w", src.what, err)
		}
		v = strings.TrimSpace(line)
	}
	if v == "" && !optional {
		return "", usageError{fmt.Errorf("no %s given: pass it on standard input, with %s or in %s (never as an argument)", src.what, src.fileFlag, src.env)}
	}
	return v, nil
}

// get returns a secret from file, else its environment variable, else
// standard input (when ask). The empty string means none given.
func (s *secretReader) get(src secretSource, file string, ask, optional bool) (string, error) {
	switch {
	case file != "":
		return s.fromFile(src, file)
	case s.a.env.get(src.env) != "":
		return s.a.env.get(src.env), nil
	case ask:
		return s.fromStdin(src, optional)
	}
	return "", nil
}

// input turns the flags and secrets into the input of crm. add asks for
// the secrets the kind needs; update reads only those named by a file flag.
func (f *sinkFlags) input(s *secretReader, add bool, kind string) (crm.AlertSinkInput, error) {
	in := crm.AlertSinkInput{Name: f.name, Kind: f.kind, MinSeverity: f.minSeverity, Host: f.host, Port: f.port, TLS: f.tls,
		Username: f.username, From: f.from, To: f.to, Network: f.network, Facility: f.facility}
	if add {
		enabled := !f.disabled
		in.Enabled = &enabled
	} else {
		switch {
		case f.enable && f.disable:
			return in, usageError{errors.New("give --enable or --disable, not both")}
		case f.enable, f.disable:
			in.Enabled = &f.enable
		}
	}
	usesURL := kind == monitor.KindWebhook || kind == monitor.KindWeCom || kind == monitor.KindDingTalk || kind == monitor.KindSlack
	if f.url != "" {
		if f.urlFile != "" {
			return in, usageError{errors.New("give --url or --url-file, not both")}
		}
		u, err := url.Parse(f.url)
		switch {
		case kind != monitor.KindWebhook && kind != "":
			return in, usageError{fmt.Errorf("a %s robot's URL carries its key: give it with --url-file, %s or standard input, never as an argument", kind, envSinkURL)}
		case err != nil || u.RawQuery != "" || u.User != nil:
			return in, usageError{fmt.Errorf("this URL may carry credentials (query or user info): give it with --url-file, %s or standard input, never as an argument", envSinkURL)}
		}
		in.URL = f.url
	}
	var err error
	if in.URL == "" && usesURL {
		if in.URL, err = s.get(urlSource, f.urlFile, add, false); err != nil {
			return in, err
		}
	} else if in.URL == "" && f.urlFile != "" {
		return in, usageError{fmt.Errorf("%s sinks have no URL", kind)}
	}
	needSecret := kind == monitor.KindWebhook || (kind == monitor.KindSMTP && f.username != "")
	optional := kind == monitor.KindDingTalk
	secret := ""
	switch {
	case needSecret || optional:
		if secret, err = s.get(sinkSecretSource, f.secretFile, add, optional); err != nil {
			return in, err
		}
	case f.secretFile != "" && add:
		return in, usageError{fmt.Errorf("%s sinks take no secret", kind)}
	case f.secretFile != "":
		if secret, err = s.fromFile(sinkSecretSource, f.secretFile); err != nil {
			return in, err
		}
	}
	if kind == monitor.KindSMTP {
		in.Password = secret
	} else {
		in.Secret = secret
	}
	return in, nil
}

func (a *app) alertSinksCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "sinks", Short: "Manage where alerts are sent: webhook, WeCom, DingTalk, Slack, e-mail, syslog",
		Long: `An alert sink receives every alert at or above its minimum severity. Alerts
are queued in the transaction that raises them and sent by 'custos serve' in
the background, retried for up to a day; a sink that keeps failing shows in
'custos alerts sinks list'.

Secrets never come from the command line. A chat robot's URL (it carries the
robot's key) comes from --url-file, ` + envSinkURL + ` or the first line of
standard input; the webhook's HMAC secret, DingTalk's signing secret or the
SMTP password from --secret-file, ` + envSinkSecret + ` or the next line of
standard input. They are stored sealed and never shown again. See docs/alerts.md.`}
	var asJSON bool
	list := &cobra.Command{
		Use: "list", Short: "List sinks with their status (never their secrets)", Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withNode(func(n *node.Node) error {
				ks, err := n.CRM.ListAlertSinks(a.ctx, operator())
				if err != nil {
					return err
				}
				if asJSON {
					enc := json.NewEncoder(a.stdout)
					enc.SetIndent("", "  ")
					return enc.Encode(crm.Page[crm.AlertSink]{Items: ks})
				}
				tw := tabwriter.NewWriter(a.stdout, 2, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tKIND\tMIN\tENABLED\tTARGET\tLAST OK\tFAILURES\tPENDING\tFAILED\tLAST ERROR")
				for _, k := range ks {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%t\t%s\t%s\t%d\t%d\t%d\t%s\n", k.Name, k.Kind, k.MinSeverity, k.Enabled, k.Target,
						when(k.LastOKAt), k.ConsecutiveFailures, k.Pending, k.Failed, orDash(k.LastError))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, `print {"items": [...]} as the API does`)

	var addF sinkFlags
	add := &cobra.Command{
		Use: "add", Short: "Add a sink", Args: exactArgs(0),
		Example: `  # A signed webhook (the secret on standard input):
  printf '%s\n' "$HOOK_SECRET" | custos alerts sinks add --data ./data --name siem --kind webhook \
      --url https://siem.example.com/custos --min-severity low
  # A WeCom group robot (its URL, key included, from a file):
  custos alerts sinks add --data ./data --name oncall --kind wecom --url-file ./wecom-url --min-severity high
  # DingTalk with a signing secret (URL then secret on standard input):
  printf '%s\n%s\n' "$DING_URL" "$DING_SECRET" | custos alerts sinks add --data ./data --name ding --kind dingtalk
  # E-mail (the password from the environment):
  CUSTOS_SINK_SECRET=... custos alerts sinks add --data ./data --name mail --kind smtp --host smtp.example.com \
      --username custos --from custos@example.com --to security@example.com,ciso@example.com
  # Syslog (RFC 5424) to a SIEM over TLS:
  custos alerts sinks add --data ./data --name siem-syslog --kind syslog --host siem.example.com --network tls`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if addF.name == "" || addF.kind == "" {
				return usageError{errors.New("--name and --kind are required")}
			}
			in, err := addF.input(a.newSecretReader(), true, addF.kind)
			if err != nil {
				return err
			}
			return a.withNode(func(n *node.Node) error {
				k, err := n.CRM.CreateAlertSink(a.ctx, operator(), in)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "sink %s added: %s to %s, alerts of severity %s and above\n", k.Name, k.Kind, k.Target, k.MinSeverity)
				return nil
			})
		},
	}
	addF.register(add, true)

	var updF sinkFlags
	update := &cobra.Command{
		Use: "update NAME", Short: "Change a sink: only the settings given change", Args: exactArgs(1),
		Example: `  custos alerts sinks update --data ./data siem --min-severity high
  custos alerts sinks update --data ./data oncall --disable
  custos alerts sinks update --data ./data siem --secret-file - < new-secret`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				kind := ""
				ks, err := n.CRM.ListAlertSinks(a.ctx, operator())
				if err != nil {
					return err
				}
				for _, k := range ks {
					if k.Name == args[0] {
						kind = k.Kind
					}
				}
				if kind == "" {
					return fmt.Errorf("no sink named %q", args[0])
				}
				in, err := updF.input(a.newSecretReader(), false, kind)
				if err != nil {
					return err
				}
				k, err := n.CRM.UpdateAlertSink(a.ctx, operator(), args[0], in)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "sink %s: %s to %s, severity %s and above, enabled %t\n", k.Name, k.Kind, k.Target, k.MinSeverity, k.Enabled)
				return nil
			})
		},
	}
	updF.register(update, false)

	remove := &cobra.Command{
		Use: "remove NAME", Short: "Remove a sink with the alerts still queued for it; its secrets are destroyed", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				if err := n.CRM.DeleteAlertSink(a.ctx, operator(), args[0]); err != nil {
					if errors.Is(err, crm.ErrNotFound) {
						return fmt.Errorf("no sink named %q", args[0])
					}
					return err
				}
				fmt.Fprintf(a.stdout, "sink %s removed\n", args[0])
				return nil
			})
		},
	}
	test := &cobra.Command{
		Use: "test NAME", Short: "Send a test message to a sink now and report the outcome", Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withNode(func(n *node.Node) error {
				res, err := n.CRM.TestAlertSink(a.ctx, operator(), args[0])
				if errors.Is(err, crm.ErrNotFound) {
					return fmt.Errorf("no sink named %q", args[0])
				}
				if err != nil {
					return err
				}
				if !res.OK {
					return fmt.Errorf("sink %s: the test message was not delivered: %s", res.Sink, res.Error)
				}
				fmt.Fprintf(a.stdout, "sink %s: test message %s delivered\n", res.Sink, res.MessageID)
				return nil
			})
		},
	}
	cmd.AddCommand(list, add, update, remove, test)
	return cmd
}

func when(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
