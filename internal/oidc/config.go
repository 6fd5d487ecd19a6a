package oidc

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/url"
	"slices"
	"strings"
)

// Config is the relying-party configuration for one OpenID provider. It is
// loaded once by the caller and passed to New as a value.
//
// String, Format and LogValue redact ClientSecret, so a stray %v, %+v, %#v or
// slog attribute cannot leak it.
type Config struct {
	// Issuer is the provider's issuer URL, e.g. https://idp.example.com.
	// Discovery reads Issuer + "/.well-known/openid-configuration" and the
	// document's issuer must equal it exactly.
	Issuer       string
	ClientID     string
	ClientSecret string // from CUSTOS_OIDC_CLIENT_SECRET; never printed
	// RedirectURL is registered with the provider, e.g.
	// https://crm.example.com/api/v1/auth/oidc/callback.
	RedirectURL string
	// Scopes requested; DefaultScopes when empty. Must include "openid".
	Scopes []string
	// RoleClaim names the top-level ID token claim ("groups", "custos_role")
	// whose value, a string or an array of strings, maps to a role through
	// RoleMap. The first value in claim order that RoleMap maps wins.
	RoleClaim string
	RoleMap   map[string]string // claim value -> Custos role name
	// MFAValues are the "amr" values (RFC 8176) any one of which means the
	// provider did multi-factor authentication; DefaultMFAValues when empty.
	MFAValues []string
	// MFAACR are the "acr" values that mean multi-factor authentication;
	// DefaultMFAACR when empty.
	MFAACR []string
}

// DefaultScopes are requested when Config.Scopes is empty.
var DefaultScopes = []string{"openid", "email", "profile"}

// DefaultMFAValues are the RFC 8176 "amr" values that on their own count as
// multi-factor when Config.MFAValues is empty: the explicit "mfa" and "mca".
// Otherwise the amr list must show methods of two different factor classes
// (something known, had or are: see factorClass) — a lone "otp" may be a
// passwordless email code, a lone "hwk" a key without user verification.
var DefaultMFAValues = []string{"mfa", "mca"}

// DefaultMFAACR are the "acr" values that count as multi-factor when
// Config.MFAACR is empty: the OpenID PAPE multi-factor policy and the OpenID
// EAP ACR values for phishing-resistant authentication.
var DefaultMFAACR = []string{
	"http://schemas.openid.net/pape/policies/2007/06/multi-factor",
	"phr",
	"phrh",
}

// Validate reports every problem with c at once. Empty Scopes, MFAValues and
// MFAACR are valid: New fills in the defaults.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf(format, args...))
	}
	if err := checkURL(c.Issuer, true); err != nil {
		bad("issuer: %v", err)
	}
	if strings.TrimSpace(c.ClientID) == "" {
		bad("client id is required")
	}
	if c.ClientSecret == "" {
		bad("client secret is required")
	}
	if err := checkURL(c.RedirectURL, false); err != nil {
		bad("redirect url: %v", err)
	}
	if len(c.Scopes) > 0 && !slices.Contains(c.Scopes, "openid") {
		bad(`scopes must include "openid"`)
	}
	for _, s := range c.Scopes {
		if s == "" || strings.ContainsAny(s, " \t\r\n") {
			bad("scope %q is not a single scope token", s)
		}
	}
	switch {
	case c.RoleClaim == "" && len(c.RoleMap) > 0:
		bad("role map is set but role claim is empty")
	case c.RoleClaim != "" && len(c.RoleMap) == 0:
		bad("role claim %q is set but role map is empty", c.RoleClaim)
	}
	for _, k := range slices.Sorted(maps.Keys(c.RoleMap)) {
		if k == "" || strings.TrimSpace(c.RoleMap[k]) == "" {
			bad("role map entry %q -> %q: both sides must be non-empty", k, c.RoleMap[k])
		}
	}
	if slices.Contains(c.MFAValues, "") {
		bad("mfa amr values must not contain an empty value")
	}
	if slices.Contains(c.MFAACR, "") {
		bad("mfa acr values must not contain an empty value")
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
	}
	return nil
}

// checkURL requires an absolute https URL without fragment (and without query
// for an issuer). Plain http is accepted only for loopback hosts, for local
// development against a provider on the same machine.
func checkURL(raw string, issuer bool) error {
	if raw == "" {
		return errors.New("required")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return errors.New("must be an absolute URL with a host, no user info and no fragment")
	}
	if issuer && u.RawQuery != "" {
		return errors.New("must not have a query")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return errors.New("must use https (http only for loopback hosts)")
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// withDefaults returns a copy of c with defaults filled in and no slice or map
// shared with the caller.
func (c Config) withDefaults() Config {
	c.Scopes = slices.Clone(c.Scopes)
	if len(c.Scopes) == 0 {
		c.Scopes = slices.Clone(DefaultScopes)
	}
	c.MFAValues = slices.Clone(c.MFAValues)
	if len(c.MFAValues) == 0 {
		c.MFAValues = slices.Clone(DefaultMFAValues)
	}
	c.MFAACR = slices.Clone(c.MFAACR)
	if len(c.MFAACR) == 0 {
		c.MFAACR = slices.Clone(DefaultMFAACR)
	}
	c.RoleMap = maps.Clone(c.RoleMap)
	return c
}

const redacted = "[REDACTED]"

// printableConfig has Config's fields but none of its methods, so printing it
// does not recurse into Format.
type printableConfig Config

func (c Config) printable() printableConfig {
	p := printableConfig(c)
	if p.ClientSecret != "" {
		p.ClientSecret = redacted
	}
	return p
}

// String prints the configuration with the client secret redacted.
func (c Config) String() string { return fmt.Sprintf("oidc.Config%+v", c.printable()) }

// GoString is String, so %#v redacts too.
func (c Config) GoString() string { return c.String() }

// Format implements fmt.Formatter: every verb prints String.
func (c Config) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(c.String())) }

// LogValue implements slog.LogValuer with the client secret redacted.
func (c Config) LogValue() slog.Value {
	secret := ""
	if c.ClientSecret != "" {
		secret = redacted
	}
	return slog.GroupValue(
		slog.String("issuer", c.Issuer),
		slog.String("client_id", c.ClientID),
		slog.String("client_secret", secret),
		slog.String("redirect_url", c.RedirectURL),
		slog.Any("scopes", c.Scopes),
		slog.String("role_claim", c.RoleClaim),
		slog.Any("role_map", c.RoleMap),
		slog.Any("mfa_values", c.MFAValues),
		slog.Any("mfa_acr", c.MFAACR),
	)
}
