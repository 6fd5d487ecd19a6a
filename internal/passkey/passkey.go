// Package passkey lets users register WebAuthn credentials (passkeys), list
// and remove them, and use one to log in without a password (a discoverable
// credential: the authenticator tells who the user is) or as the second factor
// after a password. The WebAuthn checks themselves are done by
// github.com/go-webauthn/webauthn; this package adds storage, single-use
// ceremonies, the signature-counter rule and the audit trail.
//
// A ceremony has two steps. Begin returns the options for the browser's
// navigator.credentials.create/get and a token; the ceremony's state (its
// challenge) is stored under the token's SHA-256 for a few minutes. Finish
// takes the token and the browser's JSON response; the state is deleted
// whatever the outcome, so a response cannot be replayed.
//
// The user handle given to authenticators is the user id, which is a random
// UUID and carries no personal data. Public keys are not secret, so nothing
// here is sealed.
package passkey

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/store"
)

// Errors of the service.
var (
	// ErrNotFound: no such passkey (or not the user's).
	ErrNotFound = errors.New("no such passkey")
	// ErrInvalid: bad input, such as an over-long name.
	ErrInvalid = errors.New("invalid input")
	// ErrLimit: the user already has MaxPerUser passkeys.
	ErrLimit = fmt.Errorf("%w: at most %d passkeys per user", ErrInvalid, MaxPerUser)
	// ErrRejected: the ceremony is unknown, expired or already used, or the
	// browser's response does not verify, or names an unknown passkey or a
	// disabled user, or its signature counter did not advance. The reason is
	// in the audit trail, never in the error shown to the client.
	ErrRejected = errors.New("passkey not accepted")
)

const (
	// MaxPerUser bounds the passkeys of one user.
	MaxPerUser = 25
	// MaxNameLen bounds a passkey's label, in characters.
	MaxNameLen = 64
	// CeremonyTTL is how long a begun ceremony can be finished.
	CeremonyTTL = 5 * time.Minute

	kindRegister = "register"
	kindLogin    = "login"
)

// Service manages passkeys.
type Service struct {
	db  *store.DB
	wa  *webauthn.WebAuthn
	now func() time.Time
}

// New returns the service for the relying party rpID (the host name users
// reach Custos at, such as "crm.example.com" or "localhost"), served at
// rpOrigin ("https://crm.example.com"). rpName is shown by authenticators.
func New(db *store.DB, rpID, rpOrigin, rpName string, now func() time.Time) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	o, err := url.Parse(rpOrigin)
	if err != nil || (o.Scheme != "https" && o.Scheme != "http") || o.Host == "" || (o.Path != "" && o.Path != "/") {
		return nil, fmt.Errorf("passkey: origin %q must be a scheme and host, such as https://crm.example.com", rpOrigin)
	}
	if h := o.Hostname(); h != rpID && !strings.HasSuffix(h, "."+rpID) {
		return nil, fmt.Errorf("passkey: origin host %q is not %q or a subdomain of it", h, rpID)
	}
	if o.Scheme == "http" && o.Hostname() != "localhost" {
		return nil, fmt.Errorf("passkey: browsers allow passkeys over http only on localhost; serve %s over https", o.Hostname())
	}
	wa, err := webauthn.New(&webauthn.Config{
		RPID:          rpID,
		RPDisplayName: rpName,
		RPOrigins:     []string{strings.TrimSuffix(rpOrigin, "/")},
		AuthenticatorSelection: protocol.AuthenticatorSelection{
			ResidentKey:        protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(),
			UserVerification:   protocol.VerificationPreferred,
		},
		AttestationPreference: protocol.PreferNoAttestation,
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: CeremonyTTL, TimeoutUVD: CeremonyTTL},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("passkey: %w", err)
	}
	return &Service{db: db, wa: wa, now: now}, nil
}

// Passkey is a passkey as listed to its owner.
type Passkey struct {
	ID         string     `json:"id"` // base64url credential id
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	// Synced is set for a passkey its provider backs up (and may copy to
	// the user's other devices), as opposed to one bound to a single device.
	Synced bool `json:"synced"`
}

func listing(p store.Passkey, c webauthn.Credential) Passkey {
	return Passkey{ID: encodeID(p.ID), Name: p.Name, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt, Synced: c.Flags.BackupState}
}

func encodeID(id []byte) string { return base64.RawURLEncoding.EncodeToString(id) }

// user is a Custos user as the WebAuthn library sees it.
type user struct {
	id, name, display string
	creds             []webauthn.Credential
}

func (u *user) WebAuthnID() []byte                         { return []byte(u.id) }
func (u *user) WebAuthnName() string                       { return u.name }
func (u *user) WebAuthnDisplayName() string                { return u.display }
func (u *user) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// stored is a passkey row with its decoded credential record.
type stored struct {
	row  store.Passkey
	cred webauthn.Credential
}

func decode(p store.Passkey) (stored, error) {
	var c webauthn.Credential
	if err := json.Unmarshal(p.Credential, &c); err != nil {
		return stored{}, fmt.Errorf("passkey: credential record %s: %w", encodeID(p.ID), err)
	}
	return stored{row: p, cred: c}, nil
}

// activeUser loads a user who may use passkeys, with their passkeys.
func activeUser(ctx context.Context, tx *store.Tx, userID string) ([]stored, error) {
	u, err := tx.GetUser(ctx, userID)
	if err != nil {
		return nil, err
	}
	if u.Disabled {
		return nil, errDisabled
	}
	rows, err := tx.UserPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	out := make([]stored, 0, len(rows))
	for _, r := range rows {
		s, err := decode(r)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

var errDisabled = errors.New("user disabled")

func credentials(ss []stored) []webauthn.Credential {
	out := make([]webauthn.Credential, len(ss))
	for i, s := range ss {
		out[i] = s.cred
	}
	return out
}

// CheckName normalizes a passkey label: trimmed, 1 to MaxNameLen characters,
// no control characters. An empty name becomes "Passkey".
func CheckName(name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" {
		return "Passkey", nil
	}
	if !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxNameLen {
		return "", fmt.Errorf("%w: a passkey name is at most %d characters", ErrInvalid, MaxNameLen)
	}
	for _, r := range name {
		// Control characters, and the bidirectional controls that can make
		// a label display as something else.
		if unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) {
			return "", fmt.Errorf("%w: a passkey name cannot contain control characters", ErrInvalid)
		}
	}
	return name, nil
}

// newToken returns a 256-bit random ceremony token and its SHA-256.
func newToken() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	t := base64.RawURLEncoding.EncodeToString(b)
	return t, hashToken(t), nil
}

func hashToken(t string) []byte {
	sum := sha256.Sum256([]byte(t))
	return sum[:]
}

// begin stores the ceremony state and returns the token for it.
func (s *Service) begin(ctx context.Context, kind, userID string, data *webauthn.SessionData) (string, error) {
	b, err := json.Marshal(data)
	if err != nil {
		return "", err
	}
	token, hash, err := newToken()
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteExpiredPasskeySessions(ctx, now); err != nil {
			return err
		}
		return tx.InsertPasskeySession(ctx, store.PasskeySession{IDHash: hash, UserID: userID, Kind: kind, Data: b, CreatedAt: now, ExpiresAt: now.Add(CeremonyTTL)})
	})
	if err != nil {
		return "", err
	}
	return token, nil
}

// rejection is a ceremony that failed for a reason worth recording.
type rejection struct{ reason string }

func (r *rejection) Error() string { return "passkey not accepted: " + r.reason }
func (r *rejection) Unwrap() error { return ErrRejected }

func reject(reason string) error { return &rejection{reason: reason} }

// verifyFailed wraps an error of the WebAuthn library. Its short description
// is kept for the audit trail; it never contains personal data.
func verifyFailed(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return reject("verification failed: " + pe.Details)
	}
	return reject("verification failed")
}

// take removes the ceremony of token and checks that it is of kind, for
// userID (empty: a discoverable login) and not expired.
func (s *Service) take(ctx context.Context, token, kind, userID string) (webauthn.SessionData, error) {
	if token == "" || len(token) > 128 {
		return webauthn.SessionData{}, reject("no ceremony")
	}
	var ps store.PasskeySession
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		var err error
		ps, err = tx.TakePasskeySession(ctx, hashToken(token))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return webauthn.SessionData{}, reject("unknown or used ceremony")
	}
	if err != nil {
		return webauthn.SessionData{}, err
	}
	if ps.Kind != kind || ps.UserID != userID {
		return webauthn.SessionData{}, reject("ceremony of another kind or user")
	}
	if !s.now().Before(ps.ExpiresAt) {
		return webauthn.SessionData{}, reject("ceremony expired")
	}
	var data webauthn.SessionData
	if err := json.Unmarshal(ps.Data, &data); err != nil {
		return webauthn.SessionData{}, fmt.Errorf("passkey: ceremony state: %w", err)
	}
	return data, nil
}

// recordFailure records ev as denied, with the reason, when err is a
// rejection, and returns err.
func (s *Service) recordFailure(ctx context.Context, ev audit.Event, err error) error {
	var rj *rejection
	if !errors.As(err, &rj) {
		return err
	}
	ev.Outcome, ev.Reason = audit.Denied, rj.reason
	if aerr := audit.RecordAlone(ctx, s.db, s.now().UTC(), ev); aerr != nil {
		return errors.Join(err, aerr)
	}
	return err
}

// BeginRegistration starts registering a passkey for the user. email and
// displayName are shown by the authenticator to tell accounts apart. It
// returns the options for navigator.credentials.create (the JSON of the
// library's CredentialCreation: {"publicKey": {...}}) and the ceremony token.
// The user's passkeys are excluded, so one authenticator is not registered
// twice.
func (s *Service) BeginRegistration(ctx context.Context, userID, email, displayName string) (options []byte, token string, err error) {
	var have []stored
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		have, err = activeUser(ctx, tx, userID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errDisabled):
		return nil, "", ErrNotFound
	case err != nil:
		return nil, "", err
	case len(have) >= MaxPerUser:
		return nil, "", ErrLimit
	}
	u := &user{id: userID, name: email, display: displayName, creds: credentials(have)}
	creation, data, err := s.wa.BeginRegistration(u, webauthn.WithExclusions(webauthn.Credentials(u.creds).CredentialDescriptors()))
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin registration: %w", err)
	}
	if options, err = json.Marshal(creation); err != nil {
		return nil, "", err
	}
	if token, err = s.begin(ctx, kindRegister, userID, data); err != nil {
		return nil, "", err
	}
	return options, token, nil
}

// FinishRegistration verifies the browser's response to the ceremony of token
// (the JSON of the PublicKeyCredential from navigator.credentials.create) and
// stores the new passkey under name. ev is completed and recorded as
// "passkey.register".
func (s *Service) FinishRegistration(ctx context.Context, ev audit.Event, userID, token, name string, response []byte) (Passkey, error) {
	ev.Action, ev.ObjectType = "passkey.register", "passkey"
	ev.Details = map[string]any{"user_id": userID}
	name, err := CheckName(name)
	if err != nil {
		return Passkey{}, err
	}
	data, err := s.take(ctx, token, kindRegister, userID)
	if err != nil {
		return Passkey{}, s.recordFailure(ctx, ev, err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return Passkey{}, s.recordFailure(ctx, ev, verifyFailed(err))
	}
	var have []stored
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		have, err = activeUser(ctx, tx, userID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errDisabled):
		return Passkey{}, s.recordFailure(ctx, ev, reject("user unknown or disabled"))
	case err != nil:
		return Passkey{}, err
	case len(have) >= MaxPerUser:
		return Passkey{}, ErrLimit
	}
	cred, err := s.wa.CreateCredential(&user{id: userID, creds: credentials(have)}, data, parsed)
	if err != nil {
		return Passkey{}, s.recordFailure(ctx, ev, verifyFailed(err))
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return Passkey{}, err
	}
	now := s.now().UTC()
	row := store.Passkey{ID: cred.ID, UserID: userID, Name: name, Credential: record, SignCount: int64(cred.Authenticator.SignCount), CreatedAt: now}
	ev.ObjectID = encodeID(cred.ID)
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if n, err := tx.CountUserPasskeys(ctx, userID); err != nil {
			return err
		} else if n >= MaxPerUser {
			return ErrLimit
		}
		if err := tx.InsertPasskey(ctx, row); err != nil {
			return err
		}
		ev.Outcome = audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return Passkey{}, s.recordFailure(ctx, ev, reject("credential id already registered"))
	}
	if err != nil {
		return Passkey{}, err
	}
	return listing(row, *cred), nil
}

// BeginLogin starts a passwordless login: the options for
// navigator.credentials.get ({"publicKey": {...}}, without allowCredentials,
// so the authenticator offers the passkeys it holds for this site) and the
// ceremony token.
func (s *Service) BeginLogin(ctx context.Context) (options []byte, token string, err error) {
	// A passwordless login must prove both factors: the device and its user
	// (PIN or biometric), so user verification is required here.
	assertion, data, err := s.wa.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin login: %w", err)
	}
	if options, err = json.Marshal(assertion); err != nil {
		return nil, "", err
	}
	if token, err = s.begin(ctx, kindLogin, "", data); err != nil {
		return nil, "", err
	}
	return options, token, nil
}

// FinishLogin verifies the browser's response to the passwordless login of
// token (the JSON of the PublicKeyCredential from navigator.credentials.get)
// and returns the id of the user it proves. The passkey must belong to an
// enabled user and its signature counter must advance (unless the
// authenticator keeps none). ev is completed and recorded as
// "auth.passkey"; opening a session is the caller's.
func (s *Service) FinishLogin(ctx context.Context, ev audit.Event, token string, response []byte) (userID string, err error) {
	ev.Action, ev.ObjectType = "auth.passkey", "user"
	data, err := s.take(ctx, token, kindLogin, "")
	if err != nil {
		return "", s.recordFailure(ctx, ev, err)
	}
	return s.finishAssertion(ctx, ev, "", data, response)
}

// BeginSecondFactor starts confirming a known user with one of their passkeys
// (after their password, for instance): the options for
// navigator.credentials.get, listing the user's passkeys, and the ceremony
// token. ErrNotFound when the user has no passkey.
func (s *Service) BeginSecondFactor(ctx context.Context, userID string) (options []byte, token string, err error) {
	var have []stored
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		have, err = activeUser(ctx, tx, userID)
		return err
	})
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, errDisabled):
		return nil, "", ErrNotFound
	case err != nil:
		return nil, "", err
	case len(have) == 0:
		return nil, "", ErrNotFound
	}
	assertion, data, err := s.wa.BeginLogin(&user{id: userID, creds: credentials(have)})
	if err != nil {
		return nil, "", fmt.Errorf("passkey: begin second factor: %w", err)
	}
	if options, err = json.Marshal(assertion); err != nil {
		return nil, "", err
	}
	if token, err = s.begin(ctx, kindLogin, userID, data); err != nil {
		return nil, "", err
	}
	return options, token, nil
}

// FinishSecondFactor verifies the browser's response to the ceremony of token
// begun by BeginSecondFactor for userID. ev is completed and recorded as
// "auth.passkey".
func (s *Service) FinishSecondFactor(ctx context.Context, ev audit.Event, userID, token string, response []byte) error {
	ev.Action, ev.ObjectType, ev.ObjectID = "auth.passkey", "user", userID
	data, err := s.take(ctx, token, kindLogin, userID)
	if err != nil {
		return s.recordFailure(ctx, ev, err)
	}
	_, err = s.finishAssertion(ctx, ev, userID, data, response)
	return err
}

// finishAssertion verifies an assertion for userID (empty: whoever the
// passkey belongs to) and records the use.
func (s *Service) finishAssertion(ctx context.Context, ev audit.Event, userID string, data webauthn.SessionData, response []byte) (string, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return "", s.recordFailure(ctx, ev, verifyFailed(err))
	}
	// The passkey named by the response, with the other passkeys of its
	// user, read once: the library looks the credential up in the user's.
	var used stored
	var have []stored
	var lookupErr error
	load := func(rawID, userHandle []byte) (*user, error) {
		err := s.db.Read(ctx, func(tx *store.Tx) error {
			p, err := tx.GetPasskey(ctx, rawID)
			if err != nil {
				return err
			}
			if p.UserID != string(userHandle) || (userID != "" && p.UserID != userID) {
				return errWrongUser
			}
			if have, err = activeUser(ctx, tx, p.UserID); err != nil {
				return err
			}
			for _, h := range have {
				if string(h.row.ID) == string(p.ID) {
					used = h
				}
			}
			return nil
		})
		if err != nil {
			lookupErr = err
			return nil, err
		}
		return &user{id: used.row.UserID, creds: credentials(have)}, nil
	}
	var cred *webauthn.Credential
	if userID == "" {
		_, cred, err = s.wa.ValidatePasskeyLogin(func(rawID, userHandle []byte) (webauthn.User, error) {
			u, err := load(rawID, userHandle)
			if err != nil {
				return nil, err
			}
			return u, nil
		}, data, parsed)
	} else {
		var u *user
		if u, err = load(parsed.RawID, []byte(userID)); err == nil {
			cred, err = s.wa.ValidateLogin(u, data, parsed)
		}
	}
	if err != nil {
		switch {
		case errors.Is(lookupErr, store.ErrNotFound):
			err = reject("unknown passkey")
		case errors.Is(lookupErr, errWrongUser):
			err = reject("passkey of another user")
		case errors.Is(lookupErr, errDisabled):
			err = reject("user disabled")
		case lookupErr != nil:
			return "", lookupErr
		default:
			err = verifyFailed(err)
		}
		if used.row.UserID != "" {
			ev.ObjectID = used.row.UserID
		}
		return "", s.recordFailure(ctx, ev, err)
	}
	owner := used.row.UserID
	ev.ObjectID, ev.Actor = owner, "user:"+owner
	ev.Details = map[string]any{"passkey_id": encodeID(used.row.ID), "user_verified": parsed.Response.AuthenticatorData.Flags.HasUserVerified()}
	if cred.Authenticator.CloneWarning {
		// The counter did not advance: the private key may have been
		// copied. Refuse, and leave the stored record as it was.
		return "", s.recordFailure(ctx, ev, reject("signature counter did not advance"))
	}
	record, err := json.Marshal(cred)
	if err != nil {
		return "", err
	}
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.RecordPasskeyUse(ctx, used.row.ID, record, used.row.SignCount, int64(cred.Authenticator.SignCount), now); err != nil {
			return err
		}
		ev.Outcome = audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, store.ErrConflict) {
		return "", s.recordFailure(ctx, ev, reject("passkey used concurrently"))
	}
	if err != nil {
		return "", err
	}
	return owner, nil
}

var errWrongUser = errors.New("passkey of another user")

// List returns the user's passkeys, oldest first.
func (s *Service) List(ctx context.Context, userID string) ([]Passkey, error) {
	var out []Passkey
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		rows, err := tx.UserPasskeys(ctx, userID)
		if err != nil {
			return err
		}
		for _, r := range rows {
			st, err := decode(r)
			if err != nil {
				return err
			}
			out = append(out, listing(r, st.cred))
		}
		return nil
	})
	return out, err
}

// Count reports how many passkeys the user has (whether a passkey can serve
// as their second factor).
func (s *Service) Count(ctx context.Context, userID string) (int, error) {
	var n int
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.CountUserPasskeys(ctx, userID)
		return err
	})
	return n, err
}

// Remove deletes the user's passkey credID (base64url, as listed). ev is
// completed and recorded as "passkey.remove".
func (s *Service) Remove(ctx context.Context, ev audit.Event, userID, credID string) error {
	id, err := base64.RawURLEncoding.DecodeString(credID)
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return ErrNotFound
	}
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.DeletePasskey(ctx, userID, id); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "passkey.remove", "passkey", credID, audit.OK
		ev.Details = map[string]any{"user_id": userID}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
