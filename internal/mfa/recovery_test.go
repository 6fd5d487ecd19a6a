package mfa

import (
	"bytes"
	"regexp"
	"strings"
	"testing"
)

var testPepper = bytes.Repeat([]byte{0x42}, 32)

var recoveryRE = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}-[0-9a-hjkmnp-tv-z]{4}$`)

func TestNewRecoveryCodes(t *testing.T) {
	codes, err := NewRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !recoveryRE.MatchString(c) {
			t.Errorf("bad format %q", c)
		}
		if strings.ContainsAny(c, "ilou") {
			t.Errorf("ambiguous character in %q", c)
		}
		if seen[c] {
			t.Errorf("duplicate %q", c)
		}
		seen[c] = true
	}
	// 12 characters from a 32-character alphabet: 60 bits.
	if len(recoveryAlphabet) != 32 || recoveryChars*5 < 60 {
		t.Fatal("recovery codes carry less than 60 bits")
	}
	// Every alphabet character shows up over many codes (rough uniformity).
	counts := map[rune]int{}
	for range 100 {
		cs, err := NewRecoveryCodes()
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cs {
			for _, r := range strings.ReplaceAll(c, "-", "") {
				counts[r]++
			}
		}
	}
	if len(counts) != 32 {
		t.Errorf("%d distinct characters over 12000, want 32", len(counts))
	}
}

func TestHashAndMatchRecoveryCode(t *testing.T) {
	codes, err := NewRecoveryCodes()
	if err != nil {
		t.Fatal(err)
	}
	stored := make([][]byte, len(codes))
	for i, c := range codes {
		stored[i] = HashRecoveryCode(testPepper, c)
		if len(stored[i]) != 32 {
			t.Fatalf("hash length %d", len(stored[i]))
		}
	}
	for i, c := range codes {
		plain := strings.ReplaceAll(c, "-", "")
		for _, variant := range []string{
			c, strings.ToUpper(c), plain, " " + strings.ToUpper(plain) + " ",
			strings.ReplaceAll(c, "-", " "), plain[:6] + " - " + plain[6:], "\t" + c + "\n",
		} {
			if got := MatchRecoveryCode(testPepper, variant, stored); got != i {
				t.Errorf("Match(%q) = %d, want %d", variant, got, i)
			}
		}
	}
	// Crockford look-alikes: o reads as 0, i and l as 1.
	code := "0a1b-c0d1-e2f3"
	h := [][]byte{HashRecoveryCode(testPepper, code)}
	for _, v := range []string{"oa1b-cOd1-e2f3", "0aib-c0dL-e2f3", "OAlB-C0DI-E2F3"} {
		if MatchRecoveryCode(testPepper, v, h) != 0 {
			t.Errorf("look-alike %q did not match %q", v, code)
		}
	}
	// Wrong, malformed, other pepper, cleared entries.
	wrong := []string{
		"", "0000-0000-0000", codes[0][:13], codes[0] + "x", codes[0][:13] + "u",
		strings.Repeat(codes[0], 20), "zzzz-zzzz-zzzz", "ääää-ääää-ääää",
	}
	for _, w := range wrong {
		if w == codes[0] {
			continue
		}
		if got := MatchRecoveryCode(testPepper, w, stored); got != -1 {
			t.Errorf("Match(%q) = %d, want -1", w, got)
		}
	}
	if got := MatchRecoveryCode(bytes.Repeat([]byte{1}, 32), codes[3], stored); got != -1 {
		t.Errorf("other pepper matched %d", got)
	}
	// The caller removes a used code by clearing (or deleting) its entry.
	stored[3] = nil
	if got := MatchRecoveryCode(testPepper, codes[3], stored); got != -1 {
		t.Errorf("cleared entry matched %d", got)
	}
	if got := MatchRecoveryCode(testPepper, codes[4], stored); got != 4 {
		t.Errorf("after clearing 3, code 4 matched %d", got)
	}
	if got := MatchRecoveryCode(testPepper, codes[0], nil); got != -1 {
		t.Errorf("empty store matched %d", got)
	}
	// The stored form is deterministic for the same pepper and
	// normalization-invariant, and differs across peppers.
	if !bytes.Equal(HashRecoveryCode(testPepper, "ABCD-EFGH-JKMN"), HashRecoveryCode(testPepper, "abcdefghjkmn")) {
		t.Error("hash not normalization-invariant")
	}
	if bytes.Equal(HashRecoveryCode(testPepper, codes[0]), HashRecoveryCode([]byte("other"), codes[0])) {
		t.Error("hash ignores pepper")
	}
}
