package pwpolicy

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func FuzzCheck(f *testing.F) {
	f.Add("correct horse battery staple 42", "jane.doe@example.com", "Jane Doe")
	f.Add("password1234", "", "")
	f.Add("abcdefghijkl", "a@b", "Al")
	f.Add("re\u0301sume\u0301-final", "x+y@z", "  ")
	f.Add("密码密码密码密码密码密码", "@", "密码")
	f.Add("\xff\xfe\xfd", "\xff@\xfe", "\xff")
	f.Add(strings.Repeat("ab", 600), "", "")
	f.Fuzz(func(t *testing.T, pw, email, name string) {
		err := Check(pw, email, name)
		if err == nil {
			if len(pw) > MaxBytes || !utf8.ValidString(pw) {
				t.Fatalf("accepted %q: too long or invalid", pw)
			}
			if n := utf8.RuneCountInString(norm.NFC.String(pw)); n < MinLen || n > MaxLen {
				t.Fatalf("accepted %q of %d runes", pw, n)
			}
			if Common(pw) {
				t.Fatalf("accepted common %q", pw)
			}
			return
		}
		if !errors.Is(err, ErrWeak) {
			t.Fatalf("error %v does not wrap ErrWeak", err)
		}
		reason, ok := strings.CutPrefix(err.Error(), ErrWeak.Error()+": ")
		if !ok || !slices.Contains(reasons, reason) {
			t.Fatalf("error %q is not one of the fixed reasons", err)
		}
		if again := Check(pw, email, name); again == nil || again.Error() != err.Error() {
			t.Fatalf("Check is not deterministic: %v then %v", err, again)
		}
	})
}
