// Package oidc signs users in through an OpenID Connect provider with the
// authorization code flow, PKCE (S256), state and nonce.
//
// A login has two halves. Begin returns the provider URL to redirect the
// browser to and a Pending that the caller keeps (server-side, or in an
// encrypted, HttpOnly, short-lived cookie) until the provider redirects back.
// Finish checks the callback against that Pending, redeems the code at the
// token endpoint with the PKCE verifier, verifies the ID token (signature,
// issuer, audience, authorized party, expiry, nonce) and returns the Identity.
//
// The package knows nothing about Custos users: mapping an Identity to an
// account (by issuer and subject; by email only when EmailVerified) and
// checking that Role names an existing role is the caller's job.
package oidc

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// Kinds of error. Each error returned by Finish wraps exactly one of them;
// all but ErrExchange (which may be the provider being down) are the
// browser's or the provider's fault and map to 400/401 for the user.
var (
	ErrConfig   = errors.New("oidc: invalid configuration")
	ErrState    = errors.New("oidc: callback does not match the login attempt")
	ErrExpired  = errors.New("oidc: login attempt expired")
	ErrExchange = errors.New("oidc: code exchange failed")
	ErrIDToken  = errors.New("oidc: id token rejected")
)

// PendingMaxAge is how long a login attempt may take between Begin and Finish.
const PendingMaxAge = 10 * time.Minute

// clockSkew tolerates a Pending created slightly "in the future" when Begin
// and Finish run on different nodes.
const clockSkew = time.Minute

// DefaultHTTPTimeout bounds each request to the provider when New is given no
// client.
const DefaultHTTPTimeout = 30 * time.Second

// Provider is a configured relying party for one OpenID provider. It is safe
// for concurrent use once Now and Rand are set (or left nil).
type Provider struct {
	// Now is the clock; nil means time.Now. Tests replace it.
	Now func() time.Time
	// Rand is the randomness source for state, nonce and PKCE verifier; nil
	// means crypto/rand.Reader. Tests replace it.
	Rand io.Reader

	cfg      Config
	client   *http.Client
	oauth    oauth2.Config
	verifier *gooidc.IDTokenVerifier
}

// New discovers the provider at c.Issuer and returns a Provider. httpClient
// is used for discovery, the JWKS and the token endpoint; nil means a client
// with DefaultHTTPTimeout. ctx bounds discovery; its values (not its
// cancellation) stay with the key set for later key refreshes.
func New(ctx context.Context, c Config, httpClient *http.Client) (*Provider, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	if httpClient == nil {
		httpClient = &http.Client{Timeout: DefaultHTTPTimeout}
	}
	ctx = gooidc.ClientContext(ctx, httpClient)

	op, err := gooidc.NewProvider(ctx, c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("oidc: discovery for %s: %w", c.Issuer, err)
	}
	var meta struct {
		CodeChallengeMethods []string `json:"code_challenge_methods_supported"`
	}
	if err := op.Claims(&meta); err != nil {
		return nil, fmt.Errorf("oidc: discovery for %s: %w", c.Issuer, err)
	}
	// Providers often do not advertise PKCE at all; one that advertises it
	// without S256 would reject every login, so say so now.
	if len(meta.CodeChallengeMethods) > 0 && !slices.Contains(meta.CodeChallengeMethods, "S256") {
		return nil, fmt.Errorf("%w: provider %s does not support PKCE S256 (supports %q)", ErrConfig, c.Issuer, meta.CodeChallengeMethods)
	}

	p := &Provider{
		cfg:    c,
		client: httpClient,
		oauth: oauth2.Config{
			ClientID:     c.ClientID,
			ClientSecret: c.ClientSecret,
			Endpoint:     op.Endpoint(),
			RedirectURL:  c.RedirectURL,
			Scopes:       c.Scopes,
		},
	}
	p.verifier = op.VerifierContext(ctx, &gooidc.Config{ClientID: c.ClientID, Now: p.now})
	return p, nil
}

func (p *Provider) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

// random returns 256 random bits, base64url without padding (43 characters,
// a valid PKCE verifier).
func (p *Provider) random() (string, error) {
	r := p.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [32]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("oidc: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// Pending is one login attempt between Begin and Finish. It is secret: keep
// it server-side or in an encrypted, HttpOnly cookie that expires after
// PendingMaxAge, and use it once. Its String, Format and LogValue redact.
type Pending struct {
	State    string
	Nonce    string
	Verifier string // PKCE code verifier
	Created  time.Time
}

// String never prints the values, only whether they are set and Created.
func (pd Pending) String() string {
	set := func(s string) string {
		if s == "" {
			return "unset"
		}
		return "redacted"
	}
	return fmt.Sprintf("oidc.Pending{State:%s Nonce:%s Verifier:%s Created:%s}",
		set(pd.State), set(pd.Nonce), set(pd.Verifier), pd.Created.UTC().Format(time.RFC3339))
}

// GoString is String, so %#v redacts too.
func (pd Pending) GoString() string { return pd.String() }

// Format implements fmt.Formatter: every verb prints String.
func (pd Pending) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(pd.String())) }

// LogValue implements slog.LogValuer without the secret values.
func (pd Pending) LogValue() slog.Value { return slog.StringValue(pd.String()) }

// Begin starts a login: it returns the provider URL to redirect the browser
// to and the Pending to keep until the callback. Every call has a fresh
// state, nonce and PKCE verifier.
func (p *Provider) Begin() (authURL string, pending Pending, err error) {
	var vals [3]string
	for i := range vals {
		if vals[i], err = p.random(); err != nil {
			return "", Pending{}, err
		}
	}
	pending = Pending{State: vals[0], Nonce: vals[1], Verifier: vals[2], Created: p.now()}
	authURL = p.oauth.AuthCodeURL(pending.State,
		gooidc.Nonce(pending.Nonce),
		oauth2.S256ChallengeOption(pending.Verifier),
	)
	return authURL, pending, nil
}

// Identity is who the provider says signed in.
type Identity struct {
	Issuer        string
	Subject       string // stable id at Issuer; link accounts by Issuer+Subject
	Email         string // lowercased
	EmailVerified bool   // false unless the token says email_verified=true
	Name          string
	Role          string // RoleMap[first RoleClaim value that maps]; "" when none does
	MFA           bool   // the provider asserted MFA through amr or acr
	AMR           []string
	ACR           string
}

// Finish completes a login with the state and code from the callback query.
// It checks state against pending.State in constant time and pending's age
// (at most PendingMaxAge), exchanges the code with the PKCE verifier, and
// verifies the ID token: signature against the provider's JWKS, issuer,
// audience (and azp), expiry and nonce. The caller must drop pending
// whatever the outcome, so a callback cannot be replayed.
//
// Errors wrap ErrState, ErrExpired, ErrExchange or ErrIDToken and never
// contain the code, tokens, PKCE verifier or client secret.
func (p *Provider) Finish(ctx context.Context, pending Pending, state, code string) (Identity, error) {
	if pending.State == "" || pending.Nonce == "" || pending.Verifier == "" || pending.Created.IsZero() {
		return Identity{}, fmt.Errorf("%w: incomplete pending login", ErrState)
	}
	if subtle.ConstantTimeCompare([]byte(state), []byte(pending.State)) != 1 {
		return Identity{}, fmt.Errorf("%w: state mismatch", ErrState)
	}
	age := p.now().Sub(pending.Created)
	if age > PendingMaxAge {
		return Identity{}, fmt.Errorf("%w: started %s ago, limit %s", ErrExpired, age.Round(time.Second), PendingMaxAge)
	}
	if age < -clockSkew {
		return Identity{}, fmt.Errorf("%w: login attempt created in the future", ErrState)
	}
	if code == "" {
		return Identity{}, fmt.Errorf("%w: no authorization code", ErrState)
	}

	ctx = gooidc.ClientContext(ctx, p.client)
	tok, err := p.oauth.Exchange(ctx, code, oauth2.VerifierOption(pending.Verifier))
	if err != nil {
		return Identity{}, p.exchangeError(err, code, pending)
	}
	rawID, _ := tok.Extra("id_token").(string)
	if rawID == "" {
		return Identity{}, fmt.Errorf("%w: token response has no id_token", ErrExchange)
	}
	secrets := []string{rawID, tok.AccessToken, tok.RefreshToken, code, pending.Verifier, pending.Nonce, p.cfg.ClientSecret}

	idt, err := p.verifier.Verify(ctx, rawID)
	if err != nil {
		return Identity{}, scrub(fmt.Errorf("%w: %w", ErrIDToken, err), ErrIDToken, secrets...)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pending.Nonce)) != 1 {
		return Identity{}, fmt.Errorf("%w: nonce mismatch", ErrIDToken)
	}
	if idt.Subject == "" {
		return Identity{}, fmt.Errorf("%w: no subject", ErrIDToken)
	}
	var raw map[string]any
	if err := idt.Claims(&raw); err != nil {
		return Identity{}, scrub(fmt.Errorf("%w: claims: %w", ErrIDToken, err), ErrIDToken, secrets...)
	}
	// OpenID Connect Core 3.1.3.7: with several audiences, or any azp, the
	// authorized party must be us.
	switch azp, hasAZP := raw["azp"]; {
	case hasAZP && azp != p.cfg.ClientID:
		return Identity{}, fmt.Errorf("%w: authorized party %v is not this client", ErrIDToken, azp)
	case !hasAZP && len(idt.Audience) > 1:
		return Identity{}, fmt.Errorf("%w: several audiences and no authorized party", ErrIDToken)
	}

	id := identityFromClaims(p.cfg, raw)
	id.Issuer = idt.Issuer
	id.Subject = idt.Subject
	return id, nil
}

// exchangeError describes a failed code exchange without echoing anything
// the provider sent back beyond the OAuth error code, since a response body
// may carry tokens or our own request values.
func (p *Provider) exchangeError(err error, code string, pending Pending) error {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		status := 0
		if re.Response != nil {
			status = re.Response.StatusCode
		}
		if re.ErrorCode != "" {
			return fmt.Errorf("%w: token endpoint answered %d %s", ErrExchange, status, oauthErrorCode(re.ErrorCode))
		}
		return fmt.Errorf("%w: token endpoint answered %d", ErrExchange, status)
	}
	return scrub(fmt.Errorf("%w: %w", ErrExchange, err), ErrExchange, code, pending.Verifier, pending.Nonce, p.cfg.ClientSecret)
}

// oauthErrorCode keeps an OAuth error code only if it looks like one
// (RFC 6749 error codes are short ASCII words with underscores).
func oauthErrorCode(s string) string {
	if len(s) > 64 {
		return "(invalid error code)"
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.') {
			return "(invalid error code)"
		}
	}
	return s
}

// scrubbedError is err's text with secret values removed; it still matches
// its kind with errors.Is.
type scrubbedError struct {
	msg  string
	kind error
}

func (e *scrubbedError) Error() string { return e.msg }
func (e *scrubbedError) Unwrap() error { return e.kind }

// scrub returns err unchanged unless its text contains one of secrets; then
// it returns an error of the same kind with those values replaced.
func scrub(err error, kind error, secrets ...string) error {
	msg := err.Error()
	clean := msg
	for _, s := range secrets {
		if len(s) >= 4 {
			clean = strings.ReplaceAll(clean, s, redacted)
		}
	}
	if clean == msg {
		return err
	}
	return &scrubbedError{msg: clean, kind: kind}
}
