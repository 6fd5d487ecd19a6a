package auth

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/custos/custos/internal/access"
	"github.com/custos/custos/internal/audit"
	"github.com/custos/custos/internal/mfa"
	"github.com/custos/custos/internal/seal"
	"github.com/custos/custos/internal/store"
)

// Errors of the second factor.
var (
	ErrFactorExists = errors.New("a second factor is already enrolled")
	ErrNoFactor     = errors.New("no second factor to confirm: start enrollment first")
	ErrBadCode      = errors.New("invalid code")
)

// Login methods offered for the second factor.
const (
	MethodTOTP     = "totp"
	MethodRecovery = "recovery_code"
	MethodPasskey  = "passkey"
)

const (
	challengeTTL         = 5 * time.Minute
	maxChallengeAttempts = 5
)

// LoginResult is the outcome of a successful first factor: either a session
// (Token, CSRF) or, when the user has a second factor, a Challenge to answer
// with CompleteMFA.
type LoginResult struct {
	Token     string
	CSRF      string
	Identity  Identity
	Challenge string
	Methods   []string
}

func (s *Service) totpAAD(userID string) seal.AAD {
	return seal.AAD{Table: "totp_factors", Record: userID, Field: "secret"}
}

func (s *Service) recoveryPepper() []byte { return s.keys.Indexer().Term("recovery-code-pepper") }

// secondFactors lists the second factors a user can answer a challenge with.
func secondFactors(ctx context.Context, tx *store.Tx, userID string) ([]string, error) {
	var m []string
	totp, err := hasConfirmedTOTP(ctx, tx, userID)
	if err != nil {
		return nil, err
	}
	if totp {
		m = append(m, MethodTOTP, MethodRecovery)
	}
	n, err := tx.CountUserPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		m = append(m, MethodPasskey)
	}
	return m, nil
}

// hasConfirmedTOTP reports whether the user has a confirmed TOTP factor.
func hasConfirmedTOTP(ctx context.Context, tx *store.Tx, userID string) (bool, error) {
	f, err := tx.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return err == nil && f.ConfirmedAt != nil, err
}

// openSession creates a session for a user who passed every required factor
// (mfaAt set) or only the first (mfaAt nil).
func (s *Service) openSession(ctx context.Context, tx *store.Tx, userID string, ev audit.Event, now time.Time, mfaAt *time.Time) (token, csrf string, err error) {
	token, tokenHash, err := newSecret("")
	if err != nil {
		return "", "", err
	}
	csrf, csrfHash, err := newSecret("")
	if err != nil {
		return "", "", err
	}
	err = tx.InsertSession(ctx, store.Session{IDHash: tokenHash, UserID: userID, CSRFHash: csrfHash, IP: ev.IP, UserAgent: truncate(ev.UserAgent, 256),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: now.Add(s.settings.SessionLifetime), AuthenticatedAt: now, MFAAt: mfaAt})
	return token, csrf, err
}

// StartTOTP begins TOTP enrollment for the user: a new secret, its otpauth
// URL and QR code. It replaces an unconfirmed enrollment, and refuses when a
// confirmed factor exists.
func (s *Service) StartTOTP(ctx context.Context, ev audit.Event, userID string) (mfa.Enrollment, error) {
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	en, err := mfa.NewTOTP(mfa.DefaultIssuer, u.Email)
	if err != nil {
		return mfa.Enrollment{}, err
	}
	now := s.now().UTC()
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		row, err := tx.GetUser(ctx, userID)
		if err != nil {
			return err
		}
		dk, err := s.keys.DataKey(ctx, tx, userID, row.KeyVersion)
		if err != nil {
			return err
		}
		sealed, err := s.cipher.Seal(dk, s.totpAAD(userID), []byte(en.Secret))
		if err != nil {
			return err
		}
		if err := tx.PutTOTP(ctx, store.TOTPFactor{UserID: userID, Secret: sealed, KeyVersion: dk.Version, CreatedAt: now}); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrFactorExists
			}
			return err
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome = "mfa.totp.start", "user", userID, audit.OK
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return mfa.Enrollment{}, err
	}
	return en, nil
}

// verifyTOTP checks a code against the user's factor and consumes its step.
func (s *Service) verifyTOTP(ctx context.Context, tx *store.Tx, userID, code string, now time.Time, requireConfirmed bool) error {
	f, err := tx.GetTOTP(ctx, userID)
	if errors.Is(err, store.ErrNotFound) {
		return ErrNoFactor
	}
	if err != nil {
		return err
	}
	if requireConfirmed && f.ConfirmedAt == nil {
		return ErrNoFactor
	}
	dk, err := s.keys.DataKey(ctx, tx, userID, f.KeyVersion)
	if err != nil {
		return err
	}
	secret, err := s.cipher.Open(dk, s.totpAAD(userID), f.Secret)
	if err != nil {
		return err
	}
	step, err := mfa.VerifyTOTP(string(secret), code, now, f.LastStep)
	if err != nil {
		return ErrBadCode
	}
	if err := tx.UseTOTPStep(ctx, userID, step, now); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return ErrBadCode // another request used this step first
		}
		return err
	}
	return nil
}

// ConfirmTOTP completes enrollment with a first code from the app. It
// returns 10 recovery codes (shown once) and a new session (the old one ends:
// a new session id on every change of privilege), now with MFA satisfied.
func (s *Service) ConfirmTOTP(ctx context.Context, ev audit.Event, sessionToken, code string) (recovery []string, id Identity, token, csrf string, err error) {
	id, _, err = s.Session(ctx, sessionToken)
	if err != nil {
		return nil, Identity{}, "", "", err
	}
	now := s.now().UTC()
	ev.Action, ev.ObjectType, ev.ObjectID = "mfa.totp.confirm", "user", id.User.ID
	// Enrolling a factor is lasting access: it needs a recent sign-in (a
	// forced enrollment comes right after one), and guessing the code is
	// throttled like a password.
	if now.Sub(id.AuthenticatedAt) > access.StepUpWindow {
		ev.Outcome, ev.Reason = audit.Denied, "step-up required"
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return nil, Identity{}, "", "", aerr
		}
		return nil, Identity{}, "", "", access.ErrStepUp
	}
	keys := s.throttleKeys(id.User.Email, ev.IP)
	if _, _, err := s.reserve(ctx, keys, now); err != nil {
		return nil, Identity{}, "", "", s.recordLocked(ctx, ev, now, err)
	}
	recovery, err = mfa.NewRecoveryCodes()
	if err != nil {
		return nil, Identity{}, "", "", err
	}
	hashes := make([][]byte, len(recovery))
	for i, c := range recovery {
		hashes[i] = mfa.HashRecoveryCode(s.recoveryPepper(), c)
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		if confirmed, err := hasConfirmedTOTP(ctx, tx, id.User.ID); err != nil {
			return err
		} else if confirmed {
			return ErrFactorExists
		}
		if err := s.verifyTOTP(ctx, tx, id.User.ID, code, now, false); err != nil {
			return err
		}
		if err := s.release(ctx, tx, keys); err != nil {
			return err
		}
		if err := tx.ReplaceRecoveryCodes(ctx, id.User.ID, hashes); err != nil {
			return err
		}
		if err := tx.DeleteSession(ctx, hashSecret(sessionToken)); err != nil {
			return err
		}
		if token, csrf, err = s.openSession(ctx, tx, id.User.ID, ev, now, &now); err != nil {
			return err
		}
		ev.Outcome = audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, ErrBadCode) || errors.Is(err, ErrNoFactor) {
		ev.Outcome, ev.Reason = audit.Denied, err.Error()
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return nil, Identity{}, "", "", aerr
		}
	}
	if err != nil {
		return nil, Identity{}, "", "", err
	}
	id, _, err = s.Session(ctx, token)
	return recovery, id, token, csrf, err
}

// CompleteMFA answers a login challenge with a TOTP code or a recovery code
// and opens the session. Failures count against the account like failed
// passwords, and a challenge allows 5 attempts within 5 minutes.
func (s *Service) CompleteMFA(ctx context.Context, ev audit.Event, challenge, code string) (LoginResult, error) {
	now := s.now().UTC()
	h := hashSecret(challenge)
	ev.Action, ev.ObjectType = "auth.mfa", "user"
	var ch store.MFAChallenge
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		ch, err = tx.GetMFAChallenge(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && (now.After(ch.ExpiresAt) || ch.Attempts >= maxChallengeAttempts)) {
		if err == nil {
			// A code for a challenge that is over: on record with its user,
			// once (the challenge goes). An unknown challenge names nobody,
			// and recording each would let anyone flood the trail.
			ev.Outcome, ev.Reason, ev.ObjectID = audit.Denied, "challenge expired", ch.UserID
			if ch.Attempts >= maxChallengeAttempts {
				ev.Reason = "challenge attempts used up"
			}
			if werr := s.db.Write(ctx, func(tx *store.Tx) error {
				if err := tx.DeleteMFAChallenge(ctx, h); err != nil {
					return err
				}
				_, err := audit.Record(ctx, tx, now, ev)
				return err
			}); werr != nil {
				return LoginResult{}, werr
			}
		}
		return LoginResult{}, fmt.Errorf("%w: the login expired; sign in again", ErrUnauthenticated)
	}
	if err != nil {
		return LoginResult{}, err
	}
	u, err := s.GetUser(ctx, ch.UserID)
	if err != nil {
		return LoginResult{}, err
	}
	ev.ObjectID = u.ID
	keys := s.throttleKeys(u.Email, ev.IP)
	if _, _, err := s.reserve(ctx, keys, now); err != nil {
		return LoginResult{}, s.recordLocked(ctx, ev, now, err)
	}
	// Take one of the challenge's attempts atomically before checking the
	// code, so a burst of parallel guesses gets no more than five.
	if err := s.db.Write(ctx, func(tx *store.Tx) error { return tx.ClaimMFAAttempt(ctx, h, now, maxChallengeAttempts) }); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return LoginResult{}, fmt.Errorf("%w: the login expired; sign in again", ErrUnauthenticated)
		}
		return LoginResult{}, err
	}
	ev.ObjectID = u.ID
	var res LoginResult
	method := MethodTOTP
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		verr := s.verifyTOTP(ctx, tx, u.ID, code, now, true)
		if errors.Is(verr, ErrBadCode) {
			// Not a valid TOTP code: maybe a recovery code.
			stored, err := tx.UnusedRecoveryCodes(ctx, u.ID)
			if err != nil {
				return err
			}
			if i := mfa.MatchRecoveryCode(s.recoveryPepper(), code, stored); i >= 0 {
				if err := tx.UseRecoveryCode(ctx, u.ID, stored[i], now); err != nil {
					return err
				}
				method, verr = MethodRecovery, nil
			}
		}
		if verr != nil {
			return verr
		}
		if err := tx.DeleteMFAChallenge(ctx, h); err != nil {
			return err
		}
		if err := s.release(ctx, tx, keys); err != nil {
			return err
		}
		var err error
		if res.Token, res.CSRF, err = s.openSession(ctx, tx, u.ID, ev, now, &now); err != nil {
			return err
		}
		ev.Outcome, ev.Actor, ev.Details = audit.OK, "user:"+u.ID, map[string]any{"method": method}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, ErrBadCode) {
		// The attempt was counted before the check; record the refusal.
		ev.Outcome, ev.Reason = audit.Denied, "bad second factor"
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return LoginResult{}, aerr
		}
		return LoginResult{}, ErrBadCode
	}
	if err != nil {
		return LoginResult{}, err
	}
	res.Identity, _, err = s.Session(ctx, res.Token)
	return res, err
}

// Reauthenticate is step-up: the user of a session proves again who they are
// with their password (or, when enrolled, a TOTP code), so sensitive actions
// are allowed for StepUpWindow.
func (s *Service) Reauthenticate(ctx context.Context, ev audit.Event, sessionToken, password, code string) error {
	id, _, err := s.Session(ctx, sessionToken)
	if err != nil {
		return err
	}
	now := s.now().UTC()
	ev.Action, ev.ObjectType, ev.ObjectID = "auth.reauthenticate", "user", id.User.ID
	// Guessing through step-up is throttled like guessing at login: a stolen
	// session cookie must not become an unlimited password oracle.
	keys := s.throttleKeys(id.User.Email, ev.IP)
	if _, _, err := s.reserve(ctx, keys, now); err != nil {
		return s.recordLocked(ctx, ev, now, err)
	}
	err = s.db.Write(ctx, func(tx *store.Tx) error {
		switch {
		case code != "":
			if err := s.verifyTOTP(ctx, tx, id.User.ID, code, now, true); err != nil {
				return err
			}
		case password != "":
			u, err := tx.GetUser(ctx, id.User.ID)
			if err != nil {
				return err
			}
			if ok, err := VerifyPassword(u.PasswordHash, password); err != nil || !ok {
				return ErrBadCredentials
			}
		default:
			return fmt.Errorf("%w: give your password or a code", ErrInvalid)
		}
		if err := s.release(ctx, tx, keys); err != nil {
			return err
		}
		if err := tx.MarkSessionAuthenticated(ctx, hashSecret(sessionToken), now, code != ""); err != nil {
			return err
		}
		ev.Outcome = audit.OK
		_, err := audit.Record(ctx, tx, now, ev)
		return err
	})
	if errors.Is(err, ErrBadCode) || errors.Is(err, ErrBadCredentials) || errors.Is(err, ErrNoFactor) {
		ev.Outcome, ev.Reason = audit.Denied, "step-up failed"
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return aerr
		}
	}
	return err
}

// OpenVerifiedSession opens a session for a user whose identity another
// mechanism proved (a passkey with user verification, which counts as both
// factors when mfa is set). The user must be enabled and within the login
// policy of their role; the login is audited with the method.
func (s *Service) OpenVerifiedSession(ctx context.Context, ev audit.Event, userID, method string, mfa bool) (LoginResult, error) {
	now := s.now().UTC()
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Actor = "auth.login", "user", userID, "user:"+userID
	u, err := s.GetUser(ctx, userID)
	if err != nil {
		return LoginResult{}, err
	}
	if u.Disabled || u.Suspended {
		reason := "user disabled"
		if !u.Disabled {
			reason = "user suspended"
		}
		ev.Outcome, ev.Reason, ev.Details = audit.Denied, reason, map[string]any{"method": method}
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return LoginResult{}, aerr
		}
		return LoginResult{}, ErrUnauthenticated
	}
	if err := s.checkLoginPolicy(ctx, u.Role, ev.IP, now); err != nil {
		ev.Outcome, ev.Reason, ev.Details = audit.Denied, "login policy", map[string]any{"method": method}
		if aerr := audit.RecordAlone(ctx, s.db, now, ev); aerr != nil {
			return LoginResult{}, aerr
		}
		return LoginResult{}, err
	}
	var mfaAt *time.Time
	if mfa {
		mfaAt = &now
	}
	return s.finishLogin(ctx, ev, userID, u.Email, method, now, mfaAt, nil)
}

// finishLogin opens the session of a user who passed every check, clears the
// account's failure counter and records the login, in one transaction;
// before, when set, runs first in it (e.g. to consume a challenge).
func (s *Service) finishLogin(ctx context.Context, ev audit.Event, userID, email, method string, now time.Time, mfaAt *time.Time, before func(*store.Tx) error) (LoginResult, error) {
	var res LoginResult
	err := s.db.Write(ctx, func(tx *store.Tx) error {
		if before != nil {
			if err := before(tx); err != nil {
				return err
			}
		}
		if err := tx.ClearLoginThrottle(ctx, s.throttleKeys(email, "")[0]); err != nil {
			return err
		}
		var err error
		if res.Token, res.CSRF, err = s.openSession(ctx, tx, userID, ev, now, mfaAt); err != nil {
			return err
		}
		ev.Outcome, ev.Details = audit.OK, map[string]any{"method": method}
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
	if err != nil {
		return LoginResult{}, err
	}
	res.Identity, _, err = s.Session(ctx, res.Token)
	return res, err
}

// liveChallenge loads a challenge that can still be answered.
func (s *Service) liveChallenge(ctx context.Context, challenge string, now time.Time) (store.MFAChallenge, error) {
	h := hashSecret(challenge)
	var ch store.MFAChallenge
	err := s.db.Read(ctx, func(tx *store.Tx) error {
		var err error
		ch, err = tx.GetMFAChallenge(ctx, h)
		return err
	})
	if errors.Is(err, store.ErrNotFound) || (err == nil && (now.After(ch.ExpiresAt) || ch.Attempts >= maxChallengeAttempts)) {
		return store.MFAChallenge{}, fmt.Errorf("%w: the login expired; sign in again", ErrUnauthenticated)
	}
	return ch, err
}

// ChallengeUser returns the user of a live login challenge, for a second
// factor verified elsewhere (a passkey).
func (s *Service) ChallengeUser(ctx context.Context, challenge string) (string, error) {
	ch, err := s.liveChallenge(ctx, challenge, s.now().UTC())
	return ch.UserID, err
}

// CompleteMFAVerified finishes a login challenge whose second factor another
// mechanism has just verified for the challenge's user (method names it for
// the audit trail), and opens the session.
func (s *Service) CompleteMFAVerified(ctx context.Context, ev audit.Event, challenge, method string) (LoginResult, error) {
	now := s.now().UTC()
	ch, err := s.liveChallenge(ctx, challenge, now)
	if err != nil {
		return LoginResult{}, err
	}
	u, err := s.GetUser(ctx, ch.UserID)
	if err != nil {
		return LoginResult{}, err
	}
	ev.Action, ev.ObjectType, ev.ObjectID, ev.Actor = "auth.mfa", "user", u.ID, "user:"+u.ID
	return s.finishLogin(ctx, ev, u.ID, u.Email, method, now, &now, func(tx *store.Tx) error {
		return tx.DeleteMFAChallenge(ctx, hashSecret(challenge))
	})
}

// FailMFA counts a failed external second factor against the challenge and
// the account, like a wrong code.
func (s *Service) FailMFA(ctx context.Context, ev audit.Event, challenge string) error {
	now := s.now().UTC()
	ch, err := s.liveChallenge(ctx, challenge, now)
	if err != nil {
		return err
	}
	u, err := s.GetUser(ctx, ch.UserID)
	if err != nil {
		return err
	}
	return s.db.Write(ctx, func(tx *store.Tx) error {
		if err := tx.BumpMFAChallenge(ctx, hashSecret(challenge)); err != nil {
			return err
		}
		th, err := s.throttling(ctx, tx)
		if err != nil {
			return err
		}
		var locks []string
		for _, k := range s.throttleKeys(u.Email, ev.IP) {
			t, err := tx.RecordLoginFailure(ctx, k, now, th.window, th.threshold(k), th.lockFor)
			if err != nil {
				return err
			}
			if t.Failures == th.threshold(k) {
				locks = append(locks, lockName(k))
			}
		}
		ev.Details = map[string]any{"email_hash": s.accountHash(u.Email)}
		if len(locks) > 0 {
			ev.Details["locked"] = locks
		}
		ev.Action, ev.ObjectType, ev.ObjectID, ev.Outcome, ev.Reason = "auth.mfa", "user", u.ID, audit.Denied, "bad second factor"
		_, err = audit.Record(ctx, tx, now, ev)
		return err
	})
}
