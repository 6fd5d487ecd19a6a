package auth

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/keys"
	"github.com/custos/custos/internal/normalize"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/settings"
	"github.com/custos/custos/internal/store"
)

// Errors of the service.
var (
	ErrBadCredentials  = errors.New("invalid email or password")
	ErrUnauthenticated = errors.New("not authenticated")
	ErrUserExists      = errors.New("a user with this email already exists")
	ErrInvalid         = errors.New("invalid input")
	ErrNotFound        = errors.New("not found")
	ErrLocked          = errors.New("too many failed logins")
)

// LockedError is returned while an account or source address is locked after
// too many failed logins. It wraps ErrLocked.
type LockedError struct{ RetryAfter time.Duration }

func (e *LockedError) Error() string { return "too many failed logins: try again later" }

// Unwrap makes errors.Is(err, ErrLocked) true.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Settings of sessions, tokens and login throttling.
type Settings struct {
	SessionIdle     time.Duration // default 30m
	SessionLifetime time.Duration // default 12h
	MaxTokenTTL     time.Duration // default 365 days

	AccountFailures int           // failures per account within LockWindow before a lock (default 5)
	IPFailures      int           // failures per source IP within LockWindow before a lock (default 20)
	LockWindow      time.Duration // default 15m
	LockFor         time.Duration // how long a lock lasts (default 15m)
	// DelayBase is the progressive delay: the n-th consecutive failure (n >= 2)
	// waits DelayBase * 2^(n-2), at most 8 * DelayBase. Default 250ms.
	DelayBase time.Duration
}

// The throttling fields (AccountFailures, IPFailures, LockWindow, LockFor)
// override the runtime settings auth.lockout_* when set; by default they are
// read from the settings table (and CUSTOS_* variables) on every attempt, so
// `custos config set` changes them for every node at once.
func (s *Settings) defaults() {
	if s.DelayBase < 0 {
		s.DelayBase = 0
	} else if s.DelayBase == 0 {
		s.DelayBase = 250 * time.Millisecond
	}
	if s.SessionIdle <= 0 {
		s.SessionIdle = 30 * time.Minute
	}
	if s.SessionLifetime <= 0 {
		s.SessionLifetime = 12 * time.Hour
	}
	if s.MaxTokenTTL <= 0 {
		s.MaxTokenTTL = 365 * 24 * time.Hour
	}
}

// Service manages users, sessions and tokens.
type Service struct {
	db       *store.DB
	keys     *keys.Keyring
	cipher   seal.Cipher
	now      func() time.Time
	settings Settings
	dummy    string // a hash verified for unknown users, so timing does not tell
}

// New returns the service.
func New(db *store.DB, kr *keys.Keyring, settings Settings, now func() time.Time) *Service {
	settings.defaults()
	if now == nil {
		now = time.Now
	}
	dummy, _ := HashPassword("custos-dummy-password-for-timing")
	return &Service{db: db, keys: kr, cipher: seal.GCM{}, now: now, settings: settings, dummy: dummy}
}

// User is a decrypted user as shown to administrators and to the user.
type User struct {
	ID       string `json:"id"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Role     string `json:"role"`
	Disabled bool   `json:"disabled"`
	// Suspended: a detector suspended the user (bulk viewing) until an
	// alert handler reinstates them.
	Suspended bool      `json:"suspended"`
	CreatedAt time.Time `json:"created_at"`
}

// Identity is an authenticated user with the role record behind it.
type Identity struct {
	User    User
	Role    store.Role
	Via     string // "session", "token"
	TokenID string // set when Via == "token"

	// Session-only: when the user last proved who they are (for step-up),
	// whether a second factor was satisfied, and whether the session is
	// restricted to MFA enrollment because the role requires a factor.
	AuthenticatedAt time.Time
	MFA             bool
	// Restricted sessions may only do what lifts the restriction: enroll a
	// second factor (MFAEnrollment) or change the password (MustChangePassword).
	Restricted         bool
	MFAEnrollment      bool
	MustChangePassword bool

	// Policy is the login policy of the user's role (addresses, hours).
	Policy store.RolePolicy
}

// Actor is the audit name of the identity.
func (id Identity) Actor() string {
	if id.Via == "token" {
		return "token:" + id.TokenID
	}
	return "user:" + id.User.ID
}

func (s *Service) emailBidx(email string) []byte {
	return s.keys.Indexer().Term("user-email:" + email)
}

// NewUser is what creating a user needs.
type NewUser struct {
	Email    string
	Name     string
	Role     string
	Password string
}

// CreateUser adds a user. Actor is recorded in the audit trail.
func (s *Service) CreateUser(ctx context.Context, ev audit.Event, nu NewUser) (User, error) {
	email, err := normalize.Email(nu.Email)
	if err != nil {
		return User{}, fmt.Errorf("%w: email: %v", ErrInvalid, err)
	}
	name, err := normalize.Name(nu.Name)
	if err != nil {
		return User{}, fmt.Errorf("%w: name: %v", ErrInvalid, err)
	}
	if err := CheckPasswordPolicy(nu.Password, email, name); err != nil {
		return User{}, fmt.Errorf("%w: password: %v", ErrInvalid, err)
	}
	hash, err := HashPassword(nu.Password)
	if err != nil {
		return User{}, err
	}
	id := uuid.Must(uuid.NewV7()).String()
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetRole(ctx, nu.Role); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("%w: unknown role %q", ErrInvalid, nu.Role)
			}
			return err
		}
		dk, err := s.keys.NewDataKey(ctx, tx, id)
		if err != nil {
			return err
		}
		encEmail, err := s.cipher.Seal(dk, seal.AAD{Table: "users", Record: id, Field: "email"}, []byte(email))
		if err != nil {
			return err
		}
		encName, err := s.cipher.Seal(dk, seal.AAD{Table: "users", Record: id, Field: "name"}, []byte(name))
		if err != nil {
			return err
		}
		err = tx.InsertUser(ctx, store.User{ID: id, EmailBidx: s.emailBidx(email), Email: encEmail, Name: encName, Role: nu.Role,
			PasswordHash: hash, KeyVersion: dk.Version, CreatedAt: now, UpdatedAt: now, PasswordChangedAt: now})
		if errors.Is(err, store.ErrConflict) {
			return ErrUserExists
		}
		if err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "user.create", "user", id, audit.OK
		ev.Details = map[string]any{"role": nu.Role}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return User{}, err
	}
	return User{ID: id, Email: email, Name: name, Role: nu.Role, CreatedAt: now}, nil
}

func (s *Service) openUser(ctx context.Context, tx *store.Tx, u store.User) (User, error) {
	dk, err := s.keys.DataKey(ctx, tx, u.ID, u.KeyVersion)
	if err != nil {
		return User{}, err
	}
	email, err := s.cipher.Open(dk, seal.AAD{Table: "users", Record: u.ID, Field: "email"}, u.Email)
	if err != nil {
		return User{}, err
	}
	name, err := s.cipher.Open(dk, seal.AAD{Table: "users", Record: u.ID, Field: "name"}, u.Name)
	if err != nil {
		return User{}, err
	}
	return User{ID: u.ID, Email: string(email), Name: string(name), Role: u.Role, Disabled: u.Disabled, Suspended: u.Suspended, CreatedAt: u.CreatedAt}, nil
}

// GetUser loads one user.
func (s *Service) GetUser(ctx context.Context, id string) (User, error) {
	var out User
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, id)
		if err != nil {
			return err
		}
		out, err = s.openUser(ctx, tx, u)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, ErrNotFound
	}
	return out, err
}

// FindUserByEmail loads a user by email.
func (s *Service) FindUserByEmail(ctx context.Context, email string) (User, error) {
	e, err := normalize.Email(email)
	if err != nil {
		return User{}, fmt.Errorf("%w: email: %v", ErrInvalid, err)
	}
	var out User
	err = s.db.Read(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUserByEmailBidx(ctx, s.emailBidx(e))
		if err != nil {
			return err
		}
		out, err = s.openUser(ctx, tx, u)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return User{}, fmt.Errorf("%w: no user with that email", ErrNotFound)
	}
	return out, err
}

// ListUsers returns every user.
func (s *Service) ListUsers(ctx context.Context) ([]User, error) {
	var out []User
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		us, err := tx.Users(ctx)
		if err != nil {
			return err
		}
		for _, u := range us {
			d, err := s.openUser(ctx, tx, u)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	return out, err
}

// CountUsers reports how many users exist.
func (s *Service) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		n, err = tx.CountUsers(ctx)
		return err
	})
	return n, err
}

// SetDisabled disables or enables a user. Disabling ends every session and
// revokes every API token at once.
func (s *Service) SetDisabled(ctx context.Context, ev audit.Event, userID string, disabled bool) error {
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		was := u.Disabled
		u.Disabled, u.UpdatedAt = disabled, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		action := "user.enable"
		ev.Details = map[string]any{"was_disabled": was}
		if disabled {
			action = "user.disable"
			sessions, err := tx.UserSessions(ctx, userID)
			if err != nil {
				return err
			}
			if err := tx.DeleteUserSessions(ctx, userID); err != nil {
				return err
			}
			tokens, err := tx.UserTokens(ctx, userID)
			if err != nil {
				return err
			}
			revoked := 0
			for _, t := range tokens {
				if t.RevokedAt == nil {
					revoked++
				}
			}
			if err := tx.RevokeUserTokens(ctx, userID, now); err != nil {
				return err
			}
			ev.Details["sessions_ended"], ev.Details["tokens_revoked"] = len(sessions), revoked
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = action, "user", userID, audit.OK
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
}

// accountHash is how the audit trail names an account given at login: the
// keyed hash of the normalized email (of the trimmed, lower-cased text when
// it is not an email), never the text itself. An auditor holding a user's
// email can find their failed logins; nobody reads a mistyped name or a
// password pasted into the email field from the trail.
func (s *Service) accountHash(email string) string {
	norm, err := normalize.Email(email)
	if err != nil {
		norm = strings.ToLower(strings.TrimSpace(email))
	}
	return base64.RawURLEncoding.EncodeToString(s.emailBidx(norm))
}

// throttleKeys are the counters a login attempt touches: the account (by the
// keyed hash of the email, whether or not such a user exists, so locks and
// their timing do not reveal existence) and the source address.
func (s *Service) throttleKeys(email, ip string) []string {
	norm, err := normalize.Email(email)
	if err != nil {
		norm = strings.ToLower(strings.TrimSpace(email))
	}
	keys := []string{"acct:" + base64.RawURLEncoding.EncodeToString(s.emailBidx(norm))}
	if ip != "" {
		keys = append(keys, "ip:"+ip)
	}
	return keys
}

// throttle is the login throttling in force.
type throttle struct {
	account, ip     int
	window, lockFor time.Duration
}

func (t throttle) threshold(key string) int {
	if strings.HasPrefix(key, "ip:") {
		return t.ip
	}
	return t.account
}

// throttling reads the throttling settings in tx (fields of Settings that
// are set win over the stored settings).
func (s *Service) throttling(ctx context.Context, tx *store.Tx) (throttle, error) {
	st, err := tx.Settings(ctx)
	if err != nil {
		return throttle{}, err
	}
	m := make(map[string]string, len(st))
	for k, v := range st {
		m[k] = v.Value
	}
	v := settings.New(m, nil)
	t := throttle{account: v.Int(settings.LockoutFailures), ip: v.Int(settings.LockoutIPFailures),
		window: time.Duration(v.Int(settings.LockoutWindowMinutes)) * time.Minute, lockFor: time.Duration(v.Int(settings.LockoutMinutes)) * time.Minute}
	if s.settings.AccountFailures > 0 {
		t.account = s.settings.AccountFailures
	}
	if s.settings.IPFailures > 0 {
		t.ip = s.settings.IPFailures
	}
	if s.settings.LockWindow > 0 {
		t.window = s.settings.LockWindow
	}
	if s.settings.LockFor > 0 {
		t.lockFor = s.settings.LockFor
	}
	return t, nil
}

// Login checks an email and password and opens a session. It returns the
// session token and CSRF token (both shown once) and the identity. Unknown
// users and wrong passwords give the same error after the same work; repeated
// failures per account and per source address lock further attempts for a
// while (*LockedError), with progressive delays before the lock.
func (s *Service) Login(ctx context.Context, ev audit.Event, email, password string) (res LoginResult, err error) {
	now := s.now().UTC()
	ev.Action, ev.ObjectType = "auth.login", "user"
	keys := s.throttleKeys(email, ev.IP)
	failures, locks, err := s.reserve(ctx, keys, now)
	if err != nil {
		if errors.Is(err, ErrLocked) {
			ev.Outcome, ev.Reason = audit.Denied, "locked"
			ev.Details = map[string]any{"email_hash": s.accountHash(email)}
			if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
				return LoginResult{}, aerr
			}
		}
		return LoginResult{}, err
	}
	// The attempt is already counted: a failure only needs its audit event
	// and the progressive delay.
	fail := func(reason string, details map[string]any) error {
		// Every failure names the account by its keyed hash, so detectors
		// count failures per account whether or not it exists; a failure
		// that reached a lock threshold says which lock it set.
		if details == nil {
			details = map[string]any{}
		}
		details["email_hash"] = s.accountHash(email)
		if len(locks) > 0 {
			details["locked"] = locks
		}
		ev.Outcome, ev.Reason, ev.Details = audit.Denied, reason, details
		if err := audit.RecordAlone(ctx, s.db, now, ev); err != nil {
			return err
		}
		if err := s.sleep(ctx, s.delay(failures)); err != nil {
			return err
		}
		return ErrBadCredentials
	}
	norm, nerr := normalize.Email(email)
	var u store.User
	found := false
	if nerr == nil {
		err = s.db.Read(ctx, func(tx *store.Tx) error {
			var err error
			u, err = tx.GetUserByEmailBidx(ctx, s.emailBidx(norm))
			return err
		})
		switch {
		case err == nil:
			found = true
		case !errors.Is(err, store.ErrNotFound):
			return LoginResult{}, err
		}
	}
	if !found {
		_, _ = VerifyPassword(s.dummy, password)
		// The unknown name is recorded only as a keyed hash.
		return LoginResult{}, fail("unknown user", map[string]any{"email_hash": s.accountHash(email)})
	}
	ev.ObjectID = u.ID
	ok, verr := VerifyPassword(u.PasswordHash, password)
	if verr != nil || !ok {
		return LoginResult{}, fail("bad password", nil)
	}
	if u.Disabled {
		return LoginResult{}, fail("user disabled", nil)
	}
	if u.Suspended {
		return LoginResult{}, fail("user suspended", nil)
	}
	if err := s.checkLoginPolicy(ctx, u.Role, ev.IP, now); err != nil {
		// Answered exactly like a wrong password (and counted as one): from
		// outside the allowlist or the hours, nobody learns that a password
		// is right. The audit trail keeps the real reason.
		return LoginResult{}, fail("login policy", map[string]any{"policy": err.Error()})
	}
	var rehash string
	if NeedsRehash(u.PasswordHash) {
		if rehash, err = HashPassword(password); err != nil {
			return LoginResult{}, err
		}
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if rehash != "" {
			// Stronger parameters since this hash was made: upgrade it now
			// that the password is known.
			cur, err := tx.GetUser(ctx, u.ID)
			if err != nil {
				return err
			}
			cur.PasswordHash = rehash
			if err := tx.UpdateUser(ctx, cur); err != nil {
				return err
			}
		}
		methods, err := secondFactors(ctx, tx, u.ID)
		if err != nil {
			return err
		}
		has := len(methods) > 0
		ev.Outcome, ev.Actor = audit.OK, "user:"+u.ID
		if has {
			// The password was right; the session waits for the second
			// factor. The failure counter is not reset yet, so guessing the
			// code stays throttled.
			token, hash, err := newSecret("")
			if err != nil {
				return err
			}
			if err := tx.InsertMFAChallenge(ctx, store.MFAChallenge{IDHash: hash, UserID: u.ID, IP: ev.IP, CreatedAt: now, ExpiresAt: now.Add(challengeTTL)}); err != nil {
				return err
			}
			res.Challenge, res.Methods = token, methods
			ev.Details = map[string]any{"second_factor": "pending"}
			_, err = audit.Record(ctx, tx, now, ev)
			return err
		}
		if err := s.release(ctx, tx, keys); err != nil {
			return err
		}
		if res.Token, res.CSRF, err = s.openSession(ctx, tx, u.ID, ev, now, nil); err != nil {
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

// recordLocked records an attempt refused because the account or the source
// address is locked (err from reserve) and returns err; other errors pass.
// ev names the action and the user.
func (s *Service) recordLocked(ctx context.Context, ev audit.Event, now time.Time, err error) error {
	if !errors.Is(err, ErrLocked) {
		return err
	}
	ev.Outcome, ev.Reason = audit.Denied, "locked"
	if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
		return aerr
	}
	return err
}

// delay is the progressive delay after the n-th consecutive failure.
func (s *Service) delay(failures int) time.Duration {
	if failures < 2 || s.settings.DelayBase == 0 {
		return 0
	}
	d := s.settings.DelayBase << min(failures-2, 3)
	return min(d, 8*s.settings.DelayBase)
}

func (s *Service) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Unlock clears the failed-login counter of a user's account (admin action).
func (s *Service) Unlock(ctx context.Context, ev audit.Event, userID string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.ClearLoginThrottle(ctx, s.throttleKeys(u.Email, "")[0]); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "user.unlock", "user", userID, audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// Logout ends the session of token.
func (s *Service) Logout(ctx context.Context, ev audit.Event, token string) error {
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.DeleteSession(ctx, hashSecret(token)); err != nil {
			return err
		}
		ev.Action, ev.Outcome = "auth.logout", audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
}

func (s *Service) identity(ctx context.Context, userID, via, tokenID string, sess *store.Session) (Identity, error) {
	var id Identity
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		if u.Disabled || u.Suspended {
			return ErrUnauthenticated
		}
		role, err := tx.GetRole(ctx, u.Role)
		if err != nil {
			return err
		}
		du, err := s.openUser(ctx, tx, u)
		if err != nil {
			return err
		}
		policy, err := tx.GetRolePolicy(ctx, u.Role)
		if err != nil {
			return err
		}
		id = Identity{User: du, Role: role, Via: via, TokenID: tokenID, Policy: policy}
		if sess != nil {
			id.AuthenticatedAt, id.MFA = sess.AuthenticatedAt, sess.MFAAt != nil
			id.MFAEnrollment = policy.MFARequired && sess.MFAAt == nil
			id.MustChangePassword = u.MustChangePassword
			id.Restricted = id.MFAEnrollment || id.MustChangePassword
		}
		return nil
	})
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, ErrUnauthenticated
	}
	return id, err
}

// Session resolves a session token. It checks idle and absolute expiry and
// the user's state on every call, so disabling a user takes effect at once.
// It returns the hash of the CSRF token for the caller to compare.
func (s *Service) Session(ctx context.Context, token string) (Identity, []byte, error) {
	if token == "" || len(token) > 128 {
		return Identity{}, nil, ErrUnauthenticated
	}
	now := s.now().UTC()
	h := hashSecret(token)
	var sess store.Session
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		sess, err = tx.GetSession(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, nil, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, nil, err
	}
	if now.After(sess.ExpiresAt) || now.Sub(sess.LastSeenAt) > s.settings.SessionIdle {
		_ = s.db.Write(ctx, func(tx *store.Tx) error { return tx.DeleteSession(ctx, h) })
		return Identity{}, nil, ErrUnauthenticated
	}
	id, err := s.identity(ctx, sess.UserID, "session", "", &sess)
	if err != nil {
		return Identity{}, nil, err
	}
	// Refresh the idle timer at most once a minute to spare the writer.
	if now.Sub(sess.LastSeenAt) > time.Minute {
		_ = s.db.Write(ctx, func(tx *store.Tx) error { return tx.TouchSession(ctx, h, now) })
	}
	return id, sess.CSRFHash, nil
}

// CheckCSRF compares a presented CSRF token with the session's hash.
func CheckCSRF(presented string, wantHash []byte) bool {
	if presented == "" || len(presented) > 128 {
		return false
	}
	return subtle.ConstantTimeCompare(hashSecret(presented), wantHash) == 1
}

// Token is an API token as listed (never the secret itself).
type Token struct {
	ID         string     `json:"id"`
	UserID     string     `json:"user_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	RevokedAt  *time.Time `json:"revoked_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

func tokenOf(t store.APIToken) Token {
	return Token{ID: t.ID, UserID: t.UserID, Name: t.Name, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, RevokedAt: t.RevokedAt, LastUsedAt: t.LastUsedAt}
}

// TokenPrefix starts every API token, so scanners can find leaked ones.
const TokenPrefix = "cst_"

// CreateToken issues an API token for userID. ttl 0 means the maximum.
func (s *Service) CreateToken(ctx context.Context, ev audit.Event, userID, name string, ttl time.Duration) (secret string, t Token, err error) {
	name = strings.TrimSpace(name)
	if name == "" || len(name) > 100 {
		return "", Token{}, fmt.Errorf("%w: token name must be 1 to 100 characters", ErrInvalid)
	}
	if ttl < 0 {
		return "", Token{}, fmt.Errorf("%w: ttl must be positive", ErrInvalid)
	}
	if ttl == 0 || ttl > s.settings.MaxTokenTTL {
		if ttl > s.settings.MaxTokenTTL {
			return "", Token{}, fmt.Errorf("%w: ttl at most %s", ErrInvalid, s.settings.MaxTokenTTL)
		}
		ttl = s.settings.MaxTokenTTL
	}
	secret, hash, err := newSecret(TokenPrefix)
	if err != nil {
		return "", Token{}, err
	}
	now := s.now().UTC()
	exp := now.Add(ttl)
	row := store.APIToken{ID: uuid.Must(uuid.NewV7()).String(), UserID: userID, Name: name, Hash: hash, CreatedAt: now, ExpiresAt: &exp}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, userID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if u.Disabled {
			return fmt.Errorf("%w: user is disabled", ErrInvalid)
		}
		if u.Suspended {
			return fmt.Errorf("%w: user is suspended", ErrInvalid)
		}
		if err := tx.InsertToken(ctx, row); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "token.create", "token", row.ID, audit.OK
		ev.Details = map[string]any{"user_id": userID, "expires_at": exp}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return "", Token{}, err
	}
	return secret, tokenOf(row), nil
}

// ResolveToken authenticates a bearer token.
func (s *Service) ResolveToken(ctx context.Context, secret string) (Identity, error) {
	if !strings.HasPrefix(secret, TokenPrefix) || len(secret) > 128 {
		return Identity{}, ErrUnauthenticated
	}
	now := s.now().UTC()
	var t store.APIToken
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		t, err = tx.GetTokenByHash(ctx, hashSecret(secret))
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Identity{}, ErrUnauthenticated
	}
	if err != nil {
		return Identity{}, err
	}
	if t.RevokedAt != nil || (t.ExpiresAt != nil && now.After(*t.ExpiresAt)) {
		return Identity{}, ErrUnauthenticated
	}
	id, err := s.identity(ctx, t.UserID, "token", t.ID, nil)
	if err != nil {
		return Identity{}, err
	}
	if t.LastUsedAt == nil || now.Sub(*t.LastUsedAt) > time.Minute {
		_ = s.db.Write(ctx, func(tx *store.Tx) error { return tx.TouchToken(ctx, t.ID, now) })
	}
	return id, nil
}

// ListTokens lists a user's tokens.
func (s *Service) ListTokens(ctx context.Context, userID string) ([]Token, error) {
	var out []Token
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		ts, err := tx.UserTokens(ctx, userID)
		for _, t := range ts {
			out = append(out, tokenOf(t))
		}
		return err
	})
	return out, err
}

// GetToken loads one token's listing.
func (s *Service) GetToken(ctx context.Context, id string) (Token, error) {
	var out Token
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		t, err := tx.GetToken(ctx, id)
		out = tokenOf(t)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return Token{}, ErrNotFound
	}
	return out, err
}

// RevokeToken revokes a token.
func (s *Service) RevokeToken(ctx context.Context, ev audit.Event, id string) error {
	now := s.now().UTC()
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		t, err := tx.GetToken(ctx, id)
		if err != nil {
			return err
		}
		if err := tx.RevokeToken(ctx, id, now); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "token.revoke", "token", id, audit.OK
		ev.Details = map[string]any{"user_id": t.UserID}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}

// newSecret returns a 256-bit random secret (with prefix) and its SHA-256.
func newSecret(prefix string) (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	s := prefix + base64.RawURLEncoding.EncodeToString(b)
	return s, hashSecret(s), nil
}

// hashSecret hashes a high-entropy secret for storage. A fast hash is right
// here: the secret has 256 bits, so there is nothing to brute-force.
func hashSecret(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:]
}

// ChangePassword changes the password of a session's user, given the current
// one. Every other session of the user ends and this one is replaced by a new
// session id; it returns the new session token and CSRF token.
func (s *Service) ChangePassword(ctx context.Context, ev audit.Event, sessionToken, current, next string) (token, csrf string, err error) {
	id, _, err := s.Session(ctx, sessionToken)
	if err != nil {
		return "", "", err
	}
	if err := CheckPasswordPolicy(next, id.User.Email, id.User.Name); err != nil {
		return "", "", fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	hash, err := HashPassword(next)
	if err != nil {
		return "", "", err
	}
	now := s.now().UTC()
	ev.Action, ev.ObjectType, ev.ObjectID = "user.password.change", "user", id.User.ID
	keys := s.throttleKeys(id.User.Email, ev.IP)
	if _, _, err := s.reserve(ctx, keys, now); err != nil {
		return "", "", s.recordLocked(ctx, ev, now, err)
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		u, err := tx.GetUser(ctx, id.User.ID)
		if err != nil {
			return err
		}
		if ok, err := VerifyPassword(u.PasswordHash, current); err != nil || !ok {
			return ErrBadCredentials
		}
		if ok, _ := VerifyPassword(u.PasswordHash, next); ok {
			return fmt.Errorf("%w: the new password must differ from the current one", ErrInvalid)
		}
		sess, err := tx.GetSession(ctx, hashSecret(sessionToken))
		if err != nil {
			return err
		}
		if err := s.release(ctx, tx, keys); err != nil {
			return err
		}
		u.PasswordHash, u.MustChangePassword, u.PasswordChangedAt, u.UpdatedAt = hash, false, now, now
		if err := tx.UpdateUser(ctx, u); err != nil {
			return err
		}
		if err := tx.DeleteUserSessions(ctx, u.ID); err != nil {
			return err
		}
		if token, csrf, err = s.openSession(ctx, tx, u.ID, ev, now, sess.MFAAt); err != nil {
			return err
		}
		ev.Outcome = audit.OK
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, ErrBadCredentials) {
		ev.Outcome, ev.Reason = audit.Denied, "wrong current password"
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return "", "", aerr
		}
	}
	return token, csrf, err
}

// ResetPassword is an administrator's reset: a new password that the user
// must change at the next login; every session of the user ends.
func (s *Service) ResetPassword(ctx context.Context, ev audit.Event, userID, next string) error {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if err := CheckPasswordPolicy(next, u.Email, u.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	hash, err := HashPassword(next)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		row, err := tx.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		row.PasswordHash, row.MustChangePassword, row.PasswordChangedAt, row.UpdatedAt = hash, true, now, now
		if err := tx.UpdateUser(ctx, row); err != nil {
			return err
		}
		if err := tx.DeleteUserSessions(ctx, userID); err != nil {
			return err
		}
		// A reset usually follows a compromise: tokens issued before it end too.
		if err := tx.RevokeUserTokens(ctx, userID, now); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "user.password.reset", "user", userID, audit.OK
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
}

// checkLoginPolicy applies the role's address allowlist and login hours.
func (s *Service) checkLoginPolicy(ctx context.Context, role, ip string, now time.Time) error {
	var p store.RolePolicy
	if err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		p, err = tx.GetRolePolicy(ctx, role)
		return err
	}); err != nil {
		return err
	}
	lp, err := access.ParseLoginPolicy(p.IPAllowlist, p.LoginHours)
	if err != nil {
		return fmt.Errorf("role %s has an invalid login policy: %w", role, err)
	}
	return lp.Check(ip, now)
}

// SetRolePolicy changes a role's login policy (MFA required, address
// allowlist, login hours) after validating it.
func (s *Service) SetRolePolicy(ctx context.Context, ev audit.Event, p store.RolePolicy) error {
	if _, err := access.ParseLoginPolicy(p.IPAllowlist, p.LoginHours); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetRole(ctx, p.Role); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrNotFound
			}
			return err
		}
		if err := tx.SetRolePolicy(ctx, p); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "role.policy.update", "role", p.Role, audit.OK
		ev.Details = map[string]any{"mfa_required": p.MFARequired, "ip_allowlist": p.IPAllowlist, "login_hours": p.LoginHours}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
}

// RolePolicy reads a role's login policy.
func (s *Service) RolePolicy(ctx context.Context, role string) (store.RolePolicy, error) {
	var p store.RolePolicy
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetRole(ctx, role); err != nil {
			return err
		}
		var err error
		p, err = tx.GetRolePolicy(ctx, role)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return store.RolePolicy{}, ErrNotFound
	}
	return p, err
}

// SessionInfo describes a session to its user (never the token).
type SessionInfo struct {
	ID         string     `json:"id"` // hex of the token's hash
	IP         string     `json:"ip"`
	UserAgent  string     `json:"user_agent"`
	CreatedAt  time.Time  `json:"created_at"`
	LastSeenAt time.Time  `json:"last_seen_at"`
	ExpiresAt  time.Time  `json:"expires_at"`
	MFA        bool       `json:"mfa"`
	Current    bool       `json:"current"`
	MFAAt      *time.Time `json:"-"`
}

// Sessions lists a user's live sessions; current marks the caller's own.
func (s *Service) Sessions(ctx context.Context, userID, currentToken string) ([]SessionInfo, error) {
	now := s.now().UTC()
	cur := hashSecret(currentToken)
	out := []SessionInfo{}
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		ss, err := tx.UserSessions(ctx, userID)
		for _, x := range ss {
			if now.After(x.ExpiresAt) || now.Sub(x.LastSeenAt) > s.settings.SessionIdle {
				continue
			}
			out = append(out, SessionInfo{ID: hex.EncodeToString(x.IDHash), IP: x.IP, UserAgent: x.UserAgent, CreatedAt: x.CreatedAt,
				LastSeenAt: x.LastSeenAt, ExpiresAt: x.ExpiresAt, MFA: x.MFAAt != nil, Current: currentToken != "" && bytes.Equal(x.IDHash, cur)})
		}
		return err
	})
	return out, err
}

// RevokeSession ends one session of a user, by its listed id.
func (s *Service) RevokeSession(ctx context.Context, ev audit.Event, userID, sessionID string) error {
	h, err := hex.DecodeString(sessionID)
	if err != nil || len(h) != 32 {
		return ErrNotFound
	}
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		sess, err := tx.GetSession(ctx, h)
		if errors.Is(err, store.ErrNotFound) || (err == nil && sess.UserID != userID) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if err := tx.DeleteSession(ctx, h); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "session.revoke", "user", userID, audit.OK
		// The session's id is the hash of its secret: naming it gives nothing away.
		ev.Details = map[string]any{"session_id": sessionID, "session_ip": sess.IP}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
}

// RevokeAllSessions ends every session of a user (administrator action).
func (s *Service) RevokeAllSessions(ctx context.Context, ev audit.Event, userID string) error {
	now := s.now().UTC()
	return s.db.Write(ctx, func(tx *store.Tx) error {
		if _, err := tx.GetUser(ctx, userID); err != nil {
			if errors.Is(err, store.ErrNotFound) {
				return ErrNotFound
			}
			return err
		}
		sessions, err := tx.UserSessions(ctx, userID)
		if err != nil {
			return err
		}
		if err := tx.DeleteUserSessions(ctx, userID); err != nil {
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "session.revoke_all", "user", userID, audit.OK
		ev.Details = map[string]any{"sessions_ended": len(sessions)}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
}

// Language returns the language a user chose for the pages ("" for none).
func (s *Service) Language(ctx context.Context, userID string) (string, error) {
	var lang string
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		lang, err = tx.UserLang(ctx, userID)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return "", ErrNotFound
	}
	return lang, err
}

// SetLanguage stores the language a user chose for the pages (a tag the
// caller has checked, or "" to follow the browser), audited.
func (s *Service) SetLanguage(ctx context.Context, ev audit.Event, userID, lang string) error {
	if len(lang) > 16 {
		return fmt.Errorf("%w: language tag too long", ErrInvalid)
	}
	now := s.now().UTC()
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "user.language", "user", userID, audit.OK
	ev.Details = map[string]any{"lang": lang}
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.SetUserLang(ctx, userID, lang); err != nil {
			return err
		}
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return ErrNotFound
	}
	return err
}
