// Package pwpolicy is the password policy of Custos, after NIST SP 800-63B
// (section 5.1.1.2, memorized secrets) and OWASP ASVS 4.0 level 2 (V2.1):
//
//   - a password has from MinLen to MaxLen characters, counted as Unicode
//     code points (runes) of its NFC form, and at most MaxBytes bytes as
//     given; it must be valid UTF-8;
//   - there are no composition rules (no "must contain a digit"): every
//     printable character, spaces and any Unicode are allowed;
//   - it must not be in the embedded list of common and breached passwords
//     (see Common and README.md);
//   - it must not contain the user's email address, the local part of it
//     (when at least 4 runes) or the user's name (when at least 3 runes, as
//     given and with its spaces removed), compared case-insensitively;
//   - it must not be trivially repetitive or sequential: one unit of 1 to 4
//     characters repeated ("aaaaaaaaaaaa", "abcabcabcabc") or a run of
//     consecutive digits or ASCII letters, up or down, wrapping round
//     ("123456789012", "abcdefghijkl", "zyxwvutsrqpo"). This is kept narrow
//     on purpose: only the whole password is judged, never a part of it.
//
// The password is only checked, never changed: whoever hashes it hashes the
// bytes it was given. NFC is used only to count and compare, so the same
// visible password has the same length however the client composed it.
package pwpolicy

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// MinLen is the least number of runes (of the NFC form) a password has.
	MinLen = 12
	// MaxLen is the greatest number of runes (of the NFC form) a password
	// has; one of MaxLen runes is accepted, one of MaxLen+1 is refused.
	MaxLen = 128
	// MaxBytes bounds the password as given, before any other work, so no
	// caller can make the policy (or the hash after it) chew on megabytes.
	// MaxLen runes of NFC text take at most 4*MaxLen = 512 bytes, well
	// under it.
	MaxBytes = 1024
)

// ErrWeak is wrapped by every error Check returns.
var ErrWeak = errors.New("password too weak")

// The reasons, one short sentence each. They never quote the password.
const (
	msgShort    = "use at least 12 characters"
	msgLong     = "use at most 128 characters"
	msgInvalid  = "the password contains invalid characters"
	msgTrivial  = "do not use a repeated pattern or an obvious sequence"
	msgPersonal = "do not use your name or email in your password"
	msgCommon   = "this password is too common"
)

func weak(msg string) error { return fmt.Errorf("%w: %s", ErrWeak, msg) }

// Check returns nil if pw is acceptable for a user with this email and
// display name, else an error wrapping ErrWeak whose message says what is
// wrong in one short sentence, never repeating the password. email and name
// may be empty (for example before the account has them).
//
// The rules are applied in this order and the first one broken is
// reported: size and encoding, length, repetition and sequences, name and
// email, common passwords.
func Check(pw, email, name string) error {
	if len(pw) > MaxBytes {
		return weak(msgLong)
	}
	if !utf8.ValidString(pw) {
		return weak(msgInvalid)
	}
	p := norm.NFC.String(pw)
	n := utf8.RuneCountInString(p)
	if n < MinLen {
		return weak(msgShort)
	}
	if n > MaxLen {
		return weak(msgLong)
	}
	lp := strings.ToLower(p)
	if trivial(lp) {
		return weak(msgTrivial)
	}
	if personal(lp, email, name) {
		return weak(msgPersonal)
	}
	if common(canon(p)) {
		return weak(msgCommon)
	}
	return nil
}

// canon is the form in which passwords are compared with the list: trimmed,
// lowercased, NFC. gen/gen.go has a copy that must stay identical.
func canon(s string) string {
	return norm.NFC.String(strings.ToLower(strings.TrimSpace(s)))
}

// personal reports whether the lowercased password lp contains the email,
// its local part (at least 4 runes, also without a +tag), or the name (at
// least 3 runes, or 2 for a Chinese name; with its runs of spaces made one and
// with them removed).
func personal(lp, email, name string) bool {
	if email = canon(email); email != "" {
		local := email
		if at := strings.LastIndexByte(email, '@'); at >= 0 {
			if strings.Contains(lp, email) {
				return true
			}
			local = email[:at]
		}
		if containsLong(lp, local, 4) {
			return true
		}
		if plus := strings.IndexByte(local, '+'); plus >= 0 && containsLong(lp, local[:plus], 4) {
			return true
		}
	}
	if name = canon(name); name != "" {
		words := strings.Fields(name)
		// Most Chinese names are two characters long, and each character
		// carries far more than a Latin letter: two Han runes are enough.
		minRunes := 3
		if strings.IndexFunc(name, func(r rune) bool { return unicode.Is(unicode.Han, r) }) >= 0 {
			minRunes = 2
		}
		if containsLong(lp, strings.Join(words, " "), minRunes) || containsLong(lp, strings.Join(words, ""), minRunes) {
			return true
		}
	}
	return false
}

// containsLong reports whether s has at least min runes and is in lp.
func containsLong(lp, s string, min int) bool {
	return utf8.RuneCountInString(s) >= min && strings.Contains(lp, s)
}

// trivial reports whether the lowercased password lp, as a whole, is one
// unit of 1 to 4 runes repeated or a run of consecutive digits or letters.
func trivial(lp string) bool {
	r := []rune(lp)
	for k := 1; k <= 4 && 2*k <= len(r); k++ {
		if repeats(r, k) {
			return true
		}
	}
	return run(r, '0', 10) || run(r, 'a', 26)
}

// repeats reports whether r is its first k runes over and over (the last
// copy may be cut short).
func repeats(r []rune, k int) bool {
	for i := k; i < len(r); i++ {
		if r[i] != r[i-k] {
			return false
		}
	}
	return true
}

// run reports whether every rune of r is in [base, base+n) and each one is
// the one before plus one, or each one is the one before minus one, modulo n.
func run(r []rune, base rune, n int) bool {
	step := 0
	for i, c := range r {
		if c < base || c >= base+rune(n) {
			return false
		}
		if i == 0 {
			continue
		}
		d := (int(c-r[i-1]) + n) % n
		if d != 1 && d != n-1 {
			return false
		}
		if step == 0 {
			step = d
		} else if d != step {
			return false
		}
	}
	return len(r) > 1
}
