// Package auth owns identities: users (employees), passwords (argon2id),
// sessions and API tokens. It never sees customer data.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"

	"golang.org/x/crypto/argon2"

	"github.com/custos/custos/internal/pwpolicy"
)

// Argon2Params are the argon2id cost parameters, stored with every hash so
// they can be raised later without breaking old hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32
	Threads uint8
}

// DefaultArgon2 follows the OWASP recommendation (64 MiB, 3 passes) within the
// 2-core machines Custos targets.
var DefaultArgon2 = Argon2Params{Memory: 64 * 1024, Time: 3, Threads: 2}

var (
	paramsMu     sync.RWMutex
	activeParams = DefaultArgon2

	// hashSlots bounds how many argon2 computations run at once: each takes
	// 64 MiB, and logins are open to anyone, so a flood of them must queue
	// rather than exhaust memory.
	hashSlots = make(chan struct{}, 4)
)

// argon2id runs one bounded computation.
func argon2id(pw, salt []byte, p Argon2Params, n uint32) []byte {
	hashSlots <- struct{}{}
	defer func() { <-hashSlots }()
	return argon2.IDKey(pw, salt, p.Time, p.Memory, p.Threads, n)
}

func currentParams() Argon2Params {
	paramsMu.RLock()
	defer paramsMu.RUnlock()
	return activeParams
}

// TestingT is the part of testing.TB that UseCheapHashingForTests needs.
type TestingT interface {
	Helper()
	Cleanup(func())
}

// UseCheapHashingForTests makes new password hashes cheap for the duration
// of a test. It takes a testing.TB so production code cannot call it without
// a test; there is no flag or setting that reaches it.
func UseCheapHashingForTests(t TestingT) {
	t.Helper()
	UseHashParamsForTests(t, Argon2Params{Memory: 64, Time: 1, Threads: 1})
}

// UseHashParamsForTests sets the parameters of new hashes for one test.
func UseHashParamsForTests(t TestingT, p Argon2Params) {
	t.Helper()
	paramsMu.Lock()
	old := activeParams
	activeParams = p
	paramsMu.Unlock()
	t.Cleanup(func() {
		paramsMu.Lock()
		activeParams = old
		paramsMu.Unlock()
	})
}

// ErrWeakPassword is returned for passwords that fail the policy.
var ErrWeakPassword = pwpolicy.ErrWeak

// CheckPasswordPolicy applies the password policy (NIST SP 800-63B: length,
// common and breached passwords, no email or name in it).
func CheckPasswordPolicy(pw, email, name string) error { return pwpolicy.Check(pw, email, name) }

// NeedsRehash reports whether a hash was made with other parameters than the
// current ones, so the next successful login should store a new hash.
func NeedsRehash(hash string) bool {
	p := currentParams()
	return !strings.HasPrefix(hash, fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$", argon2.Version, p.Memory, p.Time, p.Threads))
}

// HashPassword returns a PHC-format argon2id hash:
// $argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>.
func HashPassword(pw string) (string, error) {
	p := currentParams()
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	sum := argon2id([]byte(pw), salt, p, 32)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(sum)), nil
}

// VerifyPassword checks pw against a hash from HashPassword in constant time.
func VerifyPassword(hash, pw string) (bool, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false, errors.New("auth: unsupported password hash")
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return false, errors.New("auth: unsupported argon2 version")
	}
	var p Argon2Params
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return false, errors.New("auth: malformed password hash")
	}
	if p.Memory == 0 || p.Memory > 4*1024*1024 || p.Time == 0 || p.Time > 100 || p.Threads == 0 {
		return false, errors.New("auth: password hash parameters out of range")
	}
	enc := base64.RawStdEncoding
	salt, err := enc.DecodeString(parts[4])
	if err != nil {
		return false, errors.New("auth: malformed password hash")
	}
	want, err := enc.DecodeString(parts[5])
	if err != nil || len(want) < 16 {
		return false, errors.New("auth: malformed password hash")
	}
	got := argon2id([]byte(pw), salt, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

// GeneratePassword returns a random password for a first admin or a reset:
// 20 characters from an unambiguous alphabet (~115 bits).
func GeneratePassword() (string, error) {
	const alphabet = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"
	b := make([]byte, 20)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	out := make([]byte, len(b))
	for i := range b {
		// 256 % 56 != 0: reject-sample to stay uniform.
		for b[i] >= byte(256-256%len(alphabet)) {
			var one [1]byte
			if _, err := rand.Read(one[:]); err != nil {
				return "", err
			}
			b[i] = one[0]
		}
		out[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(out), nil
}
