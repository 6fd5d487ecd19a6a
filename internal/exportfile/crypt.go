package exportfile

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"

	"filippo.io/age"
	"golang.org/x/crypto/chacha20poly1305"
	"golang.org/x/crypto/scrypt"
)

// DefaultWorkFactor is the scrypt work factor (log2 N) of password-encrypted
// exports: age's own default, about a second of work and 256 MiB of memory.
const DefaultWorkFactor = 18

// scryptLabel is age's scrypt recipient label (age-encryption.org/v1).
const scryptLabel = "age-encryption.org/v1/scrypt"

const saltSize = 16

var (
	workMu     sync.RWMutex
	workFactor = DefaultWorkFactor
)

// scryptSlots bounds concurrent derivations: each one takes 128·r·N bytes
// (256 MiB at the default), so a burst of requests cannot exhaust memory.
var scryptSlots = make(chan struct{}, 2)

// TestingT is the part of testing.TB that UseCheapScryptForTests needs.
type TestingT interface {
	Helper()
	Cleanup(func())
}

// UseCheapScryptForTests lowers the scrypt work factor of new password keys
// to 2^10 for the duration of a test. It takes a testing.TB so that no
// production code path can reach it; there is no flag or setting for it.
func UseCheapScryptForTests(t TestingT) {
	t.Helper()
	workMu.Lock()
	old := workFactor
	workFactor = 10
	workMu.Unlock()
	t.Cleanup(func() {
		workMu.Lock()
		workFactor = old
		workMu.Unlock()
	})
}

func currentWorkFactor() int {
	workMu.RLock()
	defer workMu.RUnlock()
	return workFactor
}

// PasswordKey is the result of age's scrypt derivation for one file: the
// salt, the work factor and the 32-byte wrapping key. It stands in for the
// password (whoever holds it can produce a file that opens with the
// password) and is kept only sealed, until the file is produced. Its String
// and Format never print the key.
type PasswordKey struct {
	salt [saltSize]byte
	logN int
	key  [chacha20poly1305.KeySize]byte
}

// ErrEmptyPassword is returned for an empty password.
var ErrEmptyPassword = errors.New("exportfile: empty password")

// DerivePasswordKey derives the wrapping key of a new file from password
// with a fresh salt, at the current work factor.
func DerivePasswordKey(password string) (PasswordKey, error) {
	if password == "" {
		return PasswordKey{}, ErrEmptyPassword
	}
	var k PasswordKey
	if _, err := rand.Read(k.salt[:]); err != nil {
		return PasswordKey{}, fmt.Errorf("exportfile: salt: %w", err)
	}
	k.logN = currentWorkFactor()
	scryptSlots <- struct{}{}
	defer func() { <-scryptSlots }()
	key, err := scrypt.Key([]byte(password), append([]byte(scryptLabel), k.salt[:]...), 1<<k.logN, 8, 1, len(k.key))
	if err != nil {
		return PasswordKey{}, fmt.Errorf("exportfile: scrypt: %w", err)
	}
	copy(k.key[:], key)
	clear(key)
	return k, nil
}

// WorkFactor reports the key's scrypt work factor (log2 N).
func (k PasswordKey) WorkFactor() int { return k.logN }

// IsZero reports whether k was never set (or was erased).
func (k PasswordKey) IsZero() bool { return k.logN == 0 }

// Erase overwrites the key material.
func (k *PasswordKey) Erase() { *k = PasswordKey{} }

func (k PasswordKey) String() string { return "exportfile.PasswordKey{redacted}" }

// Format implements fmt.Formatter so that no verb prints the key.
func (k PasswordKey) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// MarshalText encodes the key for sealing: "v1:<logN>:<salt>:<key>" in
// base64. The result is secret; seal it before it goes anywhere.
func (k PasswordKey) MarshalText() ([]byte, error) {
	if k.IsZero() {
		return nil, errors.New("exportfile: empty password key")
	}
	e := base64.RawStdEncoding
	return []byte("v1:" + strconv.Itoa(k.logN) + ":" + e.EncodeToString(k.salt[:]) + ":" + e.EncodeToString(k.key[:])), nil
}

// UnmarshalText decodes what MarshalText wrote.
func (k *PasswordKey) UnmarshalText(b []byte) error {
	bad := errors.New("exportfile: malformed password key")
	parts := strings.Split(string(b), ":")
	if len(parts) != 4 || parts[0] != "v1" {
		return bad
	}
	logN, err := strconv.Atoi(parts[1])
	if err != nil || logN < 1 || logN > 30 {
		return bad
	}
	e := base64.RawStdEncoding.Strict()
	salt, err1 := e.DecodeString(parts[2])
	key, err2 := e.DecodeString(parts[3])
	if err1 != nil || err2 != nil || len(salt) != saltSize || len(key) != chacha20poly1305.KeySize {
		return bad
	}
	k.logN = logN
	copy(k.salt[:], salt)
	copy(k.key[:], key)
	clear(key)
	return nil
}

// Recipient returns an age recipient that writes the standard scrypt
// stanza for this key: `age -d` (or age.ScryptIdentity) opens the file
// with the password the key was derived from.
func (k PasswordKey) Recipient() age.Recipient { return &derivedScrypt{k: k} }

// derivedScrypt is age's ScryptRecipient with the derivation done ahead of
// time: the stanza is "scrypt <salt> <logN>" and its body the file key
// sealed with ChaCha20-Poly1305 under the derived key and a zero nonce, as
// the age specification says.
type derivedScrypt struct{ k PasswordKey }

var _ age.RecipientWithLabels = (*derivedScrypt)(nil)

func (r *derivedScrypt) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	if r.k.IsZero() {
		return nil, errors.New("exportfile: empty password key")
	}
	aead, err := chacha20poly1305.New(r.k.key[:])
	if err != nil {
		return nil, err
	}
	body := aead.Seal(nil, make([]byte, chacha20poly1305.NonceSize), fileKey, nil)
	return []*age.Stanza{{
		Type: "scrypt",
		Args: []string{base64.RawStdEncoding.EncodeToString(r.k.salt[:]), strconv.Itoa(r.k.logN)},
		Body: body,
	}}, nil
}

// WrapWithLabels gives the stanza a random label, as age's ScryptRecipient
// does, so that it cannot be mixed with any other recipient: a password
// file opens with that password only.
func (r *derivedScrypt) WrapWithLabels(fileKey []byte) ([]*age.Stanza, []string, error) {
	s, err := r.Wrap(fileKey)
	if err != nil {
		return nil, nil, err
	}
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, nil, err
	}
	return s, []string{hex.EncodeToString(random[:])}, nil
}

// ParseRecipient parses an age X25519 recipient ("age1...").
func ParseRecipient(s string) (*age.X25519Recipient, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "age1") {
		return nil, errors.New("not an age X25519 recipient: it starts with age1")
	}
	r, err := age.ParseX25519Recipient(s)
	if err != nil {
		return nil, errors.New("not a valid age X25519 recipient")
	}
	return r, nil
}

// Encrypt returns a writer that encrypts to r into dst (the binary age
// format); Close finishes the file.
func Encrypt(dst io.Writer, r age.Recipient) (io.WriteCloser, error) {
	w, err := age.Encrypt(dst, r)
	if err != nil {
		return nil, fmt.Errorf("exportfile: encrypt: %w", err)
	}
	return w, nil
}
