package pwpolicy

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// reasons is every message Check can give after the ErrWeak prefix.
var reasons = []string{msgShort, msgLong, msgInvalid, msgTrivial, msgPersonal, msgCommon}

func TestCheck(t *testing.T) {
	const (
		email = "Jane.Doe@Example.com"
		name  = "Jane van Doe"
	)
	phrase := "correct horse battery staple 42 "
	long := func(n int) string { return string([]rune(strings.Repeat(phrase, 10))[:n]) }
	decomposed := "re\u0301sume\u0301" // "résumé" as e + combining acute: 8 runes, 6 in NFC

	tests := []struct {
		name     string
		pw       string
		email    string
		username string
		want     string // "" for accepted, else the reason
	}{
		{"empty", "", email, name, msgShort},
		{"short", "tr0ub4dor&3", email, name, msgShort},
		{"12 ok", "tr0ub4dor&3x", email, name, ""},
		{"passphrase", "correct horse battery staple 42", email, name, ""},
		{"passphrase no user", "correct horse battery staple 42", "", "", ""},
		{"no composition rules", "lowercase only words here", email, name, ""},
		{"128 runes", long(128), email, name, ""},
		{"129 runes", long(129), email, name, msgLong},
		{"over 1024 bytes", strings.Repeat("x7", 513), email, name, msgLong},
		{"128 CJK runes", strings.Repeat("我的密码是一个很长的句子", 11)[:128*3], email, name, ""},
		{"12 CJK runes", "我的密码是一个很长的句子", email, name, ""},
		{"11 CJK runes (33 bytes)", "我的密码是一个很长的句", email, name, msgShort},
		{"emoji count as runes", "🔐🦊🌲🚲🎻🧀🐙🍄🛶🎲🪁🧭", email, name, ""},
		{"NFC 12 runes", decomposed + "-final", email, name, ""},
		{"NFC 11 runes though 13 given", decomposed + "-fina", email, name, msgShort},
		{"invalid UTF-8", "abcdefghij\xffxyz", email, name, msgInvalid},
		{"common", "password1234", email, name, msgCommon},
		{"common upper", "PASSWORD1234", email, name, msgCommon},
		{"common mixed case, padded", "  PassWord1234 ", email, name, msgCommon},
		{"common keyboard", "qwertyuiop123", email, name, msgCommon},
		{"common 1qaz", "1qaz2wsx3edc", email, name, msgCommon},
		{"email", "my jane.doe@example.com pw", email, name, msgPersonal},
		{"email upper", "MY JANE.DOE@EXAMPLE.COM PW", email, name, msgPersonal},
		{"local part", "ilovejane.doe!!", email, name, msgPersonal},
		{"local part upper", "JANE.DOE-rocks-2024", email, name, msgPersonal},
		{"local part < 4 runes allowed", "bob the builder 1989", "bob@example.com", "", ""},
		{"local part before +tag", "mariposa in the garden", "mariposa+crm@example.com", "", msgPersonal},
		{"email without @ is a local part", "call mariposa now", "mariposa", "", msgPersonal},
		{"name", "hello jane van doe 2024!", email, name, msgPersonal},
		{"name upper", "HELLO JANE VAN DOE 2024!", email, name, msgPersonal},
		{"name without spaces", "JaneVanDoe-garden-path", email, name, msgPersonal},
		{"name extra spaces", "x janevandoe x 1234", "", "  Jane   van\tDoe ", msgPersonal},
		{"name unicode case", "zoëångström!!123", "", "Zoë Ångström", msgPersonal},
		{"name < 3 runes allowed", "always al fresco 9", "", "Al", ""},
		{"name 3 runes", "kim rides a red bike", "", "Kim", msgPersonal},
		{"same char", "aaaaaaaaaaaa", email, name, msgTrivial},
		{"same char upper", "AAAAAAAAAAAAAAAAAAAA", email, name, msgTrivial},
		{"same space", "                ", email, name, msgTrivial},
		{"same CJK", "密密密密密密密密密密密密", email, name, msgTrivial},
		{"digit run", "123456789012", email, name, msgTrivial},
		{"digit run down", "098765432109", email, name, msgTrivial},
		{"letter run", "abcdefghijkl", email, name, msgTrivial},
		{"letter run upper down", "ZYXWVUTSRQPO", email, name, msgTrivial},
		{"letter run wraps", "wxyzabcdefgh", email, name, msgTrivial},
		{"short unit repeated", "abcabcabcabc", email, name, msgTrivial},
		{"5-rune unit repeated is not judged", "pass!pass!pass!", email, name, ""},
		{"4-rune unit repeated, cut", "ab12ab12ab12a", email, name, msgTrivial},
		{"run then other", "abcdefghijk9", email, name, ""},
		{"not a run: mixed steps", "135792468024", email, name, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check(tt.pw, tt.email, tt.username)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Check refused an acceptable password: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check accepted it, want %q", tt.want)
			}
			if !errors.Is(err, ErrWeak) {
				t.Errorf("error %v does not wrap ErrWeak", err)
			}
			if got := err.Error(); got != ErrWeak.Error()+": "+tt.want {
				t.Errorf("error %q, want reason %q", got, tt.want)
			}
			if p := strings.TrimSpace(tt.pw); p != "" && strings.Contains(strings.ToLower(err.Error()), strings.ToLower(p)) {
				t.Errorf("error %q repeats the password", err)
			}
		})
	}
}

func TestReasonsShortAndFree(t *testing.T) {
	for _, r := range reasons {
		if len(r) > 60 || strings.ContainsAny(r, "%\n") {
			t.Errorf("reason %q is not one short plain sentence", r)
		}
	}
	if msgShort != "use at least "+itoa(MinLen)+" characters" || msgLong != "use at most "+itoa(MaxLen)+" characters" {
		t.Errorf("length messages do not match MinLen %d / MaxLen %d", MinLen, MaxLen)
	}
}

func itoa(n int) string {
	s := ""
	for ; n > 0; n /= 10 {
		s = string(rune('0'+n%10)) + s
	}
	return s
}

func TestListSize(t *testing.T) {
	if n := ListSize(); n < 100000 {
		t.Fatalf("ListSize() = %d, want >= 100000", n)
	} else {
		t.Logf("ListSize() = %d entries from %d embedded bytes", n, len(listGz))
	}
	if len(listGz) > 2<<20 {
		t.Errorf("embedded list is %d bytes, want at most 2 MiB", len(listGz))
	}
}

// TestListForm checks the invariants contains relies on: every entry is
// canonical, non-empty and strictly greater than the one before.
func TestListForm(t *testing.T) {
	l := loadList()
	prev := ""
	long := 0
	for i := range l.len() {
		e := l.at(i)
		if e == "" || canon(e) != e || !utf8.ValidString(e) || strings.Contains(e, "\n") {
			t.Fatalf("entry %d %q is not canonical", i, e)
		}
		if i > 0 && e <= prev {
			t.Fatalf("entry %d %q is not after %q", i, e, prev)
		}
		if utf8.RuneCountInString(e) >= MinLen {
			long++
		}
		prev = e
	}
	t.Logf("%d entries of at least %d runes", long, MinLen)
	if long < 40000 {
		t.Errorf("only %d entries of at least %d runes", long, MinLen)
	}
}

func TestCommon(t *testing.T) {
	for _, pw := range []string{
		"123456", "password", "qwerty", "iloveyou", "trustno1",
		"password1234", "PASSWORD1234", " Password1234\t",
		"qwertyuiop123", "1qaz2wsx3edc", "qwerty123456", "iloveyou1234",
		"qwertyuiopasdfghjkl", "123456789012", "abcdefghijkl",
	} {
		if !Common(pw) {
			t.Errorf("Common(%q) = false, want true", pw)
		}
	}
	for _, pw := range []string{
		"", "   ", "correct horse battery staple 42", "tr0ub4dor&3x",
		"password12345678901234567890zz", strings.Repeat("a", 5000),
	} {
		if Common(pw) {
			t.Errorf("Common(%q) = true, want false", pw)
		}
	}
	// The first and last entries are found too (binary search edges).
	l := loadList()
	for _, i := range []int{0, 1, l.len() - 2, l.len() - 1} {
		if e := l.at(i); !Common(e) {
			t.Errorf("Common(entry %d %q) = false", i, e)
		}
	}
}

func TestParseListErrors(t *testing.T) {
	if _, err := parseList([]byte("not gzip")); err == nil {
		t.Error("parseList accepted data that is not gzip")
	}
}

func BenchmarkCheck(b *testing.B) {
	ListSize() // load the list outside the timing
	b.ReportAllocs()
	for b.Loop() {
		if err := Check("correct horse battery staple 42", "jane.doe@example.com", "Jane Doe"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckCommon(b *testing.B) {
	ListSize()
	b.ReportAllocs()
	for b.Loop() {
		if err := Check("Password1234", "jane.doe@example.com", "Jane Doe"); err == nil {
			b.Fatal("accepted")
		}
	}
}

func BenchmarkParseList(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := parseList(listGz); err != nil {
			b.Fatal(err)
		}
	}
}

func TestTwoCharacterChineseName(t *testing.T) {
	if err := Check("王伟的密码很长很长很长很长", "w@example.com", "王伟"); err == nil {
		t.Fatal("a password holding a two-character Chinese name was accepted")
	}
	if err := Check("xy is my long passphrase", "w@example.com", "Xy"); err != nil {
		t.Fatalf("two Latin letters should not count as a name: %v", err)
	}
}
