// Package config holds Custos's settings: defaults, CUSTOS_* environment
// variables and command-line flags, validated once and passed down as a value.
package config

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"time"
)

// Config is every setting of a Custos node.
type Config struct {
	DataDir string // CUSTOS_DATA, --data: database (SQLite), root key, TLS files
	DB      string // CUSTOS_DB, --db: postgres:// URL; empty means SQLite in DataDir

	Addr    string // CUSTOS_ADDR, --addr
	TLSCert string // --tls-cert
	TLSKey  string // --tls-key
	TLSMode string // --tls: "" or "self-signed"
	// PublicURL is the address browsers use (CUSTOS_PUBLIC_URL, --public-url),
	// e.g. https://crm.example.com; passkeys are bound to its host. Default:
	// derived from Addr (http://localhost:PORT on loopback).
	PublicURL string
	LogLevel  string // CUSTOS_LOG_LEVEL: debug, info, warn, error

	// Prometheus /metrics: on a separate listener (MetricsAddr), or on Addr
	// to scrapers presenting a bearer token. The token itself comes only
	// from CUSTOS_METRICS_TOKEN or the file, never from argv or this value.
	MetricsAddr      string // CUSTOS_METRICS_ADDR, --metrics-addr
	MetricsTokenFile string // CUSTOS_METRICS_TOKEN_FILE, --metrics-token-file

	// OIDC single sign-on; empty issuer: off. The client secret comes only
	// from CUSTOS_OIDC_CLIENT_SECRET.
	OIDCIssuer       string // CUSTOS_OIDC_ISSUER
	OIDCClientID     string // CUSTOS_OIDC_CLIENT_ID
	OIDCClientSecret string // CUSTOS_OIDC_CLIENT_SECRET
	OIDCRoleClaim    string // CUSTOS_OIDC_ROLE_CLAIM, e.g. groups
	OIDCRoleMap      string // CUSTOS_OIDC_ROLE_MAP, e.g. "crm-sales=sales,crm-admins=admin"

	SessionIdle     time.Duration
	SessionLifetime time.Duration
	KeyCacheSize    int
}

// Default returns the defaults.
func Default() Config {
	return Config{
		DataDir:         "./data",
		Addr:            "127.0.0.1:8080",
		LogLevel:        "info",
		SessionIdle:     30 * time.Minute,
		SessionLifetime: 12 * time.Hour,
		KeyCacheSize:    10000,
	}
}

// FromEnv overlays CUSTOS_* environment variables (lookup is os.LookupEnv in
// production, a map in tests).
func (c *Config) FromEnv(lookup func(string) (string, bool)) {
	if v, ok := lookup("CUSTOS_DATA"); ok && v != "" {
		c.DataDir = v
	}
	if v, ok := lookup("CUSTOS_DB"); ok && v != "" {
		c.DB = v
	}
	if v, ok := lookup("CUSTOS_ADDR"); ok && v != "" {
		c.Addr = v
	}
	if v, ok := lookup("CUSTOS_PUBLIC_URL"); ok && v != "" {
		c.PublicURL = v
	}
	for k, dst := range map[string]*string{"CUSTOS_OIDC_ISSUER": &c.OIDCIssuer, "CUSTOS_OIDC_CLIENT_ID": &c.OIDCClientID,
		"CUSTOS_OIDC_CLIENT_SECRET": &c.OIDCClientSecret, "CUSTOS_OIDC_ROLE_CLAIM": &c.OIDCRoleClaim, "CUSTOS_OIDC_ROLE_MAP": &c.OIDCRoleMap} {
		if v, ok := lookup(k); ok && v != "" {
			*dst = v
		}
	}
	if v, ok := lookup("CUSTOS_LOG_LEVEL"); ok && v != "" {
		c.LogLevel = v
	}
	if v, ok := lookup("CUSTOS_METRICS_ADDR"); ok && v != "" {
		c.MetricsAddr = v
	}
	if v, ok := lookup("CUSTOS_METRICS_TOKEN_FILE"); ok && v != "" {
		c.MetricsTokenFile = v
	}
}

// DatabaseDSN is what store.Open takes.
func (c Config) DatabaseDSN() string {
	if c.DB != "" {
		return c.DB
	}
	return filepath.Join(c.DataDir, "custos.db")
}

// RootKeyPath is the local root key file.
func (c Config) RootKeyPath() string { return filepath.Join(c.DataDir, "root.key") }

// AuditKeyPath is the Ed25519 key that signs audit checkpoints: its own
// file, apart from the database and the root key.
func (c Config) AuditKeyPath() string { return filepath.Join(c.DataDir, "audit", "signing.key") }

// AuditCheckpointPath is the append-only file of signed audit checkpoints.
func (c Config) AuditCheckpointPath() string {
	return filepath.Join(c.DataDir, "audit", "checkpoints.jsonl")
}

// AuditTrustedDir holds the checkpoint public keys (*.pem) of the other
// nodes sharing this database.
func (c Config) AuditTrustedDir() string { return filepath.Join(c.DataDir, "audit", "trusted") }

// AuditArchiveDir holds pruned audit segments.
func (c Config) AuditArchiveDir() string { return filepath.Join(c.DataDir, "audit", "archive") }

// Validate checks the settings that do not depend on the serving address.
func (c Config) Validate() error {
	var errs []error
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data directory must not be empty"))
	}
	if c.DB != "" && !strings.HasPrefix(c.DB, "postgres://") && !strings.HasPrefix(c.DB, "postgresql://") {
		errs = append(errs, errors.New("--db must be a postgres:// URL (leave it empty for the embedded SQLite database)"))
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log level must be debug, info, warn or error"))
	}
	if c.KeyCacheSize <= 0 {
		errs = append(errs, errors.New("key cache size must be positive"))
	}
	return errors.Join(errs...)
}

// ValidateServe adds the checks of `custos serve`: plain HTTP only on a
// loopback address; anything else needs TLS.
func (c Config) ValidateServe() error {
	if err := c.Validate(); err != nil {
		return err
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil || port == "" {
		return fmt.Errorf("--addr must be HOST:PORT, e.g. 127.0.0.1:8080")
	}
	switch c.TLSMode {
	case "", "self-signed":
	default:
		return fmt.Errorf("--tls takes only \"self-signed\" (or give --tls-cert and --tls-key)")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together")
	}
	if c.TLSCert != "" && c.TLSMode != "" {
		return errors.New("give either --tls self-signed or --tls-cert/--tls-key, not both")
	}
	if !c.TLS() && !isLoopback(host) {
		return fmt.Errorf("refusing plain HTTP on %s: it is not a loopback address; use --tls self-signed or --tls-cert/--tls-key", c.Addr)
	}
	if c.MetricsAddr != "" {
		if _, mport, err := net.SplitHostPort(c.MetricsAddr); err != nil || mport == "" {
			return fmt.Errorf("--metrics-addr must be HOST:PORT, e.g. 127.0.0.1:9090")
		}
		if c.MetricsAddr == c.Addr {
			return errors.New("--metrics-addr must differ from --addr (leave it empty to serve /metrics on --addr with a token)")
		}
	}
	return nil
}

// MetricsOnLoopback reports whether the separate metrics listener is on a
// loopback address (serve warns when it is not and no token protects it).
func (c Config) MetricsOnLoopback() bool {
	host, _, err := net.SplitHostPort(c.MetricsAddr)
	return err == nil && isLoopback(host)
}

// TLS reports whether serve uses TLS.
func (c Config) TLS() bool { return c.TLSMode != "" || c.TLSCert != "" }

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Origin is the public origin of the web interface: PublicURL, or derived
// from Addr (a loopback address becomes localhost, the only host on which
// browsers allow passkeys over plain HTTP).
func (c Config) Origin() string {
	if c.PublicURL != "" {
		return strings.TrimSuffix(c.PublicURL, "/")
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return "http://localhost:8080"
	}
	scheme := "http"
	if c.TLS() {
		scheme = "https"
	}
	if isLoopback(host) || host == "" {
		host = "localhost"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}

// OIDCRoles parses OIDCRoleMap ("claim-value=role, ...").
func (c Config) OIDCRoles() (map[string]string, error) {
	m := map[string]string{}
	for _, pair := range strings.FieldsFunc(c.OIDCRoleMap, func(r rune) bool { return r == ',' || r == ';' || r == '\n' }) {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || strings.TrimSpace(k) == "" || strings.TrimSpace(v) == "" {
			return nil, fmt.Errorf("CUSTOS_OIDC_ROLE_MAP: %q is not claim-value=role", pair)
		}
		m[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return m, nil
}
