// Package mfa implements the pure parts of second factors for Custos: TOTP
// enrollment and verification (RFC 6238) and single-use recovery codes. It
// performs no I/O and owns no storage or keys; the auth service persists what
// these functions return.
//
// # TOTP
//
// NewTOTP creates a fresh 160-bit secret and returns it together with the
// otpauth:// URL and a server-rendered QR code PNG for enrollment. The
// parameters are fixed to what authenticator apps support: HMAC-SHA1, six
// digits, 30-second period. The secret must be stored sealed and must never
// be logged; the URL and PNG contain it too.
//
// VerifyTOTP accepts the code of the current time step and of one step on
// either side (clock skew) and returns the time step (unix time / 30) that
// matched.
//
// # Replay protection
//
// A TOTP code stays valid for up to three steps (90 s) because of the skew
// window, so an observed code could be replayed. To prevent this the caller
// stores, per user, the step returned by the last successful VerifyTOTP and
// passes it back as lastStep on the next call (0 for a user who never
// verified). Codes for a step <= lastStep are refused with ErrReplay, so each
// code is accepted at most once and never after a newer code was accepted.
// The caller must update the stored step atomically with the login decision
// (for example with a conditional UPDATE ... WHERE last_step < $new), or two
// concurrent requests carrying the same code could both succeed.
//
// When the presented code happens to match several steps in the window, the
// highest matching step greater than lastStep is returned, which refuses the
// largest possible range of later replays.
//
// VerifyTOTP does not rate-limit: six digits are guessable online, so the
// caller must limit failed attempts per user.
//
// # Recovery codes
//
// NewRecoveryCodes returns RecoveryCodeCount codes of the form
// "7k3m-q9xd-2hpa": 12 characters from Crockford's lowercase base32 alphabet
// (no i, l, o, u), i.e. 60 bits each. They are shown to the user once; only
// HashRecoveryCode's output (HMAC-SHA256 under a caller-supplied secret
// pepper) is stored. Because the codes carry 60 bits of entropy a keyed fast
// hash suffices; no password hash is needed. MatchRecoveryCode compares the
// presented code against all stored hashes in constant time per candidate and
// returns the index of the match; the caller then deletes or marks that entry
// so the code is single-use.
package mfa
