package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/custos/custos/internal/backup"
	"github.com/custos/custos/internal/crm"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/node"
	"github.com/custos/custos/internal/web"
)

func (a *app) serveCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Serve the API and web interface",
		Long: `Serve Custos over HTTP(S). On first start it initializes the data directory
like 'custos init' and prints how to log in.

Plain HTTP is allowed only on a loopback address. Any other address needs TLS:
--tls-cert/--tls-key, or --tls self-signed to generate and keep a certificate in
the data directory.

Prometheus metrics (docs/metrics.md) are served only when asked for: on a
separate address with --metrics-addr, or at /metrics on --addr to scrapers
presenting the bearer token from CUSTOS_METRICS_TOKEN or --metrics-token-file.`,
		Example: `  custos serve --data ./data --addr 127.0.0.1:8080
  custos serve --addr 0.0.0.0:8443 --tls self-signed
  custos serve --metrics-addr 127.0.0.1:9090`,
		Args: exactArgs(0),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runServe() },
	}
	f := cmd.Flags()
	f.StringVar(&a.cfg.Addr, "addr", a.cfg.Addr, "listen address HOST:PORT (env CUSTOS_ADDR)")
	f.StringVar(&a.cfg.TLSCert, "tls-cert", "", "TLS certificate file (PEM)")
	f.StringVar(&a.cfg.TLSKey, "tls-key", "", "TLS private key file (PEM)")
	f.StringVar(&a.cfg.TLSMode, "tls", "", `"self-signed": generate and keep a certificate in the data directory`)
	f.StringVar(&a.cfg.LogLevel, "log-level", a.cfg.LogLevel, "debug, info, warn or error (env CUSTOS_LOG_LEVEL)")
	f.StringVar(&a.cfg.PublicURL, "public-url", a.cfg.PublicURL, "the URL browsers use, e.g. https://crm.example.com (env CUSTOS_PUBLIC_URL; passkeys are bound to its host)")
	f.StringVar(&a.cfg.MetricsAddr, "metrics-addr", a.cfg.MetricsAddr, "serve Prometheus /metrics on this separate HOST:PORT, e.g. 127.0.0.1:9090 (env CUSTOS_METRICS_ADDR)")
	f.StringVar(&a.cfg.MetricsTokenFile, "metrics-token-file", a.cfg.MetricsTokenFile, "file with the bearer token scrapers must present (or env CUSTOS_METRICS_TOKEN); without --metrics-addr, /metrics is then served on --addr (env CUSTOS_METRICS_TOKEN_FILE)")
	return cmd
}

func (a *app) runServe() error {
	if err := a.cfg.ValidateServe(); err != nil {
		return usageError{err}
	}
	metricsToken, err := a.metricsToken()
	if err != nil {
		return usageError{err}
	}
	log := a.logger()
	n, err := node.Open(a.ctx, a.cfg, node.Options{Create: true, Logger: log, Actor: operator().Actor})
	if err != nil {
		return err
	}
	defer n.Close()
	scheme := "http"
	var tlsCfg *tls.Config
	if a.cfg.TLS() {
		scheme = "https"
		if tlsCfg, err = a.tlsConfig(); err != nil {
			return err
		}
	}
	url := scheme + "://" + a.cfg.Addr
	if n.Created {
		fmt.Fprintf(a.stdout, "Initialized Custos in %s (database: %s).\n", a.cfg.DataDir, n.DB.Location)
	}
	fa, err := n.EnsureFirstAdmin(a.ctx, "system", a.env.get("CUSTOS_ADMIN_EMAIL"), a.env.get("CUSTOS_ADMIN_PASSWORD"))
	if err != nil {
		return err
	}
	printFirstAdmin(a.stdout, fa, url, a.cfg.DataDir)

	sm, err := a.startMetrics(n, log, metricsToken)
	if err != nil {
		return err
	}
	defer sm.stop()
	srv := web.New(n.DB, n.Auth, n.CRM, web.Options{Logger: log, TLS: tlsCfg != nil, Passkeys: n.Passkeys, SSO: n.SSO,
		Metrics: sm.M, MetricsToken: sm.MainToken})
	ln, err := net.Listen("tcp", a.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", a.cfg.Addr, err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      10 * time.Minute, // exports stream for a while
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		TLSConfig:         tlsCfg,
		ErrorLog:          nil,
	}
	fmt.Fprintf(a.stdout, "Custos is serving on %s (data: %s). Press Ctrl-C to stop.\n", url, a.cfg.DataDir)
	log.Info("serving", "addr", ln.Addr().String(), "tls", tlsCfg != nil, "database", n.DB.Location)
	errc := make(chan error, 1)
	go func() {
		if tlsCfg != nil {
			errc <- hs.ServeTLS(ln, "", "")
		} else {
			errc <- hs.Serve(ln)
		}
	}()
	jobs, stopJobs := context.WithCancel(a.ctx)
	jobsDone, auditDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(jobsDone); poolSweeper(jobs, n.CRM, log, time.Hour) }()
	// Expired export files are deleted; waited for after stopJobs below.
	exportsDone := make(chan struct{})
	go func() { defer close(exportsDone); exportSweeper(jobs, n.CRM, log, 5*time.Minute) }()
	defer func() { <-exportsDone }()
	// Checkpoints, incremental and daily verification, retention.
	go func() { defer close(auditDone); n.AuditJobs().Run(jobs) }()
	// The stream detectors (alerts only; blocking rules run on the request path).
	detectorsDone := make(chan struct{})
	go func() { defer close(detectorsDone); n.Monitor.Run(jobs, 2*time.Second) }()
	// Scheduled backups, verification, pruning and the erasure ledger
	// (settings backup.*), each job once across nodes.
	backupsDone := make(chan struct{})
	root, rootErr := keys.OpenLocalFile(a.cfg.RootKeyPath())
	sched := &backup.Scheduler{DB: n.DB, Root: root, Env: a.env, Log: log}
	go func() {
		defer close(backupsDone)
		if rootErr != nil {
			log.Error("scheduled backups are off: the root key does not open", "err", rootErr)
			return
		}
		periodically(jobs, time.Minute, func(ctx context.Context) {
			if err := sched.Tick(ctx); err != nil && ctx.Err() == nil {
				log.Error("backup schedule", "err", err)
			}
		})
	}()
	defer func() { stopJobs(); <-jobsDone; <-auditDone; <-detectorsDone; <-backupsDone }()
	// Alert notifications: from the outbox to the sinks, off the request path.
	notifyCtx, stopNotify := context.WithCancel(a.ctx)
	notifyDone := make(chan struct{})
	go func() { defer close(notifyDone); n.Notifier.Run(notifyCtx) }()
	defer func() { stopNotify(); <-notifyDone }()
	select {
	case err := <-errc:
		return err
	case <-a.ctx.Done():
	}
	log.Info("shutting down")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := hs.Shutdown(ctx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *app) tlsConfig() (*tls.Config, error) {
	certFile, keyFile := a.cfg.TLSCert, a.cfg.TLSKey
	if a.cfg.TLSMode == "self-signed" {
		dir := filepath.Join(a.cfg.DataDir, "tls")
		certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		if _, err := os.Stat(certFile); errors.Is(err, os.ErrNotExist) {
			if err := selfSigned(dir, certFile, keyFile); err != nil {
				return nil, err
			}
		}
	}
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// selfSigned writes a P-256 certificate for this host, valid for a year.
func selfSigned(dir, certFile, keyFile string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "Custos self-signed", Organization: []string{"Custos"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(1, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if host != "" {
		tmpl.DNSNames = append(tmpl.DNSNames, host)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	kb, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}

// poolSweeper returns dormant customers to the public pool (and warns their
// owners first) every interval, starting a minute after start-up.
func poolSweeper(ctx context.Context, c *crm.Service, log *slog.Logger, every time.Duration) {
	periodically(ctx, every, func(ctx context.Context) {
		rep, err := c.SweepPool(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Error("pool sweep failed", "err", err)
		case rep.Warned+rep.Returned > 0:
			log.Info("pool sweep", "warned", rep.Warned, "returned", rep.Returned)
		}
	})
}

// periodically runs fn every interval, the first time a minute after
// start-up, until ctx ends.
func periodically(ctx context.Context, every time.Duration, fn func(context.Context)) {
	t := time.NewTimer(time.Minute)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		fn(ctx)
		t.Reset(every)
	}
}
