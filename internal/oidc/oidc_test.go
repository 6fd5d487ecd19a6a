package oidc_test

import (
	"github.com/custos/custos/internal/oidc"
	"github.com/custos/custos/internal/oidc/oidctest"

	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
)

func newProvider(t *testing.T, idp *oidctest.IdP, cfg oidc.Config) *oidc.Provider {
	t.Helper()
	p, err := oidc.New(context.Background(), cfg, idp.Client())
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return p
}

func TestLogin(t *testing.T) {
	type tamper struct {
		state, code string // replace the callback's values when set
		verifier    string // replace the pending PKCE verifier when set
		later       time.Duration
	}
	tests := []struct {
		name     string
		cfg      func(*oidc.Config)
		claims   func(map[string]any)
		otherKey bool   // the provider signs with a key not in its JWKS
		secret   string // the client authenticates with this secret instead
		tamper   tamper
		wantErr  error
		want     oidc.Identity // Issuer is filled in by the test
		noTokens bool          // the token endpoint must not have been called
		refusal  string        // the token endpoint must have refused first for this reason
	}{
		{
			name: "happy path: role from groups array, MFA from amr",
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name: "MFA from acr",
			cfg:  func(c *oidc.Config) { c.MFAACR = []string{"urn:example:acr:mfa"} },
			claims: func(c map[string]any) {
				c["amr"] = []string{"pwd"}
				c["acr"] = "urn:example:acr:mfa"
			},
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd"}, ACR: "urn:example:acr:mfa",
			},
		},
		{
			name: "MFA from default acr phrh",
			claims: func(c map[string]any) {
				delete(c, "amr")
				c["acr"] = "phrh"
			},
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", MFA: true, ACR: "phrh",
			},
		},
		{
			name: "no MFA: password only, acr not listed",
			claims: func(c map[string]any) {
				c["amr"] = []string{"pwd"}
				c["acr"] = "urn:example:acr:password"
			},
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", AMR: []string{"pwd"}, ACR: "urn:example:acr:password",
			},
		},
		{
			name:   "unverified email is returned as unverified",
			claims: func(c map[string]any) { c["email_verified"] = false },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com",
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:   "missing email_verified is unverified",
			claims: func(c map[string]any) { delete(c, "email_verified") },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com",
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:   `email_verified "true" as a string counts`,
			claims: func(c map[string]any) { c["email_verified"] = "true" },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name: "role claim as a single string",
			cfg:  func(c *oidc.Config) { c.RoleClaim = "custos_role" },
			claims: func(c map[string]any) {
				c["custos_role"] = "crm-support"
			},
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "support", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:   "first mapped value in claim order wins",
			claims: func(c map[string]any) { c["groups"] = []any{"crm-admin", 42, "crm-sales"} },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "admin", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:   "unmapped role",
			claims: func(c map[string]any) { c["groups"] = []string{"employees", "CRM-SALES"} },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:   "role claim of another type",
			claims: func(c map[string]any) { c["groups"] = map[string]any{"crm-admin": true} },
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name: "several audiences with azp of this client",
			claims: func(c map[string]any) {
				c["aud"] = []string{"custos-crm", "other-app"}
				c["azp"] = "custos-crm"
			},
			want: oidc.Identity{
				Subject: "user-8f14e45f", Email: "alice.example@example.com", EmailVerified: true,
				Name: "Alice Example", Role: "sales", MFA: true, AMR: []string{"pwd", "otp"},
			},
		},
		{
			name:     "wrong state",
			tamper:   tamper{state: "Wr0ngStateWr0ngStateWr0ngStateWr0ngStateWr0"},
			wantErr:  oidc.ErrState,
			noTokens: true,
		},
		{
			name:     "empty state",
			tamper:   tamper{state: "-"},
			wantErr:  oidc.ErrState,
			noTokens: true,
		},
		{
			name:     "expired pending",
			tamper:   tamper{later: oidc.PendingMaxAge + time.Second},
			wantErr:  oidc.ErrExpired,
			noTokens: true,
		},
		{
			name:    "wrong nonce",
			claims:  func(c map[string]any) { c["nonce"] = "n0nce-from-another-login-attempt" },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "no nonce",
			claims:  func(c map[string]any) { delete(c, "nonce") },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "wrong audience",
			claims:  func(c map[string]any) { c["aud"] = "another-client" },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "several audiences without azp",
			claims:  func(c map[string]any) { c["aud"] = []string{"custos-crm", "other-app"} },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "azp of another client",
			claims:  func(c map[string]any) { c["azp"] = "other-app" },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "wrong issuer",
			claims:  func(c map[string]any) { c["iss"] = "https://evil.example.com" },
			wantErr: oidc.ErrIDToken,
		},
		{
			name: "expired token",
			claims: func(c map[string]any) {
				c["iat"] = time.Now().Add(-2 * time.Hour).Unix()
				c["exp"] = time.Now().Add(-time.Hour).Unix()
			},
			wantErr: oidc.ErrIDToken,
		},
		{
			name:     "bad signature",
			otherKey: true,
			wantErr:  oidc.ErrIDToken,
		},
		{
			name:    "no subject",
			claims:  func(c map[string]any) { delete(c, "sub") },
			wantErr: oidc.ErrIDToken,
		},
		{
			name:    "PKCE mismatch",
			tamper:  tamper{verifier: "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"},
			wantErr: oidc.ErrExchange,
			refusal: "invalid_grant: PKCE verification failed",
		},
		{
			name:    "unknown code",
			tamper:  tamper{code: "c0de-that-was-never-issued"},
			wantErr: oidc.ErrExchange,
			refusal: "invalid_grant: unknown code",
		},
		{
			name:    "wrong client secret",
			secret:  "not-the-client-secret",
			wantErr: oidc.ErrExchange,
			refusal: "invalid_client",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idp := oidctest.New(t)
			idp.Claims = tt.claims
			if tt.otherKey {
				idp.SignWith = oidctest.NewKey(t)
			}
			cfg := idp.Config()
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			if tt.secret != "" {
				cfg.ClientSecret = tt.secret
			}
			p := newProvider(t, idp, cfg)
			start := time.Now()
			p.Now = func() time.Time { return start }

			authURL, pending, err := p.Begin()
			if err != nil {
				t.Fatalf("Begin: %v", err)
			}
			state, code := idp.Browse(authURL)
			if state != pending.State {
				t.Fatalf("callback state %q, want the pending state", state)
			}
			switch tt.tamper.state {
			case "":
			case "-":
				state = ""
			default:
				state = tt.tamper.state
			}
			if tt.tamper.code != "" {
				code = tt.tamper.code
			}
			if tt.tamper.verifier != "" {
				pending.Verifier = tt.tamper.verifier
			}
			p.Now = func() time.Time { return start.Add(tt.tamper.later) }

			got, err := p.Finish(context.Background(), pending, state, code)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Finish error = %v, want %v", err, tt.wantErr)
				}
				if !reflect.DeepEqual(got, oidc.Identity{}) {
					t.Errorf("Finish returned an identity with an error: %+v", got)
				}
				t.Logf("error: %v", err)
				mustNotContain(t, err.Error(), append(idp.Secrets(), cfg.ClientSecret, pending.Verifier, pending.Nonce, code)...)
			} else {
				if err != nil {
					t.Fatalf("Finish: %v", err)
				}
				want := tt.want
				want.Issuer = idp.URL()
				if !reflect.DeepEqual(got, want) {
					t.Errorf("identity\n got %+v\nwant %+v", got, want)
				}
			}
			if got := idp.FirstRefusal(); !strings.HasPrefix(got, tt.refusal) || (tt.refusal == "") != (got == "") {
				t.Errorf("token endpoint refusal %q, want %q", got, tt.refusal)
			}
			if calls := idp.TokenCalls(); tt.noTokens && calls != 0 {
				t.Errorf("token endpoint called %d times, want none", calls)
			}
		})
	}
}

// mustNotContain fails when s contains any of the (non-trivial) secrets.
func mustNotContain(t *testing.T, s string, secrets ...string) {
	t.Helper()
	for _, sec := range secrets {
		if len(sec) >= 8 && strings.Contains(s, sec) {
			t.Errorf("%q leaks secret %q", s, sec)
		}
	}
}

func TestExpiredTokenIsTokenExpiredError(t *testing.T) {
	idp := oidctest.New(t)
	idp.Claims = func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() }
	p := newProvider(t, idp, idp.Config())
	authURL, pending, err := p.Begin()
	if err != nil {
		t.Fatal(err)
	}
	state, code := idp.Browse(authURL)
	_, err = p.Finish(context.Background(), pending, state, code)
	var expired *gooidc.TokenExpiredError
	if !errors.Is(err, oidc.ErrIDToken) || !errors.As(err, &expired) {
		t.Fatalf("err = %v, want oidc.ErrIDToken wrapping *oidc.TokenExpiredError", err)
	}
}

func TestBegin(t *testing.T) {
	idp := oidctest.New(t)
	p := newProvider(t, idp, idp.Config())
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	p.Now = func() time.Time { return now }

	authURL, pending, err := p.Begin()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != idp.URL()+"/authorize" {
		t.Errorf("auth endpoint %s", got)
	}
	sum := sha256.Sum256([]byte(pending.Verifier))
	q := u.Query()
	for k, want := range map[string]string{
		"response_type":         "code",
		"client_id":             "custos-crm",
		"redirect_uri":          idp.Redirect,
		"scope":                 "openid email profile",
		"state":                 pending.State,
		"nonce":                 pending.Nonce,
		"code_challenge":        base64.RawURLEncoding.EncodeToString(sum[:]),
		"code_challenge_method": "S256",
	} {
		if got := q.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	// The verifier and the client secret never travel through the browser.
	mustNotContain(t, authURL, pending.Verifier, idp.Config().ClientSecret, url.QueryEscape(idp.Config().ClientSecret))
	if !pending.Created.Equal(now) {
		t.Errorf("Created = %v, want %v", pending.Created, now)
	}
	for name, v := range map[string]string{"state": pending.State, "nonce": pending.Nonce, "verifier": pending.Verifier} {
		if len(v) != 43 {
			t.Errorf("%s has %d characters, want 43 (256 bits)", name, len(v))
		}
	}
	if pending.State == pending.Nonce || pending.Nonce == pending.Verifier {
		t.Error("state, nonce and verifier must be independent")
	}

	_, again, err := p.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if again.State == pending.State || again.Nonce == pending.Nonce || again.Verifier == pending.Verifier {
		t.Error("two logins share a value")
	}

	p.Rand = iotest.ErrReader(errors.New("no entropy"))
	if _, _, err := p.Begin(); err == nil {
		t.Error("Begin with a failing randomness source succeeded")
	}
}

func TestFinishRejectsIncompletePending(t *testing.T) {
	idp := oidctest.New(t)
	p := newProvider(t, idp, idp.Config())
	_, full, err := p.Begin()
	if err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*oidc.Pending){
		"zero":        func(pd *oidc.Pending) { *pd = oidc.Pending{} },
		"no nonce":    func(pd *oidc.Pending) { pd.Nonce = "" },
		"no verifier": func(pd *oidc.Pending) { pd.Verifier = "" },
		"no created":  func(pd *oidc.Pending) { pd.Created = time.Time{} },
		"future":      func(pd *oidc.Pending) { pd.Created = time.Now().Add(time.Hour) },
	} {
		t.Run(name, func(t *testing.T) {
			pd := full
			edit(&pd)
			_, err := p.Finish(context.Background(), pd, pd.State, "some-code")
			if !errors.Is(err, oidc.ErrState) {
				t.Fatalf("err = %v, want oidc.ErrState", err)
			}
		})
	}
	if n := idp.TokenCalls(); n != 0 {
		t.Errorf("token endpoint called %d times", n)
	}
}

func TestCodeIsSingleUse(t *testing.T) {
	idp := oidctest.New(t)
	p := newProvider(t, idp, idp.Config())
	authURL, pending, err := p.Begin()
	if err != nil {
		t.Fatal(err)
	}
	state, code := idp.Browse(authURL)
	if _, err := p.Finish(context.Background(), pending, state, code); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Finish(context.Background(), pending, state, code); !errors.Is(err, oidc.ErrExchange) {
		t.Fatalf("replayed callback: err = %v, want oidc.ErrExchange", err)
	}
}

func TestNew(t *testing.T) {
	t.Run("invalid config", func(t *testing.T) {
		idp := oidctest.New(t)
		cfg := idp.Config()
		cfg.ClientID = ""
		_, err := oidc.New(context.Background(), cfg, idp.Client())
		if !errors.Is(err, oidc.ErrConfig) {
			t.Fatalf("err = %v, want oidc.ErrConfig", err)
		}
		mustNotContain(t, err.Error(), idp.Config().ClientSecret)
	})
	t.Run("provider without PKCE S256", func(t *testing.T) {
		idp := oidctest.New(t)
		idp.PKCEMethods = []string{"plain"}
		_, err := oidc.New(context.Background(), idp.Config(), idp.Client())
		if !errors.Is(err, oidc.ErrConfig) {
			t.Fatalf("err = %v, want oidc.ErrConfig", err)
		}
	})
	t.Run("provider not advertising PKCE", func(t *testing.T) {
		idp := oidctest.New(t)
		idp.PKCEMethods = nil
		newProvider(t, idp, idp.Config())
	})
	t.Run("discovery issuer mismatch", func(t *testing.T) {
		idp := oidctest.New(t)
		idp.Issuer = "https://evil.example.com"
		if _, err := oidc.New(context.Background(), idp.Config(), idp.Client()); err == nil {
			t.Fatal("New accepted a discovery document for another issuer")
		}
	})
	t.Run("untrusted TLS certificate", func(t *testing.T) {
		idp := oidctest.New(t)
		if _, err := oidc.New(context.Background(), idp.Config(), nil); err == nil {
			t.Fatal("New trusted the test server's self-signed certificate")
		}
	})
	t.Run("config is copied", func(t *testing.T) {
		idp := oidctest.New(t)
		cfg := idp.Config()
		p := newProvider(t, idp, cfg)
		cfg.RoleMap["employees"] = "admin"
		authURL, pending, err := p.Begin()
		if err != nil {
			t.Fatal(err)
		}
		state, code := idp.Browse(authURL)
		id, err := p.Finish(context.Background(), pending, state, code)
		if err != nil {
			t.Fatal(err)
		}
		if id.Role != "sales" {
			t.Fatalf("role %q: a change to the caller's RoleMap reached the provider", id.Role)
		}
	})
}

func TestValidate(t *testing.T) {
	base := oidc.Config{
		Issuer:       "https://idp.example.com",
		ClientID:     "custos",
		ClientSecret: "s3cret-value",
		RedirectURL:  "https://crm.example.com/api/v1/auth/oidc/callback",
	}
	tests := []struct {
		name string
		edit func(*oidc.Config)
		ok   bool
	}{
		{"minimal", func(*oidc.Config) {}, true},
		{"with roles and scopes", func(c *oidc.Config) {
			c.Scopes = []string{"openid", "email", "groups"}
			c.RoleClaim = "groups"
			c.RoleMap = map[string]string{"crm-sales": "sales"}
			c.MFAValues = []string{"mfa"}
			c.MFAACR = []string{"urn:example:mfa"}
		}, true},
		{"http on loopback", func(c *oidc.Config) {
			c.Issuer = "http://127.0.0.1:5556/dex"
			c.RedirectURL = "http://localhost:8080/api/v1/auth/oidc/callback"
		}, true},
		{"no issuer", func(c *oidc.Config) { c.Issuer = "" }, false},
		{"http issuer", func(c *oidc.Config) { c.Issuer = "http://idp.example.com" }, false},
		{"relative issuer", func(c *oidc.Config) { c.Issuer = "idp.example.com" }, false},
		{"issuer with query", func(c *oidc.Config) { c.Issuer = "https://idp.example.com/?tenant=1" }, false},
		{"issuer with user info", func(c *oidc.Config) { c.Issuer = "https://user:pw@idp.example.com" }, false},
		{"no client id", func(c *oidc.Config) { c.ClientID = " " }, false},
		{"no client secret", func(c *oidc.Config) { c.ClientSecret = "" }, false},
		{"no redirect", func(c *oidc.Config) { c.RedirectURL = "" }, false},
		{"http redirect", func(c *oidc.Config) { c.RedirectURL = "http://crm.example.com/cb" }, false},
		{"redirect with fragment", func(c *oidc.Config) { c.RedirectURL = "https://crm.example.com/cb#x" }, false},
		{"scopes without openid", func(c *oidc.Config) { c.Scopes = []string{"email"} }, false},
		{"scope with space", func(c *oidc.Config) { c.Scopes = []string{"openid email"} }, false},
		{"role claim without map", func(c *oidc.Config) { c.RoleClaim = "groups" }, false},
		{"role map without claim", func(c *oidc.Config) { c.RoleMap = map[string]string{"a": "sales"} }, false},
		{"empty role", func(c *oidc.Config) {
			c.RoleClaim = "groups"
			c.RoleMap = map[string]string{"a": ""}
		}, false},
		{"empty amr value", func(c *oidc.Config) { c.MFAValues = []string{"mfa", ""} }, false},
		{"empty acr value", func(c *oidc.Config) { c.MFAACR = []string{""} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			tt.edit(&c)
			err := c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil {
				if !errors.Is(err, oidc.ErrConfig) {
					t.Errorf("error %v does not wrap oidc.ErrConfig", err)
				}
				mustNotContain(t, err.Error(), c.ClientSecret)
			}
		})
	}
}

func TestConfigNeverPrintsSecret(t *testing.T) {
	const secret = "very-secret-client-value"
	c := oidc.Config{
		Issuer:       "https://idp.example.com",
		ClientID:     "custos",
		ClientSecret: secret,
		RedirectURL:  "https://crm.example.com/cb",
		RoleClaim:    "groups",
		RoleMap:      map[string]string{"crm-sales": "sales"},
	}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %[1]v"} {
		out = append(out, fmt.Sprintf(verb, c), fmt.Sprintf(verb, &c))
	}
	out = append(out,
		c.String(), c.GoString(), fmt.Sprint(c), fmt.Sprintln(c),
		fmt.Sprintf("%+v", struct{ OIDC oidc.Config }{c}),
		fmt.Sprintf("%#v", []oidc.Config{c}),
		fmt.Sprintf("%v", map[string]oidc.Config{"idp": c}),
		fmt.Errorf("loading %v", c).Error(),
	)
	var buf bytes.Buffer
	for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
		slog.New(h).Info("oidc", "config", c, "ptr", &c)
	}
	out = append(out, buf.String())

	for _, s := range out {
		mustNotContain(t, s, secret)
	}
	for _, s := range []string{c.String(), buf.String()} {
		for _, want := range []string{"idp.example.com", "custos", "[REDACTED]"} {
			if !strings.Contains(s, want) {
				t.Errorf("%q lacks %q", s, want)
			}
		}
	}
	if s := (oidc.Config{}).String(); strings.Contains(s, "[REDACTED]") {
		t.Errorf("an empty secret prints as set: %s", s)
	}
}

func TestPendingNeverPrintsValues(t *testing.T) {
	pd := oidc.Pending{State: "state-value-123", Nonce: "nonce-value-456", Verifier: "verifier-value-789", Created: time.Now()}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("login", "pending", pd)
	for _, s := range []string{
		fmt.Sprintf("%v", pd), fmt.Sprintf("%+v", pd), fmt.Sprintf("%#v", pd), fmt.Sprintf("%s", &pd),
		pd.String(), buf.String(),
	} {
		mustNotContain(t, s, pd.State, pd.Nonce, pd.Verifier)
	}
}
