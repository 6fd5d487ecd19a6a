package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
)

func cryptTestKey(t testing.TB) Key {
	t.Helper()
	k, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// cryptTestEncodings lists the ways secret bytes could show up in text.
func cryptTestEncodings(b []byte) map[string]string {
	return map[string]string{
		"raw":        string(b),
		"hex":        hex.EncodeToString(b),
		"HEX":        strings.ToUpper(hex.EncodeToString(b)),
		"base64":     base64.StdEncoding.EncodeToString(b),
		"base64raw":  base64.RawStdEncoding.EncodeToString(b),
		"base64url":  base64.URLEncoding.EncodeToString(b),
		"base64rurl": base64.RawURLEncoding.EncodeToString(b),
		"decimal":    fmt.Sprint(b),
	}
}

func TestKeyFromBytes(t *testing.T) {
	good := bytes.Repeat([]byte{7}, KeySize)
	tests := []struct {
		name    string
		in      []byte
		wantErr bool
	}{
		{"nil", nil, true},
		{"short", good[:31], true},
		{"long", append(bytes.Clone(good), 1), true},
		{"zeros", make([]byte, KeySize), true},
		{"32 bytes", good, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := KeyFromBytes(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("KeyFromBytes error = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			got := k.Bytes()
			if !bytes.Equal(got, tt.in) {
				t.Fatalf("Bytes() = %x, want %x", got, tt.in)
			}
			got[0] ^= 0xff
			if !bytes.Equal(k.Bytes(), tt.in) {
				t.Fatal("changing the slice from Bytes() changed the key")
			}
		})
	}
}

func TestNewKey(t *testing.T) {
	a, b := cryptTestKey(t), cryptTestKey(t)
	if a.isZero() || bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("NewKey returned a zero or repeated key")
	}
	if a.ID() == b.ID() {
		t.Fatal("two keys share an ID")
	}
}

func TestKeyID(t *testing.T) {
	raw := make([]byte, KeySize)
	for i := range raw {
		raw[i] = byte(i + 1)
	}
	k, err := KeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(append([]byte("custos backup key id\x00"), raw...))
	want := "bk:" + hex.EncodeToString(sum[:])[:12]
	if got := k.ID(); got != want {
		t.Fatalf("ID() = %q, want %q", got, want)
	}
	if !regexp.MustCompile(`^bk:[0-9a-f]{12}$`).MatchString(k.ID()) {
		t.Fatalf("ID() = %q has the wrong shape", k.ID())
	}
}

func TestKeyRedacted(t *testing.T) {
	k := cryptTestKey(t)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("x", "key", k)
	wrapped := struct{ K Key }{k}
	jsonOut, err := json.Marshal(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"String": k.String(),
		"%v":     fmt.Sprintf("%v", k),
		"%+v":    fmt.Sprintf("%+v", k),
		"%#v":    fmt.Sprintf("%#v", k),
		"%s":     fmt.Sprintf("%s", k),
		"%x":     fmt.Sprintf("%x", k),
		"%X":     fmt.Sprintf("%X", k),
		"%d":     fmt.Sprintf("%d", k),
		"%q":     fmt.Sprintf("%q", k),
		"nested": fmt.Sprintf("%+v", wrapped),
		"slog":   logged.String(),
		"json":   string(jsonOut),
	}
	for name, out := range outputs {
		for enc, secret := range cryptTestEncodings(k.Bytes()) {
			if strings.Contains(out, secret) {
				t.Errorf("%s output %q contains the key (%s)", name, out, enc)
			}
		}
		if name != "json" && !strings.Contains(out, "redacted") {
			t.Errorf("%s output %q does not say it is redacted", name, out)
		}
	}
}

func TestManifestRoundTrip(t *testing.T) {
	k := cryptTestKey(t)
	tests := []struct {
		name     string
		manifest string
		want     string // what the envelope keeps and signs
	}{
		{"object", `{"id":"b1","chunks":[{"name":"data-000001"}]}`, ""},
		{"inner whitespace kept", "{ \"id\" :\n \"b1\" ,\t\"n\": 1.50 }", ""},
		{"html and unicode kept", `{"note":"<a>&b","name":"Zoë \u00e9"}`, ""},
		{"outer whitespace dropped", "\n  {\"id\":\"b1\"}\r\n ", `{"id":"b1"}`},
		{"array", `[1,2,3]`, ""},
		{"string", `"just a string"`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.manifest
			}
			stored, err := SealManifest(k, []byte(tt.manifest))
			if err != nil {
				t.Fatal(err)
			}
			var generic struct {
				Manifest json.RawMessage `json:"manifest"`
				HMAC     string          `json:"hmac"`
			}
			if err := json.Unmarshal(stored, &generic); err != nil {
				t.Fatalf("stored envelope %s is not JSON: %v", stored, err)
			}
			if string(generic.Manifest) != want || len(generic.HMAC) != 64 {
				t.Fatalf("stored envelope %s: manifest %s, hmac %q", stored, generic.Manifest, generic.HMAC)
			}
			e, err := ParseEnvelope(stored)
			if err != nil {
				t.Fatal(err)
			}
			if string(e.Manifest) != want {
				t.Fatalf("parsed manifest %q, want %q", e.Manifest, want)
			}
			if err := e.Verify(k); err != nil {
				t.Fatalf("Verify: %v", err)
			}
		})
	}
}

func TestSealManifestRefuses(t *testing.T) {
	k := cryptTestKey(t)
	tests := []struct {
		name     string
		key      Key
		manifest string
	}{
		{"empty", k, ""},
		{"not JSON", k, "{id: 1}"},
		{"truncated", k, `{"id":`},
		{"two values", k, `{} {}`},
		{"unset key", Key{}, `{}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out, err := SealManifest(tt.key, []byte(tt.manifest)); err == nil {
				t.Fatalf("SealManifest(%q) = %s, want an error", tt.manifest, out)
			}
		})
	}
}

func TestManifestTampering(t *testing.T) {
	k := cryptTestKey(t)
	stored, err := SealManifest(k, []byte(`{"id":"b1","size":1000}`))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		alter  func([]byte) []byte
		verify Key
	}{
		{"untouched, right key (control)", func(b []byte) []byte { return b }, k},
		{"manifest byte altered", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`1000`), []byte(`9000`), 1)
		}, k},
		{"whitespace added in manifest", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"id":`), []byte(`"id": `), 1)
		}, k},
		{"hmac digit altered", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"hmac":"`)) + len(`"hmac":"`)
			c := bytes.Clone(b)
			if c[i] == '0' {
				c[i] = '1'
			} else {
				c[i] = '0'
			}
			return c
		}, k},
		{"wrong key", func(b []byte) []byte { return b }, cryptTestKey(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEnvelope(tt.alter(stored))
			if err != nil {
				t.Fatalf("ParseEnvelope: %v", err)
			}
			err = e.Verify(tt.verify)
			if strings.HasPrefix(tt.name, "untouched") {
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify = %v, want ErrBadSignature", err)
			}
		})
	}
	e, _ := ParseEnvelope(stored)
	if err := e.Verify(Key{}); err == nil || errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify with an unset key = %v, want a distinct error", err)
	}
}

func TestParseEnvelopeMalformed(t *testing.T) {
	k := cryptTestKey(t)
	stored, err := SealManifest(k, []byte(`{"id":"b1"}`))
	if err != nil {
		t.Fatal(err)
	}
	mac := string(stored[bytes.Index(stored, []byte(`"hmac":"`))+8 : len(stored)-2])
	tests := []struct {
		name string
		in   string
	}{
		{"empty", ""},
		{"whitespace", " \n"},
		{"null", "null"},
		{"array", "[]"},
		{"empty object", "{}"},
		{"binary", "\x00\xff\xfe garbage"},
		{"no hmac", `{"manifest":{}}`},
		{"no manifest", `{"hmac":"` + mac + `"}`},
		{"hmac not a string", `{"manifest":{},"hmac":12}`},
		{"hmac not hex", `{"manifest":{},"hmac":"zz` + mac[2:] + `"}`},
		{"hmac short", `{"manifest":{},"hmac":"` + mac[:62] + `"}`},
		{"unknown field", `{"manifest":{},"hmac":"` + mac + `","extra":1}`},
		{"data after", string(stored) + `{}`},
		{"two envelopes", string(stored) + string(stored)},
	}
	for i := range len(stored) {
		tests = append(tests, struct{ name, in string }{fmt.Sprintf("truncated to %d", i), string(stored[:i])})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseEnvelope([]byte(tt.in))
			if err == nil {
				t.Fatalf("ParseEnvelope(%q) = %+v, want an error", tt.in, e)
			}
			if !errors.Is(err, ErrNotManifest) || !strings.HasPrefix(err.Error(), "not a Custos backup manifest") {
				t.Fatalf("ParseEnvelope(%q) error = %v, want ErrNotManifest", tt.in, err)
			}
		})
	}
}

func FuzzParseEnvelope(f *testing.F) {
	k, err := KeyFromBytes(bytes.Repeat([]byte{9}, KeySize))
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []string{`{"id":"b1","chunks":[]}`, `[]`, `"x"`, `null`} {
		stored, err := SealManifest(k, []byte(m))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(stored)
	}
	f.Add([]byte(`{"manifest":{},"hmac":"00"}`))
	f.Add([]byte(`{"manifest":`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ParseEnvelope(data)
		if err != nil {
			if !errors.Is(err, ErrNotManifest) {
				t.Fatalf("error %v does not wrap ErrNotManifest", err)
			}
			return
		}
		if !json.Valid(e.Manifest) || len(e.MAC) != sha256.Size {
			t.Fatalf("accepted envelope with manifest %q and a %d-byte MAC", e.Manifest, len(e.MAC))
		}
		if err := e.Verify(k); err != nil {
			if !errors.Is(err, ErrBadSignature) {
				t.Fatalf("Verify error %v is not ErrBadSignature", err)
			}
			return
		}
		// A valid signature: sealing the same manifest again gives the same MAC.
		again, err := SealManifest(k, e.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		e2, err := ParseEnvelope(again)
		if err != nil || !bytes.Equal(e2.MAC, e.MAC) || !bytes.Equal(e2.Manifest, e.Manifest) {
			t.Fatalf("resealing %q gave %+v, %v", e.Manifest, e2, err)
		}
	})
}
