package backup

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/scrypt"
	"golang.org/x/text/unicode/norm"
)

// Kit is the recovery kit: what a restore needs on a new machine after the
// old one is gone. Its String, Format and LogValue never print the keys.
type Kit struct {
	Instance  string    `json:"instance"` // database instance id
	KeyID     string    `json:"key_id"`
	Key       Key       `json:"-"` // serialized as base64 "key"
	RootKey   []byte    `json:"-"` // the root key file's bytes (optional), serialized base64 "root_key"
	RootID    string    `json:"root_id"`
	CreatedAt time.Time `json:"created_at"`
}

func (k Kit) String() string {
	return fmt.Sprintf("backup.Kit{instance=%q, key_id=%q, root_id=%q, redacted}", k.Instance, k.KeyID, k.RootID)
}

// Format implements fmt.Formatter so that no verb prints the keys.
func (k Kit) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue implements slog.LogValuer.
func (k Kit) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("instance", k.Instance),
		slog.String("key_id", k.KeyID),
		slog.String("root_id", k.RootID),
	)
}

// kitWire is the JSON sealed inside an armored kit.
type kitWire struct {
	Instance  string    `json:"instance"`
	KeyID     string    `json:"key_id"`
	Key       []byte    `json:"key"`
	RootKey   []byte    `json:"root_key,omitempty"`
	RootID    string    `json:"root_id"`
	CreatedAt time.Time `json:"created_at"`
}

const (
	kitBegin         = "-----BEGIN CUSTOS RECOVERY KIT-----"
	kitEnd           = "-----END CUSTOS RECOVERY KIT-----"
	kitMagic         = "CKIT1"
	kitSaltSize      = 16
	kitNonceSize     = 12
	kitMinPassphrase = 12
	kitLineWidth     = 76
	kitScryptR       = 8
	kitScryptP       = 1
	kitMaxScryptR    = 8
	kitMaxScryptP    = 4
)

// kitKDF is the scrypt cost of new kits (N) and the range of N a kit may ask
// for on read. Only tests change it, through kitUseCheapKDF, to run fast; no
// setting or flag reaches it.
var kitKDF = struct{ N, MinN, MaxN int }{N: 1 << 17, MinN: 1 << 14, MaxN: 1 << 20}

var (
	// ErrNotKit is returned (wrapped, with details) by DecryptKit for text
	// that is not an armored recovery kit.
	ErrNotKit = errors.New("not a Custos recovery kit")
	// ErrKitPassphrase is returned (wrapped) by DecryptKit when the kit does
	// not open: the passphrase is wrong or the kit was damaged.
	ErrKitPassphrase = errors.New("wrong passphrase or damaged kit")
)

// kitPassphrase returns the passphrase in Unicode NFC, so that the same
// passphrase typed on another system (which may compose accents
// differently) gives the same key. Bytes that are not UTF-8 are kept as
// they are.
func kitPassphrase(p []byte) []byte {
	if utf8.Valid(p) {
		return norm.NFC.Bytes(p)
	}
	return bytes.Clone(p)
}

func kitAEAD(passphrase, salt []byte, n, r, p int) (cipher.AEAD, error) {
	key, err := scrypt.Key(passphrase, salt, n, r, p, KeySize)
	if err != nil {
		return nil, fmt.Errorf("recovery kit: scrypt: %w", err)
	}
	defer clear(key)
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// EncryptKit seals k under passphrase (at least 12 characters) and armors it
// as text:
//
//	-----BEGIN CUSTOS RECOVERY KIT-----
//	Key-ID: bk:...
//	Created: <RFC 3339>
//	KDF: scrypt N=131072 r=8 p=1
//
//	base64 (76 columns) of "CKIT1" || salt (16) || nonce (12) || AES-256-GCM(scrypt key, JSON)
//	-----END CUSTOS RECOVERY KIT-----
//
// An empty KeyID is filled in from the key. The passphrase is used in its
// Unicode NFC form.
func EncryptKit(k Kit, passphrase []byte) ([]byte, error) {
	pass := kitPassphrase(passphrase)
	defer clear(pass)
	if utf8.RuneCount(pass) < kitMinPassphrase {
		return nil, fmt.Errorf("recovery kit passphrase must be at least %d characters", kitMinPassphrase)
	}
	if k.Key.isZero() {
		return nil, fmt.Errorf("recovery kit: %w", errKeyUnset)
	}
	if k.KeyID == "" {
		k.KeyID = k.Key.ID()
	}
	if k.KeyID != k.Key.ID() {
		return nil, fmt.Errorf("recovery kit: key id %q does not name its key (%s)", k.KeyID, k.Key.ID())
	}
	if k.Instance == "" {
		return nil, errors.New("recovery kit: no instance id")
	}
	if k.CreatedAt.IsZero() {
		return nil, errors.New("recovery kit: no creation time")
	}
	plain, err := json.Marshal(kitWire{
		Instance:  k.Instance,
		KeyID:     k.KeyID,
		Key:       k.Key.b[:],
		RootKey:   k.RootKey,
		RootID:    k.RootID,
		CreatedAt: k.CreatedAt,
	})
	if err != nil {
		return nil, fmt.Errorf("recovery kit: %w", err)
	}
	defer clear(plain)

	n := kitKDF.N
	blob := make([]byte, len(kitMagic)+kitSaltSize+kitNonceSize, len(kitMagic)+kitSaltSize+kitNonceSize+len(plain)+16)
	copy(blob, kitMagic)
	salt := blob[len(kitMagic) : len(kitMagic)+kitSaltSize]
	nonce := blob[len(kitMagic)+kitSaltSize:]
	if _, err := rand.Read(blob[len(kitMagic):]); err != nil {
		return nil, fmt.Errorf("recovery kit: %w", err)
	}
	aead, err := kitAEAD(pass, salt, n, kitScryptR, kitScryptP)
	if err != nil {
		return nil, err
	}
	blob = aead.Seal(blob, nonce, plain, nil)

	var out bytes.Buffer
	out.WriteString(kitBegin + "\n")
	out.WriteString("Key-ID: " + k.KeyID + "\n")
	out.WriteString("Created: " + k.CreatedAt.UTC().Format(time.RFC3339) + "\n")
	fmt.Fprintf(&out, "KDF: scrypt N=%d r=%d p=%d\n\n", n, kitScryptR, kitScryptP)
	b64 := base64.StdEncoding.EncodeToString(blob)
	for len(b64) > 0 {
		w := min(kitLineWidth, len(b64))
		out.WriteString(b64[:w] + "\n")
		b64 = b64[w:]
	}
	out.WriteString(kitEnd + "\n")
	return out.Bytes(), nil
}

// kitArmor is an armored kit, taken apart.
type kitArmor struct {
	headers map[string]string
	blob    []byte
}

// parseKitArmor finds the armor in data (text around it is ignored, and so
// are CR line ends and indentation) and decodes it.
func parseKitArmor(data []byte) (kitArmor, error) {
	bad := func(detail string) (kitArmor, error) {
		return kitArmor{}, fmt.Errorf("%w: %s", ErrNotKit, detail)
	}
	lines := strings.Split(string(data), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	begin := -1
	for i, l := range lines {
		if l == kitBegin {
			begin = i
			break
		}
	}
	if begin < 0 {
		return bad("no BEGIN line")
	}
	a := kitArmor{headers: map[string]string{}}
	i := begin + 1
	for ; i < len(lines) && lines[i] != ""; i++ {
		name, value, ok := strings.Cut(lines[i], ":")
		if !ok {
			return bad("malformed header line")
		}
		name = strings.TrimSpace(name)
		if _, dup := a.headers[name]; dup {
			return bad("header " + name + " given twice")
		}
		a.headers[name] = strings.TrimSpace(value)
	}
	var body strings.Builder
	end := false
	for i++; i < len(lines); i++ {
		if lines[i] == kitEnd {
			end = true
			break
		}
		body.WriteString(lines[i])
	}
	if !end {
		return bad("no END line (truncated?)")
	}
	blob, err := base64.StdEncoding.Strict().DecodeString(body.String())
	if err != nil {
		return bad("the body is not valid base64")
	}
	if len(blob) < len(kitMagic) || string(blob[:len(kitMagic)]) != kitMagic {
		return bad("unknown format")
	}
	if len(blob) < len(kitMagic)+kitSaltSize+kitNonceSize+16 {
		return bad("too short")
	}
	a.blob = blob
	return a, nil
}

// parseKitKDF parses "scrypt N=131072 r=8 p=1" and checks the cost is one a
// kit may ask for.
func parseKitKDF(s string) (n, r, p int, err error) {
	f := strings.Fields(s)
	if len(f) != 4 || f[0] != "scrypt" {
		return 0, 0, 0, fmt.Errorf("%w: unknown KDF %q", ErrNotKit, s)
	}
	vals := make([]int, 3)
	for i, name := range []string{"N=", "r=", "p="} {
		v, ok := strings.CutPrefix(f[i+1], name)
		x, err := strconv.Atoi(v)
		if !ok || err != nil {
			return 0, 0, 0, fmt.Errorf("%w: malformed KDF %q", ErrNotKit, s)
		}
		vals[i] = x
	}
	n, r, p = vals[0], vals[1], vals[2]
	if n < kitKDF.MinN || n > kitKDF.MaxN || bits.OnesCount(uint(n)) != 1 {
		return 0, 0, 0, fmt.Errorf("recovery kit asks for scrypt N=%d; accepted: a power of two from %d to %d", n, kitKDF.MinN, kitKDF.MaxN)
	}
	if r < 1 || r > kitMaxScryptR || p < 1 || p > kitMaxScryptP {
		return 0, 0, 0, fmt.Errorf("recovery kit asks for scrypt r=%d p=%d; accepted: r from 1 to %d, p from 1 to %d", r, p, kitMaxScryptR, kitMaxScryptP)
	}
	return n, r, p, nil
}

// DecryptKit opens an armored kit with passphrase. Text that is not a kit
// gives an error wrapping ErrNotKit; a kit that does not open gives one
// wrapping ErrKitPassphrase.
func DecryptKit(data, passphrase []byte) (Kit, error) {
	a, err := parseKitArmor(data)
	if err != nil {
		return Kit{}, err
	}
	kdf, ok := a.headers["KDF"]
	if !ok {
		return Kit{}, fmt.Errorf("%w: no KDF header", ErrNotKit)
	}
	n, r, p, err := parseKitKDF(kdf)
	if err != nil {
		return Kit{}, err
	}
	if len(passphrase) == 0 {
		return Kit{}, errors.New("recovery kit: empty passphrase")
	}
	pass := kitPassphrase(passphrase)
	defer clear(pass)

	salt := a.blob[len(kitMagic) : len(kitMagic)+kitSaltSize]
	nonce := a.blob[len(kitMagic)+kitSaltSize : len(kitMagic)+kitSaltSize+kitNonceSize]
	aead, err := kitAEAD(pass, salt, n, r, p)
	if err != nil {
		return Kit{}, err
	}
	plain, err := aead.Open(nil, nonce, a.blob[len(kitMagic)+kitSaltSize+kitNonceSize:], nil)
	if err != nil {
		return Kit{}, ErrKitPassphrase
	}
	defer clear(plain)
	damaged := func(detail string) (Kit, error) {
		return Kit{}, fmt.Errorf("%w: %s", ErrKitPassphrase, detail)
	}
	var w kitWire
	if err := json.Unmarshal(plain, &w); err != nil {
		return damaged("malformed contents")
	}
	defer clear(w.Key)
	key, err := KeyFromBytes(w.Key)
	if err != nil {
		return damaged(err.Error())
	}
	if w.KeyID != key.ID() {
		return damaged("the key id does not name the key")
	}
	if h, ok := a.headers["Key-ID"]; ok && h != w.KeyID {
		return damaged("the Key-ID header does not match the sealed key")
	}
	return Kit{
		Instance:  w.Instance,
		KeyID:     w.KeyID,
		Key:       key,
		RootKey:   w.RootKey,
		RootID:    w.RootID,
		CreatedAt: w.CreatedAt,
	}, nil
}
