package normalize

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

const (
	// maxTerms caps the number of terms of one name (and of one query).
	maxTerms = 256
	// maxPrefix is the longest prefix term, in runes.
	maxPrefix = 20
	// minQueryWord is the shortest Latin query word that is looked up.
	minQueryWord = 2
)

// Term kind prefixes.
const (
	kindWord   = "w:"
	kindPrefix = "p:"
	kindHan1   = "h1:"
	kindHan2   = "h2:"
	kindEmail  = "e:"
	kindPhone  = "t:"
	kindID     = "i:"
)

// token is one run of a search-normalized string: a CJK run or a word of
// other letters, digits and marks.
type token struct {
	text string
	cjk  bool
}

// searchNorm is the normalization shared by index and query: invalid UTF-8
// replaced, NFKC, lowercase.
func searchNorm(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ToLower(norm.NFKC.String(s))
}

const (
	classSep = iota
	classWord
	classCJK
)

func runeClass(r rune) int {
	switch {
	case r < utf8.RuneSelf:
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r >= 'A' && r <= 'Z' {
			return classWord
		}
		return classSep
	case isCJK(r):
		return classCJK
	case unicode.IsLetter(r), unicode.IsNumber(r), unicode.IsMark(r):
		return classWord
	}
	return classSep
}

// isCJK reports whether r belongs to a script written without spaces between
// words, which is indexed by characters and bigrams.
func isCJK(r rune) bool {
	return unicode.Is(unicode.Han, r) ||
		unicode.Is(unicode.Hiragana, r) ||
		unicode.Is(unicode.Katakana, r) ||
		unicode.Is(unicode.Hangul, r) ||
		r == 'ー' // U+30FC, script Common, but part of Katakana words
}

// tokenize splits a search-normalized string into runs of one class.
func tokenize(s string) []token {
	var toks []token
	start, cur := 0, classSep
	for i, r := range s {
		c := runeClass(r)
		if c == cur {
			continue
		}
		if cur != classSep {
			toks = append(toks, token{text: s[start:i], cjk: cur == classCJK})
		}
		start, cur = i, c
	}
	if cur != classSep {
		toks = append(toks, token{text: s[start:], cjk: cur == classCJK})
	}
	return toks
}

// termSet collects distinct terms in insertion order, up to maxTerms.
type termSet struct {
	seen  map[string]struct{}
	terms []string
}

func newTermSet() *termSet {
	return &termSet{seen: make(map[string]struct{}, 32), terms: make([]string, 0, 32)}
}

func (t *termSet) full() bool { return len(t.terms) >= maxTerms }

func (t *termSet) add(kind, v string) {
	if t.full() {
		return
	}
	term := kind + v
	if _, ok := t.seen[term]; ok {
		return
	}
	t.seen[term] = struct{}{}
	t.terms = append(t.terms, term)
}

func (t *termSet) result() []string {
	if len(t.terms) == 0 {
		return nil
	}
	return t.terms
}

// NameTerms returns the distinct blind-index terms of a name: for each Latin
// word "w:word" and its prefixes "p:xx" of 2..min(len, 20) runes; for each
// CJK run every character "h1:c" and every adjacent pair "h2:cc". At most
// 256 terms are returned, in the order of the name. It returns nil when the
// name has no indexable run.
func NameTerms(name string) []string {
	toks := tokenize(searchNorm(name))
	set := newTermSet()
	for _, tok := range toks {
		if set.full() {
			break
		}
		s := tok.text
		if tok.cjk {
			// i is the start of the current character, j of the next.
			for i := 0; i < len(s); {
				_, n := utf8.DecodeRuneInString(s[i:])
				j := i + n
				set.add(kindHan1, s[i:j])
				if j < len(s) {
					_, n2 := utf8.DecodeRuneInString(s[j:])
					set.add(kindHan2, s[i:j+n2])
				}
				i = j
			}
			continue
		}
		set.add(kindWord, s)
		runes := 0
		for i := range s {
			if runes >= minQueryWord && runes <= maxPrefix {
				set.add(kindPrefix, s[:i])
			}
			runes++
			if runes > maxPrefix {
				break
			}
		}
		if runes >= minQueryWord && runes <= maxPrefix {
			set.add(kindPrefix, s)
		}
	}
	return set.result()
}

// queryPrefix returns the first maxPrefix runes of s.
func queryPrefix(s string) string {
	runes := 0
	for i := range s {
		if runes == maxPrefix {
			return s[:i]
		}
		runes++
	}
	return s
}

// NameQuery turns search text into the terms that must all be present in a
// name's index for it to match. A Latin word of two or more runes becomes the
// prefix term "p:" of its first 20 runes; a one-rune Latin word is skipped
// (too unselective; MatchName still checks it). A one-character CJK run
// becomes "h1:c", a longer one all its bigrams "h2:cc". It returns nil when
// there is no usable term. At most 256 terms are returned.
func NameQuery(q string) []string {
	return queryTerms(tokenize(searchNorm(q)))
}

func queryTerms(toks []token) []string {
	set := newTermSet()
	for _, tok := range toks {
		s := tok.text
		if !tok.cjk {
			if utf8.RuneCountInString(s) >= minQueryWord {
				set.add(kindPrefix, queryPrefix(s))
			}
			continue
		}
		_, n := utf8.DecodeRuneInString(s)
		if n == len(s) {
			set.add(kindHan1, s)
			continue
		}
		for i := 0; i+n < len(s); {
			_, n2 := utf8.DecodeRuneInString(s[i+n:])
			set.add(kindHan2, s[i:i+n+n2])
			i += n
			n = n2
		}
	}
	return set.result()
}

// MatchName reports whether name really matches the search text q: q must
// yield at least one query term, every Latin word of q (one-rune words
// included) must be a prefix of some word of name, every CJK run of q must be
// a substring of some CJK run of name, and every term of NameQuery(q) must be
// among NameTerms(name) (so that MatchName never accepts a name that the
// capped index could not have found). Both sides use the search
// normalization (NFKC, lowercase). It is meant to drop the false positives of
// the blind-index lookup after the candidates are decrypted.
func MatchName(name, q string) bool {
	qt := tokenize(searchNorm(q))
	terms := queryTerms(qt)
	if terms == nil {
		return false
	}
	nt := tokenize(searchNorm(name))
	for _, t := range qt {
		if !tokenMatches(t, nt) {
			return false
		}
	}
	index := NameTerms(name)
	have := make(map[string]struct{}, len(index))
	for _, t := range index {
		have[t] = struct{}{}
	}
	for _, t := range terms {
		if _, ok := have[t]; !ok {
			return false
		}
	}
	return true
}

func tokenMatches(q token, name []token) bool {
	for _, n := range name {
		if n.cjk != q.cjk {
			continue
		}
		if q.cjk && strings.Contains(n.text, q.text) {
			return true
		}
		if !q.cjk && strings.HasPrefix(n.text, q.text) {
			return true
		}
	}
	return false
}

// EmailTerm returns the blind-index term "e:<address>" of an e-mail address,
// normalized with Email.
func EmailTerm(s string) (string, error) {
	v, err := Email(s)
	if err != nil {
		return "", err
	}
	return kindEmail + v, nil
}

// PhoneTerm returns the blind-index term "t:<E.164>" of a phone number,
// normalized with Phone.
func PhoneTerm(s string) (string, error) {
	v, err := Phone(s)
	if err != nil {
		return "", err
	}
	return kindPhone + v, nil
}

// IDTerm returns the blind-index term "i:<id>" of an identity document
// number, normalized with IDNumber.
func IDTerm(s string) (string, error) {
	v, err := IDNumber(s)
	if err != nil {
		return "", err
	}
	return kindID + v, nil
}

// QueryTerms classifies the text of the customer search box and returns the
// alternatives to look up: each inner slice is a set of terms that must all
// match, and a record matches if any alternative matches. An e-mail address
// yields only [[e:...]]. Otherwise the alternatives are, in this order: the
// phone term if q is a valid phone number; the ID term if q is a valid ID
// number that is a PRC resident ID or consists mostly of digits (so ordinary
// words are not looked up as passport numbers); and NameQuery(q) if it is not
// empty. It returns nil when there is no alternative ("search text too
// short").
func QueryTerms(q string) [][]string {
	if t, err := EmailTerm(q); err == nil {
		return [][]string{{t}}
	}
	var out [][]string
	if t, err := PhoneTerm(q); err == nil {
		out = append(out, []string{t})
	}
	if id, err := IDNumber(q); err == nil && (looksPRC(id) || mostlyDigits(id)) {
		out = append(out, []string{kindID + id})
	}
	if nq := NameQuery(q); nq != nil {
		out = append(out, nq)
	}
	return out
}

// mostlyDigits reports whether more than half of the bytes of an ASCII id
// are digits.
func mostlyDigits(id string) bool {
	d := 0
	for i := 0; i < len(id); i++ {
		if id[i] >= '0' && id[i] <= '9' {
			d++
		}
	}
	return 2*d > len(id)
}
