package mfa

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strings"
	"unicode"
)

const (
	// RecoveryCodeCount is the number of codes NewRecoveryCodes returns.
	RecoveryCodeCount = 10
	// recoveryChars is the number of alphabet characters per code
	// (12 x 5 bits = 60 bits), shown in groups of recoveryGroup.
	recoveryChars = 12
	recoveryGroup = 4
	// recoveryAlphabet is Crockford's base32 alphabet in lower case: it
	// omits i, l, o and u, so no two characters look alike. When a code is
	// entered, o is read as 0 and i and l as 1.
	recoveryAlphabet = "0123456789abcdefghjkmnpqrstvwxyz"
	maxRecoveryInput = 128
)

// NewRecoveryCodes returns RecoveryCodeCount distinct random recovery codes
// formatted like "7k3m-q9xd-2hpa" (60 bits each). Show them to the user once
// and store only HashRecoveryCode of each.
func NewRecoveryCodes() ([]string, error) {
	codes := make([]string, 0, RecoveryCodeCount)
	seen := make(map[string]bool, RecoveryCodeCount)
	buf := make([]byte, recoveryChars)
	for len(codes) < RecoveryCodeCount {
		if _, err := rand.Read(buf); err != nil {
			return nil, fmt.Errorf("mfa: random recovery code: %w", err)
		}
		var b strings.Builder
		for i, v := range buf {
			if i > 0 && i%recoveryGroup == 0 {
				b.WriteByte('-')
			}
			// 32 divides 256, so the low five bits are uniform.
			b.WriteByte(recoveryAlphabet[v&31])
		}
		c := b.String()
		if seen[c] { // astronomically unlikely, but codes must be distinct
			continue
		}
		seen[c] = true
		codes = append(codes, c)
	}
	return codes, nil
}

// normalizeRecoveryCode lowercases code, removes hyphens and white space and
// folds Crockford look-alikes (o -> 0, i and l -> 1). ok reports whether the
// result is a well-formed code (recoveryChars characters of the alphabet).
func normalizeRecoveryCode(code string) (norm string, ok bool) {
	if len(code) > maxRecoveryInput {
		return "", false
	}
	var b strings.Builder
	ok = true
	for _, r := range strings.ToLower(code) {
		if r == '-' || unicode.IsSpace(r) {
			continue
		}
		switch r {
		case 'o':
			r = '0'
		case 'i', 'l':
			r = '1'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			ok = false
		}
		b.WriteRune(r)
	}
	norm = b.String()
	return norm, ok && len(norm) == recoveryChars
}

// HashRecoveryCode returns the form of a recovery code to store:
// HMAC-SHA256 keyed with pepper of the normalized code (lowercase, hyphens
// and spaces removed, o read as 0 and i/l as 1). pepper is a server secret
// (at least 32 random bytes) kept outside the database.
func HashRecoveryCode(pepper []byte, code string) []byte {
	norm, _ := normalizeRecoveryCode(code)
	m := hmac.New(sha256.New, pepper)
	m.Write([]byte(norm))
	return m.Sum(nil)
}

// MatchRecoveryCode returns the index of the entry of stored that equals
// HashRecoveryCode(pepper, code), or -1 if none does or code is malformed.
// Every candidate is compared in constant time and the scan does not stop
// at the first match. Entries the caller has cleared (nil) never match.
func MatchRecoveryCode(pepper []byte, code string, stored [][]byte) int {
	if _, ok := normalizeRecoveryCode(code); !ok {
		return -1
	}
	h := HashRecoveryCode(pepper, code)
	idx := -1
	for i, s := range stored {
		if subtle.ConstantTimeCompare(h, s) == 1 && idx < 0 {
			idx = i
		}
	}
	return idx
}
