package normalize

import (
	"errors"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/nyaruka/phonenumbers"
	"golang.org/x/text/unicode/norm"
)

// ErrInvalid is wrapped by every error returned by this package.
var ErrInvalid = errors.New("invalid value")

// invalidError is a validation error. Its message is always a constant chosen
// by this package, never derived from the input.
type invalidError struct{ msg string }

func (e *invalidError) Error() string { return e.msg }
func (e *invalidError) Unwrap() error { return ErrInvalid }

func newErr(msg string) error { return &invalidError{msg: msg} }

var (
	errNameUTF8    = newErr("name is not valid UTF-8")
	errNameEmpty   = newErr("name is empty")
	errNameLong    = newErr("name is too long")
	errNameControl = newErr("name contains a control character")

	errTextUTF8    = newErr("text is not valid UTF-8")
	errTextLong    = newErr("text is too long")
	errTextControl = newErr("text contains a control character")

	errEmailEmpty  = newErr("e-mail address is empty")
	errEmailLong   = newErr("e-mail address is too long")
	errEmail       = newErr("not a valid e-mail address")
	errEmailDomain = newErr("e-mail domain is not valid")

	errPhoneEmpty = newErr("phone number is empty")
	errPhoneLong  = newErr("phone number is too long")
	errPhoneChar  = newErr("phone number contains a character that is not allowed")
	errPhone      = newErr("not a valid phone number")

	errIDEmpty    = newErr("ID number is empty")
	errIDLength   = newErr("ID number has an invalid length")
	errIDChar     = newErr("ID number contains a character that is not allowed")
	errIDChecksum = newErr("PRC resident ID number has a wrong check digit")
	errIDBirth    = newErr("PRC resident ID number has an implausible birth date")

	errCodeDigits = newErr("a code may hold at most 6 digits")
	errCodeEmpty  = newErr("code is empty")
	errCodeLong   = newErr("code is too long")
	errCode       = newErr("code must be a-z, 0-9, '_' or '-' and start with a letter or digit")

	errTagUTF8    = newErr("tag is not valid UTF-8")
	errTagEmpty   = newErr("tag is empty")
	errTagLong    = newErr("tag is too long")
	errTagControl = newErr("tag contains a control character")
	errTagComma   = newErr("tag contains a comma")
)

const (
	maxNameRunes = 200
	maxTagRunes  = 32
	// maxLabelBytes bounds the raw input of Name and Tag before any work is
	// done. A valid name is at most 200 runes; even with decomposed input and
	// generous surrounding whitespace it is far below this.
	maxLabelBytes = 16 << 10
	maxEmailBytes = 254
	maxLocalBytes = 64
	maxPhoneBytes = 40
	maxIDRaw      = 128
	minIDLen      = 5
	maxIDLen      = 32
	maxCodeLen    = 32
)

// labelErrs groups the errors of one kind of label (Name or Tag).
type labelErrs struct {
	utf8, empty, long, control, comma error
}

var (
	nameErrs = labelErrs{errNameUTF8, errNameEmpty, errNameLong, errNameControl, nil}
	tagErrs  = labelErrs{errTagUTF8, errTagEmpty, errTagLong, errTagControl, errTagComma}
)

// isBidiControl reports whether r is a bidirectional embedding, override or
// isolate control. They can make one name render like another.
func isBidiControl(r rune) bool {
	return (r >= 0x202A && r <= 0x202E) || (r >= 0x2066 && r <= 0x2069)
}

// cleanLabel implements Name and Tag: s must already be valid UTF-8 and
// normalized. Whitespace runs become one space, surrounding whitespace is
// dropped, control characters are rejected.
func cleanLabel(s string, maxRunes int, e labelErrs) (string, error) {
	var b strings.Builder
	b.Grow(len(s))
	n := 0
	space := false
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			space = n > 0
			continue
		case unicode.IsControl(r), isBidiControl(r):
			return "", e.control
		case e.comma != nil && (r == ',' || r == '、'):
			return "", e.comma
		}
		if space {
			b.WriteByte(' ')
			n++
			space = false
		}
		b.WriteRune(r)
		n++
		if n > maxRunes {
			return "", e.long
		}
	}
	if n == 0 {
		return "", e.empty
	}
	return b.String(), nil
}

// Name validates a display name (person or company). The input must be valid
// UTF-8; it is NFC-normalized, trimmed, and every internal run of whitespace
// (tabs and newlines included) is collapsed to one space. Other control
// characters and bidi override/isolate controls are rejected. The result has
// 1..200 runes.
func Name(s string) (string, error) {
	if len(s) > maxLabelBytes {
		return "", errNameLong
	}
	if !utf8.ValidString(s) {
		return "", errNameUTF8
	}
	out, err := cleanLabel(norm.NFC.String(s), maxNameRunes, nameErrs)
	if err != nil {
		return "", err
	}
	if !norm.NFC.IsNormalString(out) {
		// Defensive: collapsing whitespace cannot normally denormalize.
		return cleanLabel(norm.NFC.String(out), maxNameRunes, nameErrs)
	}
	return out, nil
}

// Tag validates a tag label like Name, but with NFKC instead of NFC, at most
// 32 runes, no commas (',' or the ideographic comma '、'), and lowercased.
func Tag(s string) (string, error) {
	if len(s) > maxLabelBytes {
		return "", errTagLong
	}
	if !utf8.ValidString(s) {
		return "", errTagUTF8
	}
	s = strings.ToLower(norm.NFKC.String(s))
	if !norm.NFKC.IsNormalString(s) {
		// Lowercasing can, in rare cases, produce a non-normalized string.
		s = strings.ToLower(norm.NFKC.String(s))
	}
	return cleanLabel(s, maxTagRunes, tagErrs)
}

// Text validates free text (notes, addresses, summaries). The input must be
// valid UTF-8; CRLF and lone CR become LF, the text is NFC-normalized and
// trimmed. It may contain newlines and tabs but no other control characters,
// and at most max runes (a negative max allows only the empty text). Empty
// text is allowed and returned as "".
func Text(s string, max int) (string, error) {
	if !utf8.ValidString(s) {
		return "", errTextUTF8
	}
	if strings.IndexByte(s, '\r') >= 0 {
		s = strings.ReplaceAll(s, "\r\n", "\n")
		s = strings.ReplaceAll(s, "\r", "\n")
	}
	s = strings.TrimSpace(norm.NFC.String(s))
	n := 0
	for _, r := range s {
		if r != '\n' && r != '\t' && unicode.IsControl(r) {
			return "", errTextControl
		}
		n++
		if n > max {
			return "", errTextLong
		}
	}
	return s, nil
}

// Email validates one e-mail address. Surrounding whitespace is trimmed; the
// rest must be a bare RFC 5322 addr-spec (no display name, no angle brackets,
// no quoted local part, no domain literal) whose domain contains a dot, at
// most 254 bytes long with a local part of at most 64 bytes. It is returned
// lowercased.
func Email(s string) (string, error) {
	s = strings.TrimSpace(s)
	if err := checkEmail(s); err != nil {
		return "", err
	}
	lower := strings.ToLower(s)
	if lower != s {
		// Lowercasing non-ASCII can change the length or the syntax.
		if err := checkEmail(lower); err != nil {
			return "", err
		}
	}
	return lower, nil
}

func checkEmail(s string) error {
	if s == "" {
		return errEmailEmpty
	}
	if len(s) > maxEmailBytes {
		return errEmailLong
	}
	if !utf8.ValidString(s) {
		return errEmail
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Name != "" || a.Address != s {
		return errEmail
	}
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at > maxLocalBytes {
		return errEmail
	}
	domain := s[at+1:]
	if strings.IndexByte(domain, '.') < 0 || strings.HasPrefix(domain, "[") {
		return errEmailDomain
	}
	return nil
}

// Phone parses a phone number with default region CN and returns it in E.164
// form ("+8613800138000"). Inputs longer than 40 bytes are invalid. Only
// digits (full-width digits included), whitespace and + - . / ( ) are
// allowed, and the number must be valid according to the phonenumbers
// metadata (phonenumbers.IsValidNumber). Landlines with an area code are
// valid; numbers that are only "possible", such as a landline without its
// area code, are rejected (see the package documentation).
func Phone(s string) (string, error) {
	if len(s) > maxPhoneBytes {
		return "", errPhoneLong
	}
	if !utf8.ValidString(s) {
		return "", errPhoneChar
	}
	s = strings.TrimSpace(norm.NFKC.String(s))
	if s == "" {
		return "", errPhoneEmpty
	}
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r == '+', r == '-', r == '.', r == '/', r == '(', r == ')', r == ' ', r == '\t':
		default:
			return "", errPhoneChar
		}
	}
	if digits == 0 {
		return "", errPhone
	}
	num, err := phonenumbers.Parse(s, "CN")
	if err != nil || num.GetExtension() != "" || !phonenumbers.IsValidNumber(num) {
		return "", errPhone
	}
	out := phonenumbers.Format(num, phonenumbers.E164)
	if len(out) < 2 || out[0] != '+' {
		return "", errPhone
	}
	return out, nil
}

// IDNumber validates an identity document number. All whitespace is removed
// and ASCII letters are uppercased (after NFKC, so full-width input works).
// A value of 18 characters whose first 17 are digits is a PRC resident
// identity number: its last character must be a digit or X, the ISO 7064
// MOD 11-2 check character must be right and it must contain a plausible
// birth date (YYYYMMDD, 1880 to today). Anything else must be 5..32
// characters of A-Z, 0-9 and '-' with at least one letter or digit
// (passports and other documents).
func IDNumber(s string) (string, error) {
	if len(s) > maxIDRaw {
		return "", errIDLength
	}
	if !utf8.ValidString(s) {
		return "", errIDChar
	}
	s = norm.NFKC.String(s)
	var buf [maxIDRaw * 2]byte
	b := buf[:0]
	alnum := 0
	for _, r := range s {
		switch {
		case unicode.IsSpace(r):
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
			alnum++
		case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			alnum++
		case r == '-':
		default:
			return "", errIDChar
		}
		if len(b) >= maxIDLen {
			return "", errIDLength
		}
		b = append(b, byte(r))
	}
	if len(b) == 0 {
		return "", errIDEmpty
	}
	if len(b) < minIDLen {
		return "", errIDLength
	}
	if alnum == 0 {
		return "", errIDChar
	}
	id := string(b)
	if looksPRC(id) {
		if err := checkPRC(id); err != nil {
			return "", err
		}
	}
	return id, nil
}

// looksPRC reports whether id has the shape of a PRC resident identity
// number: 18 characters, the first 17 of them digits.
func looksPRC(id string) bool {
	if len(id) != 18 {
		return false
	}
	for i := 0; i < 17; i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

var prcWeights = [17]int{7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2}

const prcCheck = "10X98765432"

// checkPRC validates the check character and the birth date of an uppercased
// id for which looksPRC is true.
func checkPRC(id string) error {
	sum := 0
	for i, w := range prcWeights {
		sum += int(id[i]-'0') * w
	}
	if id[17] != prcCheck[sum%11] {
		return errIDChecksum
	}
	y := atoi(id[6:10])
	m := atoi(id[10:12])
	d := atoi(id[12:14])
	if y < 1880 || m < 1 || m > 12 || d < 1 {
		return errIDBirth
	}
	birth := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if birth.Day() != d || birth.Month() != time.Month(m) {
		return errIDBirth
	}
	// One day of slack for time zones (the date is a China Standard Time date).
	if birth.After(time.Now().UTC().AddDate(0, 0, 1)) {
		return errIDBirth
	}
	return nil
}

// atoi converts a string of ASCII digits.
func atoi(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n
}

// Code validates a category code (industry, level, source, status, kind):
// after trimming and lowercasing it must match ^[a-z0-9][a-z0-9_-]{0,31}$.
// Only ASCII letters are lowercased, so non-ASCII input that would lowercase
// to ASCII (such as the Kelvin sign) is rejected.
func Code(s string) (string, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return "", errCodeEmpty
	}
	if len(s) > maxCodeLen {
		return "", errCodeLong
	}
	b := []byte(s)
	for i, c := range b {
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
			b[i] = c
		}
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case i > 0 && (c == '_' || c == '-'):
		default:
			return "", errCode
		}
	}
	// Codes are stored in plaintext (they are filtered on): a value with
	// the digits of a phone, ID or card number is refused, so personal data
	// cannot be parked in a category field.
	digits := 0
	for _, c := range b {
		if c >= '0' && c <= '9' {
			digits++
		}
	}
	if digits > 6 {
		return "", errCodeDigits
	}
	return string(b), nil
}
