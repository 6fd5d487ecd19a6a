package normalize

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// allErrs lists every error value of the package. Because all returned errors
// are among these constants, no input can appear in an error message.
var allErrs = []error{
	errNameUTF8, errNameEmpty, errNameLong, errNameControl,
	errTextUTF8, errTextLong, errTextControl,
	errEmailEmpty, errEmailLong, errEmail, errEmailDomain,
	errPhoneEmpty, errPhoneLong, errPhoneChar, errPhone,
	errIDEmpty, errIDLength, errIDChar, errIDChecksum, errIDBirth,
	errCodeEmpty, errCodeLong, errCode, errCodeDigits,
	errTagUTF8, errTagEmpty, errTagLong, errTagControl, errTagComma,
}

// checkFuzzErr asserts the error contract for a failed validation.
func checkFuzzErr(t *testing.T, got string, err error) {
	t.Helper()
	if got != "" {
		t.Fatalf("non-empty value returned with error %v", err)
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	if !slices.Contains(allErrs, err) {
		t.Fatalf("error %q is not one of the package's constant errors", err)
	}
}

var nameSeeds = []string{
	"", " ", "Zhang San", "张三丰", "北京字节跳动科技有限公司", "华为Huawei技术",
	"Ｚｈａｎｇ", "Jose\u0301", "a\u0301\u0302", "\u3000张\u3000三\u3000", "a\x00b",
	"\xff", "abc\u202Edef", "コーヒー", "김민수", "ﬁ①㈱", "İstanbul", "ß",
	"\u0301", "a \u0301", "e\u2000\u0301", "\u0345\u0399",
}

func FuzzName(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Name(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if !utf8.ValidString(got) || !norm.NFC.IsNormalString(got) {
			t.Fatalf("result not valid NFC UTF-8: %q", got)
		}
		n := utf8.RuneCountInString(got)
		if n < 1 || n > maxNameRunes {
			t.Fatalf("result has %d runes", n)
		}
		if got != strings.TrimSpace(got) || strings.Contains(got, "  ") {
			t.Fatalf("whitespace not cleaned: %q", got)
		}
		for _, r := range got {
			if unicode.IsControl(r) || isBidiControl(r) || (unicode.IsSpace(r) && r != ' ') {
				t.Fatalf("result contains %U", r)
			}
		}
		again, err := Name(got)
		if err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzTag(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	f.Add("a,b")
	f.Add("ＶＩＰ")
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Tag(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		n := utf8.RuneCountInString(got)
		if n < 1 || n > maxTagRunes || strings.ContainsAny(got, ",、") {
			t.Fatalf("bad tag %q", got)
		}
		if again, err := Tag(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzText(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s, 100)
	}
	f.Add("line\r\nline\rline\n\tx", 20)
	f.Add("abc", -1)
	f.Add("abc", 0)
	f.Fuzz(func(t *testing.T, s string, max int) {
		got, err := Text(s, max)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if !utf8.ValidString(got) || !norm.NFC.IsNormalString(got) {
			t.Fatalf("result not valid NFC UTF-8: %q", got)
		}
		if got != strings.TrimSpace(got) {
			t.Fatalf("not trimmed: %q", got)
		}
		if n := utf8.RuneCountInString(got); n > max && n > 0 {
			t.Fatalf("result has %d runes, max %d", n, max)
		}
		for _, r := range got {
			if r != '\n' && r != '\t' && unicode.IsControl(r) {
				t.Fatalf("result contains %U", r)
			}
		}
		if again, err := Text(got, max); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzEmail(f *testing.F) {
	for _, s := range []string{
		"a@b.com", "A@B.COM", " zs@example.cn ", "Zhang <zs@example.com>",
		"<a@b.com>", `"a b"@c.com`, "a@localhost", "a@[1.2.3.4]", "a@b.c.",
		"ȺȺ@b.com", "İ@b.com", "用户@例子.中国", "a@b.com (c)", "a@@b.com",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Email(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if len(got) > maxEmailBytes || got != strings.ToLower(got) {
			t.Fatalf("bad result %q", got)
		}
		if !strings.Contains(got[strings.LastIndexByte(got, '@')+1:], ".") {
			t.Fatalf("domain without dot: %q", got)
		}
		if again, err := Email(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzPhone(f *testing.F) {
	for _, s := range []string{
		"13800138000", "138 0013 8000", "+86 138-0013-8000", "0086 13800138000",
		"010-6552 9988", "(010) 65529988", "+1 650 253 0000", "123", "abc",
		"１３８００１３８０００", "13800138000x12", "+", "++86", "0", "00",
		"+800 1234 5678", "+882 1234 5678", "+979 123456789",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Phone(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if len(got) < 2 || got[0] != '+' {
			t.Fatalf("not E.164: %q", got)
		}
		for i := 1; i < len(got); i++ {
			if got[i] < '0' || got[i] > '9' {
				t.Fatalf("not E.164: %q", got)
			}
		}
		if again, err := Phone(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzIDNumber(f *testing.F) {
	for _, s := range []string{
		"11010519491231002X", "11010519491231002x", "110105194912310021",
		"E12345678", " e1234 5678 ", "-----", "AB12", "１１０１０５１９４９１２３１００２Ｘ",
		"11010529991231002X", "000000000000000000",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := IDNumber(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if len(got) < minIDLen || len(got) > maxIDLen {
			t.Fatalf("bad length: %q", got)
		}
		for i := 0; i < len(got); i++ {
			c := got[i]
			if !(c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("bad character in %q", got)
			}
		}
		if looksPRC(got) && checkPRC(got) != nil {
			t.Fatalf("invalid PRC ID accepted: %q", got)
		}
		if again, err := IDNumber(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

func FuzzCode(f *testing.F) {
	for _, s := range []string{"vip", " Gold_Member ", "_x", "a.b", "\u212A", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := Code(s)
		if err != nil {
			checkFuzzErr(t, got, err)
			return
		}
		if len(got) < 1 || len(got) > maxCodeLen {
			t.Fatalf("bad length %q", got)
		}
		if again, err := Code(got); err != nil || again != got {
			t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
		}
	})
}

// FuzzNameSearch ties index and query together: whenever MatchName(name, q)
// holds, every term of NameQuery(q) is among NameTerms(name), so the
// blind-index lookup finds every record MatchName would accept.
func FuzzNameSearch(f *testing.F) {
	pairs := [][2]string{
		{"张三丰", "张三"}, {"张三丰", "三丰"}, {"张三 三丰", "张三丰"}, {"张三丰", "张三 三丰"},
		{"Zhang San", "zha"}, {"Zhang San", "zhang s"}, {"北京字节跳动科技有限公司", "字节跳动"},
		{"华为Huawei技术", "华为 huawei"}, {"Ｚｈａｎｇ", "zhang"}, {"", ""}, {"a", "a"},
		{strings.Repeat("abcdefghij", 5), strings.Repeat("abcdefghij", 3)},
		{"ﬁsh", "fi"}, {"İstanbul", "is"}, {"\xff\xfe", "\xff"}, {"コーヒー", "ーヒ"},
	}
	for _, p := range pairs {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, name, q string) {
		terms := NameTerms(name)
		if len(terms) > maxTerms {
			t.Fatalf("%d terms", len(terms))
		}
		seen := make(map[string]bool, len(terms))
		for _, x := range terms {
			if seen[x] {
				t.Fatalf("duplicate term %q", x)
			}
			seen[x] = true
		}
		query := NameQuery(q)
		if query != nil && len(query) == 0 {
			t.Fatalf("empty non-nil query")
		}
		if len(query) > maxTerms {
			t.Fatalf("%d query terms", len(query))
		}
		if MatchName(name, q) {
			if query == nil {
				t.Fatalf("MatchName true without query terms")
			}
			for _, x := range query {
				if !seen[x] {
					t.Fatalf("MatchName(%q, %q) but query term %q not in index", name, q, x)
				}
			}
		}
		// A name whose index is not capped is found by its own text.
		if self := NameQuery(name); self != nil && len(terms) < maxTerms && !MatchName(name, name) {
			t.Fatalf("name %q does not match itself", name)
		}
	})
}

func FuzzQueryTerms(f *testing.F) {
	for _, s := range []string{
		"a@b.com", "13800138000", "138 0013 8000", "11010519491231002X", "E12345678",
		"Zhang San", "张三", "z", "", "010-6552 9988", "Zhang <a@b.com>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, q string) {
		alts := QueryTerms(q)
		if alts != nil && len(alts) == 0 {
			t.Fatalf("empty non-nil result")
		}
		for _, alt := range alts {
			if len(alt) == 0 {
				t.Fatalf("empty alternative in %q", alts)
			}
			for _, x := range alt {
				if len(x) < 3 || !strings.Contains(x, ":") {
					t.Fatalf("malformed term %q", x)
				}
			}
		}
	})
}
