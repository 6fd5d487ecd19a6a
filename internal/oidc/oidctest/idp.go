// Package oidctest is a small but real OpenID provider for tests of code
// that signs users in through internal/oidc.
package oidctest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/custos/custos/internal/oidc"
)

// IdP is a small but real OpenID provider: discovery, JWKS, an
// authorization endpoint that approves at once, and a token endpoint that
// authenticates the client, redeems single-use codes, checks PKCE S256 and
// returns an ID token signed with a key generated for the test.
type IdP struct {
	t        testing.TB
	srv      *httptest.Server
	key      *ecdsa.PrivateKey
	kid      string
	clientID string
	secret   string
	Redirect string

	// Knobs a test sets before driving a login.
	Claims      func(c map[string]any) // edits the ID token claims
	SignWith    *ecdsa.PrivateKey      // when set, signs with this key (same kid)
	Issuer      string                 // discovery "issuer" when not the server URL
	PKCEMethods []string               // code_challenge_methods_supported

	mu            sync.Mutex
	codes         map[string]codeGrant
	authRequests  []url.Values
	tokenRequests int
	refusals      []string // why the token endpoint refused, in order
	issued        []string // every code and token handed out
}

type codeGrant struct {
	clientID, redirectURI, challenge, nonce string
}

const testKID = "test-key-1"

// New starts the provider; Redirect must be set to the client's callback
// before a login.
func New(t testing.TB) *IdP {
	t.Helper()
	idp := &IdP{
		t:           t,
		key:         NewKey(t),
		kid:         testKID,
		clientID:    "custos-crm",
		secret:      "cl1ent-s3cret-Zq9+/&=value",
		Redirect:    "https://crm.example.com/api/v1/auth/oidc/callback",
		PKCEMethods: []string{"S256"},
		codes:       map[string]codeGrant{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", idp.discovery)
	mux.HandleFunc("GET /jwks", idp.jwks)
	mux.HandleFunc("GET /authorize", idp.authorize)
	mux.HandleFunc("POST /token", idp.token)
	idp.srv = httptest.NewUnstartedServer(mux)
	idp.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise from the untrusted-client test
	idp.srv.StartTLS()
	t.Cleanup(idp.srv.Close)
	return idp
}

// NewKey generates a signing key (for SignWith, to forge tokens).
func NewKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Config is a client configuration for this provider.
func (idp *IdP) Config() oidc.Config {
	return oidc.Config{
		Issuer:       idp.srv.URL,
		ClientID:     idp.clientID,
		ClientSecret: idp.secret,
		RedirectURL:  idp.Redirect,
		RoleClaim:    "groups",
		RoleMap:      map[string]string{"crm-sales": "sales", "crm-admin": "admin", "crm-support": "support"},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (idp *IdP) discovery(w http.ResponseWriter, _ *http.Request) {
	iss := idp.srv.URL
	if idp.Issuer != "" {
		iss = idp.Issuer
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                idp.srv.URL + "/authorize",
		"token_endpoint":                        idp.srv.URL + "/token",
		"jwks_uri":                              idp.srv.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"code_challenge_methods_supported":      idp.PKCEMethods,
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
	})
}

func (idp *IdP) jwks(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{
		Key: &idp.key.PublicKey, KeyID: idp.kid, Algorithm: string(jose.ES256), Use: "sig",
	}}})
}

func (idp *IdP) randomString() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// authorize approves every well-formed request at once, as if the user had
// signed in, and redirects back with a fresh code and the state.
func (idp *IdP) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	idp.mu.Lock()
	idp.authRequests = append(idp.authRequests, q)
	idp.mu.Unlock()

	switch {
	case q.Get("response_type") != "code",
		q.Get("client_id") != idp.clientID,
		q.Get("redirect_uri") != idp.Redirect,
		!slices.Contains(strings.Fields(q.Get("scope")), "openid"),
		q.Get("code_challenge_method") != "S256",
		q.Get("code_challenge") == "",
		q.Get("state") == "":
		http.Error(w, "invalid_request", http.StatusBadRequest)
		return
	}
	code := idp.randomString()
	idp.mu.Lock()
	idp.codes[code] = codeGrant{
		clientID:    q.Get("client_id"),
		redirectURI: q.Get("redirect_uri"),
		challenge:   q.Get("code_challenge"),
		nonce:       q.Get("nonce"),
	}
	idp.issued = append(idp.issued, code)
	idp.mu.Unlock()

	back, _ := url.Parse(idp.Redirect)
	bq := back.Query()
	bq.Set("code", code)
	bq.Set("state", q.Get("state"))
	back.RawQuery = bq.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

// clientAuth accepts client_secret_basic (RFC 6749 2.3.1: form-encoded
// before base64) or client_secret_post.
func (idp *IdP) clientAuth(r *http.Request) (string, bool) {
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", false
		}
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id, id == idp.clientID && secret == idp.secret
}

func (idp *IdP) refuse(w http.ResponseWriter, status int, code, description string) {
	idp.mu.Lock()
	idp.refusals = append(idp.refusals, code+": "+description)
	idp.mu.Unlock()
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

func (idp *IdP) token(w http.ResponseWriter, r *http.Request) {
	idp.mu.Lock()
	idp.tokenRequests++
	idp.mu.Unlock()
	if err := r.ParseForm(); err != nil {
		idp.refuse(w, http.StatusBadRequest, "invalid_request", "bad form")
		return
	}
	clientID, ok := idp.clientAuth(r)
	if !ok {
		idp.refuse(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if r.PostForm.Get("grant_type") != "authorization_code" {
		idp.refuse(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	code := r.PostForm.Get("code")
	idp.mu.Lock()
	grant, found := idp.codes[code]
	delete(idp.codes, code) // single use, even when the request fails
	idp.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !found, grant.clientID != clientID, grant.redirectURI != r.PostForm.Get("redirect_uri"):
		// Real providers do echo request values; Finish must not pass them on.
		idp.refuse(w, http.StatusBadRequest, "invalid_grant", "unknown code "+code)
		return
	case base64.RawURLEncoding.EncodeToString(sum[:]) != grant.challenge:
		idp.refuse(w, http.StatusBadRequest, "invalid_grant", "PKCE verification failed for code_verifier "+r.PostForm.Get("code_verifier"))
		return
	}

	now := time.Now()
	claims := map[string]any{
		"iss":            idp.srv.URL,
		"aud":            idp.clientID,
		"sub":            "user-8f14e45f",
		"iat":            now.Unix(),
		"exp":            now.Add(time.Hour).Unix(),
		"nonce":          grant.nonce,
		"email":          "Alice.Example@Example.COM",
		"email_verified": true,
		"name":           "Alice Example",
		"groups":         []string{"employees", "crm-sales", "crm-admin"},
		"amr":            []string{"pwd", "otp"},
	}
	if idp.Claims != nil {
		idp.Claims(claims)
	}
	idToken := idp.sign(claims)
	access := idp.randomString()
	idp.mu.Lock()
	idp.issued = append(idp.issued, idToken, access)
	idp.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": access,
		"token_type":   "Bearer",
		"expires_in":   3600,
		"id_token":     idToken,
	})
}

func (idp *IdP) sign(claims map[string]any) string {
	key := idp.key
	if idp.SignWith != nil {
		key = idp.SignWith
	}
	signer, err := jose.NewSigner(jose.SigningKey{
		Algorithm: jose.ES256,
		Key:       jose.JSONWebKey{Key: key, KeyID: idp.kid},
	}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		idp.t.Error(err)
		return ""
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		idp.t.Error(err)
		return ""
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		idp.t.Error(err)
		return ""
	}
	s, err := jws.CompactSerialize()
	if err != nil {
		idp.t.Error(err)
	}
	return s
}

// Browse follows authURL as the browser would, up to the redirect back to
// Custos, and returns the callback's state and code.
func (idp *IdP) Browse(authURL string) (state, code string) {
	idp.t.Helper()
	c := *idp.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.Get(authURL)
	if err != nil {
		idp.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusFound {
		idp.t.Fatalf("authorize: status %d, want 302", resp.StatusCode)
	}
	loc, err := url.Parse(resp.Header.Get("Location"))
	if err != nil {
		idp.t.Fatal(err)
	}
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != idp.Redirect {
		idp.t.Fatalf("redirected to %s, want %s", got, idp.Redirect)
	}
	return loc.Query().Get("state"), loc.Query().Get("code")
}

// Client trusts the provider's TLS certificate.
func (idp *IdP) Client() *http.Client { return idp.srv.Client() }

// URL is the issuer URL of the provider.
func (idp *IdP) URL() string { return idp.srv.URL }

// Secrets are the client secret and every code and token handed out, which
// no error message may contain.
func (idp *IdP) Secrets() []string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return append([]string{idp.secret, url.QueryEscape(idp.secret)}, idp.issued...)
}

// FirstRefusal is why the token endpoint first refused, or "".
func (idp *IdP) FirstRefusal() string {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	if len(idp.refusals) == 0 {
		return ""
	}
	return idp.refusals[0]
}

// TokenCalls counts requests to the token endpoint.
func (idp *IdP) TokenCalls() int {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	return idp.tokenRequests
}
