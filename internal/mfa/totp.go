package mfa

import (
	"bytes"
	"crypto/subtle"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"time"
	"unicode"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// TOTP parameters. They are fixed: SHA1, 6 digits and 30 s are what
// authenticator apps support.
const (
	Period      = 30 // seconds per time step
	Digits      = 6
	SecretBytes = 20 // 160-bit secrets, as recommended by RFC 4226
	Skew        = 1  // steps accepted on either side of the current one

	// DefaultIssuer is used when NewTOTP is called with an empty issuer.
	DefaultIssuer = "Custos"

	qrSize = 200 // width and height of the QR code PNG in pixels

	minSecretBytes = 16 // RFC 4226 requires at least 128 bits
	maxCodeInput   = 64 // longer inputs are refused before normalization
)

var (
	// ErrBadCode means the code is malformed or does not match any step in
	// the accepted window.
	ErrBadCode = errors.New("mfa: invalid code")
	// ErrReplay means the code matches only steps at or before lastStep,
	// i.e. it (or a newer code) was already used.
	ErrReplay = errors.New("mfa: code already used")
	// ErrBadSecret means the stored secret is not valid base32 or is shorter
	// than 128 bits. It indicates a server-side problem, not a user error.
	ErrBadSecret = errors.New("mfa: invalid TOTP secret")
)

// Enrollment is what a user needs to add a TOTP second factor.
type Enrollment struct {
	Secret string // base32 secret, no padding (store it sealed; never log it)
	URL    string // otpauth:// URL; contains the secret
	QRPNG  []byte // PNG of the QR code of URL, 200x200; contains the secret
}

var validateOpts = totp.ValidateOpts{
	Period:    Period,
	Skew:      0, // the window is handled by VerifyTOTP itself
	Digits:    otp.DigitsSix,
	Algorithm: otp.AlgorithmSHA1,
}

// NewTOTP creates a new random TOTP secret for account (typically the user's
// email) with the given issuer (DefaultIssuer when empty), and renders the
// enrollment URL and QR code.
func NewTOTP(issuer, account string) (Enrollment, error) {
	if issuer == "" {
		issuer = DefaultIssuer
	}
	if account == "" {
		return Enrollment{}, errors.New("mfa: empty account name")
	}
	// The otpauth label is "issuer:account"; a colon in either part would
	// make it ambiguous (Key Uri Format).
	if strings.Contains(issuer, ":") || strings.Contains(account, ":") {
		return Enrollment{}, errors.New("mfa: issuer and account name must not contain ':'")
	}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer:      issuer,
		AccountName: account,
		Period:      Period,
		SecretSize:  SecretBytes,
		Digits:      otp.DigitsSix,
		Algorithm:   otp.AlgorithmSHA1,
	})
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: generate TOTP key: %w", err)
	}
	img, err := key.Image(qrSize, qrSize)
	if err != nil {
		return Enrollment{}, fmt.Errorf("mfa: render QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return Enrollment{}, fmt.Errorf("mfa: encode QR code: %w", err)
	}
	return Enrollment{Secret: key.Secret(), URL: key.URL(), QRPNG: buf.Bytes()}, nil
}

// Step returns the TOTP time step (unix time / Period, rounded down) of t.
func Step(t time.Time) int64 {
	u := t.Unix()
	s := u / Period
	if u%Period < 0 {
		s--
	}
	return s
}

// VerifyTOTP checks code against secret at time now, accepting the steps
// Step(now)-1, Step(now) and Step(now)+1, and returns the step that matched.
// lastStep is the step returned by the user's last successful verification
// (0 if none); a code that matches only steps <= lastStep is refused with
// ErrReplay. The caller must store the returned step as the new lastStep.
//
// The code is normalized first: surrounding and inner white space is removed
// and full-width digits are mapped to ASCII; the result must be exactly six
// ASCII digits, otherwise ErrBadCode is returned.
func VerifyTOTP(secret, code string, now time.Time, lastStep int64) (int64, error) {
	if err := checkSecret(secret); err != nil {
		return 0, err
	}
	norm, ok := normalizeCode(code)
	if !ok {
		return 0, ErrBadCode
	}
	t := Step(now)
	var (
		matched  bool  // some step in the window matched
		accepted bool  // some step > lastStep matched
		best     int64 // highest matching step > lastStep
	)
	// Every step of the window is computed and compared, without early
	// exit, so timing does not reveal which step matched.
	for s := t - Skew; s <= t+Skew; s++ {
		if s < 0 {
			continue
		}
		want, err := totp.GenerateCodeCustom(secret, time.Unix(s*Period, 0), validateOpts)
		if err != nil {
			return 0, ErrBadSecret
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(norm)) == 1 {
			matched = true
			if s > lastStep {
				accepted = true
				best = s // steps ascend, so this ends as the highest
			}
		}
	}
	switch {
	case accepted:
		return best, nil
	case matched:
		return 0, ErrReplay
	default:
		return 0, ErrBadCode
	}
}

// checkSecret decodes secret the way pquerna/otp does (case-insensitive,
// padding optional) and requires at least 128 bits, so that an empty or
// truncated secret can never verify attacker-computable codes.
func checkSecret(secret string) error {
	s := strings.ToUpper(strings.TrimSpace(secret))
	if n := len(s) % 8; n != 0 {
		s += strings.Repeat("=", 8-n)
	}
	b, err := base32.StdEncoding.DecodeString(s)
	if err != nil || len(b) < minSecretBytes {
		return ErrBadSecret
	}
	return nil
}

// normalizeCode removes (Unicode) white space, maps full-width digits (U+FF10..U+FF19)
// to ASCII and requires exactly Digits ASCII digits.
func normalizeCode(code string) (string, bool) {
	if len(code) > maxCodeInput {
		return "", false
	}
	out := make([]byte, 0, Digits)
	for _, r := range code {
		switch {
		case unicode.IsSpace(r):
			continue
		case r >= '0' && r <= '9':
			out = append(out, byte(r))
		case r >= '\uff10' && r <= '\uff19':
			out = append(out, byte('0'+(r-'\uff10')))
		default:
			return "", false
		}
		if len(out) > Digits {
			return "", false
		}
	}
	if len(out) != Digits {
		return "", false
	}
	return string(out), true
}
