package seal

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func mustKey(t testing.TB, v uint32) Key {
	t.Helper()
	k, err := RandomKey(v)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpenRoundTrip(t *testing.T) {
	k := mustKey(t, 3)
	aad := AAD{Table: "customers", Record: "c1", Field: "name"}
	for _, pt := range [][]byte{nil, []byte("张三丰"), bytes.Repeat([]byte("x"), 100000)} {
		ct, err := GCM{}.Seal(k, aad, pt)
		if err != nil {
			t.Fatal(err)
		}
		if len(pt) > 4 && bytes.Contains(ct, pt[:4]) {
			t.Fatal("ciphertext contains plaintext")
		}
		if v, _ := KeyVersion(ct); v != 3 {
			t.Fatalf("key version %d", v)
		}
		got, err := GCM{}.Open(k, aad, ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, pt) {
			t.Fatal("round trip mismatch")
		}
	}
}

// A ciphertext copied to another record, field or table, or opened with
// another key or version, must fail with a clear error.
func TestOpenRefusesMovedCiphertext(t *testing.T) {
	k := mustKey(t, 1)
	src := AAD{Table: "customers", Record: "c1", Field: "phones"}
	ct, err := GCM{}.Seal(k, src, []byte(`["+8613800138000"]`))
	if err != nil {
		t.Fatal(err)
	}
	other := mustKey(t, 1)
	bumped, _ := NewKey(2, k.Bytes())
	tampered := bytes.Clone(ct)
	tampered[len(tampered)-1] ^= 1
	cases := []struct {
		name string
		key  Key
		aad  AAD
		ct   []byte
		want string
	}{
		{"other record", k, AAD{"customers", "c2", "phones"}, ct, "customers/c2/phones"},
		{"other field", k, AAD{"customers", "c1", "emails"}, ct, "authentication failed"},
		{"other table", k, AAD{"contacts", "c1", "phones"}, ct, "belongs to another record or field"},
		{"other customer's key", other, src, ct, "authentication failed"},
		{"other key version", bumped, src, ct, "key version 1"},
		{"tampered", k, src, tampered, "authentication failed"},
		{"truncated", k, src, ct[:10], "too short"},
		{"unknown format", k, src, append([]byte{9}, ct[1:]...), "unknown format"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := GCM{}.Open(tc.key, tc.aad, tc.ct)
			if !errors.Is(err, ErrOpen) {
				t.Fatalf("err = %v, want ErrOpen", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestAADIsUnambiguous(t *testing.T) {
	a := AAD{Table: "ab", Record: "c", Field: "d"}.bytes(1)
	b := AAD{Table: "a", Record: "bc", Field: "d"}.bytes(1)
	if bytes.Equal(a, b) {
		t.Fatal("AAD encoding is ambiguous")
	}
}

func TestKeyNeverPrints(t *testing.T) {
	k := mustKey(t, 1)
	k.bytes[0] = 0xAB
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(f, k)
		if strings.Contains(strings.ToLower(out), "ab") && !strings.Contains(out, "redacted") {
			t.Fatalf("%s printed %q", f, out)
		}
		if !strings.Contains(out, "redacted") {
			t.Fatalf("%s printed %q", f, out)
		}
	}
	ix := NewIndexer(k)
	if out := fmt.Sprintf("%#v %v %+v", ix, ix, *ix); !strings.Contains(out, "redacted") || strings.Contains(out, "171") {
		t.Fatalf("indexer printed %q", out)
	}
}

func TestIndexerDeterministicAndKeyed(t *testing.T) {
	k1, k2 := mustKey(t, 1), mustKey(t, 1)
	a, b := NewIndexer(k1), NewIndexer(k2)
	if !bytes.Equal(a.Term("e:a@b.cn"), a.Term("e:a@b.cn")) {
		t.Fatal("not deterministic")
	}
	if bytes.Equal(a.Term("e:a@b.cn"), a.Term("e:a@b.co")) {
		t.Fatal("distinct terms collide")
	}
	if bytes.Equal(a.Term("e:a@b.cn"), b.Term("e:a@b.cn")) {
		t.Fatal("term does not depend on the key")
	}
	if len(a.Term("x")) != TermSize {
		t.Fatal("term size")
	}
}

func FuzzOpen(f *testing.F) {
	k, _ := RandomKey(1)
	aad := AAD{"t", "r", "f"}
	ct, _ := GCM{}.Seal(k, aad, []byte("hello"))
	f.Add(ct)
	f.Add([]byte{})
	f.Add([]byte{1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		pt, err := GCM{}.Open(k, aad, b)
		if err == nil && !bytes.Equal(b, ct) {
			t.Fatalf("forged ciphertext opened: %q", pt)
		}
	})
}
