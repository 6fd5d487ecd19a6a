package access

import (
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/custos/custos/internal/normalize"
)

type maskCase struct{ in, want string }

func runMaskCases(t *testing.T, name string, fn func(string) string, cases []maskCase) {
	t.Helper()
	for _, c := range cases {
		if got := fn(c.in); got != c.want {
			t.Errorf("%s(%q) = %q, want %q", name, c.in, got, c.want)
		}
	}
}

func TestMaskPhone(t *testing.T) {
	runMaskCases(t, "MaskPhone", MaskPhone, []maskCase{
		{"", ""},
		{"+8613812345678", "138****5678"},
		{"+8617012345678", "170****5678"},
		{"+861088886666", "010-****6666"},
		{"+862087654321", "020-****4321"},
		{"+8675588888888", "0755-****8888"},
		{"+8657187654321", "0571-****4321"},
		{"+861012345", "010-***45"},          // short subscriber number: half kept
		{"+864001234567", "+86 ******4567"},  // CN toll-free: neither mobile nor landline
		{"+14155552671", "+1 ******2671"},    // foreign
		{"+85291234567", "+852 ****4567"},    // Hong Kong mobile
		{"+390612345678", "+39 ******5678"},  // Italian leading zero kept in the national number
		{"13812345678", "138****5678"},       // no '+': default region CN
		{"+86 138-1234-5678", "138****5678"}, // other spellings parse too
		{"+12345678", "*******78"},           // the example of the doc comment
		{"+441632960123", "***********23"},   // parses but not a valid number
		{"+8691234567890", "************90"}, // not a valid CN number
		{"abc", "****"},                      // unparseable, short
		{"12345", "****"},                    // unparseable, short
		{"hello world", "*********ld"},       // unparseable
		{"tel:+8613812345678", "****************78"},
		{"+8613812345678 ext. 12", "********************12"},
		{"+86１３８１２３４５６７８", "************７８"}, // full-width digits are not E.164
		{"\xff\xfe\xfd\xfc\xfb\xfa", "****\uFFFD\uFFFD"},
		{"******", "***"},                  // masking would repeat the input
		{"   ", "****"},                    // whitespace only
		{" \t\n  \u3000 ", "*****\u3000 "}, // 7 runes: last two kept
	})
}

func TestMaskPhoneLong(t *testing.T) {
	long := strings.Repeat("8", 10000)
	got := MaskPhone("+" + long)
	if want := strings.Repeat("*", 9999) + "88"; got != want {
		t.Fatalf("MaskPhone(long) = %d bytes, want %d stars and 88", len(got), len(want)-2)
	}
}

func TestMaskEmail(t *testing.T) {
	runMaskCases(t, "MaskEmail", MaskEmail, []maskCase{
		{"", ""},
		{"john@example.com", "j***@example.com"},
		{"j@x.cn", "j***@x.cn"},
		{"john", "***"},
		{"   ", "***"},
		{"@example.com", "***"},
		{"john@", "j***@"},
		{" john@example.com\n", "j***@example.com"},
		{"a@b@c.com", "a***@c.com"}, // domain after the last '@'
		{"张三@例子.中国", "张***@例子.中国"},
		{"ｊｏｈｎ@ｅｘａｍｐｌｅ.com", "ｊ***@ｅｘａｍｐｌｅ.com"},
		{"\xffohn@x.cn", "\uFFFD***@x.cn"},
		{"john@\xff.cn", "j***@\uFFFD.cn"},
		{"j***@x.cn", "***"}, // already masked: the result must not repeat it
	})
}

func TestMaskIDNumber(t *testing.T) {
	runMaskCases(t, "MaskIDNumber", MaskIDNumber, []maskCase{
		{"", ""},
		{"110101199003071234", "110***********1234"},
		{"11010519491231002X", "110***********002X"},
		{"110101 19900307 1234", "110***********1234"}, // whitespace ignored
		{"AB1234567890123456", "A***************56"},   // 18 chars, not PRC
		{"E12345678", "E******78"},
		{"G1234", "G**34"},
		{"1234", "****"},
		{"123", "***"},
		{"X", "*"},
		{"   ", "****"},
		{strings.Repeat("A", 32), "A" + strings.Repeat("*", 29) + "AA"},
		{strings.Repeat("A", 33), "****"},
		{"１１０１０１１９９００３０７１２３４", "１" + strings.Repeat("*", 15) + "３４"}, // full-width: other rule
		{"护照E1234567", "护*******67"},
		{"\xff\xfe\xfd\xfc\xfb", "\uFFFD**\uFFFD\uFFFD"},
	})
}

func TestMaskBankCard(t *testing.T) {
	runMaskCases(t, "MaskBankCard", MaskBankCard, []maskCase{
		{"", ""},
		{"6222021234567890123", "6222***********0123"},
		{"6222 0212 3456 7890 123", "6222***********0123"},
		{"6222-0212-3456-7890", "6222********7890"},
		{"1234567890", "1234**7890"},
		{"１２３４５６７８９０１２", "1234****9012"}, // full-width digits
		{"123456789", "*******89"},
		{"1234", "**34"},
		{"123", "****"},
		{"abc", "****"},
		{"   ", "****"},
		{"DE89 3704 0044 0532 0130 00", strings.Repeat("*", 20) + "00"},
		{strings.Repeat("1", 34), "1111" + strings.Repeat("*", 26) + "1111"},
		{strings.Repeat("1", 35), "****"},
		{"\xff\xfe\xfd\xfc\xfb\xfa", "****\uFFFD\uFFFD"},
		{"**********", "***"},
	})
}

func TestMaskAddress(t *testing.T) {
	runMaskCases(t, "MaskAddress", MaskAddress, []maskCase{
		{"", ""},
		{"北京市朝阳区建国路88号", "北京市朝阳区****"},
		{"浙江省杭州市西湖区文三路1号", "浙江省杭州市西湖区****"},
		{"云南省大理州宾川县金牛镇", "云南省大理州宾川县****"},
		{"内蒙古自治区鄂尔多斯市准格尔旗薛家湾镇", "内蒙古自治区鄂尔多斯市准格尔旗****"},
		{"广西壮族自治区南宁市青秀区民族大道100号", "广西壮族自治区南宁市青秀区****"},
		{"香港特别行政区中西区皇后大道中1号", "香港特别行政区中西区****"},
		{"广东省深圳市南山区科技园南区", "广东省深圳市南山区****"},
		{"  北京市朝阳区建国路88号  ", "北京市朝阳区****"},
		{"北京朝阳区建国路", "北京朝阳区****"},
		// No district marker: up to the last 市 before any digit.
		{"江苏省苏州市昆山市玉山镇", "江苏省苏州市昆山市****"},
		{"浙江省杭州市翠苑小区", "浙江省杭州市****"},  // 小区 is a compound
		{"吉林省长春市红旗街", "吉林省长春市****"},   // 红旗 is no banner
		{"辽宁省沈阳市超市路1号", "辽宁省沈阳市****"}, // 超市 is no city
		{"北京市798艺术区", "北京市****"},      // 区 after digits
		{"北京市１００号艺术区", "北京市****"},     // full-width digits too
		{"北京市朝阳区", "北京市****"},         // cut never keeps everything
		{"江苏省苏州市昆山市", "江苏省苏州市****"},
		// False markers and nothing to keep.
		{"区政府路1号", "****"},
		{"县前街", "****"},
		{"某某旗舰店", "****"},
		{"北京", "****"},
		{"北京市", "****"},
		{"Room 1201, 北京市朝阳区建国路88号", "****"}, // digits before every marker
		// Without CJK: drop the street line, mask digit runs.
		{"88 Jianguo Rd, Chaoyang District, Beijing", "****, Chaoyang District, Beijing"},
		{"1600 Amphitheatre Pkwy, Mountain View, CA 94043, USA", "****, Mountain View, ****, USA"},
		{"Flat 2, 221B Baker Street, London", "****, ****, London"},
		{"Apt 5, Block 12, Springfield", "****, Block 12, Springfield"},
		{"Rue de Rivoli, ７５００１ Paris, France", "****, ****, France"},
		{"Some Street 1", "****"},
		{"street,", "****"},
		{", Beijing", "***"}, // "****, Beijing" would contain the input
		{"a,, ,b", "****, b"},
		{"x,\xff\xfe", "****, \uFFFD\uFFFD"},
		{"   ", "****"},
		{"****, b", "***"}, // already masked
	})
}

func TestMaskName(t *testing.T) {
	runMaskCases(t, "MaskName", MaskName, []maskCase{
		{"", ""},
		{"张三丰", "张*丰"},
		{"欧阳娜娜", "欧**娜"},
		{"张三", "张*"},
		{"张", "*"},
		{"张 三丰", "张*丰"},
		{"阿卜杜勒·艾尼", "阿*****尼"},
		{"김민수", "김*수"},
		{"さくら", "さ*ら"},
		{"华为Huawei", "华******i"}, // one word with CJK: CJK rule
		{"李 Lee", "李*** Lee"},    // several words, mixed: Latin rule
		{"John Smith", "J*** Smith"},
		{"Mary Ann Lee", "M*** A*** Lee"},
		{"  John \t Smith\n", "J*** Smith"},
		{"John", "J***"},
		{"J", "***"}, // "J***" would contain the input
		{"Ｚｈａｎｇ Ｓａｎ", "Ｚ*** Ｓａｎ"},
		{"José Álvarez", "J*** Álvarez"},
		{"   ", "*"},
		{"\xff", "\uFFFD***"},
		{"\xff \xfe\xfd", "\uFFFD*** \uFFFD\uFFFD"},
		{"J*** Smith", "***"}, // already masked
	})
}

func TestMaskText(t *testing.T) {
	runMaskCases(t, "MaskText", MaskText, []maskCase{
		{"", ""},
		{" ", "****"},
		{"a", "****"},
		{"customer prefers calls after 6pm", "****"},
		{"\xff", "****"},
		{"****", "***"},
	})
}

func TestMaskDispatch(t *testing.T) {
	cases := []struct{ field, in, want string }{
		{"name", "张三丰", "张*丰"},
		{"phone", "+8613812345678", "138****5678"},
		{"email", "john@example.com", "j***@example.com"},
		{"id_number", "110101199003071234", "110***********1234"},
		{"bank_account", "6222021234567890123", "6222***********0123"},
		{"address", "北京市朝阳区建国路88号", "北京市朝阳区****"},
		{"notes", "call back", "****"},
		{"", "call back", "****"},
		{"Phone", "+8613812345678", "****"}, // field names are exact
	}
	for _, c := range cases {
		if got := Mask(c.field, c.in); got != c.want {
			t.Errorf("Mask(%q, %q) = %q, want %q", c.field, c.in, got, c.want)
		}
	}
	for _, field := range maskFields {
		if got := Mask(field, ""); got != "" {
			t.Errorf("Mask(%q, \"\") = %q, want \"\"", field, got)
		}
	}
}

// maskFields are the field names Mask knows, plus one it does not.
var maskFields = []string{"name", "phone", "email", "id_number", "bank_account", "address", "notes"}

// maskFuncs are the exported masking functions, called directly.
var maskFuncs = map[string]func(string) string{
	"MaskName": MaskName, "MaskPhone": MaskPhone, "MaskEmail": MaskEmail,
	"MaskIDNumber": MaskIDNumber, "MaskBankCard": MaskBankCard,
	"MaskAddress": MaskAddress, "MaskText": MaskText,
}

// checkMasked asserts the promises every masking function makes.
func checkMasked(t *testing.T, what, in, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s(%q) = %q: not valid UTF-8", what, in, out)
	}
	if in == "" {
		if out != "" {
			t.Fatalf("%s(\"\") = %q, want \"\"", what, out)
		}
		return
	}
	if out == "" {
		t.Fatalf("%s(%q) = \"\"", what, in)
	}
	if utf8.RuneCountInString(in) >= 4 && (out == in || strings.Contains(out, in)) {
		t.Fatalf("%s(%q) = %q contains the input", what, in, out)
	}
}

var (
	maskedCNMobile   = regexp.MustCompile(`^1[0-9]{2}\*{4}([0-9]{4})$`)
	maskedCNLandline = regexp.MustCompile(`^0[0-9]{2,3}-\*+([0-9]{0,4})$`)
	maskedForeign    = regexp.MustCompile(`^\+[0-9]{1,3} \*+([0-9]{0,4})$`)
)

// checkMaskedPhone asserts that a valid E.164 number is masked in one of the
// three formats and that only at most its last four digits follow the stars.
func checkMaskedPhone(t *testing.T, e164, out string) {
	t.Helper()
	var m []string
	for _, re := range []*regexp.Regexp{maskedCNMobile, maskedCNLandline, maskedForeign} {
		if m = re.FindStringSubmatch(out); m != nil {
			break
		}
	}
	if m == nil {
		t.Fatalf("MaskPhone(%q) = %q: not a masked phone number", e164, out)
	}
	if tail := m[1]; len(tail) > 4 || !strings.HasSuffix(e164, tail) {
		t.Fatalf("MaskPhone(%q) = %q: tail %q is not at most the last 4 digits", e164, out, tail)
	}
	if (maskedCNMobile.MatchString(out) || maskedCNLandline.MatchString(out)) && !strings.HasPrefix(e164, "+86") {
		t.Fatalf("MaskPhone(%q) = %q: Chinese format for a foreign number", e164, out)
	}
}

func TestMaskPhoneNormalized(t *testing.T) {
	for _, in := range []string{
		"138 1234 5678", "+86 138-1234-5678", "０１０-８８８８ ６６６６", "010-65529988",
		"0755 8888 8888", "+86 21 1234 5678", "+1 415 555 2671", "+44 20 7946 0958",
		"+852 9123 4567", "+81 90-1234-5678", "+39 06 1234 5678", "400 123 4567",
	} {
		e, err := normalize.Phone(in)
		if err != nil {
			t.Fatalf("normalize.Phone(%q): %v", in, err)
		}
		out := MaskPhone(e)
		checkMasked(t, "MaskPhone", e, out)
		checkMaskedPhone(t, e, out)
	}
}

// maskEdgeInputs are inputs every masking function must survive.
var maskEdgeInputs = []string{
	"", " ", "\t\n", "\u3000", "*", "**", "***", "****", "*****", "******",
	"a", "ab", "abc", "abcd", "@", "@@", "a@", ",", ",,,", "区", "区区区区", "市市市市",
	"北京市", "北京市朝阳区", "\xff", "\xff\xfe\xfd\xfc\xfb\xfa\xf9", "a\x00b\x00c",
	"\u202Eevil\u202C", "ｆｕｌｌ　ｗｉｄｔｈ", "１２３４５６７８９０", "+", "+86", "+8613",
	"\U0001F600\U0001F600\U0001F600\U0001F600", "e\u0301e\u0301e\u0301e\u0301",
	strings.Repeat("张", 10000), strings.Repeat("a ", 10000), strings.Repeat("1", 100000),
	strings.Repeat("北京市朝阳区", 1000) + "1", strings.Repeat("a,", 5000),
	strings.Repeat("\xff", 1000), strings.Repeat("*", 1000),
}

func TestMaskEdgeInputs(t *testing.T) {
	for _, in := range maskEdgeInputs {
		for name, fn := range maskFuncs {
			checkMasked(t, name, in, fn(in))
		}
		for _, field := range maskFields {
			checkMasked(t, "Mask/"+field, in, Mask(field, in))
		}
	}
}

func FuzzMask(f *testing.F) {
	for _, s := range maskEdgeInputs {
		if len(s) < 1000 {
			f.Add(s)
		}
	}
	for _, s := range []string{
		"+8613812345678", "+861088886666", "+862087654321", "+14155552671", "138 1234 5678",
		"john@example.com", "j@x.cn", "110101199003071234", "E12345678",
		"6222021234567890123", "6222 0212 3456 7890 123", "北京市朝阳区建国路88号",
		"云南省大理州宾川县金牛镇", "88 Jianguo Rd, Chaoyang District, Beijing",
		"张三丰", "欧阳娜娜", "John Smith", "Mary Ann Lee", "j***@x.cn", "138****5678",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, field := range maskFields {
			checkMasked(t, "Mask/"+field, s, Mask(field, s))
		}
		for name, fn := range maskFuncs {
			checkMasked(t, name, s, fn(s))
		}
		if e, err := normalize.Phone(s); err == nil {
			out := Mask("phone", e)
			checkMasked(t, "MaskPhone", e, out)
			checkMaskedPhone(t, e, out)
		}
	})
}
