package normalize

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkErr asserts that err is nil when wantErr is false, and otherwise that
// it wraps ErrInvalid and does not reveal the input.
func checkErr(t *testing.T, in string, err error, wantErr bool) {
	t.Helper()
	if !wantErr {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("expected an error")
	}
	if !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %v does not wrap ErrInvalid", err)
	}
	assertNoLeak(t, in, err)
}

// assertNoLeak fails when the error message contains the (trimmed) input.
// Inputs shorter than 3 bytes could be part of any English sentence and are
// not checked.
func assertNoLeak(t *testing.T, in string, err error) {
	t.Helper()
	v := strings.TrimSpace(in)
	if len(v) >= 3 && strings.Contains(err.Error(), v) {
		t.Fatalf("error message %q contains the input", err.Error())
	}
}

func TestName(t *testing.T) {
	long := strings.Repeat("名", 200)
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"plain", "Zhang San", "Zhang San", false},
		{"cjk", "张三丰", "张三丰", false},
		{"company", "北京字节跳动科技有限公司", "北京字节跳动科技有限公司", false},
		{"trim and collapse", "  Zhang \t\n  San  ", "Zhang San", false},
		{"ideographic space collapsed", "张\u3000\u3000三", "张 三", false},
		{"nfc", "Jose\u0301", "José", false},
		{"single rune", "A", "A", false},
		{"200 runes", long, long, false},
		{"201 runes", long + "名", "", true},
		{"201 runes after collapse counts the space", strings.Repeat("a", 100) + "   " + strings.Repeat("b", 100), "", true},
		{"empty", "", "", true},
		{"only spaces", " \t\n\u3000 ", "", true},
		{"bad utf8", "Zhang\xffSan", "", true},
		{"truncated utf8", "张\xe4\xb8", "", true},
		{"nul", "Zhang\x00San", "", true},
		{"del", "Zhang\x7fSan", "", true},
		{"c1 control", "Zhang\u0080San", "", true},
		{"escape", "\x1b[31mred", "", true},
		{"bidi override", "abc\u202Egpj.exe", "", true},
		{"bidi isolate", "abc\u2066def", "", true},
		{"huge whitespace input", "a" + strings.Repeat(" ", 20000) + "b", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Name(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Name = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestText(t *testing.T) {
	tests := []struct {
		name, in string
		max      int
		want     string
		wantErr  bool
	}{
		{"empty", "", 10, "", false},
		{"only whitespace", " \n\t ", 10, "", false},
		{"trimmed", "  note  ", 10, "note", false},
		{"newline and tab kept", "line 1\n\tline 2", 100, "line 1\n\tline 2", false},
		{"crlf to lf", "a\r\nb\rc", 10, "a\nb\nc", false},
		{"nfc", "Jose\u0301", 4, "José", false},
		{"exactly max", "一二三四五", 5, "一二三四五", false},
		{"too long", "一二三四五六", 5, "", true},
		{"max zero", "x", 0, "", true},
		{"negative max allows empty", " ", -1, "", false},
		{"negative max", "x", -1, "", true},
		{"bad utf8", "note\xc3", 100, "", true},
		{"nul", "note\x00", 100, "", true},
		{"vertical tab", "a\vb", 100, "", true},
		{"form feed inside", "a\fb", 100, "", true},
		{"bell", "a\ab", 100, "", true},
		{"c1", "a\u009bb", 100, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Text(tt.in, tt.max)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Text = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestEmail(t *testing.T) {
	local64 := strings.Repeat("a", 64)
	long := local64 + "@" + strings.Repeat("b", 185) + ".com" // 254 bytes
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"plain", "a@b.com", "a@b.com", false},
		{"uppercase normalized", "Zhang.San@Example.COM", "zhang.san@example.com", false},
		{"trimmed", "  zs@example.cn \n", "zs@example.cn", false},
		{"plus and subdomain", "z+crm@mail.example.com.cn", "z+crm@mail.example.com.cn", false},
		{"254 bytes", long, long, false},
		{"255 bytes", "a" + long, "", true},
		{"local part 65 bytes", "a" + local64 + "@b.com", "", true},
		{"display name", "Zhang San <zs@example.com>", "", true},
		{"angle brackets", "<zs@example.com>", "", true},
		{"quoted local part", `"zhang san"@example.com`, "", true},
		{"no domain dot", "zs@localhost", "", true},
		{"domain literal", "zs@[192.168.0.1]", "", true},
		{"no at", "zs.example.com", "", true},
		{"two addresses", "a@b.com, c@d.com", "", true},
		{"empty", "", "", true},
		{"spaces", "   ", "", true},
		{"trailing dot", "zs@example.com.", "", true},
		{"space inside", "zhang san@example.com", "", true},
		{"comment", "zs@example.com (Zhang)", "", true},
		{"bad utf8", "z\xff@example.com", "", true},
		{"newline inside", "zs@exa\nmple.com", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Email(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Email = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestPhone(t *testing.T) {
	const mobile = "+8613800138000"
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"bare mobile", "13800138000", mobile, false},
		{"spaced mobile", "138 0013 8000", mobile, false},
		{"e164 with dashes", "+86 138-0013-8000", mobile, false},
		{"0086 prefix", "0086 13800138000", mobile, false},
		{"e164", "+8613800138000", mobile, false},
		{"86 without plus", "8613800138000", mobile, false},
		{"dotted", "138.0013.8000", mobile, false},
		{"full-width digits", "１３８００１３８０００", mobile, false},
		{"full-width with ideographic space", "１３８\u3000００１３\u3000８０００", mobile, false},
		{"full-width over 40 bytes", "＋８６ １３８００１３８０００", "", true},
		{"surrounding whitespace", "  13800138000\t", mobile, false},
		{"landline beijing", "010-6552 9988", "+861065529988", false},
		{"landline beijing parentheses", "(010) 65529988", "+861065529988", false},
		{"landline e164", "+86 10 6552 9988", "+861065529988", false},
		{"landline shanghai", "021-12345678", "+862112345678", false},
		{"landline shenzhen", "0755-8888 8888", "+8675588888888", false},
		{"service number 400", "400-810-8888", "+864008108888", false},
		{"foreign us", "+1 650 253 0000", "+16502530000", false},
		{"foreign uk", "+44 20 7946 0958", "+442079460958", false},
		{"landline without area code", "6552 9988", "", true},
		{"short", "123", "", true},
		{"emergency", "110", "", true},
		{"short service number", "95588", "", true},
		{"mobile one digit short", "1380013800", "", true},
		{"mobile one digit long", "138001380001", "", true},
		{"not a mobile range", "23800138000", "", true},
		{"letters", "abc", "", true},
		{"vanity letters", "1380013800O", "", true},
		{"extension", "13800138000 ext 12", "", true},
		{"extension x", "13800138000x12", "", true},
		{"tel uri", "tel:+8613800138000", "", true},
		{"41 bytes", "138 0013 8000" + strings.Repeat(" ", 28), "", true},
		{"41 bytes digits", strings.Repeat("1", 41), "", true},
		{"empty", "", "", true},
		{"only punctuation", "+()-", "", true},
		{"bad utf8", "138\xff00138000", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Phone(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Phone = %q, want %q", got, tt.want)
			}
		})
	}
}

// prcCheckChar computes the ISO 7064 MOD 11-2 check character of the first
// 17 digits independently of the implementation: weight i is 2^(17-i) mod 11
// and the check value is (12 - sum mod 11) mod 11, with 10 written as X.
func prcCheckChar(t *testing.T, first17 string) string {
	t.Helper()
	if len(first17) != 17 {
		t.Fatalf("need 17 digits")
	}
	sum := 0
	for i := 0; i < 17; i++ {
		w := 1
		for k := 0; k < 17-i; k++ {
			w = w * 2 % 11
		}
		sum += int(first17[i]-'0') * w
	}
	c := (12 - sum%11) % 11
	if c == 10 {
		return "X"
	}
	return string(rune('0' + c))
}

// withCheck appends the correct check character.
func withCheck(t *testing.T, first17 string) string {
	return first17 + prcCheckChar(t, first17)
}

// withWrongCheck appends a wrong check character.
func withWrongCheck(t *testing.T, first17 string) string {
	c := prcCheckChar(t, first17)
	if c == "1" {
		return first17 + "2"
	}
	return first17 + "1"
}

func TestPRCCheckHelper(t *testing.T) {
	if got := withCheck(t, "11010519491231002"); got != "11010519491231002X" {
		t.Fatalf("helper computed %q", got)
	}
}

func TestIDNumber(t *testing.T) {
	valid1 := withCheck(t, "44030419900307123")
	valid2 := withCheck(t, "32010220000229456") // leap day
	xWrong := "44030419900307123X"
	if prcCheckChar(t, xWrong[:17]) == "X" {
		xWrong = "44030419900307124X"
	}
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"known valid X", "11010519491231002X", "11010519491231002X", false},
		{"lowercase x", "11010519491231002x", "11010519491231002X", false},
		{"computed valid", valid1, valid1, false},
		{"leap day", valid2, valid2, false},
		{"spaces removed", "110105 19491231 002X", "11010519491231002X", false},
		{"full-width", "１１０１０５１９４９１２３１００２Ｘ", "11010519491231002X", false},
		{"wrong checksum digit", withWrongCheck(t, "44030419900307123"), "", true},
		{"wrong checksum X", "110105194912310021", "", true},
		{"X where digit expected", xWrong, "", true},
		{"bad check letter", "11010519491231002A", "", true},
		{"month 13", withCheck(t, "11010519491331002"), "", true},
		{"feb 30", withCheck(t, "11010519490230002"), "", true},
		{"feb 29 non leap", withCheck(t, "11010519490229002"), "", true},
		{"day 00", withCheck(t, "11010519491200002"), "", true},
		{"year 1800", withCheck(t, "11010518001231002"), "", true},
		{"future", withCheck(t, "11010529991231002"), "", true},
		{"passport", "E12345678", "E12345678", false},
		{"passport lowercase spaced", " e1234 5678 ", "E12345678", false},
		{"hk id style", "A123456-7", "A123456-7", false},
		{"old 15 digit id", "110105491231002", "110105491231002", false},
		{"17 digits", "11010519491231002", "11010519491231002", false},
		{"minimum length", "AB123", "AB123", false},
		{"too short", "AB12", "", true},
		{"32 chars", strings.Repeat("A1", 16), strings.Repeat("A1", 16), false},
		{"33 chars", strings.Repeat("A1", 16) + "B", "", true},
		{"only hyphens", "-----", "", true},
		{"punctuation", "E1234/5678", "", true},
		{"cjk", "护照E1234567", "", true},
		{"empty", "", "", true},
		{"spaces", "     ", "", true},
		{"bad utf8", "E1234\xff5678", "", true},
		{"huge", strings.Repeat("1", 200), "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := IDNumber(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("IDNumber = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"plain", "vip", "vip", false},
		{"upper and trimmed", "  Gold_Member ", "gold_member", false},
		{"digits and dash", "2024-q1", "2024-q1", false},
		{"a phone number", "13800138000", "", true},
		{"an ID number", "11010519491231002x", "", true},
		{"a dashed phone", "138-0013-8000", "", true},
		{"single", "a", "a", false},
		{"32 chars", strings.Repeat("a", 32), strings.Repeat("a", 32), false},
		{"33 chars", strings.Repeat("a", 33), "", true},
		{"leading underscore", "_vip", "", true},
		{"leading dash", "-vip", "", true},
		{"space inside", "gold member", "", true},
		{"dot", "a.b", "", true},
		{"non ascii", "金牌", "", true},
		{"kelvin sign", "\u212A", "", true},
		{"empty", "", "", true},
		{"blank", "   ", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Code(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Code = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTag(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"plain", "VIP", "vip", false},
		{"cjk", "重点客户", "重点客户", false},
		{"full-width nfkc", "ＶＩＰ客户", "vip客户", false},
		{"collapse", "  Key   Account ", "key account", false},
		{"32 runes", strings.Repeat("标", 32), strings.Repeat("标", 32), false},
		{"33 runes", strings.Repeat("标", 33), "", true},
		{"comma", "a,b", "", true},
		{"full-width comma", "a，b", "", true},
		{"ideographic comma", "甲、乙", "", true},
		{"empty", "", "", true},
		{"blank", " \t ", "", true},
		{"control", "vip\x00", "", true},
		{"bad utf8", "vip\xff", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Tag(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("Tag = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestErrorsDoNotContainInput feeds recognizable invalid values to every
// validator and checks that no error message repeats them.
func TestErrorsDoNotContainInput(t *testing.T) {
	secret := "SECRET-张三丰-13800138000"
	cases := []struct {
		name string
		in   string
		fn   func(string) (string, error)
	}{
		{"Name control", secret + "\x00", Name},
		{"Name bad utf8", secret + "\xff", Name},
		{"Name too long", strings.Repeat(secret, 20), Name},
		{"Text control", secret + "\x01", func(s string) (string, error) { return Text(s, 1000) }},
		{"Text too long", secret, func(s string) (string, error) { return Text(s, 3) }},
		{"Email display name", secret + " <zs@example.com>", Email},
		{"Email no dot", "secret.zhangsan@localhost", Email},
		{"Phone letters", "13800138000 " + "SECRET", Phone},
		{"Phone invalid", "23800138000", Phone},
		{"Phone long", strings.Repeat("13800138000", 4), Phone},
		{"IDNumber bad checksum", "110105194912310021", IDNumber},
		{"IDNumber bad char", secret, IDNumber},
		{"Code", secret, Code},
		{"Tag comma", secret + ",x", Tag},
		{"EmailTerm", secret, EmailTerm},
		{"PhoneTerm", secret, PhoneTerm},
		{"IDTerm", "110105194912310021", IDTerm},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.fn(c.in)
			if err == nil {
				t.Fatalf("expected an error, got %q", got)
			}
			if got != "" {
				t.Fatalf("value returned with error")
			}
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid")
			}
			msg := err.Error()
			for _, part := range []string{c.in, strings.TrimSpace(c.in), "SECRET", "张三丰", "13800138000", "110105194912310021", "zhangsan"} {
				if strings.Contains(msg, part) {
					t.Fatalf("error message %q leaks input", msg)
				}
			}
			if !utf8.ValidString(msg) {
				t.Fatalf("error message is not valid UTF-8")
			}
		})
	}
}
