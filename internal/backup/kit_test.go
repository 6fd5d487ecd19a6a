package backup

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// kitUseCheapKDF makes kit scrypt cheap for the duration of a test. Tests
// that call it must not run in parallel.
func kitUseCheapKDF(t testing.TB) {
	old := kitKDF
	kitKDF.N, kitKDF.MinN, kitKDF.MaxN = 1<<10, 1<<10, 1<<12
	t.Cleanup(func() { kitKDF = old })
}

const kitTestPass = "correct horse battery staple"

func kitTestKit(t testing.TB, root bool) Kit {
	t.Helper()
	k := Kit{
		Instance:  "inst-7f3a",
		Key:       cryptTestKey(t),
		RootID:    "file:3f2a9c",
		CreatedAt: time.Date(2026, 3, 14, 15, 9, 26, 535897000, time.FixedZone("CET", 3600)),
	}
	if root {
		k.RootKey = []byte("custos-root-key-v1 " + base64.StdEncoding.EncodeToString(chunksTestRandom(32)) + "\n")
	}
	k.KeyID = k.Key.ID()
	return k
}

func kitTestSame(t *testing.T, got, want Kit) {
	t.Helper()
	if got.Instance != want.Instance || got.KeyID != want.KeyID || got.RootID != want.RootID ||
		!bytes.Equal(got.Key.Bytes(), want.Key.Bytes()) || !bytes.Equal(got.RootKey, want.RootKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("got kit %s (created %s), want %s (created %s)", got, got.CreatedAt, want, want.CreatedAt)
	}
}

func TestKitKDFDefaults(t *testing.T) {
	if kitKDF.N != 1<<17 || kitKDF.MinN != 1<<14 || kitKDF.MaxN != 1<<20 || kitScryptR != 8 || kitScryptP != 1 {
		t.Fatalf("kit scrypt parameters %+v r=%d p=%d, want N=2^17 (2^14 to 2^20 on read) r=8 p=1", kitKDF, kitScryptR, kitScryptP)
	}
}

func TestKitRoundTrip(t *testing.T) {
	kitUseCheapKDF(t)
	tests := []struct {
		name      string
		kit       func() Kit
		pass      string
		open      string              // passphrase to open with ("" means pass)
		transform func([]byte) []byte // what happens to the text on its way
	}{
		{name: "with root key", kit: func() Kit { return kitTestKit(t, true) }, pass: kitTestPass},
		{name: "without root key", kit: func() Kit { return kitTestKit(t, false) }, pass: kitTestPass},
		{name: "key id filled in", kit: func() Kit { k := kitTestKit(t, true); k.KeyID = ""; return k }, pass: kitTestPass},
		{name: "exactly 12 characters", kit: func() Kit { return kitTestKit(t, true) }, pass: "abcdefghijkl"},
		{name: "composed vs decomposed accents", kit: func() Kit { return kitTestKit(t, true) },
			pass: "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e", open: "cafe\u0301 cre\u0300me bru\u0302le\u0301e"},
		{name: "CRLF line ends", kit: func() Kit { return kitTestKit(t, true) }, pass: kitTestPass,
			transform: func(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\n"), []byte("\r\n")) }},
		{name: "quoted in an email", kit: func() Kit { return kitTestKit(t, true) }, pass: kitTestPass,
			transform: func(b []byte) []byte {
				return append([]byte("Here is the kit:\n\n"), append(bytes.ReplaceAll(b, []byte("\n"), []byte("\n    ")), "\nRegards\n"...)...)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := tt.kit()
			text, err := EncryptKit(k, []byte(tt.pass))
			if err != nil {
				t.Fatal(err)
			}
			if tt.transform != nil {
				text = tt.transform(text)
			}
			open := tt.open
			if open == "" {
				open = tt.pass
			}
			got, err := DecryptKit(text, []byte(open))
			if err != nil {
				t.Fatalf("DecryptKit: %v\n%s", err, text)
			}
			if k.KeyID == "" {
				k.KeyID = k.Key.ID()
			}
			kitTestSame(t, got, k)
		})
	}
}

func TestKitArmorLayout(t *testing.T) {
	kitUseCheapKDF(t)
	k := kitTestKit(t, true)
	text, err := EncryptKit(k, []byte(kitTestPass))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(text), "\n"), "\n")
	want := []string{
		"-----BEGIN CUSTOS RECOVERY KIT-----",
		"Key-ID: " + k.Key.ID(),
		"Created: 2026-03-14T14:09:26Z",
		fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.N),
		"",
	}
	if len(lines) < len(want)+2 {
		t.Fatalf("kit has %d lines:\n%s", len(lines), text)
	}
	for i, w := range want {
		if lines[i] != w {
			t.Errorf("line %d = %q, want %q", i+1, lines[i], w)
		}
	}
	if lines[len(lines)-1] != "-----END CUSTOS RECOVERY KIT-----" {
		t.Errorf("last line = %q", lines[len(lines)-1])
	}
	body := lines[len(want) : len(lines)-1]
	for i, l := range body {
		if len(l) > 76 || (i < len(body)-1 && len(l) != 76) {
			t.Errorf("base64 line %d is %d columns", i+1, len(l))
		}
	}
	blob, err := base64.StdEncoding.DecodeString(strings.Join(body, ""))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(blob, []byte("CKIT1")) || len(blob) < 5+16+12+16 {
		t.Fatalf("blob starts %q, %d bytes", blob[:min(5, len(blob))], len(blob))
	}
}

func TestKitHidesSecrets(t *testing.T) {
	kitUseCheapKDF(t)
	k := kitTestKit(t, true)
	text, err := EncryptKit(k, []byte(kitTestPass))
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("kit", "kit", k)
	jsonOut, err := json.Marshal(k)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"armored": string(text),
		"%v":      fmt.Sprintf("%v", k),
		"%+v":     fmt.Sprintf("%+v", k),
		"%#v":     fmt.Sprintf("%#v", k),
		"%x":      fmt.Sprintf("%x", k),
		"slog":    logged.String(),
		"json":    string(jsonOut),
	}
	secrets := map[string][]byte{"key": k.Key.Bytes(), "root key": k.RootKey}
	for name, out := range outputs {
		for what, secret := range secrets {
			for enc, s := range cryptTestEncodings(secret) {
				if strings.Contains(out, s) {
					t.Errorf("%s contains the %s (%s)", name, what, enc)
				}
			}
		}
		if !strings.Contains(out, k.KeyID) && name != "json" {
			t.Errorf("%s does not name the key: %s", name, out)
		}
	}
	// Base64 of the secret at any of the three alignments inside a longer text.
	for what, secret := range secrets {
		for shift := range 3 {
			enc := base64.StdEncoding.EncodeToString(append(make([]byte, shift), secret...))
			inner := enc[4 : len(enc)-4] // the characters that depend on the secret alone
			if strings.Contains(string(text), inner) {
				t.Errorf("armored kit contains the %s in base64 at shift %d", what, shift)
			}
		}
	}
}

func TestEncryptKitRefuses(t *testing.T) {
	kitUseCheapKDF(t)
	tests := []struct {
		name string
		kit  func(Kit) Kit
		pass string
		want string
	}{
		{"short passphrase", func(k Kit) Kit { return k }, "elevenchars", "at least 12 characters"},
		{"11 accented characters", func(k Kit) Kit { return k }, strings.Repeat("é", 11), "at least 12 characters"},
		{"empty passphrase", func(k Kit) Kit { return k }, "", "at least 12 characters"},
		{"unset key", func(k Kit) Kit { k.Key = Key{}; return k }, kitTestPass, "not set"},
		{"key id of another key", func(k Kit) Kit { k.KeyID = cryptTestKey(t).ID(); return k }, kitTestPass, "does not name its key"},
		{"no instance", func(k Kit) Kit { k.Instance = ""; return k }, kitTestPass, "no instance"},
		{"no creation time", func(k Kit) Kit { k.CreatedAt = time.Time{}; return k }, kitTestPass, "no creation time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := EncryptKit(tt.kit(kitTestKit(t, true)), []byte(tt.pass))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("EncryptKit = %q, %v; want an error containing %q", out, err, tt.want)
			}
		})
	}
}

func TestDecryptKitRejects(t *testing.T) {
	kitUseCheapKDF(t)
	k := kitTestKit(t, true)
	textBytes, err := EncryptKit(k, []byte(kitTestPass))
	if err != nil {
		t.Fatal(err)
	}
	text := string(textBytes)
	lines := strings.Split(text, "\n")
	body := strings.Join(lines[5:len(lines)-2], "")
	blob, err := base64.StdEncoding.DecodeString(body)
	if err != nil {
		t.Fatal(err)
	}
	// rebody replaces the base64 body with that of b.
	rebody := func(b []byte) string {
		return strings.Join(lines[:5], "\n") + "\n" + base64.StdEncoding.EncodeToString(b) + "\n" + strings.Join(lines[len(lines)-2:], "\n")
	}
	flipped := bytes.Clone(blob)
	flipped[len(flipped)-20] ^= 1
	magic := bytes.Clone(blob)
	copy(magic, "XKIT1")
	kdf := fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.N)

	tests := []struct {
		name string
		text string
		pass string
		want error  // nil: any error
		msg  string // in the error
	}{
		{"wrong passphrase", text, kitTestPass + "!", ErrKitPassphrase, "wrong passphrase or damaged kit"},
		{"passphrase case", text, strings.ToUpper(kitTestPass), ErrKitPassphrase, ""},
		{"empty passphrase", text, "", nil, "empty passphrase"},
		{"empty", "", kitTestPass, ErrNotKit, "not a Custos recovery kit"},
		{"garbage", "\x00\x01 hello world \xff", kitTestPass, ErrNotKit, ""},
		{"another armor", strings.ReplaceAll(text, "CUSTOS RECOVERY KIT", "PGP MESSAGE"), kitTestPass, ErrNotKit, ""},
		{"no END line", strings.Join(lines[:len(lines)-2], "\n"), kitTestPass, ErrNotKit, "truncated"},
		{"half the text", text[:len(text)/2], kitTestPass, ErrNotKit, ""},
		{"body lines missing", strings.Join(append(lines[:6:6], lines[len(lines)-2:]...), "\n"), kitTestPass, nil, ""},
		{"bad base64", strings.Replace(text, lines[5][:4], "!!!!", 1), kitTestPass, ErrNotKit, "base64"},
		{"byte flipped", rebody(flipped), kitTestPass, ErrKitPassphrase, ""},
		{"blob truncated", rebody(blob[:len(blob)-1]), kitTestPass, ErrKitPassphrase, ""},
		{"blob too short", rebody(blob[:30]), kitTestPass, ErrNotKit, "too short"},
		{"unknown magic", rebody(magic), kitTestPass, ErrNotKit, "unknown format"},
		{"no KDF header", strings.Replace(text, kdf+"\n", "", 1), kitTestPass, ErrNotKit, "no KDF"},
		{"no blank line", strings.Replace(text, kdf+"\n\n", kdf+"\n", 1), kitTestPass, ErrNotKit, ""},
		{"other KDF", strings.Replace(text, "KDF: scrypt", "KDF: argon2id", 1), kitTestPass, ErrNotKit, "unknown KDF"},
		{"KDF changed, in range", strings.Replace(text, kdf, fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.N*2), 1), kitTestPass, ErrKitPassphrase, ""},
		{"KDF r changed", strings.Replace(text, "r=8 p=1", "r=4 p=1", 1), kitTestPass, ErrKitPassphrase, ""},
		{"N not a power of two", strings.Replace(text, kdf, fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.N+1), 1), kitTestPass, nil, "power of two"},
		{"N above the range", strings.Replace(text, kdf, fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.MaxN*2), 1), kitTestPass, nil, "accepted"},
		{"N below the range", strings.Replace(text, kdf, fmt.Sprintf("KDF: scrypt N=%d r=8 p=1", kitKDF.MinN/2), 1), kitTestPass, nil, "accepted"},
		{"r too high", strings.Replace(text, "r=8 p=1", "r=9 p=1", 1), kitTestPass, nil, "accepted"},
		{"p zero", strings.Replace(text, "r=8 p=1", "r=8 p=0", 1), kitTestPass, nil, "accepted"},
		{"malformed KDF", strings.Replace(text, "N=", "N:", 1), kitTestPass, ErrNotKit, "malformed KDF"},
		{"duplicate header", strings.Replace(text, kdf, kdf+"\n"+kdf, 1), kitTestPass, ErrNotKit, "twice"},
		{"Key-ID header changed", strings.Replace(text, k.KeyID, cryptTestKey(t).ID(), 1), kitTestPass, ErrKitPassphrase, "Key-ID"},
	}
	for i := 0; i < len(text); i += 13 {
		tests = append(tests, struct {
			name string
			text string
			pass string
			want error
			msg  string
		}{fmt.Sprintf("truncated to %d", i), text[:i], kitTestPass, nil, ""})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecryptKit([]byte(tt.text), []byte(tt.pass))
			if err == nil {
				t.Fatalf("DecryptKit succeeded: %s", got)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("DecryptKit error %q, want %q", err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("DecryptKit error %q, want it to contain %q", err, tt.msg)
			}
		})
	}
	// Control: the untouched kit opens.
	if got, err := DecryptKit(textBytes, []byte(kitTestPass)); err != nil {
		t.Fatalf("untouched kit: %v", err)
	} else {
		kitTestSame(t, got, k)
	}
}

// The bounds on N hold with the production parameters; each case is refused
// before any scrypt work.
func TestDecryptKitRefusesCostOutsideRange(t *testing.T) {
	head := "-----BEGIN CUSTOS RECOVERY KIT-----\nKey-ID: bk:000000000000\nKDF: scrypt N=%d r=8 p=1\n\n" +
		base64.StdEncoding.EncodeToString(append([]byte("CKIT1"), make([]byte, 60)...)) +
		"\n-----END CUSTOS RECOVERY KIT-----\n"
	for _, n := range []int{1 << 13, 1 << 21, 1 << 30} {
		start := time.Now()
		_, err := DecryptKit(fmt.Appendf(nil, head, n), []byte(kitTestPass))
		if err == nil || !strings.Contains(err.Error(), "accepted: a power of two from 16384 to 1048576") {
			t.Errorf("N=%d: error %v, want it refused", n, err)
		}
		if time.Since(start) > time.Second {
			t.Errorf("N=%d: refusing took %s", n, time.Since(start))
		}
	}
}

func FuzzDecryptKit(f *testing.F) {
	kitUseCheapKDF(f)
	k := kitTestKit(f, true)
	text, err := EncryptKit(k, []byte(kitTestPass))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(text)
	f.Add(bytes.ReplaceAll(text, []byte("\n"), []byte("\r\n")))
	f.Add(text[:len(text)/2])
	f.Add([]byte("-----BEGIN CUSTOS RECOVERY KIT-----\nKDF: scrypt N=1024 r=8 p=1\n\nQ0tJVDE=\n-----END CUSTOS RECOVERY KIT-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := DecryptKit(data, []byte(kitTestPass))
		if err != nil {
			return
		}
		if got.Key.isZero() || got.KeyID != got.Key.ID() {
			t.Fatalf("opened a kit whose key id %q does not name its key", got.KeyID)
		}
	})
}
