package access

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
)

// Display masking of personal values, following the conventions of Chinese
// CRMs ("138****5678", "张*丰", "110***********1234").
//
// Every function here is pure and total: it never panics, whatever the input
// (invalid UTF-8 included; each invalid byte counts as one rune and is shown
// as U+FFFD if it is kept). Outputs are always valid UTF-8. An empty input
// gives an empty output. For any other input the output never contains the
// input: where the rules below would produce a string containing it (for
// example when the value is already masked, such as "j***@x.cn"), the result
// is "***" instead.

// maskStars is the placeholder for a value, or a part of one, that is hidden
// completely.
const maskStars = "****"

// maskFallback replaces a result that would still contain its input. It has
// three bytes, so it cannot contain any input of four or more bytes.
const maskFallback = "***"

// Mask masks value for display according to the kind of field it comes from:
// "name" (MaskName), "phone" (MaskPhone), "email" (MaskEmail), "id_number"
// (MaskIDNumber), "bank_account" (MaskBankCard), "address" (MaskAddress).
// Any other field is free text and is hidden completely (MaskText). An empty
// value is "" for every field.
func Mask(field, value string) string {
	if value == "" {
		return ""
	}
	switch field {
	case "name":
		return MaskName(value)
	case "phone":
		return MaskPhone(value)
	case "email":
		return MaskEmail(value)
	case "id_number":
		return MaskIDNumber(value)
	case "bank_account":
		return MaskBankCard(value)
	case "address":
		return MaskAddress(value)
	default:
		return MaskText(value)
	}
}

// MaskText masks free text such as notes: "****" for any non-empty value, ""
// for the empty string.
func MaskText(s string) string {
	if s == "" {
		return ""
	}
	return finish(s, maskStars)
}

// MaskPhone masks a phone number in E.164 form, as produced by
// normalize.Phone (other spellings of a number are parsed too, with default
// region CN). At most the last four digits of the subscriber number are kept:
//
//   - Chinese mobile numbers show their national digits with the middle four
//     masked: "+8613812345678" → "138****5678".
//   - Chinese landlines show the area code with its trunk prefix 0, a dash,
//     and the subscriber number with all but its last four digits masked:
//     "+861088886666" → "010-****6666", "+862087654321" → "020-****4321".
//   - Every other number shows "+", the country code and a space, then the
//     national number with all but its last four digits masked:
//     "+14155552671" → "+1 ******2671".
//
// Digit strings of fewer than seven digits (short subscriber or national
// numbers) keep only their last half, rounded down, so that most of them is
// always masked.
//
// A value that is not a valid phone number (it does not parse, contains
// letters or other characters that E.164 never has, or is not valid
// according to the phonenumbers metadata) is masked as opaque text: a value
// of six or more runes becomes stars with only its last two runes kept
// ("+12345678" → "*******78"), a shorter one "****".
func MaskPhone(e164 string) string {
	if e164 == "" {
		return ""
	}
	if out, ok := maskParsedPhone(e164); ok {
		return finish(e164, out)
	}
	runes := []rune(e164)
	if len(runes) < 6 {
		return finish(e164, maskStars)
	}
	var b strings.Builder
	b.WriteString(strings.Repeat("*", len(runes)-2))
	writeRunes(&b, runes[len(runes)-2:])
	return finish(e164, b.String())
}

// maxPhoneBytes bounds the inputs handed to the phone number parser;
// normalize.Phone accepts at most 40 bytes.
const maxPhoneBytes = 64

// maskParsedPhone formats a valid phone number; ok is false if s is not one.
func maskParsedPhone(s string) (out string, ok bool) {
	if len(s) > maxPhoneBytes {
		return "", false
	}
	// Only what a written phone number consists of reaches the parser: no
	// letters (vanity numbers, "ext."), no "tel:" URIs, no other text.
	digits := 0
	for i, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+' && i == 0:
		case r == ' ', r == '-', r == '.', r == '(', r == ')':
		default:
			return "", false
		}
	}
	if digits == 0 {
		return "", false
	}
	num, err := phonenumbers.Parse(s, "CN")
	if err != nil || num == nil || !phonenumbers.IsValidNumber(num) {
		return "", false
	}
	national := phonenumbers.GetNationalSignificantNumber(num)
	if national == "" || !allASCIIDigits(national) {
		return "", false
	}
	cc := num.GetCountryCode()
	if cc == 86 {
		typ := phonenumbers.GetNumberType(num)
		isMobileType := typ == phonenumbers.MOBILE || typ == phonenumbers.FIXED_LINE_OR_MOBILE
		if isMobileType && len(national) == 11 && national[0] == '1' {
			return national[:3] + "****" + national[7:], true
		}
		if typ == phonenumbers.FIXED_LINE || typ == phonenumbers.FIXED_LINE_OR_MOBILE {
			area := phonenumbers.GetLengthOfGeographicalAreaCode(num)
			if area >= 2 && area <= 4 && area < len(national) {
				return "0" + national[:area] + "-" + maskDigitsTail(national[area:]), true
			}
		}
	}
	return "+" + strconv.Itoa(int(cc)) + " " + maskDigitsTail(national), true
}

// maskDigitsTail replaces all but the last four digits of d with stars;
// strings shorter than seven digits keep only their last len(d)/2 digits.
func maskDigitsTail(d string) string {
	keep := 4
	if len(d) < 7 {
		keep = len(d) / 2
	}
	return strings.Repeat("*", len(d)-keep) + d[len(d)-keep:]
}

func allASCIIDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// MaskEmail keeps the first rune of the local part and the whole domain:
// "john@example.com" → "j***@example.com", "j@x.cn" → "j***@x.cn". The
// domain starts after the last '@'. Surrounding whitespace is ignored. A
// value without '@', or with nothing before it, is "***".
func MaskEmail(s string) string {
	if s == "" {
		return ""
	}
	t := strings.TrimSpace(s)
	at := strings.LastIndexByte(t, '@')
	if at <= 0 {
		return finish(s, "***")
	}
	var b strings.Builder
	r, _ := utf8.DecodeRuneInString(t)
	b.WriteRune(r)
	b.WriteString("***@")
	writeString(&b, t[at+1:])
	return finish(s, b.String())
}

// MaskIDNumber masks an identity document number; whitespace is ignored and
// lengths are counted in runes after removing it.
//
//   - A PRC resident identity number (18 characters, the first 17 digits)
//     keeps its first three and last four characters, with the eleven
//     between masked: "110101199003071234" → "110***********1234".
//   - Other documents of 5..32 characters keep the first character and the
//     last two, the rest masked, length preserved: "E12345678" →
//     "E******78".
//   - Shorter values are all stars, one per character ("****" if nothing
//     but whitespace is left); longer values, which are no document number,
//     are "****".
func MaskIDNumber(s string) string {
	if s == "" {
		return ""
	}
	runes := compactRunes(s, nil)
	n := len(runes)
	var b strings.Builder
	switch {
	case n == 18 && allDigitRunes(runes[:17]):
		writeRunes(&b, runes[:3])
		b.WriteString(strings.Repeat("*", 11))
		writeRunes(&b, runes[14:])
	case n >= 5 && n <= 32:
		writeRunes(&b, runes[:1])
		b.WriteString(strings.Repeat("*", n-3))
		writeRunes(&b, runes[n-2:])
	case n >= 1 && n < 5:
		b.WriteString(strings.Repeat("*", n))
	default:
		b.WriteString(maskStars)
	}
	return finish(s, b.String())
}

func allDigitRunes(rs []rune) bool {
	for _, r := range rs {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// maxCardDigits bounds a bank card or account number (an IBAN has at most 34
// characters).
const maxCardDigits = 34

// MaskBankCard masks a bank card or account number. Whitespace and dashes
// are ignored and full-width digits count as digits; lengths are counted
// after removing them.
//
//   - 10..34 digits keep the first four and the last four, every digit
//     between is a star: "6222021234567890123" → "6222***********0123".
//   - 4..9 digits keep only the last two: "12345678" → "******78".
//   - A value of 6..34 runes that is not all digits (an IBAN, say) keeps
//     only its last two runes, the rest are stars.
//   - Anything else (fewer than four digits, over 34 runes) is "****".
func MaskBankCard(s string) string {
	if s == "" {
		return ""
	}
	runes := compactRunes(s, func(r rune) bool { return r == '-' })
	for i, r := range runes {
		if r >= '０' && r <= '９' {
			runes[i] = r - '０' + '0'
		}
	}
	n := len(runes)
	var b strings.Builder
	switch {
	case allDigitRunes(runes) && n >= 10 && n <= maxCardDigits:
		writeRunes(&b, runes[:4])
		b.WriteString(strings.Repeat("*", n-8))
		writeRunes(&b, runes[n-4:])
	case allDigitRunes(runes) && n >= 4 && n < 10, n >= 6 && n <= maxCardDigits:
		b.WriteString(strings.Repeat("*", n-2))
		writeRunes(&b, runes[n-2:])
	default:
		b.WriteString(maskStars)
	}
	return finish(s, b.String())
}

// MaskAddress cuts an address down to its district (or city) and masks the
// rest.
//
// An address containing CJK characters keeps its text up to and including
// the first district-level marker 区, 县 or 旗 and appends "****":
// "北京市朝阳区建国路88号" → "北京市朝阳区****". Without such a marker it keeps
// the text up to and including the last 市 instead ("江苏省苏州市昆山市玉山镇"
// → "江苏省苏州市昆山市****"); with neither it is "****". Surrounding
// whitespace is ignored. To avoid false markers, a marker only counts if
//
//   - at least two other runes come before it ("区政府路…" has none);
//   - no digit comes before it (house numbers end the part that may be kept);
//   - it is not the last rune: a value that is nothing but a district is cut
//     to its city, so the output never repeats the whole address;
//   - it does not end a province-level name, 自治区 (autonomous region) or
//     特别行政区 (SAR): "广西壮族自治区南宁市青秀区…" is cut after 青秀区;
//   - it is not part of a common word that is no administrative division:
//     小区, 社区, 园区, 校区, 景区, 厂区, 矿区 (a residential compound, a
//     campus…), 红旗 (as in 红旗路), 旗舰 (flagship store), 超市
//     (supermarket), 市场 (market).
//
// An address without CJK characters is split on commas; the first component
// (the street line) is dropped and the remaining non-empty components are
// kept, trimmed, after "****, ": "88 Jianguo Rd, Chaoyang District, Beijing"
// → "****, Chaoyang District, Beijing". A component containing a run of
// three or more digits (house numbers, postcodes) is replaced by "****". An
// address without a comma is "****".
func MaskAddress(s string) string {
	if s == "" {
		return ""
	}
	t := strings.TrimSpace(s)
	if hasCJK(t) {
		return finish(s, maskCJKAddress([]rune(t)))
	}
	i := strings.IndexAny(t, ",，")
	if i < 0 {
		return finish(s, maskStars)
	}
	// Drop the first component (even if it is empty), keep the rest.
	rest := t[i:]
	_, size := utf8.DecodeRuneInString(rest)
	rest = rest[size:]
	var b strings.Builder
	b.WriteString(maskStars)
	for _, p := range strings.FieldsFunc(rest, func(r rune) bool { return r == ',' || r == '，' }) {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		b.WriteString(", ")
		if hasDigitRun(p, 3) {
			b.WriteString(maskStars)
		} else {
			writeString(&b, p)
		}
	}
	return finish(s, b.String())
}

// maskCJKAddress implements the CJK rule of MaskAddress on trimmed runes.
func maskCJKAddress(rs []rune) string {
	n := len(rs)
	end := n
	for i, r := range rs {
		if unicode.IsDigit(r) {
			end = i
			break
		}
	}
	before := func(i int) rune {
		if i > 0 {
			return rs[i-1]
		}
		return 0
	}
	after := func(i int) rune {
		if i+1 < n {
			return rs[i+1]
		}
		return 0
	}
	cut := -1
	for i := 2; i < end && i < n-1; i++ {
		switch rs[i] {
		case '区':
			switch before(i) {
			case '小', '社', '园', '校', '景', '厂', '矿', '治', '政':
				continue
			}
		case '县':
		case '旗':
			if before(i) == '红' || after(i) == '舰' {
				continue
			}
		default:
			continue
		}
		cut = i
		break
	}
	if cut < 0 {
		for i := min(end, n-1) - 1; i >= 2; i-- {
			if rs[i] == '市' && before(i) != '超' && after(i) != '场' {
				cut = i
				break
			}
		}
	}
	if cut < 0 {
		return maskStars
	}
	var b strings.Builder
	writeRunes(&b, rs[:cut+1])
	b.WriteString(maskStars)
	return b.String()
}

// hasDigitRun reports whether s contains k or more consecutive digits
// (any script's decimal digits, so full-width digits count).
func hasDigitRun(s string, k int) bool {
	run := 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			run++
			if run >= k {
				return true
			}
		} else {
			run = 0
		}
	}
	return false
}

// MaskName masks a person's name.
//
// A name written in CJK characters (ignoring whitespace and the middle dot
// of transliterated names) keeps its first and last character with one star
// per character between: "张三丰" → "张*丰", "欧阳娜娜" → "欧**娜"; a
// two-character name keeps the first ("张三" → "张*"), a single character is
// "*".
//
// Any other name is split on whitespace; the last word is kept and every
// earlier word becomes its first letter and "***": "John Smith" →
// "J*** Smith", "Mary Ann Lee" → "M*** A*** Lee". A single word becomes its
// first letter and "***" ("John" → "J***"), unless it contains CJK
// characters, in which case the CJK rule applies. A value of only whitespace
// is "*".
func MaskName(s string) string {
	if s == "" {
		return ""
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		return finish(s, "*")
	}
	if hasCJK(s) {
		all := compactRunes(s, nil)
		cjkOnly := true
		for _, r := range all {
			if !isCJK(r) && !isNameDot(r) {
				cjkOnly = false
				break
			}
		}
		if cjkOnly || len(words) == 1 {
			return finish(s, maskCJKName(all))
		}
	}
	var b strings.Builder
	if len(words) == 1 {
		r, _ := utf8.DecodeRuneInString(words[0])
		b.WriteRune(r)
		b.WriteString("***")
		return finish(s, b.String())
	}
	for _, w := range words[:len(words)-1] {
		r, _ := utf8.DecodeRuneInString(w)
		b.WriteRune(r)
		b.WriteString("*** ")
	}
	writeString(&b, words[len(words)-1])
	return finish(s, b.String())
}

// maskCJKName applies the CJK rule of MaskName to a non-empty rune slice.
func maskCJKName(rs []rune) string {
	var b strings.Builder
	switch n := len(rs); {
	case n <= 1:
		b.WriteString("*")
	case n == 2:
		writeRunes(&b, rs[:1])
		b.WriteString("*")
	default:
		writeRunes(&b, rs[:1])
		b.WriteString(strings.Repeat("*", n-2))
		writeRunes(&b, rs[n-1:])
	}
	return b.String()
}

// isNameDot reports whether r is a middle dot used between the parts of a
// transliterated name written in CJK ("阿卜杜勒·艾尼").
func isNameDot(r rune) bool {
	return r == '·' || r == '・' || r == '•' || r == '‧' || r == '･'
}

// isCJK reports whether r is a Han, Hiragana, Katakana or Hangul character.
func isCJK(r rune) bool {
	return unicode.In(r, unicode.Han, unicode.Hiragana, unicode.Katakana, unicode.Hangul)
}

func hasCJK(s string) bool {
	for _, r := range s {
		if isCJK(r) {
			return true
		}
	}
	return false
}

// compactRunes returns the runes of s without whitespace and without the
// runes for which drop (if not nil) reports true. Invalid bytes become
// utf8.RuneError, one per byte.
func compactRunes(s string, drop func(rune) bool) []rune {
	out := make([]rune, 0, len(s))
	for _, r := range s {
		if unicode.IsSpace(r) || drop != nil && drop(r) {
			continue
		}
		out = append(out, r)
	}
	return out
}

// writeRunes writes rs as valid UTF-8 (utf8.RuneError is written as U+FFFD).
func writeRunes(b *strings.Builder, rs []rune) {
	for _, r := range rs {
		b.WriteRune(r)
	}
}

// writeString writes s with every invalid byte replaced by U+FFFD.
func writeString(b *strings.Builder, s string) {
	for _, r := range s {
		b.WriteRune(r)
	}
}

// finish enforces the promise that a masked value never contains the value
// it masks.
func finish(in, out string) string {
	if in != "" && strings.Contains(out, in) {
		return maskFallback
	}
	return out
}
