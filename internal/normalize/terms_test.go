package normalize

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func isSubset(sub, set []string) bool {
	for _, x := range sub {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return true
}

func TestNameTerms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // exact set, nil for no terms
	}{
		{"latin", "Zhang San", []string{"w:zhang", "w:san", "p:zh", "p:zha", "p:zhan", "p:zhang", "p:sa", "p:san"}},
		{"cjk", "张三丰", []string{"h1:张", "h1:三", "h1:丰", "h2:张三", "h2:三丰"}},
		{"single cjk", "李", []string{"h1:李"}},
		{"full-width latin", "Ｚｈａｎｇ", []string{"w:zhang", "p:zh", "p:zha", "p:zhan", "p:zhang"}},
		{"single letter word", "A", []string{"w:a"}},
		{"mixed script", "华为Huawei技术", []string{
			"h1:华", "h1:为", "h2:华为",
			"w:huawei", "p:hu", "p:hua", "p:huaw", "p:huawe", "p:huawei",
			"h1:技", "h1:术", "h2:技术"}},
		{"dedup", "an an", []string{"w:an", "p:an"}},
		{"punctuation splits", "O'Brien-Smith", []string{"w:o", "w:brien", "p:br", "p:bri", "p:brie", "p:brien", "w:smith", "p:sm", "p:smi", "p:smit", "p:smith"}},
		{"digits", "3M", []string{"w:3m", "p:3m"}},
		{"katakana with long mark", "コーヒー", []string{"h1:コ", "h1:ー", "h1:ヒ", "h2:コー", "h2:ーヒ", "h2:ヒー"}},
		{"katakana middle dot splits", "ジョン・スミス", []string{
			"h1:ジ", "h1:ョ", "h1:ン", "h2:ジョ", "h2:ョン",
			"h1:ス", "h1:ミ", "h1:ス", "h2:スミ", "h2:ミス"}},
		{"hangul", "김민수", []string{"h1:김", "h1:민", "h1:수", "h2:김민", "h2:민수"}},
		{"empty", "", nil},
		{"punctuation only", "--- !!", nil},
		{"bad utf8 is a separator", "ab\xffcd", []string{"w:ab", "p:ab", "w:cd", "p:cd"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NameTerms(tt.in)
			want := tt.want
			if want != nil {
				want = slices.Compact(sorted(want))
			}
			if got != nil {
				got = sorted(got)
			}
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("NameTerms(%q) = %q, want %q", tt.in, got, want)
			}
		})
	}
}

func TestNameTermsLongWord(t *testing.T) {
	word := strings.Repeat("a", 15) + strings.Repeat("b", 15) // 30 runes
	terms := NameTerms(word)
	if !slices.Contains(terms, "w:"+word) {
		t.Fatalf("whole word missing")
	}
	var prefixes []string
	for _, x := range terms {
		if strings.HasPrefix(x, "p:") {
			prefixes = append(prefixes, x)
		}
	}
	if len(prefixes) != 19 { // lengths 2..20
		t.Fatalf("got %d prefixes, want 19: %q", len(prefixes), prefixes)
	}
	if !slices.Contains(prefixes, "p:"+word[:20]) || slices.Contains(prefixes, "p:"+word[:21]) {
		t.Fatalf("wrong prefix range: %q", prefixes)
	}
}

func TestNameTermsCap(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 500; i++ {
		b.WriteRune(rune(0x4E00 + i)) // 500 distinct Han characters
	}
	terms := NameTerms(b.String())
	if len(terms) != maxTerms {
		t.Fatalf("got %d terms, want %d", len(terms), maxTerms)
	}
	if terms[0] != "h1:一" {
		t.Fatalf("terms do not start at the beginning of the name: %q", terms[0])
	}
}

func TestNameQuery(t *testing.T) {
	long := strings.Repeat("x", 25)
	tests := []struct {
		name string
		in   string
		want []string
	}{
		{"latin prefix", "zha", []string{"p:zha"}},
		{"two words", "Zhang San", []string{"p:zhang", "p:san"}},
		{"one letter skipped", "zhang s", []string{"p:zhang"}},
		{"only one letter", "z", nil},
		{"only one letter words", "z s", nil},
		{"long word truncated", long, []string{"p:" + long[:20]}},
		{"single cjk", "张", []string{"h1:张"}},
		{"cjk bigram", "张三", []string{"h2:张三"}},
		{"cjk run", "字节跳动", []string{"h2:字节", "h2:节跳", "h2:跳动"}},
		{"two cjk runs", "张三 三丰", []string{"h2:张三", "h2:三丰"}},
		{"mixed", "华为Huawei", []string{"h2:华为", "p:huawei"}},
		{"full-width", "Ｚｈａ", []string{"p:zha"}},
		{"dedup", "zha zha", []string{"p:zha"}},
		{"empty", "", nil},
		{"blank", "   ", nil},
		{"punctuation", "*%_", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NameQuery(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("NameQuery(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestNameSearch(t *testing.T) {
	tests := []struct {
		name       string
		record     string
		query      string
		wantSubset bool // NameQuery(query) ⊆ NameTerms(record): the index finds it
		wantMatch  bool // MatchName(record, query)
	}{
		{"张三丰 by 张三", "张三丰", "张三", true, true},
		{"张三丰 by 三丰", "张三丰", "三丰", true, true},
		{"张三丰 by 丰", "张三丰", "丰", true, true},
		{"张三丰 by itself", "张三丰", "张三丰", true, true},
		{"Zhang San by zha", "Zhang San", "zha", true, true},
		{"Zhang San by ZHANG SAN", "Zhang San", "ZHANG SAN", true, true},
		{"Zhang San by san zhang", "Zhang San", "san zhang", true, true},
		{"Zhang San by zhang s", "Zhang San", "zhang s", true, true},
		{"Zhang San not by zhang w", "Zhang San", "zhang w", true, false},
		{"Zhang San not by han", "Zhang San", "han", false, false},
		{"company by 字节跳动", "北京字节跳动科技有限公司", "字节跳动", true, true},
		{"company by 北京 科技", "北京字节跳动科技有限公司", "北京 科技", true, true},
		{"company not by 跳动字节", "北京字节跳动科技有限公司", "跳动字节", false, false},
		{"mixed by huawei", "华为Huawei技术", "huawei", true, true},
		{"mixed by 华为 hua", "华为Huawei技术", "华为 hua", true, true},
		{"mixed by 华为huawei", "华为Huawei技术", "华为huawei", true, true},
		{"mixed not by 为技", "华为Huawei技术", "为技", false, false},
		{"full-width record", "Ｚｈａｎｇ", "zhang", true, true},
		{"full-width query", "Zhang", "Ｚｈａｎｇ", true, true},
		// The bigrams of 张三丰 are all in the index of 张三 三丰, but the
		// name does not contain 张三丰: a false positive of the index.
		{"false positive 张三 三丰 for 张三丰", "张三 三丰", "张三丰", true, false},
		{"two runs both in name", "张三丰", "张三 三丰", true, true},
		{"false positive bigram chain", "张三张", "三张三", true, false},
		{"one letter query", "Zhang San", "z", false, false},
		{"empty query", "Zhang San", "", false, false},
		{"different name", "李四", "张三", false, false},
		{"long query word", strings.Repeat("a", 30), strings.Repeat("a", 25), true, true},
		{"long query word not prefix", strings.Repeat("a", 30), strings.Repeat("a", 20) + "b", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := NameQuery(tt.query)
			index := NameTerms(tt.record)
			subset := q != nil && isSubset(q, index)
			if subset != tt.wantSubset {
				t.Fatalf("query terms %q ⊆ index %q = %v, want %v", q, index, subset, tt.wantSubset)
			}
			if got := MatchName(tt.record, tt.query); got != tt.wantMatch {
				t.Fatalf("MatchName = %v, want %v", got, tt.wantMatch)
			}
		})
	}
}

// TestMatchNameRespectsCap: a name whose index was capped must not be
// reported as matching a query the index cannot answer.
func TestMatchNameRespectsCap(t *testing.T) {
	var b strings.Builder
	for i := 0; i < 300; i++ {
		b.WriteRune(rune(0x4E00 + i))
	}
	name := b.String()
	tail := string([]rune(name)[290:])
	if MatchName(name, tail) {
		t.Fatalf("MatchName accepted a query beyond the index cap")
	}
	head := string([]rune(name)[:10])
	if !MatchName(name, head) {
		t.Fatalf("MatchName rejected the beginning of the name")
	}
}

func TestTermFunctions(t *testing.T) {
	tests := []struct {
		name    string
		fn      func(string) (string, error)
		in      string
		want    string
		wantErr bool
	}{
		{"email", EmailTerm, "A@B.com", "e:a@b.com", false},
		{"email invalid", EmailTerm, "a@b", "", true},
		{"phone", PhoneTerm, "138 0013 8000", "t:+8613800138000", false},
		{"phone landline", PhoneTerm, "010-6552 9988", "t:+861065529988", false},
		{"phone invalid", PhoneTerm, "123", "", true},
		{"id", IDTerm, "11010519491231002x", "i:11010519491231002X", false},
		{"id passport", IDTerm, "e1234 5678", "i:E12345678", false},
		{"id invalid", IDTerm, "110105194912310021", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.fn(tt.in)
			checkErr(t, tt.in, err, tt.wantErr)
			if got != tt.want {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("error does not wrap ErrInvalid")
			}
		})
	}
}

func TestQueryTerms(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]string
	}{
		{"email only", "Zhang.San@Example.com", [][]string{{"e:zhang.san@example.com"}}},
		{"mobile", "13800138000", [][]string{{"t:+8613800138000"}, {"i:13800138000"}, {"p:13800138000"}}},
		{"formatted mobile", "138 0013 8000", [][]string{{"t:+8613800138000"}, {"i:13800138000"}, {"p:138", "p:0013", "p:8000"}}},
		{"e164 mobile", "+86 138-0013-8000", [][]string{{"t:+8613800138000"}, {"p:86", "p:138", "p:0013", "p:8000"}}},
		{"prc id", "11010519491231002X", [][]string{{"i:11010519491231002X"}, {"p:11010519491231002x"}}},
		{"passport", "E12345678", [][]string{{"i:E12345678"}, {"p:e12345678"}}},
		{"word is not an id", "Zhang", [][]string{{"p:zhang"}}},
		{"letters mostly", "ABC-12", [][]string{{"p:abc", "p:12"}}},
		{"name", "Zhang San", [][]string{{"p:zhang", "p:san"}}},
		{"cjk", "张三", [][]string{{"h2:张三"}}},
		{"single cjk", "张", [][]string{{"h1:张"}}},
		{"too short", "z", nil},
		{"empty", "", nil},
		{"bad prc id falls back to name", "110105194912310021", [][]string{{"p:110105194912310021"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := QueryTerms(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("QueryTerms(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
