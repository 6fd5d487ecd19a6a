package backup

import (
	"bytes"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
)

// KeySize is the size of a backup key in bytes.
const KeySize = 32

const (
	keyIDPrefix     = "bk:"
	keyIDLabel      = "custos backup key id\x00"
	manifestMACInfo = "custos backup manifest v1"
)

// Key is a backup key (AES-256), separate from the data keys: it seals the
// chunks and signs the manifest of every backup. Its String, Format and
// LogValue never print the key material, so a stray %v or log attribute
// cannot leak it.
type Key struct {
	b [KeySize]byte
}

// NewKey returns a fresh random backup key.
func NewKey() (Key, error) {
	var k Key
	if _, err := rand.Read(k.b[:]); err != nil {
		return Key{}, fmt.Errorf("backup key: %w", err)
	}
	return k, nil
}

// KeyFromBytes builds a key from exactly KeySize bytes. All-zero bytes are
// refused: they are an unset key, never a real one.
func KeyFromBytes(b []byte) (Key, error) {
	if len(b) != KeySize {
		return Key{}, fmt.Errorf("backup key must be %d bytes, got %d", KeySize, len(b))
	}
	var k Key
	copy(k.b[:], b)
	if k.isZero() {
		return Key{}, errors.New("backup key is all zeros")
	}
	return k, nil
}

// Bytes returns a copy of the key material.
func (k Key) Bytes() []byte {
	b := k.b
	return b[:]
}

// ID names the key without revealing it: "bk:" and the first 12 hex digits
// of SHA-256("custos backup key id\x00" || key).
func (k Key) ID() string {
	h := sha256.New()
	h.Write([]byte(keyIDLabel))
	h.Write(k.b[:])
	return keyIDPrefix + hex.EncodeToString(h.Sum(nil))[:12]
}

func (k Key) String() string { return "backup.Key{" + k.ID() + ", redacted}" }

// Format implements fmt.Formatter so that every verb (%v, %+v, %#v, %x, %d,
// %s, ...) prints the redacted form.
func (k Key) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

func (k Key) isZero() bool { return k.b == [KeySize]byte{} }

// errKeyUnset is returned when a zero Key (never set) is used.
var errKeyUnset = errors.New("backup key is not set")

// ErrBadSignature is returned by Envelope.Verify when the manifest's HMAC does
// not match.
var ErrBadSignature = errors.New("backup manifest signature does not match (wrong backup key, or the manifest was altered)")

// ErrNotManifest is returned (wrapped, with details) by ParseEnvelope for
// anything that is not a well-formed manifest envelope.
var ErrNotManifest = errors.New("not a Custos backup manifest")

// Envelope is the manifest object stored at a destination: the manifest JSON,
// byte for byte, and its HMAC-SHA256.
type Envelope struct {
	Manifest json.RawMessage
	MAC      []byte
}

// envelopeWire is the stored form of an Envelope, for parsing.
type envelopeWire struct {
	Manifest json.RawMessage `json:"manifest"`
	HMAC     *string         `json:"hmac"`
}

// manifestMAC returns HMAC-SHA256 of manifest under the manifest key:
// HKDF-SHA256(backup key, no salt, "custos backup manifest v1").
func manifestMAC(k Key, manifest []byte) ([]byte, error) {
	if k.isZero() {
		return nil, errKeyUnset
	}
	macKey, err := hkdf.Key(sha256.New, k.b[:], nil, manifestMACInfo, 32)
	if err != nil {
		return nil, fmt.Errorf("derive manifest key: %w", err)
	}
	defer clear(macKey)
	m := hmac.New(sha256.New, macKey)
	m.Write(manifest)
	return m.Sum(nil), nil
}

// SealManifest wraps manifest, which must be valid JSON, in a signed
// envelope: {"manifest": <manifest>, "hmac": "<hex>"}. The manifest is
// embedded byte for byte (encoding/json would compact and re-escape it),
// less any whitespace around it, which a parser cannot keep; the HMAC covers
// exactly the embedded bytes.
func SealManifest(k Key, manifest []byte) ([]byte, error) {
	manifest = bytes.TrimSpace(manifest)
	if !json.Valid(manifest) {
		return nil, errors.New("backup manifest is not valid JSON")
	}
	mac, err := manifestMAC(k, manifest)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(manifest)+len(mac)*2+32)
	out = append(out, `{"manifest":`...)
	out = append(out, manifest...)
	out = append(out, `,"hmac":"`...)
	out = hex.AppendEncode(out, mac)
	out = append(out, `"}`...)
	return out, nil
}

// ParseEnvelope parses a stored manifest object. It checks the shape only;
// call Verify before trusting the manifest. Any malformed input gives an
// error wrapping ErrNotManifest.
func ParseEnvelope(data []byte) (Envelope, error) {
	bad := func(detail string) (Envelope, error) {
		return Envelope{}, fmt.Errorf("%w: %s", ErrNotManifest, detail)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return bad("empty")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var w envelopeWire
	if err := dec.Decode(&w); err != nil {
		return bad(err.Error())
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("data after the envelope")
	}
	if len(w.Manifest) == 0 {
		return bad("no manifest")
	}
	if w.HMAC == nil {
		return bad("no hmac")
	}
	mac, err := hex.DecodeString(*w.HMAC)
	if err != nil || len(mac) != sha256.Size {
		return bad("hmac is not a hex SHA-256 value")
	}
	return Envelope{Manifest: w.Manifest, MAC: mac}, nil
}

// Verify checks the envelope's HMAC under k. It returns ErrBadSignature when
// it does not match.
func (e Envelope) Verify(k Key) error {
	want, err := manifestMAC(k, e.Manifest)
	if err != nil {
		return err
	}
	if !hmac.Equal(want, e.MAC) {
		return ErrBadSignature
	}
	return nil
}
