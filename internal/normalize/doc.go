// Package normalize validates and normalizes customer fields (names, free
// text, e-mail addresses, phone numbers, identity document numbers, category
// codes and tags) and derives the blind-index search terms that let Custos
// search encrypted customer records.
//
// # Errors
//
// Every error returned by this package wraps [ErrInvalid]. Error messages
// describe the problem only ("not a valid phone number"); they never contain
// the offending value, because customer fields are personal data and error
// messages end up in logs and HTTP responses. All errors are package-level
// constants, so no input can ever leak into one.
//
// # Validation
//
// Name, Text and Tag require valid UTF-8 and apply Unicode normalization
// (NFC for Name and Text, NFKC for Tag). Name and Tag collapse every run of
// whitespace (including tabs and newlines) to a single space and reject any
// other control character, as well as the bidirectional embedding, override
// and isolate controls (U+202A..U+202E, U+2066..U+2069) that can be used to
// make one name look like another. Text keeps newlines and tabs, turns CRLF
// and lone CR into LF, and rejects every other control character.
//
// Phone parses with github.com/nyaruka/phonenumbers, default region CN, and
// returns E.164. Only digits, spaces, '+', '-', '.', '/', '(' and ')' are
// accepted (after NFKC, so full-width digits work); letters are rejected, so
// vanity numbers, "ext." suffixes and "tel:" URIs are refused rather than
// silently reinterpreted. A number must satisfy phonenumbers.IsValidNumber.
// Landline decision: Chinese landlines written with their area code
// ("010-6552 9988", "0755 8888 8888", "+86 21 1234 5678") are valid numbers
// in the phonenumbers metadata and are therefore accepted. Numbers that are
// merely "possible" (right length, no valid number range) are NOT accepted:
// that is mostly landlines typed without the area code ("6552 9988"), whose
// E.164 form "+8665529988" would be wrong and would never match the same line
// stored with its area code, and mistyped mobiles. A user must enter the area
// code.
//
// IDNumber accepts PRC resident identity numbers (18 characters, checked with
// ISO 7064 MOD 11-2 and a plausible embedded birth date) and other document
// numbers (5..32 characters of A-Z, 0-9 and '-'). Any value whose first 17
// characters are digits and which is 18 characters long is treated as a PRC
// number and must pass the PRC checks, so a mistyped resident ID is refused
// instead of being stored as a "passport".
//
// # Blind-index search terms
//
// Customer fields are stored encrypted, so the database cannot search them.
// Instead, for every searchable field the caller stores HMAC(key, term) for
// each term produced here, and a search computes the HMACs of the query terms
// and looks for records that carry all of them. Terms are plain strings with a
// short kind prefix for domain separation, so that, for example, the word
// "li" and the CJK character "李" or an e-mail and a phone can never collide:
//
//	w:<word>     whole Latin/digit word of a name          w:zhang
//	p:<prefix>   prefix of 2..20 runes of such a word      p:zha
//	h1:<c>       a single CJK character of a name          h1:张
//	h2:<cc>      two adjacent CJK characters of a name     h2:张三
//	e:<email>    normalized e-mail address                 e:a@b.com
//	t:<phone>    E.164 phone number                        t:+8613800138000
//	i:<id>       normalized identity document number       i:11010519491231002X
//
// For names the text is normalized with NFKC and lowercased (so full-width
// "Ｚｈａｎｇ" is "zhang") and split into runs: CJK runs (Han, Hiragana,
// Katakana including the prolonged sound mark "ー", Hangul) and runs of other
// letters, digits and combining marks ("words"); everything else separates
// runs, and a change of script ("华为Huawei技术") starts a new run. A query
// word of two or more runes becomes a prefix term; a one-rune Latin word is
// too unselective to look up and is only checked by [MatchName]; a CJK query
// run becomes its bigrams (or its single character). Because bigram and
// prefix intersection over-approximates (the index of "张三丰" contains every
// bigram of the query "张三 三丰"), candidates must be decrypted and confirmed
// with [MatchName]. MatchName also requires every query term to be present in
// the (capped) index of the name, so a name that the index cannot find is
// never reported as a match: for all name and q, if MatchName(name, q) then
// every term of NameQuery(q) is among NameTerms(name).
//
// NameTerms emits at most 256 terms, in the order of the name, so very long
// names are only searchable by their beginning.
//
// # Leakage trade-off
//
// The HMAC hides the terms themselves from anyone without the key, but it is
// deterministic: someone with read access to the database (a DBA, a backup, an
// SQL injection) sees which customers share a term. That reveals equalities
// across customers: that two records have the same phone, e-mail or ID number
// (duplicates), the same surname or name prefix, or share CJK characters; and
// term frequencies can be matched against public surname statistics ("h1:王"
// and "h1:李" are very common), which can recover common characters and
// prefixes. The number of terms of a record also leaks the approximate length
// and word structure of the name. Prefix and bigram terms make this leakage
// much finer than whole-value terms would; it is the price of substring-like
// search on encrypted data. Callers should use a dedicated HMAC key per
// tenant (so terms are not comparable across tenants) and should not index
// fields that do not need to be searchable.
package normalize
