package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/oidc"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// ErrSSO is a refused single sign-on (the message says why, without secrets).
var ErrSSO = errors.New("single sign-on refused")

// SSO signs users in through an OpenID Connect provider. The provider is
// discovered on first use (and again after a failure), so Custos starts even
// when the identity provider is down.
type SSO struct {
	auth   *Service
	cfg    oidc.Config
	client *http.Client

	mu       sync.Mutex
	provider *oidc.Provider
}

// NewSSO prepares single sign-on with cfg; client may be nil (a default
// client with a timeout).
func (s *Service) NewSSO(cfg oidc.Config, client *http.Client) (*SSO, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &SSO{auth: s, cfg: cfg, client: client}, nil
}

func (o *SSO) providerFor(ctx context.Context) (*oidc.Provider, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	// The provider keeps fetching signing keys later: not with this
	// request's context, which ends with the request.
	p, err := oidc.New(context.WithoutCancel(ctx), o.cfg, o.client)
	if err != nil {
		return nil, fmt.Errorf("identity provider unavailable: %w", err)
	}
	p.Now = o.auth.now
	o.provider = p
	return p, nil
}

func (o *SSO) verifierAAD(stateHash []byte) seal.AAD {
	return seal.AAD{Table: "oidc_pending", Record: fmt.Sprintf("%x", stateHash), Field: "verifier"}
}

// pendingKey seals PKCE verifiers at rest, derived from the index key.
func (o *SSO) pendingKey() (seal.Key, error) {
	b := sha256.Sum256(append([]byte("custos oidc pending\x00"), o.auth.keys.Indexer().Term("oidc-pending-key")...))
	return seal.NewKey(1, b[:])
}

// Begin starts a login: the URL to send the browser to, and a binding secret
// the caller must put in an HttpOnly cookie of this browser. The state,
// nonce, sealed PKCE verifier and the binding's hash wait in the database for
// the callback, which must come from the same browser: otherwise someone
// could have a victim complete the attacker's own login (login CSRF) and then
// read what the victim enters.
func (o *SSO) Begin(ctx context.Context) (authURL, binding string, err error) {
	p, err := o.providerFor(ctx)
	if err != nil {
		return "", "", err
	}
	authURL, pending, err := p.Begin()
	if err != nil {
		return "", "", err
	}
	binding, bindingHash, err := newSecret("")
	if err != nil {
		return "", "", err
	}
	h := hashSecret(pending.State)
	k, err := o.pendingKey()
	if err != nil {
		return "", "", err
	}
	ver, err := o.auth.cipher.Seal(k, o.verifierAAD(h), []byte(pending.Verifier))
	if err != nil {
		return "", "", err
	}
	err = o.auth.db.Write(ctx, func(tx *store.Tx) error {
		return tx.InsertOIDCPending(ctx, store.OIDCPending{StateHash: h, Nonce: pending.Nonce, Verifier: ver, Browser: bindingHash, CreatedAt: pending.Created}, oidc.PendingMaxAge)
	})
	return authURL, binding, err
}

// Finish completes the callback: it takes the pending login of state (single
// use), checks it belongs to this browser (binding from its cookie), verifies
// the code and ID token, and signs the user in.
func (o *SSO) Finish(ctx context.Context, ev audit.Event, state, code, binding string) (LoginResult, error) {
	ev.Action, ev.ObjectType = "auth.sso", "user"
	fail := func(f ssoFailure, err error) (LoginResult, error) {
		ev.Outcome, ev.Reason, ev.ObjectID, ev.Details = audit.Denied, f.reason, f.userID, f.details
		if aerr := audit.RecordAlone(ctx, o.auth.db, o.auth.now().UTC(), ev); aerr != nil {
			return LoginResult{}, aerr
		}
		return LoginResult{}, fmt.Errorf("%w: %s", ErrSSO, err.Error())
	}
	h := hashSecret(state)
	var row store.OIDCPending
	err := o.auth.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		row, err = tx.TakeOIDCPending(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fail(ssoFailure{reason: "unknown state"}, errors.New("the sign-in expired or was already used; start again"))
	}
	if err != nil {
		return LoginResult{}, err
	}
	if binding == "" || subtle.ConstantTimeCompare(hashSecret(binding), row.Browser) != 1 {
		return fail(ssoFailure{reason: "other browser"}, errors.New("the sign-in was started in another browser; start again here"))
	}
	k, err := o.pendingKey()
	if err != nil {
		return LoginResult{}, err
	}
	ver, err := o.auth.cipher.Open(k, o.verifierAAD(h), row.Verifier)
	if err != nil {
		return LoginResult{}, err
	}
	p, err := o.providerFor(ctx)
	if err != nil {
		return LoginResult{}, err
	}
	id, err := p.Finish(ctx, oidc.Pending{State: state, Nonce: row.Nonce, Verifier: string(ver), Created: row.CreatedAt}, state, code)
	if err != nil {
		return fail(ssoFailure{reason: "identity provider"}, err)
	}
	return o.auth.loginSSO(ctx, ev, id, fail)
}

// ssoFailure is how a refused single sign-on is recorded: why, the user when
// known, and what else may be said without personal data.
type ssoFailure struct {
	reason  string
	userID  string
	details map[string]any
}

// loginSSO matches the identity to a user by verified email, or provisions
// one with the role mapped from the provider's claim, then opens a session.
// The second factor counts as done only when the provider asserts it (amr or
// acr); otherwise a local factor is asked when the user has one.
func (s *Service) loginSSO(ctx context.Context, ev audit.Event, id oidc.Identity, fail func(ssoFailure, error) (LoginResult, error)) (LoginResult, error) {
	now := s.now().UTC()
	// The account the provider named, as the trail may name it: a keyed
	// hash of the email, never the email.
	named := func(reason, userID string) ssoFailure {
		return ssoFailure{reason: reason, userID: userID, details: map[string]any{"issuer": id.Issuer, "email_hash": s.accountHash(id.Email)}}
	}
	if !id.EmailVerified || id.Email == "" {
		return fail(named("email not verified", ""), errors.New("the identity provider did not verify the email address"))
	}
	u, err := s.FindUserByEmail(ctx, id.Email)
	if errors.Is(err, ErrNotFound) {
		if id.Role == "" {
			return fail(named("no account", ""), errors.New("there is no Custos account for this email and the identity provider gives no role"))
		}
		pw, gerr := GeneratePassword()
		if gerr != nil {
			return LoginResult{}, gerr
		}
		name := strings.TrimSpace(id.Name)
		if name == "" {
			name, _, _ = strings.Cut(id.Email, "@")
		}
		pev := ev
		pev.Actor = "sso:" + id.Issuer
		// The generated password is never shown: the user signs in through
		// the provider (or an administrator resets it).
		if u, err = s.CreateUser(ctx, pev, NewUser{Email: id.Email, Name: name, Role: id.Role, Password: pw + "-sso"}); err != nil {
			return fail(named("provisioning", ""), err)
		}
	} else if err != nil {
		return LoginResult{}, err
	}
	ev.ObjectID, ev.Actor = u.ID, "user:"+u.ID
	if u.Disabled {
		return fail(named("user disabled", u.ID), errors.New("this account is disabled"))
	}
	if u.Suspended {
		return fail(named("user suspended", u.ID), errors.New("this account is suspended"))
	}
	if err := s.checkLoginPolicy(ctx, u.Role, ev.IP, now); err != nil {
		return fail(named("login policy", u.ID), err)
	}
	var res LoginResult
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		methods, err := secondFactors(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		ev.Outcome = audit.OK
		ev.Details = map[string]any{"issuer": id.Issuer, "idp_mfa": id.MFA}
		if !id.MFA && len(methods) > 0 {
			token, hash, err := newSecret("")
			if err != nil {
				return err
			}
			if err := tx.InsertMFAChallenge(ctx, store.MFAChallenge{IDHash: hash, UserID: u.ID, IP: ev.IP, CreatedAt: now, ExpiresAt: now.Add(challengeTTL)}); err != nil {
				return err
			}
			res.Challenge, res.Methods = token, methods
			_, err = audit.Record(ctx, tx, now, ev)
			return err
		}
		var mfaAt *time.Time
		if id.MFA {
			mfaAt = &now
		}
		if res.Token, res.CSRF, err = s.openSession(ctx, tx, u.ID, ev, now, mfaAt); err != nil {
			return err
		}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil || res.Challenge != "" {
		return res, err
	}
	res.Identity, _, err = s.Session(ctx, res.Token)
	return res, err
}
