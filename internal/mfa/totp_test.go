package mfa

import (
	"bytes"
	"encoding/base32"
	"errors"
	"image/png"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
)

// RFC 6238 Appendix B, with the seeds given there (ASCII "1234567890"
// repeated to 20, 32 and 64 bytes for SHA1, SHA256 and SHA512).
func TestRFC6238AppendixB(t *testing.T) {
	b32 := base32.StdEncoding.WithPadding(base32.NoPadding)
	seed := func(n int) string {
		return b32.EncodeToString([]byte(strings.Repeat("1234567890", 7)[:n]))
	}
	sha1, sha256, sha512 := seed(20), seed(32), seed(64)
	tests := []struct {
		unix int64
		algo otp.Algorithm
		seed string
		want string
	}{
		{59, otp.AlgorithmSHA1, sha1, "94287082"},
		{59, otp.AlgorithmSHA256, sha256, "46119246"},
		{59, otp.AlgorithmSHA512, sha512, "90693936"},
		{1111111109, otp.AlgorithmSHA1, sha1, "07081804"},
		{1111111109, otp.AlgorithmSHA256, sha256, "68084774"},
		{1111111109, otp.AlgorithmSHA512, sha512, "25091201"},
		{1111111111, otp.AlgorithmSHA1, sha1, "14050471"},
		{1111111111, otp.AlgorithmSHA256, sha256, "67062674"},
		{1111111111, otp.AlgorithmSHA512, sha512, "99943326"},
		{1234567890, otp.AlgorithmSHA1, sha1, "89005924"},
		{1234567890, otp.AlgorithmSHA256, sha256, "91819424"},
		{1234567890, otp.AlgorithmSHA512, sha512, "93441116"},
		{2000000000, otp.AlgorithmSHA1, sha1, "69279037"},
		{2000000000, otp.AlgorithmSHA256, sha256, "90698825"},
		{2000000000, otp.AlgorithmSHA512, sha512, "38618901"},
		{20000000000, otp.AlgorithmSHA1, sha1, "65353130"},
		{20000000000, otp.AlgorithmSHA256, sha256, "77737706"},
		{20000000000, otp.AlgorithmSHA512, sha512, "47863826"},
	}
	if len(tests) != 18 {
		t.Fatalf("%d vectors, want 18", len(tests))
	}
	for _, tc := range tests {
		t.Run(tc.algo.String()+"/"+time.Unix(tc.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
			got, err := totp.GenerateCodeCustom(tc.seed, time.Unix(tc.unix, 0), totp.ValidateOpts{
				Period: 30, Digits: otp.DigitsEight, Algorithm: tc.algo,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("T=%d %s: got %s, want %s", tc.unix, tc.algo, got, tc.want)
			}
		})
	}
}

// testSecret is base32("12345678901234567890"), the RFC 6238 SHA1 seed.
const testSecret = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"

var testNow = time.Unix(1_700_000_015, 0) // middle of a step

func codeAt(t *testing.T, secret string, step int64) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(secret, time.Unix(step*Period, 0), totp.ValidateOpts{
		Period: Period, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestStep(t *testing.T) {
	for _, tc := range []struct {
		unix, want int64
	}{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {1111111109, 37037036}, {-1, -1}, {-30, -1}, {-31, -2}} {
		if got := Step(time.Unix(tc.unix, 0)); got != tc.want {
			t.Errorf("Step(%d) = %d, want %d", tc.unix, got, tc.want)
		}
	}
}

func TestVerifyTOTPWindow(t *testing.T) {
	s := Step(testNow)
	// The fixed secret and time give distinct codes for steps s-2..s+2, so
	// every expectation below is deterministic.
	seen := map[string]int64{}
	for d := int64(-2); d <= 2; d++ {
		c := codeAt(t, testSecret, s+d)
		if prev, dup := seen[c]; dup {
			t.Fatalf("code collision between steps %d and %d; pick another test time", prev, s+d)
		}
		seen[c] = s + d
	}
	for _, tc := range []struct {
		name    string
		delta   int64
		wantErr error
	}{
		{"current", 0, nil},
		{"previous", -1, nil},
		{"next", +1, nil},
		{"two back", -2, ErrBadCode},
		{"two ahead", +2, ErrBadCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := VerifyTOTP(testSecret, codeAt(t, testSecret, s+tc.delta), testNow, 0)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if err == nil && got != s+tc.delta {
				t.Fatalf("step = %d, want %d", got, s+tc.delta)
			}
		})
	}
	// Lowercase and unpadded secrets are accepted (as pquerna/otp does).
	if _, err := VerifyTOTP(strings.ToLower(testSecret), codeAt(t, testSecret, s), testNow, 0); err != nil {
		t.Fatalf("lowercase secret: %v", err)
	}
}

func TestVerifyTOTPReplay(t *testing.T) {
	s := Step(testNow)
	code := codeAt(t, testSecret, s)

	step, err := VerifyTOTP(testSecret, code, testNow, 0)
	if err != nil || step != s {
		t.Fatalf("first use: step %d, err %v; want %d, nil", step, err, s)
	}
	// The caller stores step; the same code is refused afterwards, also
	// later in the same step and in the next step while still in the window.
	for _, now := range []time.Time{testNow, testNow.Add(14 * time.Second), testNow.Add(Period * time.Second)} {
		if _, err := VerifyTOTP(testSecret, code, now, step); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay at %v: err = %v, want ErrReplay", now, err)
		}
	}
	// A code of an older step than lastStep is refused, even though it is
	// inside the skew window: a newer code was already used.
	old := codeAt(t, testSecret, s-1)
	if _, err := VerifyTOTP(testSecret, old, testNow, s); !errors.Is(err, ErrReplay) {
		t.Fatalf("older step: err = %v, want ErrReplay", err)
	}
	// After accepting the next step's code (skew), the current one is refused.
	next := codeAt(t, testSecret, s+1)
	step, err = VerifyTOTP(testSecret, next, testNow, 0)
	if err != nil || step != s+1 {
		t.Fatalf("next step: step %d, err %v", step, err)
	}
	if _, err := VerifyTOTP(testSecret, code, testNow, step); !errors.Is(err, ErrReplay) {
		t.Fatalf("current after next: err = %v, want ErrReplay", err)
	}
	// A newer step than lastStep is still accepted.
	if got, err := VerifyTOTP(testSecret, next, testNow, s); err != nil || got != s+1 {
		t.Fatalf("newer step: step %d, err %v", got, err)
	}
	// A wrong code stays ErrBadCode (not ErrReplay) whatever lastStep is.
	if _, err := VerifyTOTP(testSecret, wrongCode(t, s), testNow, s+5); !errors.Is(err, ErrBadCode) {
		t.Fatalf("wrong code with high lastStep: err = %v, want ErrBadCode", err)
	}
}

// wrongCode returns a 6-digit code that matches none of the steps s-1..s+1.
func wrongCode(t *testing.T, s int64) string {
	t.Helper()
	valid := map[string]bool{}
	for d := int64(-1); d <= 1; d++ {
		valid[codeAt(t, testSecret, s+d)] = true
	}
	for _, c := range []string{"000000", "111111", "123456", "999999"} {
		if !valid[c] {
			return c
		}
	}
	t.Fatal("no wrong code found")
	return ""
}

func TestVerifyTOTPMalformed(t *testing.T) {
	s := Step(testNow)
	code := codeAt(t, testSecret, s)
	spaced := code[:2] + " " + code[2:4] + " " + code[4:]
	fullWidth := strings.Map(func(r rune) rune { return r - '0' + '\uff10' }, code)

	for _, c := range []string{
		" " + code + " ", spaced, "\t" + code + "\n", code[:3] + "\u00a0" + code[3:], fullWidth,
	} {
		if got, err := VerifyTOTP(testSecret, c, testNow, 0); err != nil || got != s {
			t.Errorf("VerifyTOTP(%q) = %d, %v; want %d, nil", c, got, err, s)
		}
	}
	for _, c := range []string{
		"", " ", "12345", "1234567", "abcdef", "12345a", "-12345", "+123456", "12-34-56",
		code + "0", "0" + code, code[:5], "１２３４５", "١٢٣٤٥٦", // Arabic-Indic digits are refused
		strings.Repeat(" ", 1000) + code, "\x00" + code, "\xff\xfe\xfd\xfc\xfb\xfa",
	} {
		if _, err := VerifyTOTP(testSecret, c, testNow, 0); !errors.Is(err, ErrBadCode) {
			t.Errorf("VerifyTOTP(%q): err = %v, want ErrBadCode", c, err)
		}
	}
	// "12 34 56" is well-formed after normalization: it is refused only
	// because it is wrong, or accepted if it happens to be the right code.
	if _, err := VerifyTOTP(testSecret, "12 34 56", testNow, 0); err != nil && !errors.Is(err, ErrBadCode) {
		t.Errorf(`"12 34 56": err = %v`, err)
	}
	if n, ok := normalizeCode("12 34 56"); !ok || n != "123456" {
		t.Errorf(`normalizeCode("12 34 56") = %q, %v`, n, ok)
	}
}

func TestVerifyTOTPBadSecret(t *testing.T) {
	code := codeAt(t, testSecret, Step(testNow))
	for _, sec := range []string{"", "AAAA", "GEZDGNBVGY3TQOJQ", "not base32!", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1"} {
		if _, err := VerifyTOTP(sec, code, testNow, 0); !errors.Is(err, ErrBadSecret) {
			t.Errorf("secret %q: err = %v, want ErrBadSecret", sec, err)
		}
	}
}

func TestVerifyTOTPEpoch(t *testing.T) {
	// Near and before the epoch negative steps are skipped, not wrapped.
	for _, now := range []time.Time{time.Unix(0, 0), time.Unix(-100, 0), time.Unix(-1<<40, 0)} {
		if _, err := VerifyTOTP(testSecret, "123456", now, 0); err != nil && !errors.Is(err, ErrBadCode) && !errors.Is(err, ErrReplay) {
			t.Errorf("now=%v: %v", now, err)
		}
	}
	if got, err := VerifyTOTP(testSecret, codeAt(t, testSecret, 0), time.Unix(5, 0), -1); err != nil || got != 0 {
		t.Errorf("step 0: %d, %v", got, err)
	}
}

func TestNewTOTP(t *testing.T) {
	e, err := NewTOTP("Custos", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(e.URL)
	if err != nil {
		t.Fatal(err)
	}
	if u.Scheme != "otpauth" || u.Host != "totp" {
		t.Fatalf("URL %q: want otpauth://totp/", e.URL)
	}
	if u.Path != "/Custos:alice@example.com" {
		t.Errorf("label = %q", u.Path)
	}
	q := u.Query()
	if q.Get("issuer") != "Custos" {
		t.Errorf("issuer = %q", q.Get("issuer"))
	}
	if q.Get("secret") != e.Secret || e.Secret == "" {
		t.Errorf("secret in URL %q, Secret %q", q.Get("secret"), e.Secret)
	}
	if q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("parameters: %v", q)
	}
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil {
		t.Fatalf("secret not base32: %v", err)
	}
	if len(raw)*8 < 160 {
		t.Errorf("secret has %d bits, want >= 160", len(raw)*8)
	}
	img, err := png.Decode(bytes.NewReader(e.QRPNG))
	if err != nil {
		t.Fatalf("QR PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() != b.Dy() || b.Dx() < 100 {
		t.Errorf("QR image %dx%d, want square ~200", b.Dx(), b.Dy())
	}
	// The enrolled secret verifies its own codes.
	s := Step(time.Now())
	if got, err := VerifyTOTP(e.Secret, codeAt(t, e.Secret, s), time.Now(), 0); err != nil || got < s-1 || got > s+1 {
		t.Errorf("verify own code: %d, %v", got, err)
	}
	// Two enrollments get different secrets.
	e2, err := NewTOTP("", "alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if e2.Secret == e.Secret {
		t.Error("same secret twice")
	}
	if !strings.Contains(e2.URL, "issuer=Custos") {
		t.Errorf("default issuer missing: %s", e2.URL)
	}
	for _, bad := range [][2]string{{"Custos", ""}, {"Cus:tos", "a"}, {"Custos", "a:b"}} {
		if _, err := NewTOTP(bad[0], bad[1]); err == nil {
			t.Errorf("NewTOTP(%q, %q): no error", bad[0], bad[1])
		}
	}
}

func FuzzVerifyTOTP(f *testing.F) {
	s := Step(testNow)
	for _, c := range []string{"", "123456", "12 34 56", "12345", "1234567", "abcdef", "１２３４５６", "\xff", " 000000 "} {
		f.Add(c, int64(0))
	}
	f.Add("", s)
	f.Add("000000", s+1)
	f.Fuzz(func(t *testing.T, code string, lastStep int64) {
		got, err := VerifyTOTP(testSecret, code, testNow, lastStep)
		switch {
		case err == nil:
			if got < s-1 || got > s+1 || got <= lastStep {
				t.Fatalf("accepted step %d (now %d, last %d)", got, s, lastStep)
			}
			if n, ok := normalizeCode(code); !ok || n != codeAt(t, testSecret, got) {
				t.Fatalf("accepted %q for step %d", code, got)
			}
		case errors.Is(err, ErrBadCode), errors.Is(err, ErrReplay):
		default:
			t.Fatalf("unexpected error %v", err)
		}
	})
}
