// Package seal encrypts individual fields with AES-256-GCM and computes blind
// indexes with HMAC-SHA256. It owns no keys and does no I/O: callers pass the
// key to use and the location (AAD) the ciphertext belongs to.
//
// Ciphertext layout (version 1):
//
//	0x01 | key version (uint32, big endian) | nonce (12 bytes) | GCM ciphertext+tag
//
// The additional authenticated data binds a ciphertext to the table, record
// id, field and key version it was written for, so a ciphertext copied to
// another row or field fails to open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// KeySize is the size of every symmetric key handled here.
const KeySize = 32

const (
	formatV1   = 0x01
	nonceSize  = 12
	headerSize = 1 + 4 + nonceSize
	// Overhead is how many bytes Seal adds to a plaintext.
	Overhead = headerSize + 16
)

// ErrOpen is returned (wrapped) when a ciphertext cannot be opened.
var ErrOpen = errors.New("cannot open ciphertext")

// Key is a 256-bit symmetric key with its version. Its String and Format
// methods never print the key material.
type Key struct {
	Version uint32
	bytes   [KeySize]byte
}

// NewKey builds a key from exactly KeySize bytes.
func NewKey(version uint32, b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("seal: key must be %d bytes, got %d", KeySize, len(b))
	}
	k := Key{Version: version}
	copy(k.bytes[:], b)
	return k, nil
}

// RandomKey returns a fresh random key.
func RandomKey(version uint32) (Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, fmt.Errorf("seal: random key: %w", err)
	}
	return NewKey(version, b[:])
}

// Bytes returns a copy of the key material, for wrapping by a higher key.
func (k Key) Bytes() []byte { b := k.bytes; return b[:] }

// IsZero reports whether the key was never set.
func (k Key) IsZero() bool { return k.bytes == [KeySize]byte{} }

func (k Key) String() string { return fmt.Sprintf("seal.Key{v%d, redacted}", k.Version) }

// Format implements fmt.Formatter so that %v, %+v, %#v, %x and %s all redact.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// AAD names where a ciphertext belongs.
type AAD struct {
	Table  string
	Record string
	Field  string
}

func (a AAD) String() string { return a.Table + "/" + a.Record + "/" + a.Field }

// bytes encodes the AAD unambiguously (length-prefixed parts) with the key version.
func (a AAD) bytes(version uint32) []byte {
	b := make([]byte, 0, 16+len(a.Table)+len(a.Record)+len(a.Field)+12)
	b = append(b, "custos.seal.v1"...)
	for _, s := range []string{a.Table, a.Record, a.Field} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return binary.BigEndian.AppendUint32(b, version)
}

// Cipher seals and opens fields. GCM is the only implementation in production;
// benchmarks substitute a no-op to measure the cost of encryption.
type Cipher interface {
	Seal(k Key, aad AAD, plaintext []byte) ([]byte, error)
	Open(k Key, aad AAD, ciphertext []byte) ([]byte, error)
}

// GCM is the AES-256-GCM Cipher.
type GCM struct{}

var _ Cipher = GCM{}

// Seal encrypts plaintext for the location aad under key k.
func (GCM) Seal(k Key, aad AAD, plaintext []byte) ([]byte, error) {
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, headerSize, headerSize+len(plaintext)+aead.Overhead())
	out[0] = formatV1
	binary.BigEndian.PutUint32(out[1:5], k.Version)
	if _, err := rand.Read(out[5:headerSize]); err != nil {
		return nil, fmt.Errorf("seal: nonce: %w", err)
	}
	return aead.Seal(out, out[5:headerSize], plaintext, aad.bytes(k.Version)), nil
}

// Open decrypts a ciphertext written by Seal for the same location and key.
func (GCM) Open(k Key, aad AAD, ct []byte) ([]byte, error) {
	v, err := KeyVersion(ct)
	if err != nil {
		return nil, fmt.Errorf("seal: %s: %w", aad, err)
	}
	if v != k.Version {
		return nil, fmt.Errorf("seal: %s: %w: written with key version %d, opening with %d", aad, ErrOpen, v, k.Version)
	}
	aead, err := newAEAD(k)
	if err != nil {
		return nil, err
	}
	pt, err := aead.Open(nil, ct[5:headerSize], ct[headerSize:], aad.bytes(k.Version))
	if err != nil {
		return nil, fmt.Errorf("seal: %s: %w: authentication failed (the ciphertext was altered or belongs to another record or field)", aad, ErrOpen)
	}
	return pt, nil
}

// KeyVersion reads the key version from a ciphertext header.
func KeyVersion(ct []byte) (uint32, error) {
	if len(ct) < Overhead {
		return 0, fmt.Errorf("%w: too short", ErrOpen)
	}
	if ct[0] != formatV1 {
		return 0, fmt.Errorf("%w: unknown format %#x", ErrOpen, ct[0])
	}
	return binary.BigEndian.Uint32(ct[1:5]), nil
}

func newAEAD(k Key) (cipher.AEAD, error) {
	if k.IsZero() {
		return nil, errors.New("seal: zero key")
	}
	block, err := aes.NewCipher(k.bytes[:])
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return cipher.NewGCM(block)
}

// TermSize is the length of a blind index term.
const TermSize = 16

// Indexer computes blind index terms: HMAC-SHA256 under a dedicated index key,
// truncated to TermSize bytes. A term reveals equality of the normalized value
// to whoever holds the database, and nothing else without the key.
type Indexer struct {
	key [KeySize]byte
}

// NewIndexer returns an Indexer for the given key.
func NewIndexer(k Key) *Indexer { return &Indexer{key: k.bytes} }

func (ix *Indexer) String() string { return "seal.Indexer{redacted}" }

// Format implements fmt.Formatter so that no verb prints the key.
func (ix Indexer) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte("seal.Indexer{redacted}")) }

// Term returns the blind index of one normalized search term (the caller's
// terms carry their own kind prefix, e.g. "e:a@b.example").
func (ix *Indexer) Term(term string) []byte {
	m := hmac.New(sha256.New, ix.key[:])
	m.Write([]byte("custos.bidx.v1\x00"))
	m.Write([]byte(term))
	return m.Sum(nil)[:TermSize]
}
